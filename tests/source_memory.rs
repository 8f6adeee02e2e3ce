//! CSV and vCard sources in bounded memory (issue 25): hostile files (a quote that never
//! closes, a row or a folded property of hundreds of megabytes) are refused in a few
//! megabytes, and imports grow only by the key index, as the XML source's do
//! (tests/bounded_memory.rs). Its own test binary: a child's measured peak must not include
//! another test's children's.

mod common;

use common::Workspace;
use common::memory::{measured, run, write_repeated};

/// CSV and vCard sources are refused as fast and in as little memory: a quote that never
/// closes before 300 MB of rows, a row of 300 MB, a vCard property folded over 300 MB; and
/// their imports grow only by the key index, as XML's does.
#[test]
fn csv_and_vcard_sources_stay_in_bounded_memory() {
    let ws = Workspace::new("[source]\nkind = \"csv\"\n");
    let row = "ann@example.com,Ann\n".repeat(50_000);
    write_repeated(
        &ws,
        "open-quote.csv",
        "e_mail,first_name\nbob@example.com,\"Bob\n",
        &row,
        300,
        "",
    );
    let x = "x".repeat(1 << 20);
    write_repeated(
        &ws,
        "long-row.csv",
        "e_mail,first_name\nbob@example.com,",
        &x,
        300,
        "\n",
    );
    for (file, message) in [
        (
            "open-quote.csv",
            "open-quote.csv:2:17: a quoted value runs on for over 1 MiB",
        ),
        (
            "long-row.csv",
            "long-row.csv:2:1: a row is longer than 1 MiB",
        ),
    ] {
        let config = ws.path("pipeline.toml");
        let (code, peak, stderr) =
            measured(&ws, &["-c", config.to_str().unwrap(), "validate", file]);
        assert_eq!(code, 1, "{stderr}");
        eprintln!("{file}: peak {peak} bytes");
        assert!(stderr.contains(message), "{stderr}");
        assert!(peak < 64 << 20, "{file} took {peak} bytes");
    }
    let cards = Workspace::new("[source]\nkind = \"vcard\"\n");
    let folded = format!(" {}\r\n", "y".repeat(1 << 16)).repeat(16);
    write_repeated(
        &cards,
        "long.vcf",
        "BEGIN:VCARD\r\nVERSION:3.0\r\nNOTE:x\r\n",
        &folded,
        300,
        "END:VCARD\r\n",
    );
    let config = cards.path("pipeline.toml");
    let (code, peak, stderr) = measured(
        &cards,
        &["-c", config.to_str().unwrap(), "validate", "long.vcf"],
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("long.vcf:3:1: a property longer than 1 MiB"),
        "{stderr}"
    );
    assert!(peak < 64 << 20, "long.vcf took {peak} bytes");

    // Imports: memory grows by the key index only (as for XML above).
    let (small, large) = (50_000u64, 250_000u64);
    let mut peaks = Vec::new();
    for (kind, flag, file, mapping) in [
        ("csv", "--source-csv", "c.csv", ""),
        (
            "vcard",
            "--vcard",
            "c.vcf",
            "[source.mapping]\noffice = \"X-OFFICE\"\n",
        ),
    ] {
        for n in [small, large] {
            let w = Workspace::new(&format!("[source]\nkind = \"{kind}\"\n{mapping}"));
            run(
                &w,
                &[
                    "generate",
                    "--contacts",
                    &n.to_string(),
                    "--xml",
                    "c.xml",
                    flag,
                    file,
                ],
            );
            peaks.push((kind, n, run(&w, &["import", file])));
        }
    }
    for pair in peaks.chunks(2) {
        let [(kind, _, a), (_, _, b)] = pair else {
            unreachable!()
        };
        let grows = b.saturating_sub(*a) as f64 / (large - small) as f64;
        eprintln!("{kind} import: {a} -> {b} bytes ({grows:.0} B/contact)");
        assert!(
            grows < 160.0,
            "{kind} import grows by {grows:.0} bytes a contact"
        );
    }
}
