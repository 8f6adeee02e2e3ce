//! A real CardDAV server for the CardDAV source's tests: Radicale (PyPI `radicale`; `.ci/run`
//! installs it) on 127.0.0.1 with basic auth (an htpasswd file) and an address book whose
//! cards are written to its storage before it starts; changes go through its HTTP API.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use base64::Engine;

pub const USER: &str = "anna";
pub const PASSWORD: &str = "radicale-secret";

/// Whether Radicale is installed (`.ci/run` installs it and sets UCM_REQUIRE_LDAP_CLIENTS;
/// elsewhere a missing one skips the test with a note).
pub fn present() -> bool {
    let present = Command::new("python3")
        .args(["-c", "import radicale"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
        assert!(
            std::env::var("UCM_REQUIRE_LDAP_CLIENTS").is_err(),
            "Radicale is missing (pip install radicale); .ci/run installs it"
        );
        eprintln!("skipped: radicale is not installed");
    }
    present
}

/// A running Radicale, stopped when dropped.
pub struct Radicale {
    dir: PathBuf,
    child: Option<Child>,
    pub port: u16,
}

/// The vCard of card `i`: `card{i}@example.com`, a name, a mobile number.
pub fn card(i: usize, mobile: &str) -> String {
    format!(
        "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:card-{i}\r\nFN:Card {i}\r\nN:Number{i};Card;;;\r\n\
         EMAIL;TYPE=INTERNET:card{i}@example.com\r\nTEL;TYPE=CELL:{mobile}\r\n\
         ORG:Example NV;Sales\r\nEND:VCARD\r\n"
    )
}

impl Radicale {
    /// A server in `dir` whose user's address book `contacts` holds `cards` cards.
    pub fn start(dir: &Path, cards: usize) -> Radicale {
        let dir = dir.join("radicale");
        let book = dir
            .join("collections/collection-root")
            .join(USER)
            .join("contacts");
        std::fs::create_dir_all(&book).unwrap();
        std::fs::write(
            book.join(".Radicale.props"),
            "{\"D:displayname\": \"Contacts\", \"tag\": \"VADDRESSBOOK\"}",
        )
        .unwrap();
        for i in 0..cards {
            std::fs::write(
                book.join(format!("card-{i}.vcf")),
                card(i, &format!("+32 476 {i:06}")),
            )
            .unwrap();
        }
        std::fs::write(dir.join("users"), format!("{USER}:{PASSWORD}\n")).unwrap();
        let port = super::service::free_port();
        std::fs::write(
            dir.join("config"),
            format!(
                "[server]\nhosts = 127.0.0.1:{port}\n[auth]\ntype = htpasswd\n\
                 htpasswd_filename = {users}\nhtpasswd_encryption = plain\n\
                 [storage]\nfilesystem_folder = {storage}\n[rights]\ntype = owner_only\n\
                 [logging]\nlevel = warning\n",
                users = dir.join("users").display(),
                storage = dir.join("collections").display(),
            ),
        )
        .unwrap();
        let mut server = Radicale {
            dir,
            child: None,
            port,
        };
        server.run();
        server
    }

    fn run(&mut self) {
        let mut command = Command::new("python3");
        command
            .args(["-m", "radicale", "--config"])
            .arg(self.dir.join("config"));
        let log = self.dir.join("radicale.log");
        self.child = Some(super::start_server(&mut command, &log, self.port));
    }

    /// Makes the server forget the sync-tokens it gave out (its history of the book's
    /// states), as a server whose history expired does.
    pub fn forget_sync_tokens(&self) {
        let book = self
            .dir
            .join("collections/collection-root")
            .join(USER)
            .join("contacts");
        std::fs::remove_dir_all(book.join(".Radicale.cache/sync-token")).unwrap();
    }

    /// The address book's URL.
    pub fn book_url(&self) -> String {
        format!("http://127.0.0.1:{}/{USER}/contacts/", self.port)
    }

    /// `method` on `path` of the server as the user, with `body`: the status.
    pub fn send(&self, method: &str, path: &str, body: &str) -> u16 {
        let credentials =
            base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
        let url = format!("http://127.0.0.1:{}{path}", self.port);
        let authorization = format!("Basic {credentials}");
        let headers = [
            ("Authorization", authorization.as_str()),
            ("Content-Type", "text/vcard; charset=utf-8"),
        ];
        super::service::http(method, &url, &headers, body).0
    }
}

impl Drop for Radicale {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
