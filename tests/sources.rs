//! Sources that are not ucm's XML, read end to end by the real binary: CSV exports shaped
//! like Outlook's, Google Contacts' and Excel's (`;`, windows-1252, byte-order marks, UTF-16),
//! quoted values with newlines and doubled quotes, and broken files (a located error, nothing
//! lands); `ucm export` re-imported through the `ucm-csv` preset. Both backends.

mod common;

use common::Workspace;

/// A workspace whose pipeline reads a CSV source (`[source]` lines in `source`), matching on
/// e-mail addresses, without an internal directory.
fn csv_pipeline(source: &str) -> Workspace {
    Workspace::new(&format!("[source]\nkind = \"csv\"\n{source}\n"))
}

fn values(ws: &Workspace) -> Vec<(String, String, String, String)> {
    let mut rows: Vec<_> = ws
        .rows()
        .into_iter()
        .map(|r| {
            let text = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
            (
                text("e_mail"),
                text("first_name"),
                text("last_name"),
                text("mobile_number"),
            )
        })
        .collect();
    rows.sort();
    rows
}

const OUTLOOK: &str = "\"First Name\",\"Middle Name\",\"Last Name\",\"Title\",\"E-mail Address\",\
\"Business Phone\",\"Mobile Phone\",\"Home Phone\",\"Business Fax\",\"Company\",\"Department\",\
\"Job Title\",\"Office Location\",\"Business City\",\"Notes\"\r\n\
\"Anna\",\"\",\"Peeters\",\"\",\"anna@example.com\",\"201\",\"+32 475 11 11 11\",\"\",\"\",\"Example NV\",\"Sales\",\"Account \"\"key\"\" manager\",\"B.1\",\"Gent\",\"Line one\r\nline two\"\r\n\
\"Élodie\",\"\",\"Dupré\",\"\",\"elodie@example.com\",\"202\",\"\",\"+32 2 555 01 00\"\r\n";

#[test]
fn an_outlook_export_lands_through_its_preset() {
    let ws = csv_pipeline("preset = \"outlook-csv\"");
    ws.write("outlook.csv", OUTLOOK);
    let report = ws.import("outlook.csv", &[]);
    assert_eq!(report["status"], "succeeded", "{report}");
    assert_eq!(report["inserted"], 2, "{report}");
    let rows = ws.rows();
    let anna = rows
        .iter()
        .find(|r| r["e_mail"] == "anna@example.com")
        .unwrap();
    assert_eq!(anna["extension"], "201");
    assert_eq!(anna["mobile_number"], "+32 475 11 11 11");
    assert_eq!(anna["department"], "Sales");
    assert_eq!(anna["office"], "B.1");
    assert_eq!(anna["site"], "Gent");
    assert_eq!(anna["user_2"], "Account \"key\" manager");
    // A row with fewer fields than the header (Outlook writes them): the rest are empty.
    let elodie = rows
        .iter()
        .find(|r| r["e_mail"] == "elodie@example.com")
        .unwrap();
    assert_eq!(elodie["first_name"], "Élodie");
    assert_eq!(elodie["home_number"], "+32 2 555 01 00");
    assert!(elodie["department"].is_null(), "{elodie}");
}

#[test]
fn a_google_export_reads_each_phone_by_its_label() {
    let ws = csv_pipeline("preset = \"google-csv\"");
    ws.write(
        "google.csv",
        "First Name,Last Name,E-mail 1 - Label,E-mail 1 - Value,Phone 1 - Label,Phone 1 - Value,\
         Phone 2 - Label,Phone 2 - Value,Phone 3 - Label,Phone 3 - Value,Organization Name\n\
         Bob,Martens,* Work,bob@example.com,Work Fax,+32 9 000 00 00,* Mobile,+32 476 00 00 01 ::: +32 476 00 00 02,Home,+32 9 111 11 11,Partner BV\n",
    );
    let report = ws.import("google.csv", &[]);
    assert_eq!(report["inserted"], 1, "{report}");
    let bob = &ws.rows()[0];
    assert_eq!(bob["fax_number"], "+32 9 000 00 00");
    assert_eq!(
        bob["mobile_number"], "+32 476 00 00 01",
        "the first of one cell's numbers"
    );
    assert_eq!(bob["home_number"], "+32 9 111 11 11");
    assert_eq!(bob["user_1"], "Partner BV");
}

#[test]
fn excel_files_in_their_encodings_and_delimiters_read_alike() {
    let want = vec![(
        "zoe@example.com".to_owned(),
        "Zoë".to_owned(),
        "Müller".to_owned(),
        "+32 475 00 00 00".to_owned(),
    )];
    let header = "e_mail;first_name;last_name;mobile_number\r\n";
    let row = "zoe@example.com;Zoë;Müller;+32 475 00 00 00\r\n";
    // Excel's "CSV (semicolon)" in windows-1252: ë is 0xEB, ü 0xFC.
    let text = format!("{header}{row}");
    let (windows_1252, _, _) = encoding_rs::WINDOWS_1252.encode(&text);
    let mut utf8_bom = vec![0xEF, 0xBB, 0xBF];
    utf8_bom.extend_from_slice(format!("{header}{row}").as_bytes());
    let mut utf16 = vec![0xFF, 0xFE];
    for unit in format!("{}{}", header.replace(';', "\t"), row.replace(';', "\t")).encode_utf16() {
        utf16.extend_from_slice(&unit.to_le_bytes());
    }
    for (name, bytes, settings) in [
        (
            "excel-1252.csv",
            windows_1252.into_owned(),
            "[source.csv]\nencoding = \"windows-1252\"",
        ),
        ("excel-utf8.csv", utf8_bom, ""),
        ("unicode.txt", utf16, ""),
    ] {
        let ws = csv_pipeline(settings);
        ws.write(name, bytes);
        let report = ws.import(name, &[]);
        assert_eq!(report["status"], "succeeded", "{name}: {report}");
        assert_eq!(values(&ws), want, "{name}");
    }
}

#[test]
fn a_broken_csv_is_refused_at_its_line_and_column_and_nothing_lands() {
    let ws = csv_pipeline("");
    ws.write("good.csv", "e_mail,first_name\nann@example.com,Ann\n");
    ws.import("good.csv", &[]);
    let before = ws.export();
    let long = "x".repeat(256);
    for (content, located) in [
        (
            "e_mail,first_name\nbob@example.com,Bob,extra\n".to_owned(),
            "bad.csv:2:3: the row has 3 fields and the header 2".to_owned(),
        ),
        (
            "e_mail,first_name\nbob@example.com,\"Bob\ncid@example.com,Cid\n".to_owned(),
            "bad.csv:2:17: a quoted value never ends".to_owned(),
        ),
        (
            format!("e_mail,first_name\nbob@example.com,{long}\n"),
            "bad.csv:2:2: first_name (column \"first_name\"): the value is 256 characters long; at most 255 allowed".to_owned(),
        ),
        (
            "e_mail,first_name\nbob@example.com,B\u{1}b\n".to_owned(),
            "bad.csv:2:2: first_name (column \"first_name\"): character U+0001 is not allowed".to_owned(),
        ),
    ] {
        ws.write("bad.csv", content);
        let report = ws.import_fails("bad.csv", &[]);
        let error = report["error"].as_str().unwrap_or_default();
        assert!(error.contains(&located), "{located}\n{report}");
        assert_eq!(ws.export(), before, "nothing landed");
    }
    ws.write("bad.csv", b"e_mail,first_name\nbob@example.com,Z\xeb\n");
    let report = ws.import_fails("bad.csv", &[]);
    let error = report["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("bad.csv:2:2: bytes that are not UTF-8"),
        "{report}"
    );
    assert_eq!(ws.export(), before);
}

#[test]
fn an_export_re_imported_through_the_ucm_csv_preset_gives_the_same_table() {
    let xml = Workspace::new("");
    std::fs::copy(
        common::repo("samples/external-contacts.xml"),
        xml.path("source.xml"),
    )
    .unwrap();
    xml.import("source.xml", &[]);
    let exported = xml.export();
    let csv = csv_pipeline("");
    csv.write("export.csv", &exported);
    let report = csv.import("export.csv", &[]);
    assert_eq!(report["status"], "succeeded", "{report}");
    assert_eq!(csv.export(), exported);
}

#[test]
fn a_mapping_that_matches_no_column_says_which_preset_and_what_to_set() {
    let ws = csv_pipeline("preset = \"outlook-csv\"");
    ws.write("other.csv", "Name,Mail\nAnn,ann@example.com\n");
    let report = ws.import_fails("other.csv", &[]);
    let error = report["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("other.csv:1:1: no column of the header matches preset outlook-csv"),
        "{report}"
    );
    let (_, stderr) = Workspace::new("[source]\nkind = \"csv\"\npreset = \"excel\"\n")
        .fails(&["import", "x.csv"]);
    assert!(
        stderr.contains("preset = \"excel\" is not a preset"),
        "{stderr}"
    );
}

/// A workspace whose pipeline reads a vCard file, matching on e-mail addresses.
fn vcard_pipeline(source: &str) -> Workspace {
    Workspace::new(&format!("[source]\nkind = \"vcard\"\n{source}\n"))
}

#[test]
fn vcards_of_versions_2_1_3_0_and_4_0_land_through_the_vcard_preset() {
    let ws = vcard_pipeline("");
    // 2.1 (an older phone's export): quoted-printable in windows-1252 with a soft line
    // break, bare types, a PHOTO blob over folded lines.
    let mut cards = b"BEGIN:VCARD\r\nVERSION:2.1\r\nN;CHARSET=windows-1252;ENCODING=QUOTED-PRINTABLE:M=FCller;Zo=\r\n=EB;;;\r\n\
TEL;CELL;VOICE:+32 475 00 00 00\r\nTEL;WORK;FAX:+32 9 000 00 00\r\nEMAIL;INTERNET:zoe@example.com\r\n\
PHOTO;ENCODING=BASE64;TYPE=JPEG:/9j/4AAQSkZJRgABAQAAAQABAAD\r\n AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n AAAA\r\n\r\nEND:VCARD\r\n"
        .to_vec();
    // 3.0 (Apple / Google style): grouped properties, TYPE lists, escapes, ORG components.
    cards.extend_from_slice(
        "BEGIN:VCARD\nVERSION:3.0\nFN:Anna Peeters\nN:Peeters;Anna;;;\nitem1.TEL;TYPE=CELL,VOICE:0475 11 11 11\n\
item2.TEL;type=WORK;type=pref:201\nitem3.EMAIL;TYPE=INTERNET:anna@example.com\nORG:Example NV;Sales\\, Benelux\n\
TITLE:Account manager\nADR;TYPE=WORK:;;Kouter 1;Gent;;9000;Belgium\nNOTE:first line\\nsecond\nEND:VCARD\n"
            .as_bytes(),
    );
    // 4.0: tel: URIs, a quoted TYPE list, a long folded name; and a number-only card.
    cards.extend_from_slice(
        "BEGIN:VCARD\nVERSION:4.0\nFN:Élodie Dupré\nN:Dupré;Élo\n die;;;\nTEL;VALUE=uri;TYPE=\"home,voice\":tel:+32-2-555-01-00\n\
EMAIL:elodie@example.com\nEND:VCARD\nBEGIN:VCARD\nVERSION:3.0\nTEL;TYPE=CELL:+32 476 99 99 99\nEMAIL:only@example.com\nEND:VCARD\n"
            .as_bytes(),
    );
    ws.write("contacts.vcf", cards);
    let report = ws.import("contacts.vcf", &[]);
    assert_eq!(report["status"], "succeeded", "{report}");
    assert_eq!(report["inserted"], 4, "{report}");
    let rows = ws.rows();
    let by = |mail: &str| rows.iter().find(|r| r["e_mail"] == mail).unwrap().clone();
    let zoe = by("zoe@example.com");
    assert_eq!(
        (zoe["first_name"].as_str(), zoe["last_name"].as_str()),
        (Some("Zoë"), Some("Müller"))
    );
    assert_eq!(zoe["mobile_number"], "+32 475 00 00 00");
    assert_eq!(zoe["fax_number"], "+32 9 000 00 00");
    assert!(
        zoe["extension"].is_null(),
        "a work fax is no work number: {zoe}"
    );
    let anna = by("anna@example.com");
    assert_eq!(anna["extension"], "201");
    assert_eq!(anna["mobile_number"], "0475 11 11 11");
    assert_eq!(anna["user_1"], "Example NV");
    assert_eq!(anna["department"], "Sales, Benelux");
    assert_eq!(anna["user_2"], "Account manager");
    assert_eq!(anna["site"], "Gent");
    let elodie = by("elodie@example.com");
    assert_eq!(elodie["first_name"], "Élodie");
    assert_eq!(elodie["home_number"], "+32-2-555-01-00");
    let only = by("only@example.com");
    assert!(
        only["first_name"].is_null() && only["last_name"].is_null(),
        "{only}"
    );
}

#[test]
fn a_broken_vcard_file_is_refused_at_its_line_and_nothing_lands() {
    let ws = vcard_pipeline("");
    ws.write(
        "good.vcf",
        "BEGIN:VCARD\nVERSION:3.0\nFN:Ann\nEMAIL:ann@example.com\nEND:VCARD\n",
    );
    ws.import("good.vcf", &[]);
    let before = ws.export();
    for (content, located) in [
        (
            b"BEGIN:VCARD\nVERSION:3.0\nEMAIL:bob@example.com\nBEGIN:VCARD\nEND:VCARD\n".to_vec(),
            "bad.vcf:4:1: BEGIN:VCARD at line 1 has no END:VCARD",
        ),
        (
            b"BEGIN:VCARD\nVERSION:3.0\nEMAIL:bob@example.com\n".to_vec(),
            "bad.vcf:1:1: BEGIN:VCARD has no END:VCARD",
        ),
        (
            b" folded:nothing\nBEGIN:VCARD\nEND:VCARD\n".to_vec(),
            "bad.vcf:1:1: a folded line (starting with a space) continues nothing",
        ),
        (
            b"BEGIN:VCARD\nVERSION:3.0\nFN:Z\xebe\nEMAIL:z@example.com\nEND:VCARD\n".to_vec(),
            "bad.vcf:3:1: bytes that are not UTF-8",
        ),
    ] {
        ws.write("bad.vcf", content);
        let report = ws.import_fails("bad.vcf", &[]);
        let error = report["error"].as_str().unwrap_or_default();
        assert!(error.contains(located), "{located}\n{report}");
        assert_eq!(ws.export(), before, "nothing landed");
    }
    let (_, stderr) =
        vcard_pipeline("[source.mapping]\nextension = \"TEL;WORK\"").fails(&["import", "good.vcf"]);
    assert!(
        stderr.contains("[source.mapping] extension: \"TEL;WORK\" is not a vCard property"),
        "{stderr}"
    );
}

/// The same contacts (`ucm generate`'s) as XML, as a CSV source and as vCards land the same
/// table: a CSV or a vCard file is no second-class source.
#[test]
fn the_same_contacts_land_alike_from_xml_csv_and_vcard() {
    let xml = Workspace::new("");
    xml.ok(&[
        "generate",
        "--contacts",
        "2000",
        "--seed",
        "7",
        "--xml",
        "c.xml",
        "--source-csv",
        "c.csv",
        "--vcard",
        "c.vcf",
    ]);
    xml.import("c.xml", &[]);
    let expected = xml.export();
    let csv = csv_pipeline("");
    std::fs::copy(xml.path("c.csv"), csv.path("c.csv")).unwrap();
    assert_eq!(csv.import("c.csv", &[])["inserted"], 2000);
    assert_eq!(csv.export(), expected, "CSV");
    let vcard = vcard_pipeline("[source.mapping]\noffice = \"X-OFFICE\"\nsource = \"X-SOURCE\"");
    std::fs::copy(xml.path("c.vcf"), vcard.path("c.vcf")).unwrap();
    assert_eq!(vcard.import("c.vcf", &[])["inserted"], 2000);
    assert_eq!(vcard.export(), expected, "vCard");
}

/// `ucm serve` runs a CSV pipeline as it runs an XML one: its scheduled or requested run
/// fetches, stages and merges the export, and the phonebook feeds and search see the rows.
#[test]
fn ucm_serve_runs_a_csv_pipeline_and_its_contacts_are_searchable() {
    let ws = Workspace::new("");
    ws.write("outlook.csv", OUTLOOK);
    let source = format!(
        "[source]\nkind = \"csv\"\npreset = \"outlook-csv\"\nurl = \"{}\"\nschedule = \"0 0 1 1 ?\"",
        ws.path("outlook.csv").display()
    );
    let (s, report) = common::service::serve_source_and_run(&ws, &source);
    assert_eq!(report["status"], "succeeded", "{report}");
    assert_eq!(report["inserted"], 2, "{report}");
    let (status, found) = common::service::get_auth(
        &format!("{}/api/contacts?q=elodie", s.base),
        "Bearer static-token",
    );
    assert_eq!(status, 200, "{found}");
    assert_eq!(found[0]["e_mail"], "elodie@example.com", "{found}");
}

/// `ucm fetch --preview N` shows a source's first contacts as mapped, each value with the
/// column or property it comes from, and what no field reads; nothing is staged or recorded.
/// Lines are counted right with Windows (CRLF) line ends.
#[test]
fn the_preview_shows_each_value_with_where_it_comes_from_and_lands_nothing() {
    let ws = csv_pipeline("preset = \"outlook-csv\"\nurl = \"outlook.csv\"");
    ws.write("outlook.csv", OUTLOOK);
    let preview = ws.ok(&["fetch", "--preview", "2"]);
    for shown in [
        "contact 1 (line 2)",
        "contact 2 (line 4)",
        "<- column \"First Name\"",
        "Account \"key\" manager",
        "in the source, read by no field: \"Middle Name\", \"Title\", \"Notes\"",
    ] {
        assert!(preview.contains(shown), "{shown}:\n{preview}");
    }
    assert!(ws.rows().is_empty(), "a preview lands nothing");
    let runs = ws.ok(&["runs", "--format", "json"]);
    assert_eq!(runs.trim(), "[]", "a preview records no run");

    let cards = vcard_pipeline("url = \"c.vcf\"");
    cards.write(
        "c.vcf",
        "BEGIN:VCARD\r\nVERSION:3.0\r\nN:Peeters;Anna;;;\r\nTEL;TYPE=CELL:0475\r\nNICKNAME:Annie\r\nEND:VCARD\r\n",
    );
    let preview = cards.ok(&["fetch", "--preview", "1"]);
    assert!(preview.contains("<- TEL;TYPE=CELL"), "{preview}");
    assert!(preview.contains("read by no field: NICKNAME"), "{preview}");
}

/// A dry run of a CSV and of a vCard source stores its plan, and applying the plan lands
/// exactly what importing the same file lands (a twin workspace imports it for real).
#[test]
fn a_dry_run_of_a_csv_or_vcard_source_plans_and_applies_exactly_its_import() {
    let csv_v1 = "e_mail,first_name,mobile_number\nann@example.com,Ann,0475 11 11 11\nbob@example.com,Bob,\n";
    let csv_v2 = "e_mail,first_name,mobile_number\nann@example.com,Annie,0475 11 11 11\ncid@example.com,Cid,\n";
    let vcf_v1 = "BEGIN:VCARD\nVERSION:3.0\nN:;Ann;;;\nEMAIL:ann@example.com\nEND:VCARD\n\
                  BEGIN:VCARD\nVERSION:3.0\nN:;Bob;;;\nEMAIL:bob@example.com\nEND:VCARD\n";
    let vcf_v2 = "BEGIN:VCARD\nVERSION:3.0\nN:;Annie;;;\nEMAIL:ann@example.com\nEND:VCARD\n\
                  BEGIN:VCARD\nVERSION:3.0\nN:;Cid;;;\nEMAIL:cid@example.com\nEND:VCARD\n";
    for (kind, first, second) in [("csv", csv_v1, csv_v2), ("vcard", vcf_v1, vcf_v2)] {
        let workspace = || {
            let ws = Workspace::new(&format!("[source]\nkind = \"{kind}\"\n"));
            ws.write("first", first);
            ws.write("second", second);
            ws.import("first", &[]);
            ws
        };
        let ws = workspace();
        let dry = ws.import("second", &["--dry-run"]);
        assert_eq!(dry["status"], "dry_run", "{kind}: {dry}");
        let plan = dry["plan_id"].as_i64().expect("a dry run stores a plan");
        let out = ws.ucm(&["apply", &plan.to_string(), "--format", "json"]);
        let applied: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(applied["status"], "succeeded", "{kind}: {applied}");
        assert_eq!(
            (
                &applied["inserted"],
                &applied["updated"],
                &applied["deleted"]
            ),
            (&1.into(), &1.into(), &1.into()),
            "{kind}: {applied}"
        );
        let twin = workspace();
        twin.import("second", &[]);
        assert_eq!(ws.export(), twin.export(), "{kind}");
    }
}

/// `ucm generate --realistic` writes data shaped like real directories that ucm reads as it
/// reads any: valid against the XSD, unique keys, non-Latin names, numbers in national
/// spellings, and a directory whose overlapping entries match by e-mail.
#[test]
fn realistic_generated_data_is_valid_has_unique_keys_and_overlaps_the_directory() {
    let ws = Workspace::new("");
    ws.ok(&[
        "generate",
        "--realistic",
        "--contacts",
        "3000",
        "--directory",
        "400",
        "--overlap",
        "0.5",
        "--seed",
        "7",
        "--xml",
        "real.xml",
        "--csv",
        "directory.csv",
    ]);
    let xml = std::fs::read_to_string(ws.path("real.xml")).unwrap();
    assert!(
        xml.contains("Παπαδόπουλος") || xml.contains("Οικονόμου"),
        "Greek names"
    );
    assert!(
        xml.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
        "Chinese names"
    );
    assert!(xml.contains("<mobile_number>0"), "national spellings");
    assert!(xml.contains("<mobile_number>+32"), "E.164");
    ws.ok(&["directory", "load", "directory.csv"]);
    let report = ws.import("real.xml", &[]);
    assert_eq!(report["status"], "succeeded", "{report}");
    assert_eq!(report["contacts_read"], 3000, "{report}");
    assert_eq!(report["rejected"], 0, "unique keys: {report}");
    let merged = ws.rows().iter().filter(|r| r["origin"] == "merged").count();
    assert_eq!(
        merged, 200,
        "half the directory matches an external contact"
    );
}
