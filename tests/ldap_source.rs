//! An LDAP directory as the source (`kind = "ldap"`), read end to end by the real binary from
//! a real OpenLDAP slapd on 127.0.0.1 (tests/common/slapd.rs): paging past the server's size
//! limit, UTF-8 and base64 values, missing and multi-valued attributes, binary attributes,
//! a filter, LDAPS and StartTLS verified with a CA made at test time, Active Directory's
//! preset, and failures (a wrong password, a stopped server, an untrusted certificate) that
//! change nothing and say what and which server. Both backends.

mod common;

use common::Workspace;
use common::slapd::{self, BASE, SERVICE_DN, SERVICE_PASSWORD, Slapd};

/// `[source]` of an LDAP pipeline at `url`, bound as the service account, with `extra` lines
/// in `[source.ldap]` (and before it, `preset` lines in `source_extra`).
fn ldap_config(url: &str, source_extra: &str, extra: &str) -> String {
    format!(
        "[source]\nkind = \"ldap\"\nurl = \"{url}\"\ntries = 1\nconnect_timeout_secs = 5\n\
         read_timeout_secs = 20\n{source_extra}\n[source.ldap]\nbase_dn = \"ou=people,{BASE}\"\n\
         bind_dn = \"{SERVICE_DN}\"\npassword_env = \"UCM_TEST_LDAP_PASSWORD\"\n{extra}\n"
    )
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// `ucm ARGS` with the service account's password in the environment.
fn ucm(ws: &Workspace, args: &[&str]) -> std::process::Output {
    std::process::Command::new(common::BIN)
        .current_dir(ws.dir.path())
        .arg("-c")
        .arg(ws.path("pipeline.toml"))
        .args(args)
        .env("UCM_TEST_LDAP_PASSWORD", SERVICE_PASSWORD)
        .output()
        .unwrap()
}

fn run_ok(ws: &Workspace) -> serde_json::Value {
    let out = ucm(ws, &["run", "--format", "json"]);
    assert!(
        out.status.success(),
        "ucm run failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    json(&String::from_utf8_lossy(&out.stdout))
}

fn run_fails(ws: &Workspace) -> serde_json::Value {
    let out = ucm(ws, &["run", "--format", "json"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "ucm run should fail: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    json(&String::from_utf8_lossy(&out.stdout))
}

fn row<'r>(rows: &'r [serde_json::Value], e_mail: &str) -> &'r serde_json::Value {
    rows.iter()
        .find(|r| r["e_mail"] == e_mail)
        .unwrap_or_else(|| panic!("no row {e_mail}"))
}

#[test]
fn paging_brings_every_entry_past_the_servers_size_limit() {
    if !slapd::present() {
        return;
    }
    let ws = Workspace::new("");
    let server = Slapd::start(ws.dir.path(), &slapd::people(10_200));
    // The limit is real: a search without paging stops at 500 entries (sizeLimitExceeded).
    let (code, _) = server.ldapsearch("(objectClass=inetOrgPerson)");
    assert_eq!(
        code, 4,
        "ldapsearch without paging should hit the size limit"
    );
    ws.config(&ldap_config(&server.url(), "", "page_size = 500"));
    let report = run_ok(&ws);
    assert_eq!(report["status"], "succeeded", "{report}");
    assert_eq!(report["contacts_read"], 10_200, "{report}");
    let rows = ws.rows();
    assert_eq!(rows.len(), 10_200);
    // UTF-8 values sent in base64; the first of two mobile values; the photo never read.
    let zoe = row(&rows, "person0@example.com");
    assert_eq!(zoe["first_name"], "Zoë");
    assert_eq!(zoe["last_name"], "Ærø");
    assert_eq!(zoe["mobile_number"], "+32 475 00 00 01");
    assert_eq!(zoe["extension"], "10000");
    assert_eq!(zoe["department"], "Sales");
    assert_eq!(zoe["site"], "Gent");
    // Missing attributes are empty fields.
    let bare = row(&rows, "person1@example.com");
    assert!(
        bare["extension"].is_null() && bare["mobile_number"].is_null(),
        "{bare}"
    );
    assert_eq!(bare["first_name"], "Person");
}

#[test]
fn an_unchanged_directory_is_staged_once_and_the_merge_has_no_work() {
    if !slapd::present() {
        return;
    }
    let ws = Workspace::new("");
    let server = Slapd::start(ws.dir.path(), &slapd::people(50));
    ws.config(&ldap_config(&server.url(), "", ""));
    assert_eq!(run_ok(&ws)["inserted"], 50);
    let again = run_ok(&ws);
    assert_eq!(
        again["fetch"]["unchanged_reason"]
            .as_str()
            .map(|r| r.contains("sha256")),
        Some(true),
        "{again}"
    );
    assert_eq!(
        (
            again["inserted"].clone(),
            again["updated"].clone(),
            again["deleted"].clone()
        ),
        (0.into(), 0.into(), 0.into()),
        "{again}"
    );
    // A change in the directory is a change in the table, and only that.
    server.modify(&format!(
        "dn: uid=person7,ou=people,{BASE}\nchangetype: modify\nreplace: mobile\nmobile: +32 499 99 99 99\n"
    ));
    let changed = run_ok(&ws);
    assert_eq!(
        (
            changed["inserted"].clone(),
            changed["updated"].clone(),
            changed["deleted"].clone()
        ),
        (0.into(), 1.into(), 0.into()),
        "{changed}"
    );
    assert_eq!(
        row(&ws.rows(), "person7@example.com")["mobile_number"],
        "+32 499 99 99 99"
    );
}

#[test]
fn a_wrong_password_or_a_stopped_server_changes_nothing_and_says_which_server() {
    if !slapd::present() {
        return;
    }
    let ws = Workspace::new("");
    let mut server = Slapd::start(ws.dir.path(), &slapd::people(20));
    ws.config(&ldap_config(&server.url(), "", ""));
    run_ok(&ws);
    let (staged, table) = (ws.ok(&["staged", "--format", "json"]), ws.export());
    ws.config(&ldap_config(&server.url(), "", "").replace(
        "password_env = \"UCM_TEST_LDAP_PASSWORD\"",
        "password = \"not-the-password\"",
    ));
    let refused = run_fails(&ws);
    let error = refused["error"].as_str().unwrap();
    assert!(
        error.contains(&format!(
            "LDAP bind as {SERVICE_DN} to {} refused: invalid credentials (49)",
            server.url()
        )),
        "{error}"
    );
    assert!(!error.contains("not-the-password"), "{error}");
    assert_eq!(ws.ok(&["staged", "--format", "json"]), staged);
    assert_eq!(ws.export(), table);
    server.stop();
    ws.config(&ldap_config(&server.url(), "", ""));
    let unreachable = run_fails(&ws);
    let error = unreachable["error"].as_str().unwrap();
    assert!(error.contains(&server.url()), "{error}");
    assert!(
        error.contains("cannot connect") && error.contains("refused"),
        "{error}"
    );
    assert_eq!(ws.ok(&["staged", "--format", "json"]), staged);
    assert_eq!(ws.export(), table);
}

#[test]
fn ldaps_and_start_tls_verify_the_certificate_against_ca_file() {
    if !slapd::present() {
        return;
    }
    let ws = Workspace::new("");
    let server = Slapd::start(ws.dir.path(), &slapd::people(30));
    let ca = format!("ca_file = \"{}\"", server.ca.display());
    ws.config(&ldap_config(&server.ldaps_url(), "", &ca));
    assert_eq!(run_ok(&ws)["inserted"], 30);
    ws.config(&ldap_config(
        &server.url(),
        "",
        &format!("{ca}\nstart_tls = true"),
    ));
    assert_eq!(run_ok(&ws)["status"], "succeeded");
    // Without the CA (the system's roots), and with another CA: not trusted, nothing changes.
    let table = ws.export();
    ws.config(&ldap_config(&server.ldaps_url(), "", ""));
    let error = run_fails(&ws)["error"].as_str().unwrap().to_owned();
    assert!(
        error.contains("is not trusted: set [source.ldap] ca_file"),
        "{error}"
    );
    let (other_ca, _, _) = slapd::make_ca(ws.dir.path(), "other");
    let other = format!("ca_file = \"{}\"\nstart_tls = true", other_ca.display());
    ws.config(&ldap_config(&server.url(), "", &other));
    let error = run_fails(&ws)["error"].as_str().unwrap().to_owned();
    assert!(
        error.contains("127.0.0.1") && error.contains("is not trusted"),
        "{error}"
    );
    assert_eq!(ws.export(), table);
}

/// Users as Active Directory returns them (msuser.schema): enabled, disabled (bit 2 of
/// userAccountControl), a computer account, with ipPhone and binary attributes.
fn active_directory_users() -> String {
    let user = |cn: &str, control: u32, class: &str, extra: &str| {
        format!(
            "dn: cn={cn},ou=people,{BASE}\nobjectClass: top\nobjectClass: person\n\
             objectClass: organizationalPerson\nobjectClass: user\n{class}cn: {cn}\n\
             instanceType: 4\nnTSecurityDescriptor:: AQAEgA==\n\
             objectCategory: CN=Person,CN=Schema,CN=Configuration,{BASE}\n\
             objectGUID:: 3q2+7wAAAAAAAAAAAAAAAA==\nuserAccountControl: {control}\n{extra}\n"
        )
    };
    [
        user(
            "Ann Active",
            512,
            "",
            "sn: Active\ngivenName: Ann\nmail: ann@example.com\nipPhone: 4711\n\
             telephoneNumber: +32 9 555 47 11\ndepartment: Sales\ncompany: Example NV\n\
             physicalDeliveryOfficeName: B2.14\n",
        ),
        user(
            "Bob Nopassword",
            544,
            "",
            "sn: Nopassword\ngivenName: Bob\nmail: bob@example.com\ntelephoneNumber: 4712\n",
        ),
        user(
            "Dan Disabled",
            514,
            "",
            "sn: Disabled\nmail: dan@example.com\nipPhone: 4713\n",
        ),
        user(
            "PC01",
            4096,
            "objectClass: computer\n",
            "sn: PC01\nmail: pc01@example.com\n",
        ),
    ]
    .concat()
}

#[test]
fn the_active_directory_preset_reads_ip_phones_and_leaves_out_disabled_accounts_and_computers() {
    if !slapd::present() {
        return;
    }
    let ws = Workspace::new("");
    let server = Slapd::start_unchecked(ws.dir.path(), &active_directory_users());
    ws.config(&ldap_config(
        &server.url(),
        "preset = \"active-directory\"",
        "",
    ));
    let report = run_ok(&ws);
    assert_eq!(report["contacts_read"], 2, "{report}");
    let rows = ws.rows();
    let ann = row(&rows, "ann@example.com");
    assert_eq!(ann["extension"], "4711", "ipPhone before telephoneNumber");
    assert_eq!(ann["department"], "Sales");
    assert_eq!(ann["office"], "B2.14");
    assert_eq!(ann["user_1"], "Example NV");
    assert_eq!(row(&rows, "bob@example.com")["extension"], "4712");
}

#[test]
fn a_filter_chooses_the_entries_and_a_bad_value_names_its_entry_and_attribute() {
    if !slapd::present() {
        return;
    }
    let long = "x".repeat(300);
    let entries = format!(
        "{}dn: uid=long,ou=people,{BASE}\nobjectClass: inetOrgPerson\nuid: long\ncn: Long\n\
         sn: {long}\nmail: long@example.com\ndepartmentNumber: Long\n\n",
        slapd::people(30)
    );
    let ws = Workspace::new("");
    let server = Slapd::start(ws.dir.path(), &entries);
    ws.config(&ldap_config(
        &server.url(),
        "",
        "filter = \"(departmentNumber=Sales)\"",
    ));
    let report = run_ok(&ws);
    assert_eq!(report["contacts_read"], 10, "{report}");
    let table = ws.export();
    ws.config(&ldap_config(&server.url(), "", ""));
    let refused = run_fails(&ws);
    let error = refused["error"].as_str().unwrap();
    assert!(
        error.contains(&format!(
            "entry uid=long,ou=people,{BASE}, attribute sn (last_name): the value is 300 characters long"
        )),
        "{error}"
    );
    assert_eq!(ws.export(), table, "an error lands nothing");
}

#[test]
fn the_preview_shows_each_value_with_its_attribute_and_what_no_field_reads() {
    if !slapd::present() {
        return;
    }
    let ws = Workspace::new("");
    let server = Slapd::start(ws.dir.path(), &slapd::people(10));
    ws.config(&ldap_config(&server.url(), "", ""));
    let out = ucm(&ws, &["fetch", "--preview", "2"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("contact 2"), "{text}");
    assert!(!text.contains("contact 3"), "{text}");
    assert!(text.contains("<- attribute mail"), "{text}");
    assert!(text.contains("Zoë"), "{text}");
    let unread = text
        .lines()
        .find(|l| l.starts_with("in the source, read by no field"))
        .unwrap();
    assert!(unread.contains("uid") && unread.contains("cn"), "{unread}");
    assert!(
        !unread.contains("jpegPhoto"),
        "binary attributes are not shown: {unread}"
    );
}

/// `ucm serve` runs an LDAP pipeline as it runs an XML one: a requested run reads the
/// directory, stages it and merges it, and the search sees the rows.
#[test]
fn ucm_serve_runs_an_ldap_pipeline_and_its_contacts_are_searchable() {
    if !slapd::present() {
        return;
    }
    let ws = Workspace::new("");
    let server = Slapd::start(ws.dir.path(), &slapd::people(40));
    let source = ldap_config(&server.url(), "schedule = \"0 0 1 1 ?\"", "").replace(
        "password_env = \"UCM_TEST_LDAP_PASSWORD\"",
        &format!("password = \"{SERVICE_PASSWORD}\""),
    );
    let (s, report) = common::service::serve_source_and_run(&ws, &source);
    assert_eq!(report["status"], "succeeded", "{report}");
    assert_eq!(report["inserted"], 40, "{report}");
    let (status, found) = common::service::get_auth(
        &format!("{}/api/contacts?q=person3", s.base),
        "Bearer static-token",
    );
    assert_eq!(status, 200, "{found}");
    let found = found.as_array().unwrap();
    assert_eq!(found.len(), 11, "person3 and person30 to 39: {found:?}");
    assert!(found.iter().any(|c| c["e_mail"] == "person3@example.com"));
}
