//! Test helpers: a scratch directory with its own database and pipeline config, and the real
//! `ucm` binary run against them.
//!
//! The database is a SQLite file in the workspace, or, when `UCM_TEST_POSTGRES_URL` names a
//! PostgreSQL server (an administrator's URL; `scripts/test.sh` starts one), a fresh database
//! on that server, dropped with the workspace. The same tests run against both backends.
#![allow(dead_code)]

pub mod browser;
pub mod console_forms;
pub mod ldap;
pub mod memory;
pub mod radicale;
pub mod service;
pub mod slapd;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

/// A fresh workspace: config, database and files in a temporary directory.
pub struct Workspace {
    pub dir: tempfile::TempDir,
    url: String,
    /// The PostgreSQL database made for this workspace, and the server's admin URL.
    postgres: Option<(String, String)>,
}

pub const BIN: &str = env!("CARGO_BIN_EXE_ucm");

/// The PostgreSQL server the tests run against, if any.
pub fn postgres_admin_url() -> Option<String> {
    std::env::var("UCM_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

/// Runs one SQL statement with psql at `url`; returns its unaligned, tuples-only output.
pub fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([
            url,
            "-X",
            "-q",
            "-t",
            "-A",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ])
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

/// `admin` with its database replaced by `database`.
fn with_database(admin: &str, database: &str) -> String {
    let (server, query) = admin.split_once('?').unwrap_or((admin, ""));
    let base = &server[..server.rfind('/').expect("a database in the URL")];
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    format!("{base}/{database}{query}")
}

impl Workspace {
    /// A workspace whose `pipeline.toml` holds `config` (the database URL is added).
    pub fn new(config: &str) -> Workspace {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = tempfile::tempdir().expect("temp dir");
        let (url, postgres) = match postgres_admin_url() {
            Some(admin) => {
                let name = format!(
                    "ucm_test_{}_{}",
                    std::process::id(),
                    NEXT.fetch_add(1, Ordering::Relaxed)
                );
                psql(&admin, &format!("CREATE DATABASE {name}"));
                (with_database(&admin, &name), Some((name, admin)))
            }
            None => (
                format!("sqlite://{}", dir.path().join("ucm.db").display()),
                None,
            ),
        };
        let ws = Workspace { dir, url, postgres };
        ws.config(config);
        ws
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn db_url(&self) -> String {
        self.url.clone()
    }

    pub fn is_postgres(&self) -> bool {
        self.postgres.is_some()
    }

    /// Bytes the database has written so far, committed or not: the SQLite write-ahead log's
    /// size, or the PostgreSQL database's size on disk. A run that is writing makes it grow.
    pub fn written_bytes(&self) -> u64 {
        match &self.postgres {
            Some(_) => psql(&self.url, "SELECT pg_database_size(current_database())")
                .parse()
                .expect("a size"),
            None => std::fs::metadata(self.path("ucm.db-wal"))
                .map(|m| m.len())
                .unwrap_or(0),
        }
    }

    /// The first column of the first row `sql` returns, as text, on either backend.
    pub fn query_one(&self, sql: &str) -> String {
        match &self.postgres {
            Some(_) => psql(&self.url, sql),
            None => {
                let db = self.url.trim_start_matches("sqlite://");
                let conn = rusqlite::Connection::open(db).unwrap();
                conn.query_row(sql, [], |r| {
                    Ok(match r.get_ref(0)? {
                        rusqlite::types::ValueRef::Null => String::new(),
                        rusqlite::types::ValueRef::Integer(i) => i.to_string(),
                        rusqlite::types::ValueRef::Real(f) => f.to_string(),
                        rusqlite::types::ValueRef::Text(t) => String::from_utf8_lossy(t).into(),
                        rusqlite::types::ValueRef::Blob(_) => "<blob>".into(),
                    })
                })
                .unwrap()
            }
        }
    }

    /// Rewrites the pipeline config.
    pub fn config(&self, config: &str) {
        let text = format!("{config}\n[database]\nurl = \"{}\"\n", self.db_url());
        std::fs::write(self.path("pipeline.toml"), text).expect("write config");
    }

    pub fn write(&self, name: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, content).expect("write file");
        path
    }

    /// Runs `ucm -c pipeline.toml ARGS` in the workspace.
    pub fn ucm(&self, args: &[&str]) -> Output {
        self.ucm_with("pipeline.toml", args)
    }

    /// Runs `ucm -c CONFIG ARGS` in the workspace (CONFIG a file in it).
    pub fn ucm_with(&self, config: &str, args: &[&str]) -> Output {
        Command::new(BIN)
            .current_dir(self.dir.path())
            .arg("-c")
            .arg(self.path(config))
            .args(args)
            .output()
            .expect("run ucm")
    }

    /// Runs ucm and asserts it exits 0; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        self.ok_with("pipeline.toml", args)
    }

    /// Runs `ucm -c CONFIG ARGS` and asserts it exits 0; returns stdout.
    pub fn ok_with(&self, config: &str, args: &[&str]) -> String {
        let out = self.ucm_with(config, args);
        assert!(
            out.status.success(),
            "ucm {args:?} failed ({:?}):\nstdout: {}\nstderr: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 stdout")
    }

    /// Runs ucm, asserts exit code 1, returns (stdout, stderr).
    pub fn fails(&self, args: &[&str]) -> (String, String) {
        let out = self.ucm(args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "ucm {args:?} should fail:\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `ucm import FILE --format json`, parsed; asserts success.
    pub fn import(&self, file: &str, extra: &[&str]) -> serde_json::Value {
        let mut args = vec!["import", file, "--format", "json"];
        args.extend_from_slice(extra);
        serde_json::from_str(&self.ok(&args)).expect("json report")
    }

    /// `ucm import FILE --format json` expected to fail; the parsed report.
    pub fn import_fails(&self, file: &str, extra: &[&str]) -> serde_json::Value {
        let mut args = vec!["import", file, "--format", "json"];
        args.extend_from_slice(extra);
        let (stdout, _) = self.fails(&args);
        serde_json::from_str(&stdout).expect("json report")
    }

    /// The merged table as `ucm export` prints it (CSV).
    pub fn export(&self) -> String {
        self.ok(&["export"])
    }

    /// The exported rows as JSON objects.
    pub fn rows(&self) -> Vec<serde_json::Value> {
        serde_json::from_str(&self.ok(&["export", "--format", "json"])).expect("json export")
    }

    /// The exported row whose match_key is `key`.
    pub fn row(&self, key: &str) -> serde_json::Value {
        self.rows()
            .into_iter()
            .find(|r| r["match_key"] == key)
            .unwrap_or_else(|| panic!("no row with key {key}"))
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        if let Some((name, admin)) = &self.postgres {
            let _ = Command::new("psql")
                .args([admin.as_str(), "-X", "-q", "-c"])
                .arg(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .output();
        }
    }
}

/// `<contacts>` around the given `<contact>` bodies, each a list of (field, value).
pub fn contacts_xml(contacts: &[&[(&str, &str)]]) -> String {
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<contacts>\n");
    for c in contacts {
        xml.push_str("  <contact>\n");
        for (field, value) in *c {
            xml.push_str(&format!("    <{field}>{value}</{field}>\n"));
        }
        xml.push_str("  </contact>\n");
    }
    xml.push_str("</contacts>\n");
    xml
}

/// The repository root (for samples and schemas).
pub fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Waits until `child` (a ucm run or apply on `ws`) has written 4 MB, then kills it (kill -9):
/// what a crash mid-run looks like. Panics if it finishes first or never writes.
pub fn kill_once_writing(ws: &Workspace, child: &mut std::process::Child) {
    let start_len = ws.written_bytes();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while ws.written_bytes() < start_len + 4_000_000 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the process finished before it could be killed"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "the process never started writing"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// The Chromium to drive headless, or None (the test is then skipped with a note, unless
/// `UCM_REQUIRE_BROWSER` is set, as `.ci/run` does: there a missing browser fails).
pub fn chromium() -> Option<&'static str> {
    let found = ["chromium", "chromium-browser"].into_iter().find(|b| {
        Command::new(b)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if found.is_none() {
        assert!(
            std::env::var("UCM_REQUIRE_BROWSER").is_err(),
            "chromium is missing (apt-get install chromium); .ci/run installs it"
        );
        eprintln!("skipped: chromium is not installed (apt-get install chromium)");
    }
    found
}

/// Runs headless `chromium` on `url` with `extra` arguments (`--dump-dom`,
/// `--screenshot=FILE`), its profile in `profile`; returns its stdout.
pub fn headless(chromium: &str, profile: &Path, url: &str, extra: &[&str]) -> String {
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The character of one of XML's five predefined entities (`amp`, `lt`, `gt`, `quot`,
/// `apos`), for tests that read XML event by event.
pub fn predefined_entity(name: &str) -> char {
    match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        other => panic!("unknown entity {other}"),
    }
}

/// Whether a step of a query plan (SQLite's EXPLAIN QUERY PLAN, PostgreSQL's EXPLAIN) reads a
/// whole table of contacts or numbers, by name or by the aliases `c` and `n` the queries use.
pub fn plan_scans_a_table(plan: &str) -> bool {
    plan.lines().any(|step| {
        let step = step.trim_end();
        step.contains("Seq Scan on contact")
            || step.contains("SCAN contact")
            || step.ends_with("SCAN c")
            || step.ends_with("SCAN n")
    })
}

/// `work` on the workspace's database (a store opened for it, closed after).
pub fn on_store<T>(ws: &Workspace, work: impl AsyncFnOnce(&ucm::load::Store) -> T) -> T {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = ucm::load::Store::open(&ws.db_url()).await.unwrap();
        let out = work(&store).await;
        store.close().await;
        out
    })
}

/// Starts a test's server (`command`, its output to `log`) and waits up to 30 s until it
/// accepts connections on 127.0.0.1:`port`; the log is shown if it never does.
pub fn start_server(command: &mut Command, log: &Path, port: u16) -> std::process::Child {
    let output = std::fs::File::create(log).unwrap();
    let child = command
        .stdout(std::process::Stdio::null())
        .stderr(output)
        .spawn()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "{command:?} did not start: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child
}
