//! A CardDAV address book as the source (`kind = "carddav"`), read end to end by the real
//! binary from a real Radicale server on 127.0.0.1 (tests/common/radicale.rs) with basic
//! auth: 1,000 cards, an unchanged collection (its sync-token: nothing read, no merge work),
//! a card changed, added and deleted (exactly those changes), a wrong password and a URL that
//! is not an address book (nothing changes; the message says what to do). Both backends.

mod common;

use common::Workspace;
use common::radicale::{self, PASSWORD, Radicale, USER};

fn carddav_config(url: &str, password: &str) -> String {
    format!(
        "[source]\nkind = \"carddav\"\nurl = \"{url}\"\ntries = 1\nread_timeout_secs = 30\n\
         [source.auth]\nusername = \"{USER}\"\npassword = \"{password}\"\n"
    )
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// A workspace whose pipeline reads a Radicale address book of `cards` cards (None, and the
/// test is skipped, when Radicale is not installed).
fn book_of(cards: usize) -> Option<(Workspace, Radicale)> {
    if !radicale::present() {
        return None;
    }
    let ws = Workspace::new("");
    let server = Radicale::start(ws.dir.path(), cards);
    ws.config(&carddav_config(&server.book_url(), PASSWORD));
    Some((ws, server))
}

/// The staged copy (`ucm staged`): the address book as one vCard file.
fn staged_text(ws: &Workspace) -> String {
    let staged = json(&ws.ok(&["staged", "--format", "json"]));
    std::fs::read_to_string(ws.path(staged["path"].as_str().unwrap())).unwrap()
}

fn changes(report: &serde_json::Value) -> (i64, i64, i64) {
    let n = |k: &str| report[k].as_i64().unwrap_or(-1);
    (n("inserted"), n("updated"), n("deleted"))
}

#[test]
fn an_address_book_lands_and_an_unchanged_one_is_not_read_again() {
    let Some((ws, _server)) = book_of(1_000) else {
        return;
    };
    let first = json(&ws.ok(&["run", "--format", "json"]));
    assert_eq!(first["status"], "succeeded", "{first}");
    assert_eq!(changes(&first), (1_000, 0, 0), "{first}");
    let rows = ws.rows();
    let card = rows
        .iter()
        .find(|r| r["e_mail"] == "card7@example.com")
        .unwrap();
    assert_eq!(card["mobile_number"], "+32 476 000007");
    assert_eq!(card["last_name"], "Number7");
    assert_eq!(card["department"], "Sales");
    let again = json(&ws.ok(&["run", "--format", "json"]));
    let reason = again["fetch"]["unchanged_reason"]
        .as_str()
        .unwrap_or_default();
    assert!(reason.contains("sync-token is unchanged"), "{again}");
    assert_eq!(changes(&again), (0, 0, 0), "{again}");
}

#[test]
fn a_changed_an_added_and_a_deleted_card_are_exactly_the_next_runs_changes() {
    let Some((ws, server)) = book_of(1_000) else {
        return;
    };
    ws.ok(&["run", "--format", "json"]);
    let book = format!("/{USER}/contacts");
    let changed = radicale::card(3, "+32 499 00 00 03");
    assert_eq!(
        server.send("PUT", &format!("{book}/card-3.vcf"), &changed),
        204
    );
    let added = radicale::card(5_000, "+32 499 00 50 00");
    assert_eq!(
        server.send("PUT", &format!("{book}/card-5000.vcf"), &added),
        201
    );
    assert_eq!(
        server.send("DELETE", &format!("{book}/card-9.vcf"), ""),
        200
    );
    let report = json(&ws.ok(&["run", "--format", "json"]));
    assert_eq!(changes(&report), (1, 1, 1), "{report}");
    let rows = ws.rows();
    assert_eq!(rows.len(), 1_000);
    let three = rows
        .iter()
        .find(|r| r["e_mail"] == "card3@example.com")
        .unwrap();
    assert_eq!(three["mobile_number"], "+32 499 00 00 03");
    assert!(rows.iter().any(|r| r["e_mail"] == "card5000@example.com"));
    assert!(!rows.iter().any(|r| r["e_mail"] == "card9@example.com"));
    // The staged copy holds each card once, the changed one in its new version.
    let text = staged_text(&ws);
    assert_eq!(text.matches("BEGIN:VCARD").count(), 1_000);
    assert_eq!(
        text.matches("X-UCM-HREF:/anna/contacts/card-3.vcf").count(),
        1
    );
    assert!(text.contains("+32 499 00 00 03") && !text.contains("card-9.vcf"));
}

/// A server that no longer knows the staged copy's sync-token (403 valid-sync-token, as an
/// expired history answers) is read again in full, and the run lands exactly the change.
#[test]
fn a_server_that_forgot_the_staged_sync_token_is_read_in_full() {
    let Some((ws, server)) = book_of(200) else {
        return;
    };
    ws.ok(&["run", "--format", "json"]);
    server.forget_sync_tokens();
    let changed = radicale::card(4, "+32 499 00 00 04");
    let book = format!("/{USER}/contacts");
    assert_eq!(
        server.send("PUT", &format!("{book}/card-4.vcf"), &changed),
        204
    );
    let out = ws.ucm(&["run", "--format", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("no longer knows the staged sync-token"),
        "{log}"
    );
    let report = json(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(changes(&report), (0, 1, 0), "{report}");
    let text = staged_text(&ws);
    assert_eq!(text.matches("BEGIN:VCARD").count(), 200);
}

#[test]
fn a_wrong_password_or_a_url_that_is_not_an_address_book_changes_nothing_and_says_so() {
    let Some((ws, server)) = book_of(20) else {
        return;
    };
    ws.ok(&["run", "--format", "json"]);
    let (staged, table) = (ws.ok(&["staged", "--format", "json"]), ws.export());
    ws.config(&carddav_config(&server.book_url(), "not-the-secret-7f3a"));
    let (stdout, _) = ws.fails(&["run", "--format", "json"]);
    let error = json(&stdout)["error"].as_str().unwrap().to_owned();
    assert!(error.contains("401"), "{error}");
    assert!(
        error.contains("check the credentials in [source.auth]"),
        "{error}"
    );
    assert!(!error.contains("not-the-secret-7f3a"), "{error}");
    let principal = format!("http://127.0.0.1:{}/{USER}/", server.port);
    ws.config(&carddav_config(&principal, PASSWORD));
    let (stdout, _) = ws.fails(&["run", "--format", "json"]);
    let error = json(&stdout)["error"].as_str().unwrap().to_owned();
    assert!(
        error.contains("is not an address book") && error.contains("set source.url"),
        "{error}"
    );
    assert_eq!(ws.ok(&["staged", "--format", "json"]), staged);
    assert_eq!(ws.export(), table);
}

/// `ucm serve` runs a CardDAV pipeline as it runs an XML one: a requested run reads the
/// address book, stages it and merges it, and the search sees the rows.
#[test]
fn ucm_serve_runs_a_carddav_pipeline_and_its_contacts_are_searchable() {
    if !radicale::present() {
        return;
    }
    let ws = Workspace::new("");
    let server = Radicale::start(ws.dir.path(), 30);
    let source = carddav_config(&server.book_url(), PASSWORD)
        .replace("tries = 1\n", "tries = 1\nschedule = \"0 0 1 1 ?\"\n");
    let (s, report) = common::service::serve_source_and_run(&ws, &source);
    assert_eq!(report["status"], "succeeded", "{report}");
    assert_eq!(report["inserted"], 30, "{report}");
    let (status, found) = common::service::get_auth(
        &format!("{}/api/contacts?q=card2", s.base),
        "Bearer static-token",
    );
    assert_eq!(status, 200, "{found}");
    assert!(
        found
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["e_mail"] == "card2@example.com"),
        "{found}"
    );
}
