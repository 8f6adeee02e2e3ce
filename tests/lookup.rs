//! Caller-ID lookup served by `ucm serve` to a real HTTP client: every spelling of a number,
//! an unknown number, a number shared by several contacts (the documented rule, stated in
//! JSON), an extension matched exactly, names with accents, emoji and right-to-left text,
//! access refusals, and the number index following each run (inserts, updates, deletes) and
//! built again when the region changes or the normaliser did (schema version 13). Both
//! backends (the suite runs once per backend).

mod common;

use common::service::{exchange, http, run_demo, serve_with};
use common::{Workspace, contacts_xml};

const TOKEN: &str = "lookup-token-0123456789";

const DIRECTORY: &str = "id,extension,first_name,last_name,mobile_number,home_number,fax_number,e_mail\n\
    1,201,Anna,Peeters,0475 11 11 11,,,anna@example.com\n\
    2,202,Carla,Dubois,,+32 2 555 01 00,,carla@example.com\n\
    3,1234,Noa,כהן,,,,noa@example.com\n";

fn source(extra: &[&[(&str, &str)]]) -> String {
    let mut contacts: Vec<&[(&str, &str)]> = vec![
        // Matches Anna (directory 1): merged, her numbers stay the directory's.
        &[("e_mail", "anna@example.com"), ("first_name", "Annie")],
        // External only, sharing Carla's home number as theirs.
        &[
            ("e_mail", "bob@partner.example"),
            ("first_name", "Bob"),
            ("last_name", "Zoë 🙂"),
            ("home_number", "02 555 01 00"),
        ],
        // External only, the shared number as a fax.
        &[
            ("e_mail", "fax@partner.example"),
            ("first_name", "Fax"),
            ("last_name", "Room"),
            ("fax_number", "0032 2 555 01 00"),
        ],
    ];
    contacts.extend_from_slice(extra);
    contacts_xml(&contacts)
}

fn write_pipeline(ws: &Workspace, region: &str) {
    let config = std::fs::read_to_string(ws.path("pipeline.toml")).unwrap();
    let database = config[config.find("[database]").unwrap()..].to_owned();
    ws.write(
        "demo.toml",
        format!(
            "name = \"demo\"\nspread_secs = 0\n[source]\nurl = \"{}\"\nschedule = \"0 0 1 1 ?\"\n\
             [directory]\ncsv = \"{}\"\n[merge]\nschedule = \"0 0 1 1 ?\"\n\
             [lookup]\ndefault_region = \"{region}\"\n{database}",
            ws.path("source.xml").display(),
            ws.path("directory.csv").display(),
        ),
    );
}

const LOOKUPS: &str = "[[lookups]]\npipeline = \"demo\"\ntoken = \"lookup-token-0123456789\"\n\
    username = \"pbx\"\npassword = \"pbx-secret\"\n";

/// `GET /lookup/demo/{token}?number=...` as text: (status, Content-Type, body).
fn lookup(base: &str, number: &str) -> (u16, String, String) {
    let encoded: String =
        percent_encoding::utf8_percent_encode(number, percent_encoding::NON_ALPHANUMERIC)
            .to_string();
    let (status, head, body) = exchange(
        base,
        format!(
            "GET /lookup/demo/{TOKEN}?number={encoded} HTTP/1.1\r\nHost: pbx\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    );
    let content_type = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-type")
                .then(|| value.trim().to_owned())
        })
        .unwrap_or_default();
    (status, content_type, body)
}

fn lookup_json(base: &str, number: &str) -> (u16, serde_json::Value) {
    let encoded: String =
        percent_encoding::utf8_percent_encode(number, percent_encoding::NON_ALPHANUMERIC)
            .to_string();
    let (status, body) = http(
        "GET",
        &format!("{base}/lookup/demo/{TOKEN}?number={encoded}"),
        &[("Accept", "application/json")],
        "",
    );
    (
        status,
        serde_json::from_str(&body).unwrap_or_else(|_| panic!("{body}")),
    )
}

/// The number index as `contact id|number|rank` lines, sorted.
fn index_of(ws: &Workspace) -> String {
    let list = if ws.is_postgres() {
        "SELECT string_agg(contact_id || '|' || number || '|' || rank, ',' ORDER BY contact_id, number) FROM contact_numbers"
    } else {
        "SELECT group_concat(line, ',') FROM (SELECT contact_id || '|' || number || '|' || rank AS line FROM contact_numbers ORDER BY contact_id, number)"
    };
    ws.query_one(list)
}

#[test]
fn a_pbx_finds_callers_by_any_spelling_of_their_number_as_runs_change_the_table() {
    let ws = Workspace::new("");
    ws.write("directory.csv", DIRECTORY);
    ws.write("source.xml", source(&[]));
    write_pipeline(&ws, "BE");
    let s = serve_with(&ws, &["demo"], 1, "127.0.0.1:0", LOOKUPS);
    let report = run_demo(&s.base);
    assert_eq!(report["status"], "succeeded", "{report}");

    // Every spelling of Anna's mobile number finds her; the name alone, as text.
    for spelling in [
        "0475 11 11 11",
        "+32 475 111111",
        "0032475111111",
        "475111111",
        "+32475111111",
    ] {
        let (status, content_type, body) = lookup(&s.base, spelling);
        assert_eq!((status, body.as_str()), (200, "Anna Peeters"), "{spelling}");
        assert!(content_type.starts_with("text/plain"), "{content_type}");
    }
    // An unknown number: 404 and an empty body.
    let (status, _, body) = lookup(&s.base, "+32 475 99 99 98");
    assert_eq!((status, body.as_str()), (404, ""));
    // An extension matches exactly: 1234, not 12345 or 234; a right-to-left name intact.
    let (status, _, body) = lookup(&s.base, "1234");
    assert_eq!((status, body.as_str()), (200, "Noa כהן"));
    assert_eq!(lookup(&s.base, "12345").0, 404);
    assert_eq!(lookup(&s.base, "234").0, 404);

    // JSON: the contact, the field and key that matched.
    let (status, json) = lookup_json(&s.base, "0475 11 11 11");
    assert_eq!(status, 200);
    assert_eq!(json["name"], "Anna Peeters");
    assert_eq!(json["field"], "mobile_number");
    assert_eq!(json["matched"], "+32475111111");
    assert_eq!(json["origin"], "merged");
    assert_eq!(json["contacts"], 1);
    let anna = json["contact_id"].as_i64().unwrap();
    assert_eq!(
        ws.query_one(&format!("SELECT e_mail FROM contacts WHERE id = {anna}")),
        "anna@example.com"
    );

    // A shared number: Carla (home, directory) beats Bob (home, external), who beats the
    // fax; the answer says so.
    let (status, json) = lookup_json(&s.base, "+32 2 555 01 00");
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["name"], "Carla Dubois", "{json}");
    assert_eq!(json["field"], "home_number");
    assert_eq!(json["contacts"], 3);
    assert_eq!(json["others"].as_array().unwrap().len(), 2);
    assert!(
        json["rule"]
            .as_str()
            .unwrap()
            .contains("extension, then mobile_number"),
        "{json}"
    );
    let bob = json["others"][0].as_i64().unwrap();
    assert_eq!(
        ws.query_one(&format!("SELECT e_mail FROM contacts WHERE id = {bob}")),
        "bob@partner.example"
    );
    let (status, json) = lookup_json(&s.base, "0999 99 99 99");
    assert_eq!(status, 404);
    assert_eq!(json["name"], serde_json::Value::Null);
    assert_eq!(json["contacts"], 0);

    // Access: no token and no login is 401 with nothing else; basic auth works; a missing
    // number is a 400 that says what to send.
    let (status, _, body) = exchange(
        &s.base,
        b"GET /lookup/demo?number=1234 HTTP/1.1\r\nHost: pbx\r\nConnection: close\r\n\r\n",
    );
    assert_eq!((status, body.as_str()), (401, ""));
    let (status, _, body) = exchange(
        &s.base,
        b"GET /lookup/demo/wrong-token-000000000?number=1234 HTTP/1.1\r\nHost: pbx\r\nConnection: close\r\n\r\n",
    );
    assert_eq!((status, body.as_str()), (401, ""));
    let (status, body) = http(
        "GET",
        &format!("{}/lookup/demo?number=%2B32475111111", s.base),
        &[("Authorization", "Basic cGJ4OnBieC1zZWNyZXQ=")],
        "",
    );
    assert_eq!((status, body.as_str()), (200, "Anna Peeters"));
    let (status, _, body) = lookup(&s.base, " ");
    assert_eq!(status, 400);
    assert!(body.contains("number= is missing or blank"), "{body}");
    assert_eq!(lookup(&s.base, &"9".repeat(65)).0, 400);
    let (_, metrics) = http("GET", &format!("{}/metrics", s.base), &[], "");
    assert!(
        metrics.contains("ucm_http_refusals_total{reason=\"lookup_unauthorized\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("ucm_lookups_total{pipeline=\"demo\",result=\"found\"}"),
        "{metrics}"
    );
    // Another pipeline has no lookup.
    let (status, _, _) = exchange(
        &s.base,
        b"GET /lookup/other?number=1234 HTTP/1.1\r\nHost: pbx\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 404);

    // A run that inserts, updates and deletes: the index follows in the same transaction.
    ws.write(
        "source.xml",
        source(&[&[
            ("e_mail", "new@partner.example"),
            ("first_name", "Nieuw"),
            ("mobile_number", "+32 478 12 34 56"),
        ]])
        .replace("02 555 01 00", "02 555 02 00")
        .replace(
            "<e_mail>fax@partner.example</e_mail>",
            "<e_mail>fax2@partner.example</e_mail>",
        ),
    );
    let report = run_demo(&s.base);
    assert_eq!(report["status"], "succeeded", "{report}");
    assert_eq!(
        (&report["inserted"], &report["updated"], &report["deleted"]),
        (&2.into(), &1.into(), &1.into()),
        "{report}"
    );
    assert_eq!(lookup(&s.base, "0478 123 456").2, "Nieuw");
    assert_eq!(lookup(&s.base, "02 555 02 00").2, "Bob Zoë 🙂");
    let (_, json) = lookup_json(&s.base, "02 555 01 00");
    assert_eq!(
        json["contacts"], 2,
        "the old fax row is gone, Bob moved: {json}"
    );

    // The index the runs kept is the one a full build makes: forget it, and the service
    // builds it again at start.
    let kept = index_of(&ws);
    assert!(kept.contains("|+32478123456|"), "{kept}");
    drop(s);
    ws.query_one("DELETE FROM number_index RETURNING region");
    ws.query_one("DELETE FROM contact_numbers RETURNING contact_id");
    let s = serve_with(&ws, &["demo"], 1, "127.0.0.1:0", LOOKUPS);
    common::service::eventually(30, "the number index built at start", || {
        (lookup(&s.base, "0475 11 11 11").0 == 200).then_some(())
    });
    assert_eq!(index_of(&ws), kept);
    drop(s);

    // Another region: the next run builds the index again; national numbers read as Dutch.
    write_pipeline(&ws, "NL");
    ws.ok_with("demo.toml", &["import", "source.xml"]);
    assert_eq!(ws.query_one("SELECT region FROM number_index"), "NL");
    let s = serve_with(&ws, &["demo"], 1, "127.0.0.1:0", LOOKUPS);
    assert_eq!(lookup(&s.base, "+31 475 111111").2, "Anna Peeters");
    assert_eq!(lookup(&s.base, "+32 478 12 34 56").2, "Nieuw");
    assert_eq!(lookup(&s.base, "+32 475 111111").0, 404);
}

/// Password guessing against a PBX endpoint: wrong credentials count against the client
/// address; once its allowance is spent it is answered 429 with Retry-After, whatever it
/// presents, while a request without credentials costs nothing.
/// Hardening 3: a name with a line break (`Ext<b> One\r\nX-Injected: 1`) reached a PBX that
/// reads one line as two; escape, vertical tab and delete reached it as they were.
#[test]
fn a_callers_name_reaches_the_pbx_as_one_line_of_printable_text() {
    let ws = Workspace::new("");
    ws.write(
        "directory.csv",
        format!(
            "{DIRECTORY}4,205,\"Ext<b> One\r\nX-Injected: 1\",\"\u{1b}[31mRed\u{b}\u{7f}\",,,,ext@example.com\n"
        ),
    );
    ws.write("source.xml", source(&[]));
    write_pipeline(&ws, "BE");
    let s = serve_with(&ws, &["demo"], 1, "127.0.0.1:0", LOOKUPS);
    let report = run_demo(&s.base);
    assert_eq!(report["status"], "succeeded", "{report}");
    let (status, _, body) = lookup(&s.base, "205");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, "Ext<b> One X-Injected: 1 [31mRed");
    assert!(!body.chars().any(char::is_control), "{body:?}");
    let (status, json) = lookup_json(&s.base, "205");
    assert_eq!(status, 200);
    assert_eq!(json["name"], "Ext<b> One X-Injected: 1 [31mRed");
}

#[test]
fn an_address_guessing_credentials_is_throttled_and_told_when_to_come_back() {
    let ws = Workspace::new("");
    ws.write("directory.csv", DIRECTORY);
    ws.write("source.xml", source(&[]));
    write_pipeline(&ws, "BE");
    let s = serve_with(
        &ws,
        &["demo"],
        1,
        "127.0.0.1:0",
        &format!("{LOOKUPS}[limits]\nphone_auth_failures_per_minute = 3\n"),
    );
    run_demo(&s.base);
    let get = |path: &str, headers: &str| {
        exchange(
            &s.base,
            format!("GET {path} HTTP/1.1\r\nHost: pbx\r\nConnection: close\r\n{headers}\r\n")
                .as_bytes(),
        )
    };
    // Without credentials: 401 each time, never throttled.
    for _ in 0..5 {
        assert_eq!(get("/lookup/demo?number=1234", "").0, 401);
    }
    // Wrong guesses are answered 401 until the allowance (3) is spent: the fourth spends it,
    // the fifth is 429.
    for guess in [
        "guess-000000000000001",
        "guess-000000000000002",
        "guess-000000000000004",
    ] {
        assert_eq!(get(&format!("/lookup/demo/{guess}?number=1234"), "").0, 401);
    }
    assert_eq!(
        get(
            "/lookup/demo?number=1234",
            "Authorization: Basic cGJ4Ondyb25n\r\n"
        )
        .0,
        401
    );
    let (status, head, body) = get("/lookup/demo/guess-000000000000005?number=1234", "");
    assert_eq!((status, body.as_str()), (429, ""));
    let retry: u64 = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("retry-after")
                .then(|| value.trim().parse().unwrap())
        })
        .expect("Retry-After");
    assert!((1..=20).contains(&retry), "{retry}");
    // Refused whatever it presents now, the right token included.
    assert_eq!(get(&format!("/lookup/demo/{TOKEN}?number=1234"), "").0, 429);
    let (_, metrics) = http("GET", &format!("{}/metrics", s.base), &[], "");
    assert!(
        metrics.contains("ucm_http_refusals_total{reason=\"lookup_throttled\"} 2"),
        "{metrics}"
    );
}

/// "A single indexed read: no table scan at any size": the lookup's plan reads the number
/// index (a range per key) and each contact by its primary key, on both backends.
#[test]
fn a_lookup_reads_the_number_index_and_scans_no_table() {
    let ws = Workspace::new("");
    let plan = common::on_store(&ws, async |store| {
        ucm::directory::caller_id::lookup_plan(store).await.unwrap()
    });
    assert!(plan.contains("contact_numbers_by_number"), "{plan}");
    assert!(!common::plan_scans_a_table(&plan), "{plan}");
    if ws.is_postgres() {
        assert!(plan.contains("contacts_pkey"), "{plan}");
    } else {
        assert_eq!(
            plan.matches("USING COVERING INDEX contact_numbers_by_number")
                .count(),
            2,
            "{plan}"
        );
        assert!(
            plan.contains("SEARCH c USING INTEGER PRIMARY KEY"),
            "{plan}"
        );
    }
}

/// Schema version 13 changed the number normaliser (decision 0016): the phonenumber crate keyed
/// `+39 06 1234 5678` read in region BE as `+39612345678` (the Italian 0 dropped), so a PBX
/// dialling the number never found the contact. A database whose index was built before
/// version 13 gets it built again by its next run, with the right key.
#[test]
fn an_index_built_by_the_old_normaliser_is_built_again_with_the_italian_zero_kept() {
    let ws = Workspace::new("");
    ws.write("directory.csv", DIRECTORY);
    let italian: &[(&str, &str)] = &[
        ("e_mail", "giulia@partner.example"),
        ("first_name", "Giulia"),
        ("last_name", "Roma"),
        ("mobile_number", "+39 06 1234 5678"),
    ];
    ws.write("source.xml", source(&[italian]));
    write_pipeline(&ws, "BE");
    ws.ok_with("demo.toml", &["import", "source.xml"]);
    assert!(
        index_of(&ws).contains("|+390612345678|"),
        "{}",
        index_of(&ws)
    );

    // The database as version 12 left it: the old key, version 13 not applied yet.
    ws.query_one(
        "UPDATE contact_numbers SET number = '+39612345678' WHERE number = '+390612345678' \
         RETURNING contact_id",
    );
    ws.query_one("DELETE FROM _sqlx_migrations WHERE version = 13 RETURNING version");
    ws.ok_with("demo.toml", &["import", "source.xml"]);
    let index = index_of(&ws);
    assert!(index.contains("|+390612345678|"), "{index}");
    assert!(!index.contains("|+39612345678|"), "{index}");
    let s = serve_with(&ws, &["demo"], 1, "127.0.0.1:0", LOOKUPS);
    assert_eq!(lookup(&s.base, "+39 06 1234 5678").2, "Giulia Roma");
    assert_eq!(lookup(&s.base, "0039 06 12345678").2, "Giulia Roma");
}
