//! Every merge rule of the README, one test each, through the real binary and a real SQLite
//! file.

mod common;

use common::{Workspace, contacts_xml};
use serde_json::Value;

const CONFIG: &str = r#"
[directory]
csv = "directory.csv"
[merge]
matching_field = "e_mail"
[merge.priority]
mobile_number = 1
department = "external"
"#;

fn workspace(directory_csv: &str) -> Workspace {
    let ws = Workspace::new(CONFIG);
    ws.write("directory.csv", directory_csv);
    ws.ok(&["directory", "load", "directory.csv"]);
    ws
}

const DIRECTORY: &str = "id,e_mail,first_name,mobile_number,department,site\n\
    1,anna@example.com,Anna,111,Sales,Brussels\n\
    2,bart@example.com,Bart,,,Gent\n\
    3,chloe@example.com,Chloe,333,Support,\n";

#[test]
fn values_are_trimmed_and_empty_values_are_null() {
    let ws = workspace("id,e_mail\n");
    ws.write(
        "x.xml",
        contacts_xml(&[&[
            ("e_mail", "  x@example.com \n "),
            ("first_name", "  Xavier  "),
            ("site", "   "),
            ("office", ""),
        ]]),
    );
    ws.import("x.xml", &[]);
    let row = ws.row("x@example.com");
    assert_eq!(row["e_mail"], "x@example.com");
    assert_eq!(row["first_name"], "Xavier");
    assert_eq!(row["site"], Value::Null);
    assert_eq!(row["office"], Value::Null);
}

/// Hardening 3: no-break, ideographic and em spaces at a value's ends were trimmed; XML's
/// whitespace is only space, tab, CR and LF, so the others are data and survive the import
/// (through the full reader and the fast path for plain records alike).
#[test]
fn spaces_other_than_xml_whitespace_survive_the_import() {
    let ws = workspace("id,e_mail\n");
    ws.write(
        "x.xml",
        contacts_xml(&[&[
            ("e_mail", " y@example.com "),
            ("first_name", "\u{a0}Yara\u{a0}"),
            ("last_name", " \u{3000}Ideo\u{2003} "),
            ("site", "\u{a0}"),
        ]]),
    );
    ws.import("x.xml", &[]);
    let row = ws.row("y@example.com");
    assert_eq!(row["first_name"], "\u{a0}Yara\u{a0}");
    assert_eq!(row["last_name"], "\u{3000}Ideo\u{2003}");
    assert_eq!(row["site"], "\u{a0}");
}

#[test]
fn e_mail_keys_match_case_insensitively() {
    let ws = workspace(DIRECTORY);
    ws.write(
        "x.xml",
        contacts_xml(&[&[("e_mail", "ANNA@Example.COM"), ("office", "1.01")]]),
    );
    ws.import("x.xml", &[]);
    let row = ws.row("anna@example.com");
    assert_eq!(row["origin"], "merged");
    assert_eq!(row["office"], "1.01");
}

#[test]
fn phone_keys_match_on_digits_and_a_leading_plus() {
    let ws = Workspace::new("[merge]\nmatching_field = \"mobile_number\"\n");
    ws.write(
        "d.csv",
        "id,mobile_number,first_name\n1,+32 475 11.22.33,Anna\n2,0475112233,Bea\n",
    );
    ws.ok(&["directory", "load", "d.csv"]);
    ws.write(
        "x.xml",
        contacts_xml(&[
            &[("mobile_number", "+32 (475) 11-22-33"), ("site", "Gent")],
            &[("mobile_number", "0475 11 22 33"), ("site", "Liège")],
        ]),
    );
    ws.import("x.xml", &[]);
    assert_eq!(ws.row("+32475112233")["site"], "Gent");
    assert_eq!(ws.row("+32475112233")["origin"], "merged");
    assert_eq!(ws.row("0475112233")["site"], "Liège");
}

#[test]
fn other_matching_fields_compare_exactly_after_trimming() {
    let ws = Workspace::new("[merge]\nmatching_field = \"last_name\"\n");
    ws.write("d.csv", "id,last_name\n1,Smith\n");
    ws.ok(&["directory", "load", "d.csv"]);
    ws.write(
        "x.xml",
        contacts_xml(&[
            &[("last_name", " Smith "), ("site", "A")],
            &[("last_name", "smith"), ("site", "B")],
        ]),
    );
    ws.import("x.xml", &[]);
    assert_eq!(ws.row("Smith")["origin"], "merged");
    assert_eq!(ws.row("Smith")["site"], "A");
    assert_eq!(ws.row("smith")["origin"], "external");
}

#[test]
fn priority_1_takes_the_external_value_and_priority_0_the_directory_value() {
    let ws = workspace(DIRECTORY);
    ws.write(
        "x.xml",
        contacts_xml(&[&[
            ("e_mail", "anna@example.com"),
            ("first_name", "Annie"),
            ("mobile_number", "999"),
            ("department", "Key accounts"),
        ]]),
    );
    ws.import("x.xml", &[]);
    let row = ws.row("anna@example.com");
    assert_eq!(
        row["first_name"], "Anna",
        "first_name has priority 0: the directory wins"
    );
    assert_eq!(
        row["mobile_number"], "999",
        "mobile_number has priority 1: the external value wins"
    );
    assert_eq!(
        row["department"], "Key accounts",
        "\"external\" is priority 1"
    );
}

#[test]
fn when_the_winning_side_is_null_the_other_sides_value_is_used() {
    let ws = workspace(DIRECTORY);
    // Bart has no mobile_number and no department in the directory; the source has no site.
    ws.write(
        "x.xml",
        contacts_xml(&[&[
            ("e_mail", "bart@example.com"),
            ("mobile_number", "222"),
            ("home_number", "0900"),
        ]]),
    );
    ws.write(
        "y.xml",
        contacts_xml(&[&[("e_mail", "chloe@example.com"), ("site", "Namur")]]),
    );
    ws.import("x.xml", &[]);
    let bart = ws.row("bart@example.com");
    assert_eq!(bart["mobile_number"], "222");
    assert_eq!(
        bart["department"],
        Value::Null,
        "NULL on both sides stays NULL"
    );
    assert_eq!(
        bart["home_number"], "0900",
        "directory NULL at priority 0 takes the external value"
    );
    assert_eq!(bart["site"], "Gent");
    ws.import("y.xml", &[]);
    let chloe = ws.row("chloe@example.com");
    assert_eq!(
        chloe["mobile_number"], "333",
        "external NULL at priority 1 keeps the directory value"
    );
    assert_eq!(chloe["site"], "Namur");
}

#[test]
fn omitted_priorities_default_to_the_directory() {
    let ws = workspace(DIRECTORY);
    ws.write(
        "x.xml",
        contacts_xml(&[&[
            ("e_mail", "anna@example.com"),
            ("site", "Elsewhere"),
            ("user_10", "u10"),
        ]]),
    );
    ws.import("x.xml", &[]);
    let row = ws.row("anna@example.com");
    assert_eq!(row["site"], "Brussels");
    assert_eq!(row["user_10"], "u10");
}

#[test]
fn each_row_records_its_origin_and_directory_id() {
    let ws = workspace(DIRECTORY);
    ws.write(
        "x.xml",
        contacts_xml(&[
            &[("e_mail", "anna@example.com")],
            &[("e_mail", "new@example.com")],
        ]),
    );
    ws.import("x.xml", &[]);
    let rows = ws.rows();
    assert_eq!(rows.len(), 4, "three directory rows and one external row");
    let by = |key: &str| rows.iter().find(|r| r["match_key"] == key).unwrap().clone();
    assert_eq!(
        (
            by("anna@example.com")["origin"].clone(),
            by("anna@example.com")["directory_id"].clone()
        ),
        ("merged".into(), "1".into())
    );
    assert_eq!(by("bart@example.com")["origin"], "directory");
    assert_eq!(
        (
            by("new@example.com")["origin"].clone(),
            by("new@example.com")["directory_id"].clone()
        ),
        ("external".into(), Value::Null)
    );
}

#[test]
fn contacts_without_a_key_are_rejected_with_their_line_and_never_loaded() {
    let ws = workspace(DIRECTORY);
    ws.write(
        "x.xml",
        contacts_xml(&[
            &[("e_mail", "ok@example.com")],
            &[("first_name", "No key")],
            &[("e_mail", " "), ("first_name", "Blank key")],
        ]),
    );
    let report = ws.import("x.xml", &[]);
    assert_eq!(report["rejected"], 2);
    assert_eq!(report["rejections"][0]["reason"], "no_key");
    assert_eq!(report["rejections"][0]["line"], 6);
    assert_eq!(report["rejections"][1]["line"], 9);
    assert_eq!(ws.rows().len(), 4);
}

#[test]
fn a_key_that_occurs_twice_uses_the_first_occurrence() {
    let ws = workspace(DIRECTORY);
    ws.write(
        "x.xml",
        contacts_xml(&[
            &[("e_mail", "dup@example.com"), ("site", "first")],
            &[("e_mail", "DUP@example.com"), ("site", "second")],
        ]),
    );
    let report = ws.import("x.xml", &[]);
    assert_eq!(report["rejected"], 1);
    assert_eq!(report["rejections"][0]["reason"], "duplicate_key");
    assert_eq!(report["rejections"][0]["first_line"], 3);
    assert_eq!(ws.row("dup@example.com")["site"], "first");
}

#[test]
fn a_duplicate_deep_in_a_large_source_is_reported_with_the_lines_of_both_occurrences() {
    // Over 8 MiB, so read in parallel chunks: most records by the fast path for plain records,
    // the unusual ones (a comment inside) by the full reader; the lines of both must add up
    // across chunks, a comment between records and a CRLF.
    let ws = workspace(DIRECTORY);
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<contacts>\n");
    let padding = "x".repeat(200);
    for i in 0..32_000 {
        if i == 16_000 {
            xml.push_str("  <!-- a comment\n       over two lines -->\r\n");
        }
        xml.push_str(&format!(
            "  <contact>\n    <e_mail>u{i}@example.com</e_mail>\n    <department>R&amp;D</department>\n    <fax_number/>\n    <user_1>{padding}</user_1>\n  </contact>\n"
        ));
    }
    xml.push_str(
        "  <contact><!-- again -->\n    <e_mail>U20000@example.com</e_mail>\n  </contact>\n",
    );
    xml.push_str("</contacts>\n");
    assert!(xml.len() > 8 << 20, "large enough to be read in chunks");
    let line_of = |text: &str| xml[..xml.find(text).unwrap()].matches('\n').count() as u64 + 1;
    let first_line = line_of("<e_mail>u20000@example.com") - 1;
    let line = line_of("<contact><!-- again -->");
    ws.write("large.xml", &xml);

    let report = ws.import("large.xml", &[]);
    assert_eq!(report["contacts_read"], 32_001);
    assert_eq!(report["rejected"], 1);
    assert_eq!(report["rejections"][0]["reason"], "duplicate_key");
    assert_eq!(report["rejections"][0]["first_line"], first_line);
    assert_eq!(report["rejections"][0]["line"], line);
    assert_eq!(ws.row("u31999@example.com")["department"], "R&D");
}

#[test]
fn a_key_shared_by_several_directory_entries_rejects_the_contact_and_leaves_them_alone() {
    let ws = workspace("id,e_mail,site\n1,shared@example.com,A\n2,shared@example.com,B\n");
    ws.write(
        "x.xml",
        contacts_xml(&[&[
            ("e_mail", "shared@example.com"),
            ("site", "X"),
            ("office", "9"),
        ]]),
    );
    let report = ws.import("x.xml", &[]);
    assert_eq!(report["rejections"][0]["reason"], "ambiguous_key");
    assert_eq!(
        report["rejections"][0]["directory_ids"],
        serde_json::json!(["1", "2"])
    );
    let rows = ws.rows();
    assert_eq!(rows.len(), 2);
    assert!(
        rows.iter()
            .all(|r| r["origin"] == "directory" && r["office"].is_null())
    );
}

#[test]
fn an_external_contact_that_vanished_from_the_source_is_deleted() {
    let ws = workspace(DIRECTORY);
    ws.write(
        "x.xml",
        contacts_xml(&[
            &[("e_mail", "a@ext.example")],
            &[("e_mail", "b@ext.example")],
            &[("e_mail", "c@ext.example")],
        ]),
    );
    ws.write(
        "y.xml",
        contacts_xml(&[
            &[("e_mail", "a@ext.example")],
            &[("e_mail", "b@ext.example")],
        ]),
    );
    ws.import("x.xml", &[]);
    let report = ws.import("y.xml", &[]);
    assert_eq!(report["deleted"], 1);
    assert!(ws.rows().iter().all(|r| r["match_key"] != "c@ext.example"));
}

#[test]
fn a_directory_entry_whose_match_vanished_reverts_to_its_own_values() {
    let ws = workspace(DIRECTORY);
    ws.write(
        "x.xml",
        contacts_xml(&[
            &[("e_mail", "anna@example.com"), ("mobile_number", "999")],
            &[("e_mail", "z@ext.example")],
        ]),
    );
    ws.write("y.xml", contacts_xml(&[&[("e_mail", "z@ext.example")]]));
    ws.import("x.xml", &[]);
    assert_eq!(ws.row("anna@example.com")["mobile_number"], "999");
    let report = ws.import("y.xml", &[]);
    assert_eq!(report["updated"], 1);
    let anna = ws.row("anna@example.com");
    assert_eq!(anna["origin"], "directory");
    assert_eq!(anna["mobile_number"], "111");
}

#[test]
fn a_directory_entry_removed_from_the_directory_is_deleted() {
    let ws = workspace(DIRECTORY);
    ws.write("x.xml", contacts_xml(&[&[("e_mail", "z@ext.example")]]));
    ws.import("x.xml", &[]);
    ws.write(
        "directory.csv",
        "id,e_mail,first_name\n1,anna@example.com,Anna\n3,chloe@example.com,Chloe\n",
    );
    ws.ok(&["directory", "load", "directory.csv"]);
    let report = ws.import("x.xml", &[]);
    assert_eq!(report["deleted"], 1);
    assert!(ws.rows().iter().all(|r| r["directory_id"] != "2"));
}

#[test]
fn a_new_directory_entry_takes_over_an_external_row_with_its_key() {
    let ws = workspace("id,e_mail\n");
    ws.write(
        "x.xml",
        contacts_xml(&[
            &[("e_mail", "n@example.com"), ("site", "S")],
            &[("e_mail", "o@example.com")],
        ]),
    );
    ws.import("x.xml", &[]);
    ws.write("directory.csv", "id,e_mail\n9,n@example.com\n");
    ws.ok(&["directory", "load", "directory.csv"]);
    let report = ws.import("x.xml", &["--force"]);
    assert_eq!(
        (report["inserted"].clone(), report["deleted"].clone()),
        (1.into(), 1.into())
    );
    let row = ws.row("n@example.com");
    assert_eq!(
        (
            row["origin"].clone(),
            row["directory_id"].clone(),
            row["site"].clone()
        ),
        ("merged".into(), "9".into(), "S".into())
    );
}

#[test]
fn a_source_with_zero_contacts_is_refused_unless_forced() {
    let ws = workspace(DIRECTORY);
    ws.write("x.xml", contacts_xml(&[&[("e_mail", "a@ext.example")]]));
    ws.write("empty.xml", "<contacts/>");
    ws.import("x.xml", &[]);
    let before = ws.export();
    let report = ws.import_fails("empty.xml", &[]);
    assert_eq!(report["status"], "refused");
    assert!(
        report["error"]
            .as_str()
            .unwrap()
            .contains("holds no contacts"),
        "{report}"
    );
    assert_eq!(ws.export(), before);
    let report = ws.import("empty.xml", &["--force"]);
    assert_eq!(report["deleted"], 1);
}

#[test]
fn a_run_deleting_more_than_max_delete_ratio_of_external_rows_is_refused_unless_forced() {
    let ws = workspace(DIRECTORY);
    let many: Vec<String> = (0..10).map(|i| format!("e{i}@ext.example")).collect();
    let all: Vec<Vec<(&str, &str)>> = many.iter().map(|m| vec![("e_mail", m.as_str())]).collect();
    let all_refs: Vec<&[(&str, &str)]> = all.iter().map(|v| v.as_slice()).collect();
    ws.write("all.xml", contacts_xml(&all_refs));
    ws.write("half.xml", contacts_xml(&all_refs[..5]));
    ws.write("few.xml", contacts_xml(&all_refs[..4]));
    ws.import("all.xml", &[]);
    let before = ws.export();
    // 6 of 10 is over 0.5.
    let report = ws.import_fails("few.xml", &[]);
    assert_eq!(report["status"], "refused");
    assert!(
        report["error"]
            .as_str()
            .unwrap()
            .contains("max_delete_ratio"),
        "{report}"
    );
    assert_eq!(ws.export(), before);
    // Exactly half is allowed.
    assert_eq!(ws.import("half.xml", &[])["deleted"], 5);
    ws.import("all.xml", &[]);
    assert_eq!(ws.import("few.xml", &["--force"])["deleted"], 6);
}

/// Release 1.12.0 of the original product: "External contact synchronization failed when one
/// of the extension fields was NULL (M11393)".
#[test]
fn regression_m11393_a_null_extension_field_does_not_break_the_sync() {
    let ws = Workspace::new(
        "[merge]\nmatching_field = \"extension\"\n[merge.priority]\nextension = 1\nfax_number = 1\n",
    );
    ws.write("d.csv", "id,extension,fax_number\n1,201,\n2,,\n");
    ws.ok(&["directory", "load", "d.csv"]);
    ws.write("x.xml", "<contacts><contact><extension>201</extension><fax_number/><home_number/></contact><contact><extension/></contact></contacts>");
    let report = ws.import("x.xml", &[]);
    assert_eq!(report["status"], "succeeded");
    assert_eq!(report["rejected"], 1);
    let rows = ws.rows();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["origin"], "merged");
    assert_eq!(rows[0]["fax_number"], Value::Null);
    assert_eq!(rows[1]["extension"], Value::Null);
}

#[test]
fn a_pipeline_with_a_directory_csv_reloads_the_directory_before_each_run() {
    let ws = Workspace::new("[source]\nurl = \"x.xml\"\n[directory]\ncsv = \"directory.csv\"\n");
    ws.write("directory.csv", "id,e_mail\n1,a@example.com\n");
    ws.write(
        "x.xml",
        contacts_xml(&[&[("e_mail", "a@example.com"), ("site", "S")]]),
    );
    ws.ok(&["run"]);
    assert_eq!(ws.row("a@example.com")["origin"], "merged");
    ws.write("directory.csv", "id,e_mail\n2,b@example.com\n");
    ws.ok(&["run"]);
    let rows = ws.rows();
    assert_eq!(rows.len(), 2);
    assert_eq!(ws.row("a@example.com")["origin"], "external");
    assert_eq!(ws.row("b@example.com")["origin"], "directory");
}

/// Provenance: each value of a merged row says which side it came from, and the row names the
/// run that last changed it; a run that leaves the row unchanged leaves both as they were.
#[test]
fn each_value_records_the_side_it_came_from_and_each_row_the_run_that_changed_it() {
    let ws = workspace(DIRECTORY);
    ws.write(
        "x.xml",
        contacts_xml(&[
            &[
                ("e_mail", "anna@example.com"),
                ("first_name", "Annie"),
                ("mobile_number", "999"),
                ("office", "1.01"),
            ],
            &[("e_mail", "new@ext.example"), ("last_name", "New")],
        ]),
    );
    let first = ws.import("x.xml", &[]);
    let run = first["run_id"].clone();
    let anna = ws.row("anna@example.com");
    let sides = &anna["provenance"];
    // first_name: priority 0, the directory's value; mobile_number: priority 1, external;
    // office: the directory has none, so the external value fills it; site: directory only.
    assert_eq!(sides["first_name"], "directory", "{anna}");
    assert_eq!(sides["mobile_number"], "external", "{anna}");
    assert_eq!(sides["office"], "external", "{anna}");
    assert_eq!(sides["site"], "directory", "{anna}");
    assert_eq!(sides["fax_number"], Value::Null, "NULL values have no side");
    assert_eq!(anna["changed_by_run"], run);
    assert_eq!(
        ws.row("new@ext.example")["provenance"]["last_name"],
        "external"
    );
    // An unchanged second run leaves the rows' provenance as it was.
    let second = ws.import("x.xml", &[]);
    assert_ne!(second["run_id"], run);
    assert_eq!(ws.row("anna@example.com")["changed_by_run"], run);
    // A run that changes the row records itself.
    ws.write(
        "y.xml",
        contacts_xml(&[&[("e_mail", "anna@example.com"), ("mobile_number", "888")]]),
    );
    let third = ws.import("y.xml", &["--force"]);
    assert_eq!(
        ws.row("anna@example.com")["changed_by_run"],
        third["run_id"]
    );
}
