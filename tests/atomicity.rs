//! A run lands whole or not at all: failed, refused and killed runs leave the merged table
//! byte-identical, readers see the old table until the commit, unchanged rows are never
//! rewritten, and a fresh import (which rebuilds the indexes) leaves every index in place.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{BIN, Workspace, contacts_xml, repo};

fn seeded(ws: &Workspace) -> String {
    ws.write(
        "directory.csv",
        "id,e_mail,first_name\n1,anna@example.com,Anna\n2,bart@example.com,Bart\n",
    );
    ws.ok(&["directory", "load", "directory.csv"]);
    ws.write(
        "good.xml",
        contacts_xml(&[
            &[("e_mail", "anna@example.com"), ("site", "Gent")],
            &[("e_mail", "x@ext.example")],
            &[("e_mail", "y@ext.example")],
        ]),
    );
    ws.import("good.xml", &[]);
    ws.export()
}

#[test]
fn a_truncated_file_leaves_the_directory_unchanged() {
    let ws = Workspace::new("");
    let before = seeded(&ws);
    let good = std::fs::read_to_string(ws.path("good.xml")).unwrap();
    ws.write("truncated.xml", &good[..good.len() * 2 / 3]);
    let report = ws.import_fails("truncated.xml", &[]);
    assert_eq!(report["status"], "failed");
    assert!(
        report["error"].as_str().unwrap().contains("truncated.xml:"),
        "{report}"
    );
    assert_eq!(ws.export(), before);
}

#[test]
fn a_file_with_an_invalid_contact_at_the_very_end_leaves_the_table_unchanged() {
    let ws = Workspace::new("");
    let before = seeded(&ws);
    let mut contacts: Vec<Vec<(&str, String)>> = (0..500)
        .map(|i| vec![("e_mail", format!("c{i}@ext.example"))])
        .collect();
    contacts.push(vec![
        ("e_mail", "last@ext.example".into()),
        ("nickname", "oops".into()),
    ]);
    let refs: Vec<Vec<(&str, &str)>> = contacts
        .iter()
        .map(|c| c.iter().map(|(k, v)| (*k, v.as_str())).collect())
        .collect();
    let refs: Vec<&[(&str, &str)]> = refs.iter().map(|v| v.as_slice()).collect();
    ws.write("bad-end.xml", contacts_xml(&refs));
    let report = ws.import_fails("bad-end.xml", &[]);
    let error = report["error"].as_str().unwrap();
    assert!(
        error.contains("bad-end.xml:1505:5: element <nickname> is not allowed in <contact>"),
        "{error}"
    );
    assert_eq!(ws.export(), before);
}

/// The indexes of the merged table and the number index, as stored: name and definition,
/// whitespace collapsed, sorted by name.
fn indexes(ws: &Workspace) -> String {
    let sql = if ws.is_postgres() {
        "SELECT string_agg(indexname || ': ' || indexdef, ' | ' ORDER BY indexname) \
         FROM pg_indexes WHERE tablename IN ('contacts', 'contact_numbers')"
    } else {
        "SELECT group_concat(name || ': ' || sql, ' | ') FROM (SELECT name, sql FROM \
         sqlite_master WHERE type = 'index' AND sql IS NOT NULL \
         AND tbl_name IN ('contacts', 'contact_numbers') ORDER BY name)"
    };
    ws.query_one(sql)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// A fresh import drops the search, number and key indexes and builds them again before
/// its commit: landed or failed, the table keeps every index the migrations made, as they
/// made it (a build left out, on either backend, would leave lookups scanning the table).
#[test]
fn a_fresh_import_landed_or_failed_keeps_every_index_as_the_migrations_made_it() {
    let ws = Workspace::new("");
    ws.ok(&["runs"]);
    let schema = indexes(&ws);
    for index in [
        "contacts_by_directory_id",
        "contacts_by_external_key",
        "contacts_search_first_name",
        "contacts_search_e_mail",
        "contact_numbers_by_number",
    ] {
        assert!(schema.contains(index), "{index}: {schema}");
    }
    ws.write(
        "bad-end.xml",
        contacts_xml(&[
            &[
                ("e_mail", "a@ext.example"),
                ("mobile_number", "+32 475 11 11 11"),
            ],
            &[("e_mail", "b@ext.example"), ("nickname", "oops")],
        ]),
    );
    ws.import_fails("bad-end.xml", &[]);
    assert_eq!(indexes(&ws), schema);
    ws.write(
        "good.xml",
        contacts_xml(&[&[
            ("e_mail", "a@ext.example"),
            ("mobile_number", "+32 475 11 11 11"),
        ]]),
    );
    ws.import("good.xml", &[]);
    assert_eq!(ws.rows().len(), 1);
    assert_eq!(indexes(&ws), schema);
}

/// Release 1.8.1 of the original product: "Imported contact growing in case of invalid XML
/// (M0004432)". Importing invalid files again and again must not add a single row.
#[test]
fn regression_m0004432_invalid_xml_never_grows_the_contacts() {
    let ws = Workspace::new("");
    let before = seeded(&ws);
    for broken in [
        "samples/broken/truncated.xml",
        "samples/broken/invalid-contact-at-the-end.xml",
        "samples/broken/unknown-field.xml",
        "samples/broken/billion-laughs.xml",
    ] {
        for _ in 0..3 {
            let path = repo(broken);
            ws.import_fails(path.to_str().unwrap(), &[]);
        }
    }
    assert_eq!(ws.export(), before);
}

#[test]
fn a_second_identical_run_writes_nothing_and_keeps_updated_at() {
    let ws = Workspace::new("");
    seeded(&ws);
    let stamps = || updated_at(&ws);
    let first = stamps();
    std::thread::sleep(Duration::from_millis(20));
    let report = ws.import("good.xml", &[]);
    assert_eq!(
        (
            report["inserted"].clone(),
            report["updated"].clone(),
            report["deleted"].clone()
        ),
        (0.into(), 0.into(), 0.into())
    );
    assert_eq!(report["unchanged"], 4);
    assert_eq!(stamps(), first);
}

#[test]
fn only_changed_rows_get_a_new_updated_at() {
    let ws = Workspace::new("");
    seeded(&ws);
    let first = updated_at(&ws);
    std::thread::sleep(Duration::from_millis(20));
    ws.write(
        "changed.xml",
        contacts_xml(&[
            &[("e_mail", "anna@example.com"), ("site", "Gent")],
            &[("e_mail", "x@ext.example"), ("site", "new")],
            &[("e_mail", "y@ext.example")],
        ]),
    );
    assert_eq!(ws.import("changed.xml", &[])["updated"], 1);
    let second = updated_at(&ws);
    let changed: Vec<_> = first.iter().zip(&second).filter(|(a, b)| a != b).collect();
    assert_eq!(changed.len(), 1, "{first:?} -> {second:?}");
    assert!(changed[0].1.0.contains("x@ext.example"));
}

/// (row key, updated_at) of every row, in a stable order, read from the database directly.
fn updated_at(ws: &Workspace) -> Vec<(String, String)> {
    let url = ws.db_url();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async move {
            let store = ucm::load::Store::open(&url).await.unwrap();
            let rows = store
                .select_text(
                    "SELECT coalesce(directory_id, match_key), updated_at FROM contacts \
                 ORDER BY directory_id IS NULL, directory_id, match_key",
                )
                .await
                .unwrap();
            store.close().await;
            rows.into_iter()
                .map(|r| (r[0].clone().unwrap(), r[1].clone().unwrap()))
                .collect()
        })
}

fn big_source(ws: &Workspace, contacts: u64) -> String {
    let path = ws.path("big.xml");
    let status = Command::new(BIN)
        .args(["generate", "--contacts", &contacts.to_string(), "--xml"])
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    path.to_str().unwrap().to_owned()
}

/// Starts `ucm import FILE --force` in the background.
fn spawn_import(ws: &Workspace, file: &str) -> std::process::Child {
    Command::new(BIN)
        .current_dir(ws.dir.path())
        .arg("-c")
        .arg(ws.path("pipeline.toml"))
        .args(["-q", "import", file, "--force"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn a_killed_import_leaves_the_table_unchanged() {
    let ws = Workspace::new("");
    let before = seeded(&ws);
    let big = big_source(&ws, 300_000);
    let mut child = spawn_import(&ws, &big);
    // Wait until the run is writing (the database grows by a few MB), then kill it.
    common::kill_once_writing(&ws, &mut child);
    assert_eq!(ws.export(), before);
    // And the database is usable afterwards.
    ws.import("good.xml", &[]);
}

#[test]
fn a_database_connection_lost_mid_run_rolls_back_and_the_run_is_reported_failed() {
    let ws = Workspace::new("");
    if !ws.is_postgres() {
        // SQLite has no server to lose; a killed process is the test above.
        return;
    }
    let before = seeded(&ws);
    let big = big_source(&ws, 300_000);
    let start_len = ws.written_bytes();
    let child = Command::new(BIN)
        .current_dir(ws.dir.path())
        .arg("-c")
        .arg(ws.path("pipeline.toml"))
        .args(["import", &big, "--force", "--format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(120);
    while ws.written_bytes() < start_len + 4_000_000 {
        assert!(
            Instant::now() < deadline,
            "the import never started writing"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // The server ends every session of that process, as a restart or a network cut would.
    let ended = common::psql(
        &ws.db_url(),
        &format!(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE application_name = 'ucm (pid {pid})'"
        ),
    );
    assert_ne!(ended, "0", "no session of the import was found");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["status"], "failed");
    assert!(
        report["run_id"].is_i64(),
        "the failed run is recorded: {report}"
    );
    assert_eq!(ws.export(), before);
    ws.import("good.xml", &[]);
}

#[test]
fn readers_see_the_old_table_until_the_commit() {
    let ws = Workspace::new("");
    let before = seeded(&ws);
    let big = big_source(&ws, 100_000);
    let mut child = spawn_import(&ws, &big);
    let mut old_seen = 0;
    while child.try_wait().unwrap().is_none() {
        let out = Command::new(BIN)
            .args(["-c", ws.path("pipeline.toml").to_str().unwrap(), "export"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        if text == before {
            old_seen += 1;
        } else {
            // Not the old table: then the whole new one (100,000 external + 2 directory rows
            // + header).
            assert_eq!(
                text.lines().count(),
                100_003,
                "a reader saw a partial table"
            );
        }
    }
    assert!(child.wait().unwrap().success());
    assert!(
        old_seen > 0,
        "the export never ran while the import was writing"
    );
    assert_eq!(ws.export().lines().count(), 100_003);
}
