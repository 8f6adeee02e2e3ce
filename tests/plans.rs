//! Plans: a dry run (or a run a guard refused) stores what it would change; `ucm apply` lands
//! exactly that, once, and only if nothing it was computed against moved. Both backends.

mod common;

use std::process::{Command, Stdio};

use common::{BIN, Workspace, contacts_xml, headless, repo};

/// A directory of two, one import, and a changed source (one new contact, one changed,
/// one gone): the state every test starts from. Returns the export after the import.
fn seeded(ws: &Workspace) -> String {
    ws.write(
        "directory.csv",
        "id,e_mail,first_name\n1,anna@example.com,Anna\n2,bart@example.com,Bart\n",
    );
    ws.ok(&["directory", "load", "directory.csv"]);
    ws.write(
        "first.xml",
        contacts_xml(&[
            &[("e_mail", "anna@example.com"), ("site", "Gent")],
            &[("e_mail", "x@ext.example"), ("last_name", "Ex")],
            &[("e_mail", "y@ext.example")],
        ]),
    );
    assert_eq!(ws.import("first.xml", &[])["status"], "succeeded");
    ws.write(
        "second.xml",
        contacts_xml(&[
            &[("e_mail", "anna@example.com"), ("site", "Antwerpen")],
            &[
                ("e_mail", "x@ext.example"),
                ("last_name", "&lt;script&gt;alert(1)&lt;/script&gt;"),
            ],
            &[("e_mail", "z@ext.example"), ("first_name", "Zoë")],
        ]),
    );
    ws.export()
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Dry-runs second.xml; returns the plan's id.
fn plan_of_second(ws: &Workspace) -> i64 {
    let report = ws.import("second.xml", &["--dry-run"]);
    assert_eq!(report["status"], "dry_run", "{report}");
    report["plan_id"].as_i64().expect("a dry run stores a plan")
}

fn apply(ws: &Workspace, id: i64) -> serde_json::Value {
    let out = ws.ucm(&["apply", &id.to_string(), "--format", "json"]);
    json(&String::from_utf8_lossy(&out.stdout))
}

#[test]
fn applying_a_plan_lands_exactly_what_the_dry_run_predicted() {
    let ws = Workspace::new("");
    seeded(&ws);
    let id = plan_of_second(&ws);
    // The prediction: the same import for real, in a twin workspace.
    let twin = Workspace::new("");
    seeded(&twin);
    twin.import("second.xml", &[]);
    let report = apply(&ws, id);
    assert_eq!(report["status"], "succeeded", "{report}");
    assert_eq!(report["command"], "apply");
    assert_eq!(report["plan_id"], id);
    assert_eq!(
        (&report["inserted"], &report["updated"], &report["deleted"]),
        (&1.into(), &2.into(), &1.into())
    );
    assert_eq!(ws.export(), twin.export());
    // The run history records it; the plan says who applied it.
    let runs = ws.ok(&["runs"]);
    assert!(runs.contains("apply"), "{runs}");
    let shown = json(&ws.ok(&["plan", "show", &id.to_string(), "--format", "json"]));
    assert_eq!(shown["plan"]["status"], "applied");
    assert_eq!(shown["plan"]["applied_run_id"], report["run_id"]);
    // And a dry run now finds nothing left to do.
    let again = ws.import("second.xml", &["--dry-run"]);
    assert_eq!(
        (&again["inserted"], &again["updated"], &again["deleted"]),
        (&0.into(), &0.into(), &0.into())
    );
}

#[test]
fn a_plan_applied_twice_is_refused_the_second_time() {
    let ws = Workspace::new("");
    seeded(&ws);
    let id = plan_of_second(&ws);
    assert_eq!(apply(&ws, id)["status"], "succeeded");
    let after = ws.export();
    let again = apply(&ws, id);
    assert_eq!(again["status"], "refused");
    assert!(
        again["error"]
            .as_str()
            .unwrap()
            .contains("already applied by run"),
        "{again}"
    );
    assert_eq!(ws.export(), after);
}

#[test]
fn a_plan_is_refused_after_another_run_landed_and_nothing_changes() {
    let ws = Workspace::new("");
    seeded(&ws);
    let id = plan_of_second(&ws);
    ws.write(
        "other.xml",
        contacts_xml(&[&[("e_mail", "anna@example.com"), ("site", "Brugge")]]),
    );
    ws.import("other.xml", &["--force"]);
    let before = ws.export();
    let report = apply(&ws, id);
    assert_eq!(report["status"], "refused");
    let error = report["error"].as_str().unwrap();
    assert!(error.contains("the merged table changed"), "{error}");
    assert!(error.contains("nothing was changed"), "{error}");
    assert_eq!(ws.export(), before);
}

#[test]
fn a_plan_is_refused_after_the_directory_changed_and_nothing_changes() {
    let ws = Workspace::new("");
    let before = seeded(&ws);
    let id = plan_of_second(&ws);
    ws.write(
        "directory2.csv",
        "id,e_mail,first_name\n1,anna@example.com,Anne\n2,bart@example.com,Bart\n",
    );
    ws.ok(&["directory", "load", "directory2.csv"]);
    let report = apply(&ws, id);
    assert_eq!(report["status"], "refused");
    assert!(
        report["error"]
            .as_str()
            .unwrap()
            .contains("the directory changed"),
        "{report}"
    );
    assert_eq!(ws.export(), before);
}

#[test]
fn a_plan_is_refused_after_a_merge_policy_change_and_says_what_changed() {
    let ws = Workspace::new("");
    let before = seeded(&ws);
    let id = plan_of_second(&ws);
    ws.config("[merge]\npriority = { site = 1 }\n");
    let report = apply(&ws, id);
    assert_eq!(report["status"], "refused");
    let error = report["error"].as_str().unwrap();
    assert!(
        error.contains("then: match on e_mail; external wins for no field; now: match on e_mail; external wins for site"),
        "{error}"
    );
    assert_eq!(ws.export(), before);
}

#[test]
fn an_expired_plan_is_refused() {
    let ws = Workspace::new("[merge]\nplan_ttl_hours = 0\n");
    let before = seeded(&ws);
    let id = plan_of_second(&ws);
    let report = apply(&ws, id);
    assert_eq!(report["status"], "refused");
    let error = report["error"].as_str().unwrap();
    assert!(
        error.contains("expired") || error.contains("pruned"),
        "{error}"
    );
    assert_eq!(ws.export(), before);
}

#[test]
fn a_discarded_plan_cannot_be_applied() {
    let ws = Workspace::new("");
    let before = seeded(&ws);
    let id = plan_of_second(&ws);
    ws.ok(&["plan", "discard", &id.to_string()]);
    let report = apply(&ws, id);
    assert_eq!(report["status"], "refused");
    assert!(
        report["error"].as_str().unwrap().contains("was discarded"),
        "{report}"
    );
    assert_eq!(ws.export(), before);
    let (_, stderr) = ws.fails(&["plan", "discard", &id.to_string()]);
    assert!(
        stderr.contains("is discarded and cannot be discarded"),
        "{stderr}"
    );
}

/// Hardening 3: a dry run that a guard would refuse stored no plan (the console answered a
/// sample dry run 422 "stored no plan"), while a refused run stores its plan everywhere else.
#[test]
fn a_dry_run_a_guard_would_refuse_stores_its_plan_for_approval() {
    let ws = Workspace::new("[merge]\nmax_delete_ratio = 0.1\n");
    let before = seeded(&ws);
    let refused = ws.import_fails("second.xml", &["--dry-run"]);
    assert_eq!(refused["status"], "refused");
    let id = refused["plan_id"]
        .as_i64()
        .expect("a refused dry run stores a plan");
    assert_eq!(ws.export(), before);
    let listed = json(&ws.ok(&["plans", "--format", "json"]));
    let plan = &listed.as_array().unwrap()[0];
    assert_eq!(plan["id"], id);
    assert_eq!(plan["status"], "awaiting_approval");
    assert!(
        plan["reason"]
            .as_str()
            .unwrap()
            .contains("more than max_delete_ratio = 0.1"),
        "{plan}"
    );
    let report = apply(&ws, id);
    assert_eq!(report["status"], "succeeded", "{report}");
    assert_eq!(report["deleted"], 1);
}

#[test]
fn a_run_a_guard_refused_leaves_a_plan_awaiting_approval_and_applying_it_overrides_the_guard() {
    let ws = Workspace::new("[merge]\nmax_delete_ratio = 0.1\n");
    let before = seeded(&ws);
    // second.xml drops y@ext.example: one of two external rows, more than 10%.
    let refused = ws.import_fails("second.xml", &[]);
    assert_eq!(refused["status"], "refused");
    let id = refused["plan_id"]
        .as_i64()
        .expect("a refused run stores a plan");
    assert_eq!(ws.export(), before);
    let listed = json(&ws.ok(&["plans", "--format", "json"]));
    let plan = &listed.as_array().unwrap()[0];
    assert_eq!(plan["id"], id);
    assert_eq!(plan["status"], "awaiting_approval");
    assert!(
        plan["reason"]
            .as_str()
            .unwrap()
            .contains("more than max_delete_ratio = 0.1"),
        "{plan}"
    );
    assert_eq!(plan["run_id"], refused["run_id"]);
    let report = apply(&ws, id);
    assert_eq!(report["status"], "succeeded", "{report}");
    assert_eq!(report["deleted"], 1);
    let twin = Workspace::new("");
    seeded(&twin);
    twin.import("second.xml", &["--force"]);
    assert_eq!(ws.export(), twin.export());
}

#[test]
fn a_plan_is_shown_as_csv_rows_and_as_html_that_escapes_values() {
    let ws = Workspace::new("");
    seeded(&ws);
    let id = plan_of_second(&ws).to_string();
    let csv = ws.ok(&["plan", "show", &id, "--format", "csv"]);
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    assert_eq!(
        reader.headers().unwrap(),
        vec!["action", "identity", "field", "old", "new", "side"]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert!(
        rows.iter()
            .any(|r| r == vec!["update", "dir:1", "site", "Gent", "Antwerpen", "external"]),
        "{rows:?}"
    );
    assert!(
        rows.iter()
            .any(|r| &r[0] == "delete" && &r[1] == "ext:y@ext.example")
    );
    let html = ws.ok(&["plan", "show", &id, "--format", "html"]);
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    assert!(!html.contains("<script>alert(1)"));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no external assets"
    );
    // The dry run itself prints the same HTML.
    let dry = ws.ok(&["import", "second.xml", "--dry-run", "--format", "html"]);
    assert!(dry.starts_with("<!DOCTYPE html>"), "{dry}");
    // Without --dry-run, csv and html are refused before anything runs.
    let (_, stderr) = ws.fails(&["import", "second.xml", "--format", "html"]);
    assert!(stderr.contains("add --dry-run"), "{stderr}");
}

/// The number in the element with `id` in a DOM dump (`<strong id="count-insert">1</strong>`).
fn number_in(dom: &str, id: &str) -> i64 {
    let at = dom
        .find(&format!("id=\"{id}\">"))
        .unwrap_or_else(|| panic!("no #{id}: {dom}"));
    let rest = &dom[at + id.len() + 6..];
    rest[..rest.find('<').unwrap()].trim().parse().unwrap()
}

#[test]
fn the_html_report_opened_in_a_real_browser_counts_what_the_json_report_counts() {
    let Some(chromium) = common::chromium() else {
        return;
    };
    let ws = Workspace::new("");
    seeded(&ws);
    let id = plan_of_second(&ws).to_string();
    let report = json(&ws.ok(&["plan", "show", &id, "--format", "json"]));
    let page = ws.write(
        "plan.html",
        ws.ok(&["plan", "show", &id, "--format", "html"]),
    );
    let url = format!("file://{}", page.display());
    let profile = ws.path("chromium");
    let dom = headless(chromium, &profile, &url, &["--dump-dom"]);
    let changes = report["changes"].as_array().unwrap();
    for action in ["insert", "update", "delete"] {
        let counted = changes.iter().filter(|c| c["action"] == action).count() as i64;
        assert_eq!(
            number_in(&dom, &format!("count-{action}")),
            counted,
            "{action}"
        );
    }
    // The filter script ran over every changed field: the page says how many it shows.
    let fields: usize = changes
        .iter()
        .map(|c| c["fields"].as_array().unwrap().len())
        .sum();
    assert!(
        dom.contains(&format!("{fields} of {fields} changed fields shown")),
        "{dom}"
    );
    // The value with a script tag is text on the page, not an element.
    assert!(
        dom.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{dom}"
    );
    assert!(!dom.contains("<script>alert(1)"), "{dom}");
    let artifacts = repo("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let shot = artifacts.join("plan-report.png");
    headless(
        chromium,
        &profile,
        &url,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1100,800",
        ],
    );
    assert!(std::fs::read(&shot).unwrap().starts_with(b"\x89PNG"));
}

#[test]
fn a_killed_apply_leaves_the_table_unchanged() {
    let ws = Workspace::new("");
    seeded(&ws);
    let big = ws.path("big.xml");
    let status = Command::new(BIN)
        .args(["generate", "--contacts", "200000", "--xml"])
        .arg(&big)
        .status()
        .unwrap();
    assert!(status.success());
    let report = ws.import(big.to_str().unwrap(), &["--dry-run", "--force"]);
    let id = report["plan_id"].as_i64().unwrap().to_string();
    let before = ws.export();
    if !ws.is_postgres() {
        // The plan's storage grew the write-ahead log; empty it, so the apply's writes show.
        let db = ws.db_url().trim_start_matches("sqlite://").to_owned();
        let conn = rusqlite::Connection::open(db).unwrap();
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
    }
    let mut child = Command::new(BIN)
        .current_dir(ws.dir.path())
        .arg("-c")
        .arg(ws.path("pipeline.toml"))
        .args(["-q", "apply", &id])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the apply is writing, then kill it.
    common::kill_once_writing(&ws, &mut child);
    assert_eq!(ws.export(), before);
    // The plan was not marked applied: it still applies, whole.
    let report = apply(&ws, id.parse().unwrap());
    assert_eq!(report["status"], "succeeded", "{report}");
    assert_eq!(report["inserted"], 200_000);
}

#[test]
fn a_landed_run_keeps_its_first_changes_up_to_run_changes_kept_and_counts_them_all() {
    let ws = Workspace::new("[merge]\nrun_changes_kept = 2\n");
    ws.write(
        "five.xml",
        contacts_xml(&[
            &[("e_mail", "c0@ext.example")],
            &[("e_mail", "c1@ext.example")],
            &[("e_mail", "c2@ext.example")],
            &[("e_mail", "c3@ext.example")],
            &[("e_mail", "c4@ext.example")],
        ]),
    );
    ws.write("one.xml", contacts_xml(&[&[("e_mail", "c0@ext.example")]]));
    // A first load into an empty table keeps no list: its changes are the whole table.
    let first = ws.import("one.xml", &[]);
    assert_eq!(first["changes_kept"], serde_json::Value::Null, "{first}");
    let report = ws.import("five.xml", &[]);
    assert_eq!(report["inserted"], 4, "{report}");
    assert_eq!(report["changes_kept"], 2, "{report}");
    let run = report["run_id"].as_i64().unwrap();
    let kept = |run: i64| {
        ws.query_one(&format!(
            "SELECT count(*) FROM run_changes WHERE run_id = {run}"
        ))
    };
    assert_eq!(kept(run), "2");
    // A dry run keeps no run change list (its plan holds its changes).
    let dry = ws.import("five.xml", &["--dry-run"]);
    assert_eq!(dry["changes_kept"], serde_json::Value::Null, "{dry}");
    // A run that fails keeps nothing either: its transaction is rolled back.
    ws.write("broken.xml", "<contacts><contact><e_mail>a@b</e_mail>");
    ws.import_fails("broken.xml", &[]);
    assert_eq!(ws.query_one("SELECT count(*) FROM run_changes"), "2");
}

/// Showing a page of a plan, or of a run's changes, reads that page by the primary key:
/// never a scan of the change lists (a million-change plan) nor of the contacts.
#[test]
fn a_page_of_changes_is_read_by_primary_key_not_by_a_scan() {
    let ws = Workspace::new("");
    if ws.is_postgres() {
        return; // The query is the same text on both backends; SQLite's plan is checked.
    }
    ws.write("one.xml", contacts_xml(&[&[("e_mail", "a@ext.example")]]));
    ws.import("one.xml", &[]);
    let db = ws.db_url().trim_start_matches("sqlite://").to_owned();
    let conn = rusqlite::Connection::open(db).unwrap();
    for list in [
        ucm::load::plans::ChangeList::Plan(1),
        ucm::load::plans::ChangeList::Run(1),
    ] {
        let sql = list.page_sql().replace('$', "?");
        let mut plan = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let steps: Vec<String> = plan
            .query_map((1, 0, 100), |r| r.get::<_, String>(3))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert!(
            steps
                .iter()
                .all(|s| s.contains("USING PRIMARY KEY") || s.contains("INDEX")),
            "{list:?}: {steps:?}"
        );
        assert!(
            !steps.iter().any(|s| s.starts_with("SCAN")),
            "{list:?}: {steps:?}"
        );
    }
}
