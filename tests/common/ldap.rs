//! Helpers of the LDAP directory's tests: a service with `[ldap]` on a small merged
//! directory, where it listens, and OpenLDAP's `ldapsearch` with its LDIF read back.

use std::collections::BTreeMap;
use std::process::Command;

use base64::Engine as _;

use super::service::{PASSWORD, Serve, run_demo, serve_with};
use super::{Workspace, contacts_xml, repo};

pub const BASE: &str = "ou=contacts,dc=example,dc=com";
pub const BIND_DN: &str = "cn=phones,ou=contacts,dc=example,dc=com";

pub const DIRECTORY: &str = "id,extension,first_name,last_name,mobile_number,home_number,e_mail,site,department\n\
    1,201,Anna,Peeters,0475 11 11 11,,anna@example.com,Gent,Sales\n\
    2,202,Carla,Dubois,,+32 2 555 01 00,carla@example.com,Brussel,Sales\n\
    3,1234,Noa,כהן,,,noa@example.com,Gent,Support\n\
    4,203,Élodie,Dupré,0476 22 22 22,,elodie@example.com,Brussel,Support\n";

pub fn source() -> String {
    contacts_xml(&[
        // Matches Anna (directory 1): merged.
        &[("e_mail", "anna@example.com"), ("first_name", "Annie")],
        // External only.
        &[
            ("e_mail", "bob@partner.example"),
            ("first_name", "Bob"),
            ("last_name", "Zoë 🙂"),
            ("home_number", "02 555 01 00"),
        ],
        &[
            ("e_mail", "fax@partner.example"),
            ("first_name", "Fax"),
            ("last_name", "Room"),
            ("fax_number", "0032 2 555 01 99"),
        ],
    ])
}

/// A workspace with the demo pipeline (region BE) on the contacts above, run once.
pub fn loaded(extra_service_toml: &str) -> (Workspace, Serve) {
    let ws = Workspace::new("");
    ws.write("source.xml", source());
    loaded_on(ws, extra_service_toml)
}

/// The demo pipeline (region BE) on the workspace's `source.xml` and the directory above, run
/// once.
pub fn loaded_on(ws: Workspace, extra_service_toml: &str) -> (Workspace, Serve) {
    ws.write("directory.csv", DIRECTORY);
    let config = std::fs::read_to_string(ws.path("pipeline.toml")).unwrap();
    let database = config[config.find("[database]").unwrap()..].to_owned();
    ws.write(
        "demo.toml",
        format!(
            "name = \"demo\"\nspread_secs = 0\n[source]\nurl = \"{}\"\nschedule = \"0 0 1 1 ?\"\n\
             [directory]\ncsv = \"{}\"\n[merge]\nschedule = \"0 0 1 1 ?\"\n\
             [lookup]\ndefault_region = \"BE\"\n{database}",
            ws.path("source.xml").display(),
            ws.path("directory.csv").display(),
        ),
    );
    let s = serve_with(&ws, &["demo"], 1, "127.0.0.1:0", extra_service_toml);
    let report = run_demo(&s.base);
    assert_eq!(report["status"], "succeeded", "{report}");
    (ws, s)
}

/// `[ldap]` with the phones' bind (password: the odd-character test password, from the
/// environment) and `extra` settings.
pub fn ldap_toml(extra: &str) -> String {
    format!(
        "[ldap]\nlisten = \"127.0.0.1:0\"\nbase_dn = \"{BASE}\"\npipeline = \"demo\"\n\
         organization = \"Example NV\"\nbind_dn = \"{BIND_DN}\"\n\
         password_env = \"UCM_TEST_ADMIN_PASSWORD\"\n{extra}"
    )
}

/// The `scheme://address` the service logged for its LDAP listener of `scheme`.
pub fn ldap_url(s: &Serve, scheme: &str) -> String {
    let needle = format!("LDAP directory listening on {scheme}://");
    let log = s.log_with(&[&needle]);
    let at = log.find(&needle).unwrap() + needle.len() - scheme.len() - 3;
    log[at..].split_whitespace().next().unwrap().to_owned()
}

/// The LDAP clients are installed (`.ci/run` installs them and sets UCM_REQUIRE_LDAP_CLIENTS;
/// elsewhere a missing one skips the test with a note).
pub fn clients_present() -> bool {
    let present = Command::new("ldapsearch").arg("-VV").output().is_ok()
        && Command::new("python3")
            .args(["-c", "import ldap3"])
            .output()
            .is_ok_and(|o| o.status.success());
    if !present {
        assert!(
            std::env::var("UCM_REQUIRE_LDAP_CLIENTS").is_err(),
            "ldapsearch (apt-get install ldap-utils) or python's ldap3 (pip install ldap3) is \
             missing; .ci/run installs them"
        );
        eprintln!("skipped: ldap-utils or python ldap3 is not installed");
    }
    present
}

/// An entry of LDIF: attribute (and "dn") → values, base64 values decoded.
pub type Entry = BTreeMap<String, Vec<String>>;

pub fn parse_ldif(text: &str) -> Vec<Entry> {
    let mut entries = Vec::new();
    for block in text.split("\n\n") {
        let mut entry = Entry::new();
        for line in block
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let (name, value) = if let Some((name, encoded)) = line.split_once(":: ") {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .unwrap();
                (name, String::from_utf8(bytes).unwrap())
            } else if let Some((name, value)) = line.split_once(": ") {
                (name, value.to_owned())
            } else {
                (line.trim_end_matches(':'), String::new())
            };
            entry.entry(name.to_owned()).or_default().push(value);
        }
        if !entry.is_empty() {
            entries.push(entry);
        }
    }
    entries
}

/// `ldapsearch` against `url`: its exit code (the LDAP result code), the entries, the raw
/// LDIF.
pub fn ldapsearch(
    url: &str,
    bind: Option<(&str, &str)>,
    base: &str,
    options: &[&str],
    filter: &str,
    attributes: &[&str],
) -> (i32, Vec<Entry>, String) {
    let mut command = Command::new("ldapsearch");
    command.args([
        "-x",
        "-H",
        url,
        "-LLL",
        "-o",
        "ldif-wrap=no",
        "-o",
        "nettimeout=20",
    ]);
    if let Some((dn, password)) = bind {
        command.args(["-D", dn, "-w", password]);
    }
    command
        .args(["-b", base])
        .args(options)
        .arg(filter)
        .args(attributes);
    let output = command.output().unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    (
        output.status.code().unwrap_or(-1),
        parse_ldif(&stdout),
        stdout,
    )
}

/// The `cn`s of entries, sorted.
pub fn names(entries: &[Entry]) -> Vec<String> {
    let mut names: Vec<String> = entries
        .iter()
        .filter_map(|e| e.get("cn").map(|v| v[0].clone()))
        .collect();
    names.sort();
    names
}

/// A self-signed certificate for 127.0.0.1 in `ws`: (certificate, key) paths.
pub fn certificate(ws: &Workspace) -> (String, String) {
    let (cert, key) = (ws.path("ldap.crt"), ws.path("ldap.key"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=127.0.0.1"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    (cert.display().to_string(), key.display().to_string())
}

/// tests/clients/ldap3_search.py with `args`: its JSON answer.
pub fn ldap3(args: &[&str]) -> serde_json::Value {
    let output = Command::new("python3")
        .arg(repo("tests/clients/ldap3_search.py"))
        .args(args)
        .env("UCM_TEST_ADMIN_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    serde_json::from_slice(&output.stdout).unwrap()
}
