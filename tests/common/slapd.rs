//! A real OpenLDAP server for the LDAP source's tests: `slapd` (Debian package `slapd`;
//! `.ci/run` installs it) with a generated config, loaded with `slapadd`, listening on
//! 127.0.0.1 (ldap:// and ldaps://, StartTLS too) with a certificate signed by a CA made at
//! test time. Its size limit is 500 entries, as an administrator would set it; paged searches
//! may go past it (`size.prtotal=unlimited`), as Active Directory's MaxPageSize allows.

use std::fmt::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use base64::Engine;

pub const BASE: &str = "dc=example,dc=com";
pub const SERVICE_DN: &str = "cn=ucm,ou=services,dc=example,dc=com";
pub const SERVICE_PASSWORD: &str = "ucm-source-secret";

/// Whether slapd is installed (`.ci/run` installs it and sets UCM_REQUIRE_LDAP_CLIENTS;
/// elsewhere a missing one skips the test with a note).
pub fn present() -> bool {
    let present = Path::new("/usr/sbin/slapd").exists() && Path::new("/usr/sbin/slapadd").exists();
    if !present {
        assert!(
            std::env::var("UCM_REQUIRE_LDAP_CLIENTS").is_err(),
            "slapd is missing (apt-get install slapd); .ci/run installs it"
        );
        eprintln!("skipped: slapd is not installed");
    }
    present
}

/// A running slapd, stopped when dropped.
pub struct Slapd {
    dir: PathBuf,
    child: Option<Child>,
    pub port: u16,
    pub tls_port: u16,
    /// The PEM file of the CA that signed the server's certificate.
    pub ca: PathBuf,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn run(command: &mut Command) {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA and a certificate for 127.0.0.1 signed by it, in `dir`: (ca.crt, server.crt,
/// server.key).
pub fn make_ca(dir: &Path, name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let ca_key = dir.join(format!("{name}-ca.key"));
    let ca = dir.join(format!("{name}-ca.crt"));
    let key = dir.join(format!("{name}-server.key"));
    let csr = dir.join(format!("{name}-server.csr"));
    let cert = dir.join(format!("{name}-server.crt"));
    let ext = dir.join(format!("{name}-server.ext"));
    std::fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run(Command::new("openssl")
        .args(["req", "-x509"])
        .args(ec)
        .args(["-days", "2", "-subj", &format!("/CN=ucm test CA {name}")])
        .args(["-addext", "basicConstraints=critical,CA:TRUE"])
        .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        .arg("-keyout")
        .arg(&ca_key)
        .arg("-out")
        .arg(&ca));
    run(Command::new("openssl")
        .arg("req")
        .args(ec)
        .args(["-subj", "/CN=127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&csr));
    run(Command::new("openssl")
        .args(["x509", "-req", "-days", "2", "-in"])
        .arg(&csr)
        .arg("-CA")
        .arg(&ca)
        .arg("-CAkey")
        .arg(&ca_key)
        .arg("-CAcreateserial")
        .arg("-extfile")
        .arg(&ext)
        .arg("-out")
        .arg(&cert));
    (ca, cert, key)
}

impl Slapd {
    /// A server in `dir` holding the base, `ou=people`, the service account and `entries`
    /// (LDIF, each entry ending with a blank line).
    pub fn start(dir: &Path, entries: &str) -> Slapd {
        Slapd::load_and_run(dir, entries, true)
    }

    /// As [`Slapd::start`], but `entries` are loaded as Active Directory returns them,
    /// whatever OpenLDAP's copy of its schema (msuser.schema) allows (ipPhone on a user).
    pub fn start_unchecked(dir: &Path, entries: &str) -> Slapd {
        Slapd::load_and_run(dir, entries, false)
    }

    fn load_and_run(dir: &Path, entries: &str, schema_checked: bool) -> Slapd {
        let dir = dir.join("slapd");
        std::fs::create_dir_all(dir.join("db")).unwrap();
        let (ca, cert, key) = make_ca(&dir, "slapd");
        let config = format!(
            "include /etc/ldap/schema/core.schema\n\
             include /etc/ldap/schema/cosine.schema\n\
             include /etc/ldap/schema/inetorgperson.schema\n\
             include /etc/ldap/schema/nis.schema\n\
             include /etc/ldap/schema/msuser.schema\n\
             pidfile {dir}/slapd.pid\n\
             modulepath /usr/lib/ldap\n\
             moduleload back_mdb\n\
             TLSCACertificateFile {ca}\n\
             TLSCertificateFile {cert}\n\
             TLSCertificateKeyFile {key}\n\
             database mdb\n\
             maxsize 1073741824\n\
             suffix \"{BASE}\"\n\
             rootdn \"cn=admin,{BASE}\"\n\
             rootpw admin-secret\n\
             directory {dir}/db\n\
             limits users size.soft=500 size.hard=500 size.prtotal=unlimited\n\
             limits anonymous size.soft=500 size.hard=500 size.prtotal=unlimited\n\
             access to attrs=userPassword by anonymous auth by * none\n\
             access to * by * read\n",
            dir = dir.display(),
            ca = ca.display(),
            cert = cert.display(),
            key = key.display(),
        );
        std::fs::write(dir.join("slapd.conf"), config).unwrap();
        let data = format!(
            "dn: {BASE}\nobjectClass: top\nobjectClass: dcObject\nobjectClass: organization\n\
             o: Example\ndc: example\n\n\
             dn: ou=people,{BASE}\nobjectClass: organizationalUnit\nou: people\n\n\
             dn: ou=services,{BASE}\nobjectClass: organizationalUnit\nou: services\n\n\
             dn: {SERVICE_DN}\nobjectClass: person\nobjectClass: simpleSecurityObject\n\
             cn: ucm\nsn: service\nuserPassword: {SERVICE_PASSWORD}\n\n{entries}"
        );
        std::fs::write(dir.join("data.ldif"), data).unwrap();
        let mut slapadd = Command::new("/usr/sbin/slapadd");
        if !schema_checked {
            slapadd.arg("-s");
        }
        run(slapadd
            .arg("-f")
            .arg(dir.join("slapd.conf"))
            .arg("-l")
            .arg(dir.join("data.ldif")));
        let mut server = Slapd {
            dir,
            child: None,
            port: free_port(),
            tls_port: free_port(),
            ca,
        };
        server.run();
        server
    }

    /// Starts (again) the server process and waits until it accepts connections.
    pub fn run(&mut self) {
        let urls = format!(
            "ldap://127.0.0.1:{}/ ldaps://127.0.0.1:{}/",
            self.port, self.tls_port
        );
        let mut command = Command::new("/usr/sbin/slapd");
        command.arg("-f").arg(self.dir.join("slapd.conf"));
        command.args(["-h", &urls, "-d", "0"]);
        let log = self.dir.join("slapd.log");
        self.child = Some(super::start_server(&mut command, &log, self.port));
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    pub fn ldaps_url(&self) -> String {
        format!("ldaps://127.0.0.1:{}", self.tls_port)
    }

    /// `ldapsearch` as the service account, without paging: its exit code and output.
    pub fn ldapsearch(&self, filter: &str) -> (i32, String) {
        let out = Command::new("ldapsearch")
            .args(["-x", "-LLL", "-H", &self.url(), "-b", BASE])
            .args(["-D", SERVICE_DN, "-w", SERVICE_PASSWORD, filter, "dn"])
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    /// Changes the directory with `ldapmodify` as its administrator (`ldif`: change records).
    pub fn modify(&self, ldif: &str) {
        use std::io::Write;
        let mut child = Command::new("ldapmodify")
            .args(["-x", "-H", &self.url(), "-D", &format!("cn=admin,{BASE}")])
            .args(["-w", "admin-secret"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(ldif.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}

fn b64(text: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// `count` inetOrgPerson entries under ou=people: `person{i}@example.com`, names, a
/// telephoneNumber and a mobile, a department. Entry 0 has UTF-8 names (written in base64),
/// two mobile values and a jpegPhoto; entry 1 has no telephoneNumber and no mobile.
pub fn people(count: usize) -> String {
    let mut out = String::with_capacity(count * 300);
    for i in 0..count {
        let dn = format!("uid=person{i},ou=people,{BASE}");
        writeln!(out, "dn: {dn}\nobjectClass: inetOrgPerson\nuid: person{i}").unwrap();
        match i {
            0 => {
                writeln!(
                    out,
                    "cn:: {}\nsn:: {}",
                    b64("Zoë Ærø".as_bytes()),
                    b64("Ærø".as_bytes())
                )
                .unwrap();
                writeln!(out, "givenName:: {}", b64("Zoë".as_bytes())).unwrap();
                writeln!(out, "mobile: +32 475 00 00 01\nmobile: +32 475 00 00 02").unwrap();
                writeln!(
                    out,
                    "jpegPhoto:: {}",
                    b64(&[0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x80])
                )
                .unwrap();
            }
            _ => writeln!(out, "cn: Person {i}\nsn: Number{i}\ngivenName: Person").unwrap(),
        }
        writeln!(out, "mail: person{i}@example.com").unwrap();
        if i != 1 {
            writeln!(out, "telephoneNumber: {}", 10_000 + i).unwrap();
            if i != 0 {
                writeln!(out, "mobile: +32 476 {:06}", i).unwrap();
            }
        }
        let department = ["Sales", "Support", "Finance"][i % 3];
        writeln!(out, "departmentNumber: {department}\nl: Gent\n").unwrap();
    }
    out
}
