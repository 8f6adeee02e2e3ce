//! The command-line contract other tools rely on: commands, formats, exit codes, the run
//! history, and error messages that name the file, line and field.

mod common;

use std::process::Command;

use common::{BIN, Workspace, contacts_xml, repo};

#[test]
fn json_output_is_one_json_document_on_stdout_and_nothing_else() {
    let ws = Workspace::new("");
    ws.write("x.xml", contacts_xml(&[&[("e_mail", "a@example.com")]]));
    let out = ws.ucm(&["import", "x.xml", "--format", "json"]);
    assert!(out.status.success());
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("stdout is exactly one JSON document");
    for key in [
        "status",
        "contacts_read",
        "rejected",
        "inserted",
        "updated",
        "deleted",
        "unchanged",
        "duration_ms",
    ] {
        assert!(report.get(key).is_some(), "report lacks {key}");
    }
    assert_eq!(report["status"], "succeeded");
    assert!(
        report.get("changes").is_none(),
        "only dry runs list changes"
    );
}

#[test]
fn a_dry_run_reports_every_change_field_by_field_and_writes_nothing() {
    let ws = Workspace::new("[merge.priority]\nsite = 1\n");
    ws.write(
        "d.csv",
        "id,e_mail,site,first_name\n1,a@example.com,Gent,Ann\n2,b@example.com,Liège,Bob\n",
    );
    ws.ok(&["directory", "load", "d.csv"]);
    ws.write(
        "one.xml",
        contacts_xml(&[
            &[("e_mail", "gone@ext.example")],
            &[("e_mail", "c@ext.example")],
        ]),
    );
    ws.import("one.xml", &[]);
    let before = ws.export();
    ws.write(
        "two.xml",
        contacts_xml(&[
            &[
                ("e_mail", "a@example.com"),
                ("site", "Brussel"),
                ("office", "7"),
            ],
            &[("e_mail", "c@ext.example")],
            &[("e_mail", "new@ext.example"), ("first_name", "Neo")],
        ]),
    );
    let report = ws.import("two.xml", &["--dry-run"]);
    assert_eq!(report["status"], "dry_run");
    assert_eq!(
        (
            report["inserted"].clone(),
            report["updated"].clone(),
            report["deleted"].clone()
        ),
        (1.into(), 1.into(), 1.into())
    );
    let changes = report["changes"].as_array().unwrap();
    let update = changes.iter().find(|c| c["action"] == "update").unwrap();
    assert_eq!(update["key"], "a@example.com");
    assert_eq!(update["directory_id"], "1");
    let fields = update["fields"].as_array().unwrap();
    let site = fields.iter().find(|f| f["field"] == "site").unwrap();
    assert_eq!(
        (
            site["old"].clone(),
            site["new"].clone(),
            site["side"].clone()
        ),
        ("Gent".into(), "Brussel".into(), "external".into())
    );
    let office = fields.iter().find(|f| f["field"] == "office").unwrap();
    assert_eq!(
        (office["old"].clone(), office["new"].clone()),
        (serde_json::Value::Null, "7".into())
    );
    assert_eq!(
        fields.len(),
        2,
        "unchanged fields are not listed: {fields:?}"
    );
    let insert = changes.iter().find(|c| c["action"] == "insert").unwrap();
    assert_eq!(insert["key"], "new@ext.example");
    let delete = changes.iter().find(|c| c["action"] == "delete").unwrap();
    assert_eq!(delete["key"], "gone@ext.example");
    assert_eq!(ws.export(), before, "a dry run writes nothing");

    let text = ws.ok(&["import", "two.xml", "--dry-run"]);
    assert!(
        text.contains("~ update merged row (was directory) directory id 1 key \"a@example.com\""),
        "{text}"
    );
    assert!(
        text.contains("site: \"Gent\" -> \"Brussel\"  (external)"),
        "{text}"
    );
    assert!(
        text.contains("+ insert external row key \"new@ext.example\""),
        "{text}"
    );
    assert!(
        text.contains("- delete external row key \"gone@ext.example\""),
        "{text}"
    );
    assert_eq!(ws.export(), before);
}

#[test]
fn exit_codes_are_0_for_success_1_for_failure_or_refusal_and_2_for_usage_errors() {
    let ws = Workspace::new("");
    ws.write(
        "x.xml",
        "<contacts><contact><e_mail>a@b.c</e_mail></contact></contacts>",
    );
    ws.write(
        "bad.xml",
        "<contacts><contact><nickname/></contact></contacts>",
    );
    assert_eq!(ws.ucm(&["validate", "x.xml"]).status.code(), Some(0));
    assert_eq!(ws.ucm(&["validate", "bad.xml"]).status.code(), Some(1));
    assert_eq!(ws.ucm(&["import", "bad.xml"]).status.code(), Some(1));
    assert_eq!(ws.ucm(&["import", "missing.xml"]).status.code(), Some(1));
    assert_eq!(ws.ucm(&["import"]).status.code(), Some(2));
    assert_eq!(
        ws.ucm(&["import", "x.xml", "--format", "yaml"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(ws.ucm(&["frobnicate"]).status.code(), Some(2));
}

#[test]
fn validate_names_file_line_and_column_and_lists_several_errors() {
    let ws = Workspace::new("");
    ws.write("bad.xml", "<contacts>\n  <contact>\n    <nickname>x</nickname>\n    <e_mail>a</e_mail>\n    <e_mail>b</e_mail>\n  </contact>\n</contacts>\n");
    let out = ws.ucm(&["validate", "bad.xml"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.xml:3:5: element <nickname> is not allowed in <contact>; allowed: extension, first_name,"), "{stderr}");
    assert!(
        stderr.contains("bad.xml:5:5: element <e_mail> appears twice in <contact>"),
        "{stderr}"
    );
}

#[test]
fn the_run_history_records_every_outcome() {
    let ws = Workspace::new("");
    ws.write("x.xml", contacts_xml(&[&[("e_mail", "a@example.com")]]));
    ws.write("bad.xml", "<contacts><oops/></contacts>");
    ws.write("empty.xml", "<contacts/>");
    ws.import("x.xml", &[]);
    ws.import("x.xml", &["--dry-run"]);
    ws.fails(&["import", "bad.xml"]);
    ws.fails(&["import", "empty.xml"]);
    let runs: Vec<serde_json::Value> =
        serde_json::from_str(&ws.ok(&["runs", "--format", "json"])).unwrap();
    let statuses: Vec<&str> = runs.iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["refused", "failed", "dry_run", "succeeded"]);
    assert_eq!(runs[3]["inserted"], 1);
    assert_eq!(runs[3]["source_sha256"].as_str().unwrap().len(), 64);
    assert!(
        runs[1]["error"]
            .as_str()
            .unwrap()
            .contains("bad.xml:1:11: element <oops>")
    );
    let limited: Vec<serde_json::Value> =
        serde_json::from_str(&ws.ok(&["runs", "--limit", "1", "--format", "json"])).unwrap();
    assert_eq!(limited.len(), 1);
    let text = ws.ok(&["runs"]);
    assert!(
        text.contains("refused") && text.contains("succeeded"),
        "{text}"
    );
}

#[test]
fn export_prints_the_contract_csv_header_and_json() {
    let ws = Workspace::new("");
    ws.write(
        "x.xml",
        contacts_xml(&[&[("e_mail", "a@example.com"), ("last_name", "O'Neil, \"Jr\"")]]),
    );
    ws.import("x.xml", &[]);
    let csv = ws.export();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "origin,directory_id,match_key,extension,first_name,last_name,mobile_number,fax_number,home_number,e_mail,site,department,office,owner,source,user_1,user_2,user_3,user_4,user_5,user_6,user_7,user_8,user_9,user_10"
    );
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("external,,a@example.com,,,\"O'Neil, \"\"Jr\"\"\",,,,a@example.com")
    );
    let rows = ws.rows();
    assert_eq!(rows[0]["last_name"], "O'Neil, \"Jr\"");
    let empty = Workspace::new("");
    assert_eq!(empty.ok(&["export", "--format", "json"]), "[]\n");
}

#[test]
fn directory_load_replaces_the_directory_and_bad_csv_names_file_and_line() {
    let ws = Workspace::new("");
    ws.write("d1.csv", "id,e_mail\n1,a@example.com\n2,b@example.com\n");
    ws.write("d2.csv", "id,e_mail\n3,c@example.com\n");
    ws.ok(&["directory", "load", "d1.csv"]);
    ws.ok(&["directory", "load", "d2.csv"]);
    ws.write("x.xml", contacts_xml(&[&[("e_mail", "z@example.com")]]));
    ws.import("x.xml", &[]);
    let ids: Vec<_> = ws
        .rows()
        .iter()
        .filter_map(|r| r["directory_id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(ids, ["3"]);
    ws.write("bad.csv", "id,e_mail\n4,d@example.com\n4,e@example.com\n");
    let (_, stderr) = ws.fails(&["directory", "load", "bad.csv"]);
    assert!(
        stderr.contains("bad.csv:3: id \"4\" appears again"),
        "{stderr}"
    );
    let (_, stderr) = ws.fails(&[
        "directory",
        "load",
        repo("samples/broken/directory-unknown-column.csv")
            .to_str()
            .unwrap(),
    ]);
    assert!(
        stderr.contains("directory-unknown-column.csv:1: unknown column \"nickname\""),
        "{stderr}"
    );
    let ids_after: Vec<_> = ws
        .rows()
        .iter()
        .filter_map(|r| r["directory_id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(ids_after, ["3"], "a refused CSV changes nothing");
}

#[test]
fn an_unknown_config_key_is_an_error_naming_the_key_and_the_file() {
    let ws = Workspace::new("[merge]\nmatchingfield = \"e_mail\"\n");
    let (_, stderr) = ws.fails(&["import", "x.xml"]);
    assert!(
        stderr.contains("pipeline.toml") && stderr.contains("matchingfield"),
        "{stderr}"
    );
}

#[test]
fn a_schema_with_an_unsupported_construct_is_refused_at_start_up() {
    let ws = Workspace::new("");
    ws.write(
        "choice.xsd",
        r#"<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"><xs:element name="contacts"><xs:complexType><xs:choice/></xs:complexType></xs:element></xs:schema>"#,
    );
    ws.write("x.xml", "<contacts/>");
    let (_, stderr) = ws.fails(&["validate", "x.xml", "--schema", "choice.xsd"]);
    assert!(
        stderr.contains("choice.xsd:1:")
            && stderr.contains("unsupported XSD construct <xs:choice>"),
        "{stderr}"
    );
}

#[test]
fn the_readme_commands_work_from_the_repository_root() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("readme.db").display());
    let out = Command::new(BIN)
        .current_dir(repo(""))
        .args(["--db", &db, "run"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("succeeded") && stdout.contains("rejected 3"),
        "{stdout}"
    );
    let out = Command::new(BIN)
        .current_dir(repo(""))
        .args(["--db", &db, "export"])
        .output()
        .unwrap();
    let export = String::from_utf8(out.stdout).unwrap();
    assert!(
        export
            .lines()
            .any(|l| l.starts_with("merged,1,anna.peeters@example.com")),
        "{export}"
    );
}

#[test]
fn quiet_runs_print_nothing_on_stderr() {
    let ws = Workspace::new("");
    ws.write("x.xml", contacts_xml(&[&[("e_mail", "a@example.com")]]));
    let out = ws.ucm(&["-q", "import", "x.xml"]);
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn help_explains_every_command() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    let listed: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .filter_map(|l| l.strip_prefix("  ")?.split_whitespace().next())
        .collect();
    for cmd in [
        "validate",
        "directory",
        "import",
        "fetch",
        "merge",
        "run",
        "export",
        "staged",
        "runs",
        "generate",
    ] {
        assert!(
            listed.contains(&cmd),
            "--help does not list {cmd}: {listed:?}"
        );
    }
}

#[test]
fn an_unreachable_postgresql_server_is_named_with_its_password_masked() {
    let ws = Workspace::new("");
    ws.write("x.xml", contacts_xml(&[&[("e_mail", "a@example.com")]]));
    let (_, stderr) = ws.fails(&[
        "--db",
        "postgres://ucm:s3cret@127.0.0.1:1/contacts_db",
        "import",
        "x.xml",
    ]);
    assert!(
        stderr
            .contains("cannot connect to PostgreSQL server 127.0.0.1:1, database \"contacts_db\"")
            && stderr.contains("(3 attempts)")
            && stderr.contains("postgres://***@127.0.0.1:1/contacts_db")
            && !stderr.contains("s3cret"),
        "{stderr}"
    );
}

#[test]
fn a_missing_postgresql_database_is_named_and_not_retried() {
    let Some(admin) = common::postgres_admin_url() else {
        return; // needs a server: the PostgreSQL pass of scripts/test.sh
    };
    let ws = Workspace::new("");
    ws.write("x.xml", contacts_xml(&[&[("e_mail", "a@example.com")]]));
    let url = format!("{}/no_such_db", &admin[..admin.rfind('/').unwrap()]);
    let (_, stderr) = ws.fails(&["--db", &url, "import", "x.xml"]);
    assert!(
        stderr.contains("database \"no_such_db\"")
            && stderr.contains("(1 attempt)")
            && stderr.contains("does not exist"),
        "{stderr}"
    );
}

#[test]
fn ucm_cron_explains_an_expression_and_lists_its_next_fire_times() {
    let ws = Workspace::new("");
    let out = ws.ok(&[
        "cron",
        "1,30 * * * ?",
        "--count",
        "3",
        "--tz",
        "Europe/Brussels",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "\"1,30 * * * ?\": at minutes 1 and 30 of every hour, every day"
    );
    assert_eq!(lines[1], "next 3 fire times (Europe/Brussels):");
    assert_eq!(lines.len(), 5, "{out}");
    assert!(
        lines[2..]
            .iter()
            .all(|l| l.contains(":01 C") || l.contains(":30 C")),
        "{out}"
    );
    let (_, stderr) = ws.fails(&["cron", "0 0 ? * 8"]);
    assert!(
        stderr.contains(
            "field Day-of-week has \"8\": out of range; allowed: 1-7 or SUN-SAT (1 = Sunday)"
        ),
        "{stderr}"
    );
}

#[test]
fn a_schedule_with_a_step_after_a_name_loads_with_a_warning_that_quartz_reads_it_otherwise() {
    let ws = Workspace::new("[source]\nschedule = \"0 8 ? * MON-FRI/2\"\n");
    let out = ws.ucm(&["runs"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr
            .contains("source.schedule: field Day-of-week has \"MON-FRI/2\": ucm applies the step")
            && stderr.contains("write \"2-6/2\""),
        "{stderr}"
    );
    let cron = ws.ucm(&["cron", "0 0 1 JAN/3 ?", "--count", "1"]);
    let stderr = String::from_utf8_lossy(&cron.stderr);
    assert!(cron.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning: field Month has \"JAN/3\""),
        "{stderr}"
    );
}
