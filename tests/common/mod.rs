//! Test helpers: a scratch directory with its own SQLite database and pipeline config, and
//! the real `ucm` binary run against them.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A fresh workspace: config, database and files in a temporary directory.
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

pub const BIN: &str = env!("CARGO_BIN_EXE_ucm");

impl Workspace {
    /// A workspace whose `pipeline.toml` holds `config` (the database URL is added).
    pub fn new(config: &str) -> Workspace {
        let ws = Workspace {
            dir: tempfile::tempdir().expect("temp dir"),
        };
        ws.config(config);
        ws
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn db_url(&self) -> String {
        format!("sqlite://{}", self.path("ucm.db").display())
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
        Command::new(BIN)
            .current_dir(self.dir.path())
            .arg("-c")
            .arg(self.path("pipeline.toml"))
            .args(args)
            .output()
            .expect("run ucm")
    }

    /// Runs ucm and asserts it exits 0; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.ucm(args);
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
