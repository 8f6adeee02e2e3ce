//! The LDAP directory served by `ucm serve` to real clients: OpenLDAP's `ldapsearch`,
//! `ldapadd` and `ldapwhoami` (Debian `ldap-utils`), and python's `ldap3`
//! (tests/clients/ldap3_search.py), over plain LDAP, StartTLS and LDAPS. Binds (anonymous,
//! right, wrong, odd characters), the root DSE, every filter kind, numbers in several
//! spellings, non-ASCII names (base64 in LDIF), size limits, paged results, a read-only
//! refusal, garbage bytes, connection limits, and the plan of a typed-ahead search (no table
//! scan). Both backends (the suite runs once per backend).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::Workspace;
use common::ldap::*;
use common::service::{PASSWORD, http, run_demo};

#[test]
fn desk_phones_search_the_merged_directory_with_ldapsearch() {
    if !clients_present() {
        return;
    }
    let (ws, s) = loaded(&ldap_toml(""));
    let url = ldap_url(&s, "ldap");
    let phones = Some((BIND_DN, PASSWORD));

    // The root DSE answers anyone: the naming context and what is supported.
    let (code, dse, _) = ldapsearch(&url, None, "", &["-s", "base"], "(objectClass=*)", &["*"]);
    assert_eq!(code, 0);
    assert_eq!(dse[0]["namingContexts"], [BASE]);
    assert_eq!(dse[0]["supportedLDAPVersion"], ["3"]);
    assert!(dse[0]["supportedControl"].contains(&"1.2.840.113556.1.4.319".to_owned()));

    // Binds: anonymous searches refused (50), wrong credentials 49, a DN without password 53.
    let (code, ..) = ldapsearch(&url, None, BASE, &[], "(cn=*)", &[]);
    assert_eq!(code, 50, "anonymous search");
    for (dn, password) in [
        (BIND_DN, "wrong"),
        (BIND_DN, PASSWORD.strip_suffix('€').unwrap()),
        ("cn=other,ou=contacts,dc=example,dc=com", PASSWORD),
    ] {
        let (code, ..) = ldapsearch(&url, Some((dn, password)), BASE, &[], "(cn=*)", &[]);
        assert_eq!(code, 49, "{dn} / {password}");
    }
    // The bind DN compares as a DN: case and spaces do not matter.
    let spelled = "CN=phones, OU=Contacts, DC=example, DC=com";
    let (code, ..) = ldapsearch(
        &url,
        Some((spelled, PASSWORD)),
        BASE,
        &[],
        "(cn=anna*)",
        &[],
    );
    assert_eq!(code, 0);

    // Each filter kind, names without regard to case.
    let search = |filter: &str| {
        let (code, entries, ldif) = ldapsearch(&url, phones, BASE, &[], filter, &[]);
        assert_eq!(code, 0, "{filter}: {ldif}");
        names(&entries)
    };
    assert_eq!(search("(givenName=ANNA)"), ["Anna Peeters"]);
    assert_eq!(search("(|(cn=car*)(sn=car*))"), ["Carla Dubois"]);
    assert_eq!(search("(sn=*UPR*)"), ["Élodie Dupré"]);
    // Accented capitals in any case, the prefix read from the indexes all the same.
    assert_eq!(search("(cn=ÉLO*)"), ["Élodie Dupré"]);
    assert_eq!(search("(|(cn=élodie d*)(sn=élodie d*))"), ["Élodie Dupré"]);
    assert_eq!(search("(sn=DUPRÉ)"), ["Élodie Dupré"]);
    assert_eq!(search("(sn=*eters)"), ["Anna Peeters"]);
    assert_eq!(search("(cn=a*pe*rs)"), ["Anna Peeters"]);
    assert_eq!(search("(homePhone=*)"), ["Bob Zoë 🙂", "Carla Dubois"]);
    assert_eq!(
        search("(&(objectClass=inetOrgPerson)(!(mail=*@example.com)))"),
        ["Bob Zoë 🙂", "Fax Room"]
    );
    assert_eq!(search("(&(l=gent)(ou=support))"), ["Noa כהן"]);
    assert_eq!(search("(o=Example NV)").len(), 6);
    assert_eq!(search("(shoeSize=42)"), Vec::<String>::new());
    // A number in any spelling, as phones send what their user typed.
    for filter in [
        "(mobile=0475 11*)",
        "(mobile=+32475*)",
        "(mobile=0032 475 11 11 11)",
        "(mobile=*11 11 11)",
        "(telephoneNumber=201)",
        "(|(telephoneNumber=0475 11*)(mobile=0475 11*)(homePhone=0475 11*))",
    ] {
        assert_eq!(search(filter), ["Anna Peeters"], "{filter}");
    }
    assert_eq!(search("(telephoneNumber=20)"), Vec::<String>::new());
    assert_eq!(
        search("(homePhone=02 555*)"),
        ["Bob Zoë 🙂", "Carla Dubois"]
    );

    // Non-ASCII names travel as UTF-8, written in base64 in LDIF.
    let (_, entries, ldif) = ldapsearch(&url, phones, BASE, &[], "(mail=elodie@*)", &[]);
    assert!(ldif.contains("cn:: "), "{ldif}");
    assert_eq!(entries[0]["cn"], ["Élodie Dupré"]);
    assert_eq!(entries[0]["givenName"], ["Élodie"]);
    assert_eq!(entries[0]["mobile"], ["0476 22 22 22"]);
    assert_eq!(entries[0]["uid"], ["dir-4"]);
    assert_eq!(entries[0]["dn"], [format!("uid=dir-4,{BASE}")]);
    assert_eq!(
        entries[0]["objectClass"],
        ["top", "person", "organizationalPerson", "inetOrgPerson"]
    );

    // Attribute selection.
    let (_, entries, _) = ldapsearch(&url, phones, BASE, &[], "(givenName=noa)", &["mail", "l"]);
    assert_eq!(
        entries[0].keys().collect::<Vec<_>>(),
        ["dn", "l", "mail"],
        "{entries:?}"
    );

    // The size limit: result code 4 and the entries up to it.
    let (code, entries, _) = ldapsearch(
        &url,
        phones,
        BASE,
        &["-z", "2"],
        "(objectClass=inetOrgPerson)",
        &[],
    );
    assert_eq!((code, entries.len()), (4, 2));
    // Paged results: every entry once, two a page.
    let (code, entries, _) = ldapsearch(
        &url,
        phones,
        BASE,
        &["-E", "pr=2/noprompt"],
        "(objectClass=inetOrgPerson)",
        &["uid"],
    );
    assert_eq!(code, 0);
    let mut uids: Vec<String> = entries.iter().map(|e| e["uid"][0].clone()).collect();
    uids.sort();
    uids.dedup();
    assert_eq!(uids.len(), 6, "{entries:?}");
    assert_eq!(entries.len(), 6);

    // One entry by its DN; the RDN is the identity, and stays so across runs.
    let anna = format!("uid=dir-1,{BASE}");
    let (code, entries, _) =
        ldapsearch(&url, phones, &anna, &["-s", "base"], "(objectClass=*)", &[]);
    assert_eq!(
        (code, names(&entries)),
        (0, vec!["Anna Peeters".to_owned()])
    );
    ws.write(
        "directory.csv",
        DIRECTORY.replace("Anna,Peeters", "Anna,Peeters-Smet"),
    );
    assert_eq!(run_demo(&s.base)["status"], "succeeded");
    let (_, entries, _) = ldapsearch(&url, phones, &anna, &["-s", "base"], "(objectClass=*)", &[]);
    assert_eq!(names(&entries), ["Anna Peeters-Smet"]);
    let missing = format!("uid=dir-999,{BASE}");
    let (code, ..) = ldapsearch(
        &url,
        phones,
        &missing,
        &["-s", "base"],
        "(objectClass=*)",
        &[],
    );
    assert_eq!(code, 32, "noSuchObject");
    let (code, ..) = ldapsearch(&url, phones, "ou=elsewhere", &[], "(objectClass=*)", &[]);
    assert_eq!(code, 32, "noSuchObject");

    // Read-only: an add is refused with unwillingToPerform (53), the connection answered.
    let ldif = ws.write(
        "add.ldif",
        format!("dn: uid=new,{BASE}\nobjectClass: inetOrgPerson\ncn: New\nsn: New\n"),
    );
    let add = Command::new("ldapadd")
        .args(["-x", "-H", &url, "-D", BIND_DN, "-w", PASSWORD, "-f"])
        .arg(&ldif)
        .output()
        .unwrap();
    assert_eq!(add.status.code(), Some(53), "{add:?}");
    assert!(
        String::from_utf8_lossy(&add.stderr).contains("read-only"),
        "{add:?}"
    );
    let whoami = Command::new("ldapwhoami")
        .args(["-x", "-H", &url, "-D", BIND_DN, "-w", PASSWORD])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&whoami.stdout).trim(),
        format!("dn:{BIND_DN}")
    );

    // The other changes are refused too; an unknown extended operation is a protocolError.
    let bound = ["-x", "-H", url.as_str(), "-D", BIND_DN, "-w", PASSWORD];
    let tool = |name: &str, args: &[&str]| {
        Command::new(name)
            .args(bound)
            .args(args)
            .output()
            .unwrap()
            .status
            .code()
    };
    assert_eq!(tool("ldapdelete", &[&anna]), Some(53), "delete");
    // (ldapexop exits 1 whatever the result; it prints the result code.)
    let exop = Command::new("ldapexop")
        .args(bound)
        .arg("1.2.3.4")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&exop.stderr).contains("Protocol error (2)"),
        "{exop:?}"
    );
    // Compare: true (6), false (5), an attribute contacts do not have (17), no entry (32).
    // Names compare without regard to case, numbers in any spelling.
    for (assertion, dn, expected) in [
        ("givenName:ANNA", &anna, 6),
        ("mobile:0032 475 11 11 11", &anna, 6),
        ("givenName:Carla", &anna, 5),
        ("shoeSize:42", &anna, 17),
        ("givenName:Anna", &missing, 32),
    ] {
        assert_eq!(
            tool("ldapcompare", &[dn, assertion]),
            Some(expected),
            "{assertion} {dn}"
        );
    }
    // A base search whose filter does not match its entry: success, no entry.
    let (code, entries, _) = ldapsearch(&url, phones, &anna, &["-s", "base"], "(l=brussel)", &[]);
    assert_eq!((code, entries.len()), (0, 0));

    // Garbage closes that connection only, at once: not LDAP at all, a message announcing
    // 4 GB, a SEQUENCE of junk.
    let address = url.strip_prefix("ldap://").unwrap();
    for junk in [
        &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        b"\x30\x84\xff\xff\xff\xff",
        b"\x30\x06\x02\x01\x01\x63\x01\xff",
    ] {
        let mut garbage = TcpStream::connect(address).unwrap();
        garbage
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        garbage.write_all(junk).unwrap();
        let mut rest = Vec::new();
        let read = garbage.read_to_end(&mut rest);
        assert!(
            read.is_ok(),
            "{junk:?}: the connection is closed, not left hanging: {read:?}"
        );
    }
    let (code, ..) = ldapsearch(&url, phones, BASE, &[], "(givenName=anna)", &[]);
    assert_eq!(code, 0);

    let (_, metrics) = http("GET", &format!("{}/metrics", s.base), &[], "");
    for line in [
        "ucm_ldap_requests_total{op=\"bind\",result=\"invalid_credentials\"} 3",
        "ucm_ldap_requests_total{op=\"search\",result=\"insufficent_access_rights\"} 1",
        "ucm_ldap_requests_total{op=\"search\",result=\"size_limit_exceeded\"} 1",
        "ucm_ldap_requests_total{op=\"add\",result=\"unwilling_to_perform\"} 1",
        "ucm_ldap_requests_total{op=\"malformed\",result=\"protocol_error\"} 3",
        "ucm_ldap_requests_total{op=\"compare\",result=\"compare_true\"} 2",
        "ucm_ldap_requests_total{op=\"delete\",result=\"unwilling_to_perform\"} 1",
    ] {
        assert!(metrics.contains(line), "{line}\n{metrics}");
    }
    let log = s.log_with(&["could not be read"]);
    assert!(log.contains("connection closed"), "{log}");
}

fn ldap3_names(answer: &serde_json::Value) -> Vec<String> {
    let mut names: Vec<String> = answer["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["attributes"]["cn"][0].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_second_client_python_ldap3_gets_the_same_answers() {
    if !clients_present() {
        return;
    }
    // Anonymous searches allowed here: a bind is still checked when one is made.
    let (_ws, s) = loaded(&ldap_toml("anonymous = true\n"));
    let url = ldap_url(&s, "ldap");
    let bound = [
        "--bind",
        BIND_DN,
        "--password-env",
        "UCM_TEST_ADMIN_PASSWORD",
    ];
    let search = |filter: &str, extra: &[&str]| {
        let mut args = vec![url.as_str(), BASE, filter];
        args.extend_from_slice(&bound);
        args.extend_from_slice(extra);
        ldap3(&args)
    };
    let answer = search("(|(cn=car*)(sn=car*))", &[]);
    assert_eq!(
        (answer["bind"].as_i64(), answer["result"].as_i64()),
        (Some(0), Some(0))
    );
    assert_eq!(ldap3_names(&answer), ["Carla Dubois"]);
    assert_eq!(ldap3_names(&search("(sn=*UPR*)", &[])), ["Élodie Dupré"]);
    assert_eq!(ldap3_names(&search("(cn=élo*)", &[])), ["Élodie Dupré"]);
    assert_eq!(
        ldap3_names(&search("(mobile=0475 11*)", &[])),
        ["Anna Peeters"]
    );
    assert_eq!(
        ldap3_names(&search(
            "(&(objectClass=inetOrgPerson)(!(mail=*@example.com)))",
            &[]
        )),
        ["Bob Zoë 🙂", "Fax Room"]
    );
    let limited = search("(objectClass=inetOrgPerson)", &["--size", "3"]);
    assert_eq!(limited["result"], 4);
    assert_eq!(limited["entries"].as_array().unwrap().len(), 3);
    let paged = search(
        "(objectClass=inetOrgPerson)",
        &["--page", "3", "--attrs", "uid"],
    );
    assert_eq!(paged["result"], 0);
    assert_eq!(paged["entries"].as_array().unwrap().len(), 6, "{paged}");
    let selected = search("(givenName=noa)", &["--attrs", "mail"]);
    assert_eq!(
        selected["entries"][0]["attributes"],
        serde_json::json!({"mail": ["noa@example.com"]})
    );
    // Without a bind (anonymous allowed): the same answers, from both clients.
    let anonymous = ldap3(&[&url, BASE, "(|(cn=car*)(sn=car*))"]);
    assert_eq!(ldap3_names(&anonymous), ["Carla Dubois"]);
    let (code, entries, _) = ldapsearch(&url, None, BASE, &[], "(givenName=carla)", &[]);
    assert_eq!(
        (code, names(&entries)),
        (0, vec!["Carla Dubois".to_owned()])
    );
    // A wrong password: the bind fails (49) and leaves the connection anonymous, which may
    // search here.
    let wrong = ldap3(&[
        &url,
        BASE,
        "(cn=*)",
        "--bind",
        BIND_DN,
        "--password",
        "wrong",
    ]);
    assert_eq!(wrong["bind"], 49);
    assert_eq!(wrong["result"], 0);
    let (code, ..) = ldapsearch(&url, Some((BIND_DN, "wrong")), BASE, &[], "(cn=*)", &[]);
    assert_eq!(code, 49, "ldapsearch stops at a failed bind");
}

#[test]
fn start_tls_and_ldaps_carry_the_bind_and_every_limit_holds() {
    if !clients_present() {
        return;
    }
    let probe = Workspace::new("");
    let (cert, key) = certificate(&probe);
    let (_ws, s) = loaded(&ldap_toml(&format!(
        "listen_tls = \"127.0.0.1:0\"\ntls_certificate = \"{cert}\"\ntls_key = \"{key}\"\n\
         max_connections = 3\nidle_timeout_secs = 2\nmax_request_bytes = 1024\nsize_limit = 4\n\
         require_tls = false\n"
    )));
    let (plain, tls) = (ldap_url(&s, "ldap"), ldap_url(&s, "ldaps"));
    let with_ca = |args: &[&str]| {
        Command::new("ldapsearch")
            .env("LDAPTLS_CACERT", &cert)
            .env("LDAPTLS_REQCERT", "demand")
            .args([
                "-x",
                "-LLL",
                "-o",
                "nettimeout=20",
                "-D",
                BIND_DN,
                "-w",
                PASSWORD,
            ])
            .args(args)
            .output()
            .unwrap()
    };
    // StartTLS (-ZZ: fail unless TLS is on), then LDAPS.
    for args in [
        vec!["-ZZ", "-H", &plain, "-b", BASE, "(givenName=anna)", "cn"],
        vec!["-H", &tls, "-b", BASE, "(givenName=anna)", "cn"],
    ] {
        let out = with_ca(&args);
        assert!(out.status.success(), "{args:?}: {out:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("cn: Anna Peeters"),
            "{out:?}"
        );
    }
    let root = with_ca(&["-H", &plain, "-b", "", "-s", "base", "supportedExtension"]);
    assert!(
        String::from_utf8_lossy(&root.stdout).contains("1.3.6.1.4.1.1466.20037"),
        "{root:?}"
    );
    // The second client over StartTLS too.
    let answer = ldap3(&[
        &plain,
        BASE,
        "(givenName=anna)",
        "--bind",
        BIND_DN,
        "--password-env",
        "UCM_TEST_ADMIN_PASSWORD",
        "--start-tls",
        &cert,
    ]);
    assert_eq!(ldap3_names(&answer), ["Anna Peeters"]);

    // The directory's own size limit: four entries, then result code 4.
    let (code, entries, _) = ldapsearch(
        &plain,
        Some((BIND_DN, PASSWORD)),
        BASE,
        &[],
        "(objectClass=inetOrgPerson)",
        &["uid"],
    );
    assert_eq!((code, entries.len()), (4, 4));

    // A message over max_request_bytes closes its connection.
    let long = format!("(cn={}*)", "a".repeat(2000));
    let (code, ..) = ldapsearch(&plain, Some((BIND_DN, PASSWORD)), BASE, &[], &long, &[]);
    assert_ne!(code, 0);

    // At most three connections: the fourth is told "busy" and closed; an idle one is
    // closed after two seconds, which frees its place.
    let address = plain.strip_prefix("ldap://").unwrap();
    let open: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(address).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut fourth = TcpStream::connect(address).unwrap();
    fourth
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut notice = Vec::new();
    fourth.read_to_end(&mut notice).unwrap();
    assert!(!notice.is_empty(), "a notice of disconnection comes first");
    assert!(
        notice.windows(22).any(|w| w == b"1.3.6.1.4.1.1466.20036"),
        "{notice:?}"
    );
    let started = Instant::now();
    for mut idle in open {
        idle.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut rest = Vec::new();
        idle.read_to_end(&mut rest).unwrap();
    }
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(10),
        "closed when idle: {waited:?}"
    );
    let (code, ..) = ldapsearch(
        &plain,
        Some((BIND_DN, PASSWORD)),
        BASE,
        &[],
        "(cn=anna*)",
        &[],
    );
    assert_eq!(code, 0, "a place is free again");
    let (_, metrics) = http("GET", &format!("{}/metrics", s.base), &[], "");
    assert!(
        metrics.contains("ucm_ldap_requests_total{op=\"connect\",result=\"busy\"} 1"),
        "{metrics}"
    );
}

/// "A prefix search on names at 1,000,000 contacts answers from an index": the plan of each
/// arm of a phone's typed-ahead filters reads an index, on both backends.
#[test]
fn a_typed_ahead_search_reads_indexes_and_scans_no_table() {
    let ws = Workspace::new("");
    let plan = common::on_store(&ws, async |store| {
        let numbers = ucm::numbers::NumberPlan::new(Some("BE")).unwrap();
        let style = ucm::serve::phones::ldap::entry::EntryStyle {
            name_style: Default::default(),
            organization: None,
            numbers: &numbers,
        };
        let mut plans = String::new();
        for filter in [
            "(|(cn=ann*)(sn=ann*))",
            "(&(objectClass=inetOrgPerson)(|(givenName=pe*)(mail=pe*)))",
            "(|(telephoneNumber=0475*)(mobile=0475*))",
            "(uid=dir-12)",
            "(cn=ÉLO*)",
        ] {
            let filter = ldap3_proto::parse_ldap_filter_str(filter).unwrap();
            let plan = ucm::serve::phones::ldap::search::read_plan(store, &filter, &style)
                .await
                .unwrap();
            plans.push_str(&plan);
            plans.push('\n');
        }
        plans
    });
    assert!(!common::plan_scans_a_table(&plan), "{plan}");
    // Nor sorts: each range is read in the index's order.
    assert!(
        !plan.contains("TEMP B-TREE") && !plan.contains("Sort"),
        "{plan}"
    );
    for index in [
        "contacts_search_first_name",
        "contacts_search_last_name",
        "contacts_search_e_mail",
        "contact_numbers_by_number",
        "contacts_by_directory_id",
    ] {
        assert!(plan.contains(index), "{index}: {plan}");
    }
}
