//! Memory stays bounded: validation does not grow with the file at all, and an import grows
//! only by the key index (a few dozen bytes a contact), never by the file or the row count.
//! Peak resident memory of each run of the real binary is read with wait4.

mod common;

use common::Workspace;
use common::memory::{measured, run, write_repeated};

#[test]
fn memory_grows_only_by_the_key_index() {
    let small = 50_000u64;
    let large = 250_000u64;
    let ws = Workspace::new("");
    for n in [small, large] {
        run(
            &ws,
            &[
                "generate",
                "--contacts",
                &n.to_string(),
                "--directory",
                "1000",
                "--xml",
                &format!("c{n}.xml"),
                "--csv",
                "d.csv",
            ],
        );
    }
    run(&ws, &["directory", "load", "d.csv"]);
    let validate_small = run(&ws, &["validate", &format!("c{small}.xml")]);
    let validate_large = run(&ws, &["validate", &format!("c{large}.xml")]);
    let per_contact = |a: u64, b: u64| b.saturating_sub(a) as f64 / (large - small) as f64;
    let v = per_contact(validate_small, validate_large);
    eprintln!("validate: {validate_small} -> {validate_large} bytes ({v:.1} B/contact)");
    // Validation keeps no per-contact state: what it holds is the parsing window (a few
    // chunks of the file and their contacts) whatever the file's size.
    assert!(
        validate_large < 48 << 20,
        "validating {large} contacts took {validate_large} bytes"
    );
    assert!(
        v < 40.0,
        "validation memory grows with the file: {v:.1} bytes a contact"
    );

    let ws_small = Workspace::new("");
    let ws_large = Workspace::new("");
    for (w, n) in [(&ws_small, small), (&ws_large, large)] {
        std::fs::copy(ws.path(&format!("c{n}.xml")), w.path("c.xml")).unwrap();
        std::fs::copy(ws.path("d.csv"), w.path("d.csv")).unwrap();
        run(w, &["directory", "load", "d.csv"]);
    }
    let import_small = run(&ws_small, &["import", "c.xml"]);
    let reimport_small = run(&ws_small, &["import", "c.xml"]);
    let import_large = run(&ws_large, &["import", "c.xml"]);
    let reimport_large = run(&ws_large, &["import", "c.xml"]);
    let fresh = per_contact(import_small, import_large);
    let again = per_contact(reimport_small, reimport_large);
    eprintln!("import: {import_small} -> {import_large} bytes ({fresh:.0} B/contact)");
    eprintln!("re-import: {reimport_small} -> {reimport_large} bytes ({again:.0} B/contact)");
    // The key index costs 40 bytes a key plus the hash table's slack (it is sized once, from
    // an estimate, so it does not hold two tables while doubling); SQLite's page cache is
    // capped at 8 MiB. Keeping rows or the file would cost well over the bounds below.
    assert!(
        fresh < 160.0,
        "fresh import grows by {fresh:.0} bytes a contact"
    );
    assert!(
        again < 160.0,
        "re-import grows by {again:.0} bytes a contact"
    );
}

/// Hostile documents are refused fast and in bounded memory: deep nesting, a value of
/// hundreds of megabytes, a comment that never ends.
#[test]
fn hostile_documents_are_refused_in_bounded_memory() {
    let ws = Workspace::new("");
    // Written in chunks: a child's peak memory counts the parent's at fork, so the test
    // process must stay small.
    write_repeated(&ws, "deep.xml", "<contacts>", "<contact>", 5_000_000, "");
    let x = "x".repeat(1 << 20);
    write_repeated(
        &ws,
        "huge-value.xml",
        "<contacts><contact><first_name>",
        &x,
        300,
        "</first_name></contact></contacts>",
    );
    write_repeated(&ws, "endless-comment.xml", "<contacts><!--", &x, 300, "");
    for (file, message) in [
        ("deep.xml", "nested more than 64 levels"),
        ("huge-value.xml", "bytes follow without markup"),
        ("endless-comment.xml", "bytes follow without markup"),
    ] {
        let (code, peak, stderr) = measured(&ws, &["validate", file]);
        assert_eq!(code, 1, "{stderr}");
        eprintln!("{file}: peak {peak} bytes");
        assert!(
            stderr.contains(file) && stderr.contains(message),
            "{stderr}"
        );
        // The files are 300 MB or more (deep.xml 45 MB); the parser never holds them.
        assert!(peak < 64 << 20, "{file} took {peak} bytes");
    }
}
