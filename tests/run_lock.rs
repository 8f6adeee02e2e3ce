//! One run at a time per database, across processes: a second `ucm import` started while
//! another holds the run lock waits for it (`[database] lock_wait_secs`), or, when the wait
//! runs out, is recorded as skipped and changes nothing. Two real processes, on SQLite and on
//! PostgreSQL (the same tests, run by `scripts/test.sh` against each backend).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use common::{BIN, Workspace, contacts_xml};

/// A source of `contacts` generated contacts in the workspace.
fn generated(ws: &Workspace, contacts: u64) -> String {
    let status = Command::new(BIN)
        .args([
            "generate",
            "--contacts",
            &contacts.to_string(),
            "--seed",
            "7",
            "--xml",
        ])
        .arg(ws.path("big.xml"))
        .status()
        .unwrap();
    assert!(status.success());
    "big.xml".into()
}

/// Starts `ucm import FILE` and returns once it holds the run lock (it logs that).
fn import_holding_the_lock(ws: &Workspace, file: &str) -> Child {
    let mut child = Command::new(BIN)
        .current_dir(ws.dir.path())
        .env("UCM_LOG", "ucm=info")
        .arg("-c")
        .arg(ws.path("pipeline.toml"))
        .args(["-q", "import", file, "--force"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    loop {
        let line = lines
            .next()
            .expect("the first import logs that it holds the run lock")
            .unwrap();
        if line.contains("run lock held") {
            break;
        }
    }
    // Keep draining its log so it never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    child
}

fn with_lock_wait(ws: &Workspace, secs: u64) {
    let config = std::fs::read_to_string(ws.path("pipeline.toml")).unwrap();
    let config = config.replace(
        "[database]\n",
        &format!("[database]\nlock_wait_secs = {secs}\n"),
    );
    std::fs::write(ws.path("pipeline.toml"), config).unwrap();
}

fn runs(ws: &Workspace) -> Vec<serde_json::Value> {
    serde_json::from_str(&ws.ok(&["runs", "--format", "json"])).unwrap()
}

#[test]
fn a_run_started_during_another_waits_for_it_then_runs() {
    let ws = Workspace::new("");
    with_lock_wait(&ws, 300);
    let big = generated(&ws, 200_000);
    ws.write(
        "small.xml",
        contacts_xml(&[&[("e_mail", "late@example.com"), ("first_name", "Late")]]),
    );
    let mut first = import_holding_the_lock(&ws, &big);
    // Started while the first holds the lock: it waits, then replaces the big import's rows.
    let second = ws.import("small.xml", &["--force"]);
    assert!(first.wait().unwrap().success());
    assert_eq!(second["status"], "succeeded");
    assert_eq!(second["inserted"], 1);
    assert_eq!(
        second["deleted"], 200_000,
        "the first run had committed before the second ran"
    );
    let rows = ws.rows();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["first_name"], "Late");
    let statuses: Vec<_> = runs(&ws).iter().map(|r| r["status"].clone()).collect();
    assert_eq!(statuses, ["succeeded", "succeeded"]);
}

#[test]
fn a_run_that_cannot_get_the_lock_in_time_is_skipped_and_changes_nothing() {
    let ws = Workspace::new("");
    with_lock_wait(&ws, 0);
    let big = generated(&ws, 200_000);
    ws.write(
        "small.xml",
        contacts_xml(&[&[("e_mail", "late@example.com"), ("first_name", "Late")]]),
    );
    let mut first = import_holding_the_lock(&ws, &big);
    let out = ws.ucm(&["import", "small.xml", "--force", "--format", "json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["status"], "skipped");
    let error = report["error"].as_str().unwrap();
    assert!(
        error.contains("another ucm run")
            && error.contains("holds the run lock")
            && error.contains("lock_wait_secs"),
        "{error}"
    );
    if ws.is_postgres() {
        // PostgreSQL can say who holds it.
        assert!(error.contains("ucm (pid "), "{error}");
    }
    assert!(first.wait().unwrap().success());
    // Only the first run's rows: the skipped one wrote nothing.
    let rows = ws.rows();
    assert_eq!(rows.len(), 200_000);
    assert!(rows.iter().all(|r| r["match_key"] != "late@example.com"));
    let mut statuses: Vec<String> = runs(&ws)
        .iter()
        .map(|r| r["status"].as_str().unwrap().to_owned())
        .collect();
    statuses.sort();
    assert_eq!(statuses, ["skipped", "succeeded"]);
}
