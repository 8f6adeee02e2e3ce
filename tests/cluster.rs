//! Two real `ucm serve` processes on 127.0.0.1 told about each other: status and profile
//! changes propagate both ways, a peer that was down catches up in order and once, profile
//! sync switched off sends and accepts nothing, peer requests need the shared secret, and a
//! forced sync repairs a peer. Each node has its own database (SQLite file, or a PostgreSQL
//! database in the PostgreSQL pass), or both share one.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Command;
use std::time::{Duration, Instant};

use common::service::*;
use common::{BIN, Workspace};
use serde_json::Value;

const BEARER: &str = "Bearer static-token";

/// The `[cluster]` section of a node.
fn cluster(node: &str, peer_port: u16, profile_sync: bool, anti_entropy_secs: u64) -> String {
    format!(
        "[cluster]\nnode = \"{node}\"\npeers = [\"http://127.0.0.1:{peer_port}\"]\n\
         secret = \"shared: s3cret é\"\nprofile_sync = {profile_sync}\n\
         anti_entropy_secs = {anti_entropy_secs}\n"
    )
}

/// Node `name` on `port` in its own workspace, its table loaded from the samples.
fn node(ws: &Workspace, name: &str, port: u16, peer_port: u16, profile_sync: bool) -> Serve {
    node_with(ws, name, port, peer_port, profile_sync, 3600)
}

fn node_with(
    ws: &Workspace,
    name: &str,
    port: u16,
    peer_port: u16,
    profile_sync: bool,
    anti_entropy_secs: u64,
) -> Serve {
    pipeline(ws, "demo", &samples(), "0 0 1 1 ?", "0 0 1 1 ?");
    let s = serve_with(
        ws,
        &["demo"],
        1,
        &format!("127.0.0.1:{port}"),
        &cluster(name, peer_port, profile_sync, anti_entropy_secs),
    );
    let (status, body) = http(
        "POST",
        &format!("{}/api/pipelines/demo/run", s.base),
        &[("Authorization", BEARER)],
        "",
    );
    assert_eq!(status, 200, "{body}");
    s
}

fn state(s: &Serve, id: &str) -> Value {
    let (status, contact) = get_auth(&format!("{}/api/contacts/{id}", s.base), BEARER);
    assert_eq!(status, 200, "{contact}");
    contact["state"].clone()
}

fn set_status(s: &Serve, id: &str, presence: &str) {
    let body = format!(r#"{{"registered": true, "call_state": "idle", "presence": "{presence}"}}"#);
    let (status, answer) = put(
        &format!("{}/api/contacts/{id}/status", s.base),
        BEARER,
        &body,
    );
    assert_eq!(status, 200, "{answer}");
}

fn set_profile(s: &Serve, id: &str, profile: &str) {
    let body = format!(r#"{{"profile": "{profile}"}}"#);
    let (status, answer) = put(
        &format!("{}/api/contacts/{id}/profile", s.base),
        BEARER,
        &body,
    );
    assert_eq!(status, 200, "{answer}");
}

fn metric(s: &Serve, line_start: &str) -> u64 {
    let metrics = http("GET", &format!("{}/metrics", s.base), &[], "").1;
    metrics
        .lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{line_start} not in:\n{metrics}"))
}

#[test]
fn status_and_profile_changes_reach_the_peer_both_ways() {
    let (wa, wb) = (Workspace::new(""), Workspace::new(""));
    let (pa, pb) = (free_port(), free_port());
    let a = node(&wa, "a", pa, pb, true);
    let b = node(&wb, "b", pb, pa, true);

    let started = Instant::now();
    set_status(&a, "dir:1", "dnd");
    eventually(10, "the status on b", || {
        (state(&b, "dir:1")["presence"] == "dnd").then_some(())
    });
    let status_delay = started.elapsed();
    let started = Instant::now();
    set_profile(&b, "dir:2", "home");
    eventually(10, "the profile on a", || {
        (state(&a, "dir:2")["profile"] == "home").then_some(())
    });
    let profile_delay = started.elapsed();
    eprintln!("propagation: status a→b {status_delay:?}, profile b→a {profile_delay:?}");

    // Both nodes agree, versions included.
    assert_eq!(state(&a, "dir:1"), state(&b, "dir:1"));
    assert_eq!(state(&a, "dir:2"), state(&b, "dir:2"));
    let (_, health) = get_auth(&format!("{}/api/cluster", a.base), BEARER);
    assert_eq!(health["node"], "a");
    assert_eq!(health["peers"][0]["reachable"], true, "{health}");
    assert_eq!(metric(&b, "ucm_cluster_received_total{kind=\"status\"}"), 1);
    // Delivered rows leave the outbox.
    eventually(10, "a's outbox to be pruned", || {
        let rows = sql(&wa, "SELECT CAST(count(*) AS TEXT) FROM outbox");
        (rows[0][0].as_deref() == Some("0")).then_some(())
    });
}

#[test]
fn concurrent_changes_to_one_contact_converge_on_both_nodes() {
    let (wa, wb) = (Workspace::new(""), Workspace::new(""));
    let (pa, pb) = (free_port(), free_port());
    let a = node(&wa, "a", pa, pb, true);
    let b = node(&wb, "b", pb, pa, true);
    for round in 0..5 {
        let (ta, tb) = (
            std::thread::spawn({
                let base = a.base.clone();
                move || {
                    put(
                        &format!("{base}/api/contacts/dir:3/profile"),
                        BEARER,
                        r#"{"profile": "office"}"#,
                    )
                }
            }),
            std::thread::spawn({
                let base = b.base.clone();
                move || {
                    put(
                        &format!("{base}/api/contacts/dir:3/profile"),
                        BEARER,
                        r#"{"profile": "away"}"#,
                    )
                }
            }),
        );
        // Each node answers 200 (its change landed) or 409 (the peer's newer change reached
        // it between the two: README, "Newest wins"); either way both converge below.
        // Regression: this asserted 200 and failed when the push won the race (.ci/run,
        // 2026-12-03).
        for (node, answer) in [("a", ta), ("b", tb)] {
            let (status, body) = answer.join().unwrap();
            assert!(
                status == 200 || status == 409,
                "round {round}, node {node}: {status} {body}"
            );
        }
    }
    eventually(10, "both nodes to agree", || {
        let (sa, sb) = (state(&a, "dir:3"), state(&b, "dir:3"));
        (sa["profile_version"] == sb["profile_version"] && sa["profile"] == sb["profile"])
            .then_some(())
    });
}

#[test]
fn with_profile_sync_off_nothing_of_profiles_is_sent_or_accepted_and_status_still_flows() {
    let (wa, wb) = (Workspace::new(""), Workspace::new(""));
    let (pa, pb) = (free_port(), free_port());
    let a = node(&wa, "a", pa, pb, false);
    let b = node(&wb, "b", pb, pa, true);
    for i in 0..100 {
        set_profile(&a, "dir:1", ["office", "meeting", "home", "away"][i % 4]);
    }
    set_status(&a, "dir:4", "away");
    eventually(10, "the status on b", || {
        (state(&b, "dir:4")["presence"] == "away").then_some(())
    });
    // b received no profile request at all: none was even queued on a.
    assert_eq!(
        metric(&b, "ucm_cluster_received_total{kind=\"profile\"}"),
        0
    );
    assert_eq!(
        metric(&b, "ucm_cluster_refused_total{reason=\"profile_sync_off\"}"),
        0
    );
    assert_eq!(state(&b, "dir:1")["profile"], Value::Null);
    let (_, health) = get_auth(&format!("{}/api/cluster", a.base), BEARER);
    assert_eq!(health["profile_sync"], false);
    assert_eq!(health["peers"][0]["outbox_depth"], 0, "{health}");
    assert_eq!(metric(&a, "ucm_cluster_profile_sync{node=\"a\"}"), 0);
    let page = http(
        "GET",
        &format!("{}/", a.base),
        &[("Authorization", BEARER)],
        "",
    )
    .1;
    assert!(
        page.contains("profile sync <b class=\"failed\">off</b>"),
        "{page}"
    );

    // b's profile changes are refused by a, with a reason; a keeps its own. b drops them
    // from its outbox, and its status changes behind them still reach a.
    set_profile(&b, "dir:1", "meeting");
    set_status(&b, "dir:5", "dnd");
    eventually(
        10,
        "b's status change behind its refused profile change",
        || (state(&a, "dir:5")["presence"] == "dnd").then_some(()),
    );
    assert_eq!(
        metric(&a, "ucm_cluster_refused_total{reason=\"profile_sync_off\"}"),
        1
    );
    assert_eq!(state(&a, "dir:1")["profile"], "away");
    let dropped = format!(
        "ucm_cluster_dropped_total{{peer=\"http://127.0.0.1:{pa}\",reason=\"profile_sync_off\"}}"
    );
    assert_eq!(metric(&b, &dropped), 1);
    eventually(10, "b's outbox to drain", || {
        let (_, health) = get_auth(&format!("{}/api/cluster", b.base), BEARER);
        (health["peers"][0]["outbox_depth"] == 0).then_some(())
    });
    b.log_with(&["profile sync is off on node a"]);
    // Many more status changes after more refused profile changes: all arrive.
    for i in 0..20 {
        set_profile(&b, "dir:1", ["office", "home"][i % 2]);
        set_status(&b, "dir:6", ["away", "available"][i % 2]);
    }
    set_status(&b, "dir:6", "dnd");
    eventually(10, "the last status change", || {
        (state(&a, "dir:6")["presence"] == "dnd").then_some(())
    });
}

#[test]
fn a_peer_request_without_the_secret_is_rejected_and_logged() {
    let (wa, wb) = (Workspace::new(""), Workspace::new(""));
    let (pa, pb) = (free_port(), free_port());
    let a = node(&wa, "a", pa, pb, true);
    let _b = node(&wb, "b", pb, pa, true);
    let change = r#"[{"contact": "dir:1", "version": "9999999999999.00000.x", "profile": "home"}]"#;
    let url = format!("{}/api/cluster/changes", a.base);
    assert_eq!(
        http(
            "POST",
            &url,
            &[("Content-Type", "application/json")],
            change
        )
        .0,
        401
    );
    let forged = [
        ("Content-Type", "application/json"),
        ("X-Ucm-Signature", "00ff"),
    ];
    assert_eq!(http("POST", &url, &forged, change).0, 401);
    assert_eq!(state(&a, "dir:1")["profile"], Value::Null);
    assert_eq!(
        metric(&a, "ucm_cluster_refused_total{reason=\"signature\"}"),
        2
    );
    a.log_with(&["a cluster push was refused"]);
}

#[test]
fn a_peer_that_was_down_receives_everything_it_missed_in_order_once() {
    let (wa, wb) = (Workspace::new(""), Workspace::new(""));
    let (pa, pb) = (free_port(), free_port());
    let a = node(&wa, "a", pa, pb, true);
    // b is down: a queues.
    set_status(&a, "dir:1", "away");
    set_status(&a, "dir:1", "dnd");
    set_status(&a, "dir:2", "available");
    set_profile(&a, "dir:2", "meeting");
    set_profile(&a, "dir:2", "home");
    eventually(10, "a to see b down", || {
        let (_, health) = get_auth(&format!("{}/api/cluster", a.base), BEARER);
        (health["peers"][0]["outbox_depth"] == 5 && health["peers"][0]["reachable"] == false)
            .then_some(())
    });
    let b = node(&wb, "b", pb, pa, true);
    eventually(20, "b to catch up", || {
        (state(&b, "dir:1")["presence"] == "dnd" && state(&b, "dir:2")["profile"] == "home")
            .then_some(())
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(metric(&b, "ucm_cluster_received_total{kind=\"status\"}"), 3);
    assert_eq!(
        metric(&b, "ucm_cluster_received_total{kind=\"profile\"}"),
        2
    );
    assert_eq!(state(&b, "dir:2")["presence"], "available");
}

#[test]
fn a_forced_sync_repairs_a_peer_whose_database_was_edited_behind_its_back() {
    let (wa, wb) = (Workspace::new(""), Workspace::new(""));
    let (pa, pb) = (free_port(), free_port());
    let a = node(&wa, "a", pa, pb, true);
    let b = node(&wb, "b", pb, pa, true);
    set_profile(&a, "dir:1", "meeting");
    set_status(&a, "dir:1", "dnd");
    eventually(10, "b to have both", || {
        let s = state(&b, "dir:1");
        (s["profile"] == "meeting" && s["presence"] == "dnd").then_some(())
    });
    drop(b);
    // Behind b's back: its live state is gone.
    sql(&wb, "DELETE FROM contact_state");
    let b = node(&wb, "b", pb, pa, true);
    assert_eq!(state(&b, "dir:1")["profile"], Value::Null);
    let out = Command::new(BIN)
        .args(["cluster", "sync", "--force"])
        .env("UCM_SERVICE_URL", &a.base)
        .env("UCM_TOKEN", "static-token")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("sent 2 changes"));
    let s = state(&b, "dir:1");
    assert_eq!(
        (s["profile"].as_str(), s["presence"].as_str()),
        (Some("meeting"), Some("dnd"))
    );
    let out = Command::new(BIN)
        .args(["cluster", "status"])
        .env("UCM_SERVICE_URL", &a.base)
        .env("UCM_TOKEN", "static-token")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("node a · profile sync on") && text.contains("reachable"),
        "{text}"
    );
}

#[test]
fn a_lost_change_is_repaired_by_the_background_anti_entropy_pass() {
    let (wa, wb) = (Workspace::new(""), Workspace::new(""));
    let (pa, pb) = (free_port(), free_port());
    let a = node_with(&wa, "a", pa, pb, true, 1);
    let b = node(&wb, "b", pb, pa, true);
    set_status(&a, "dir:3", "away");
    eventually(10, "b to have it", || {
        (state(&b, "dir:3")["presence"] == "away").then_some(())
    });
    drop(b);
    sql(&wb, "DELETE FROM contact_state");
    let b = node(&wb, "b", pb, pa, true);
    // No operator: a's next pass (every second here) sends its state again.
    eventually(10, "the pass to repair b", || {
        (state(&b, "dir:3")["presence"] == "away").then_some(())
    });
}

/// Runs SQL on a workspace's database (either backend); the rows, as text.
fn sql(ws: &Workspace, statement: &str) -> Vec<Vec<Option<String>>> {
    let url = ws.db_url();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = ucm::load::Store::open(&url).await.unwrap();
        let rows = store.select_text(statement).await.unwrap();
        store.close().await;
        rows
    })
}

#[test]
fn event_clients_on_both_nodes_see_a_change_made_on_either_also_when_they_share_a_database() {
    // Own databases.
    let (wa, wb) = (Workspace::new(""), Workspace::new(""));
    let (pa, pb) = (free_port(), free_port());
    let a = node(&wa, "a", pa, pb, true);
    let b = node(&wb, "b", pb, pa, true);
    let (mut on_a, mut on_b) = (events(&a, BEARER), events(&b, BEARER));
    set_profile(&b, "dir:2", "away");
    wait_for_event(&mut on_a, r#""profile":"away""#);
    wait_for_event(&mut on_b, r#""profile":"away""#);

    // One database for both nodes (a second service on the same workspace's config).
    let shared = Workspace::new("");
    let (pc, pd) = (free_port(), free_port());
    let c = node(&shared, "c", pc, pd, true);
    let other = tempfile::tempdir().unwrap();
    std::fs::copy(shared.path("demo.toml"), other.path().join("demo.toml")).unwrap();
    let d_config = std::fs::read_to_string(shared.path("service.toml"))
        .unwrap()
        .replace(&format!("127.0.0.1:{pc}\""), &format!("127.0.0.1:{pd}\""))
        .replace(&format!("127.0.0.1:{pd}\"]"), &format!("127.0.0.1:{pc}\"]"))
        .replace("node = \"c\"", "node = \"d\"");
    std::fs::write(other.path().join("service.toml"), d_config).unwrap();
    let d = spawn_in(other.path());
    let (mut on_c, mut on_d) = (events(&c, BEARER), events(&d, BEARER));
    set_status(&c, "dir:5", "available");
    wait_for_event(&mut on_c, r#""presence":"available""#);
    wait_for_event(&mut on_d, r#""presence":"available""#);
}

/// Starts `ucm serve --service service.toml` in `dir`.
fn spawn_in(dir: &std::path::Path) -> Serve {
    let mut child = Command::new(BIN)
        .current_dir(dir)
        .args(["serve", "--service", "service.toml"])
        .env("UCM_TEST_ADMIN_PASSWORD", "x")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let base = first
        .trim()
        .strip_prefix("ucm serve: listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_owned();
    Serve {
        child,
        base,
        log: Default::default(),
    }
}

/// A push signed with the pair's secret as node `from`, its timestamp `skew_ms` off this
/// machine's clock: (status, answer).
fn push(s: &Serve, from: &str, body: &str, skew_ms: i64, nonce: &str) -> (u16, Value) {
    push_claiming(s, from, from, body, skew_ms, nonce)
}

/// [`push`] signed as node `signed_as` but claiming to come from `claimed`.
fn push_claiming(
    s: &Serve,
    signed_as: &str,
    claimed: &str,
    body: &str,
    skew_ms: i64,
    nonce: &str,
) -> (u16, Value) {
    use hmac::{Hmac, Mac};
    let timestamp = jiff::Timestamp::now().as_millisecond() + skew_ms;
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice("shared: s3cret é".as_bytes()).unwrap();
    mac.update(format!("ucm-cluster-push-v2\n{signed_as}\n{timestamp}\n{nonce}\n").as_bytes());
    mac.update(body.as_bytes());
    let signature: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let (status, text) = http(
        "POST",
        &format!("{}/api/cluster/changes", s.base),
        &[
            ("Content-Type", "application/json"),
            ("X-Ucm-Node", claimed),
            ("X-Ucm-Timestamp", &timestamp.to_string()),
            ("X-Ucm-Nonce", nonce),
            ("X-Ucm-Signature", &signature),
        ],
        body,
    );
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn nonce(i: u32) -> String {
    format!("{i:032x}")
}

/// A version `ahead_ms` ahead of this machine's clock, made by `node`.
fn version_ahead(ahead_ms: i64, node: &str) -> String {
    format!(
        "{:013}.0000000.{node}",
        jiff::Timestamp::now().as_millisecond() + ahead_ms
    )
}

#[test]
fn a_signed_push_cannot_be_replayed_or_sent_late() {
    let (wa, wb) = (Workspace::new(""), Workspace::new(""));
    let (pa, pb) = (free_port(), free_port());
    let a = node(&wa, "a", pa, pb, true);
    let _b = node(&wb, "b", pb, pa, true);
    let body = format!(
        r#"[{{"contact": "dir:1", "version": "{}", "profile": "home"}}]"#,
        version_ahead(0, "c")
    );
    let (status, answer) = push(&a, "c", &body, 0, &nonce(1));
    assert_eq!(
        (status, &answer["applied"]),
        (200, &Value::from(1)),
        "{answer}"
    );
    // The same push again, byte for byte: refused.
    assert_eq!(push(&a, "c", &body, 0, &nonce(1)).0, 401);
    // Signed ten minutes ago, or ten minutes from now: refused.
    assert_eq!(push(&a, "c", &body, -600_000, &nonce(2)).0, 401);
    assert_eq!(push(&a, "c", &body, 600_000, &nonce(3)).0, 401);
    assert_eq!(
        metric(&a, "ucm_cluster_refused_total{reason=\"replay\"}"),
        1
    );
    assert_eq!(metric(&a, "ucm_cluster_refused_total{reason=\"stale\"}"), 2);
    // The signature covers the node: a push signed as one node claiming to be another.
    assert_eq!(push_claiming(&a, "c", "d", &body, 0, &nonce(4)).0, 401);
    assert_eq!(
        metric(&a, "ucm_cluster_refused_total{reason=\"signature\"}"),
        1
    );
}

#[test]
fn received_versions_that_are_malformed_or_too_far_ahead_are_refused_and_counted() {
    let (wa, wb) = (Workspace::new(""), Workspace::new(""));
    let (pa, pb) = (free_port(), free_port());
    let a = node(&wa, "a", pa, pb, true);
    let _b = node(&wb, "b", pb, pa, true);
    let status = r#""status": {"registered": true, "call_state": "idle", "presence": "away"}"#;
    let long = "9".repeat(100_000);
    let versions = ["~", "abc", long.as_str()];
    let mut changes: Vec<String> = versions
        .iter()
        .map(|v| format!(r#"{{"contact": "dir:1", "version": "{v}", {status}}}"#))
        .collect();
    // A peer whose clock is a day ahead.
    changes.push(format!(
        r#"{{"contact": "dir:2", "version": "{}", {status}}}"#,
        version_ahead(86_400_000, "c")
    ));
    // And one good change in the same push: applied.
    changes.push(format!(
        r#"{{"contact": "dir:3", "version": "{}", {status}}}"#,
        version_ahead(0, "c")
    ));
    let (code, answer) = push(&a, "c", &format!("[{}]", changes.join(",")), 0, &nonce(10));
    assert_eq!(code, 200, "{answer}");
    assert_eq!(answer["applied"], 1, "{answer}");
    let reasons: Vec<&str> = answer["refused"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons,
        [
            "malformed_version",
            "malformed_version",
            "malformed_version",
            "clock_skew"
        ]
    );
    assert!(
        answer.to_string().len() < 5000,
        "the long version is not echoed"
    );
    assert_eq!(
        metric(
            &a,
            "ucm_cluster_refused_total{reason=\"malformed_version\"}"
        ),
        3
    );
    assert_eq!(
        metric(&a, "ucm_cluster_refused_total{reason=\"clock_skew\"}"),
        1
    );
    assert_eq!(state(&a, "dir:1")["status_version"], Value::Null);
    assert_eq!(state(&a, "dir:2")["status_version"], Value::Null);
    assert_eq!(state(&a, "dir:3")["presence"], "away");
    // A local change after all this lands: nothing stored beats it.
    set_status(&a, "dir:1", "dnd");
    set_status(&a, "dir:2", "dnd");
}

#[test]
fn changes_for_unknown_contacts_or_profiles_are_refused_with_the_reason() {
    let (wa, wb) = (Workspace::new(""), Workspace::new(""));
    let (pa, pb) = (free_port(), free_port());
    let a = node(&wa, "a", pa, pb, true);
    let _b = node(&wb, "b", pb, pa, true);
    let v = version_ahead(0, "c");
    let body = format!(
        r#"[{{"contact": "dir:999999", "version": "{v}", "profile": "home"}},
            {{"contact": "dir:1", "version": "{v}", "profile": "on-the-moon"}},
            {{"contact": "ext:nobody@nowhere.example", "version": "{v}", "status": {{"registered": false, "call_state": "idle", "presence": "away"}}}}]"#
    );
    let (code, answer) = push(&a, "c", &body, 0, &nonce(20));
    assert_eq!(code, 200, "{answer}");
    let refused = answer["refused"].as_array().unwrap();
    let reasons: Vec<&str> = refused
        .iter()
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons,
        ["unknown_contact", "unknown_profile", "unknown_contact"]
    );
    assert!(
        refused[1]["detail"]
            .as_str()
            .unwrap()
            .contains("profile \"on-the-moon\" is not configured on node a"),
        "{answer}"
    );
    // Nothing was stored, so nothing is sent again by anti-entropy.
    let (_, sync) = http(
        "POST",
        &format!("{}/api/cluster/sync", a.base),
        &[("Authorization", BEARER)],
        "",
    );
    assert!(sync.contains("sent 0 changes"), "{sync}");
}

#[test]
fn the_clock_resumes_after_the_newest_stored_version_and_a_lost_put_says_so() {
    // Two nodes on one database; a peer c whose clock runs 200 s ahead (within the skew).
    let (wa, wb) = (Workspace::new(""), Workspace::new(""));
    let (pa, pb) = (free_port(), free_port());
    let a = node(&wa, "a", pa, pb, true);
    let ahead = version_ahead(200_000, "c");
    let body = format!(r#"[{{"contact": "dir:1", "version": "{ahead}", "profile": "home"}}]"#);
    assert_eq!(push(&a, "c", &body, 0, &nonce(30)).0, 200);
    // b shares a's database and has not heard of c's version: its change loses, and says so.
    let config = std::fs::read_to_string(wa.path("pipeline.toml")).unwrap();
    std::fs::write(wb.path("pipeline.toml"), config).unwrap();
    pipeline(&wb, "demo", &samples(), "0 0 1 1 ?", "0 0 1 1 ?");
    drop(a);
    let b = serve_with(
        &wb,
        &["demo"],
        1,
        &format!("127.0.0.1:{pb}"),
        &cluster("b", pa, true, 3600),
    );
    // b started after the newest stored version: its change wins.
    set_profile(&b, "dir:1", "meeting");
    let version = state(&b, "dir:1")["profile_version"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        version.as_str() > ahead.as_str() && version.ends_with(".b"),
        "{version} {ahead}"
    );
    // A newer version arrives while b runs, stored by another node sharing the database.
    let newer = version_ahead(250_000, "c");
    let a = serve_with(
        &wa,
        &["demo"],
        1,
        &format!("127.0.0.1:{pa}"),
        &cluster("a", pb, true, 3600),
    );
    let body = format!(r#"[{{"contact": "dir:1", "version": "{newer}", "profile": "away"}}]"#);
    assert_eq!(push(&a, "c", &body, 0, &nonce(31)).0, 200);
    let (code, answer) = put(
        &format!("{}/api/contacts/dir:1/profile", b.base),
        BEARER,
        r#"{"profile": "office"}"#,
    );
    assert_eq!(code, 409, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("a newer profile change")
            && answer["error"].as_str().unwrap().contains(&newer),
        "{answer}"
    );
    assert_eq!(answer["contact"]["state"]["profile"], "away");
}

/// Regression (seen under load in CI): a node that had started but not yet landed its first
/// run refused a peer's changes as being for unknown contacts, and the peer dropped them for
/// good. It now answers 503 until its table is loaded, and the peer retries.
#[test]
fn a_node_whose_table_is_not_loaded_yet_defers_a_peers_changes_instead_of_refusing_them() {
    let (wa, wb) = (Workspace::new(""), Workspace::new(""));
    let (pa, pb) = (free_port(), free_port());
    let a = node(&wa, "a", pa, pb, true);
    pipeline(&wb, "demo", &samples(), "0 0 1 1 ?", "0 0 1 1 ?");
    let b = serve_with(
        &wb,
        &["demo"],
        1,
        &format!("127.0.0.1:{pb}"),
        &cluster("b", pa, true, 3600),
    );
    set_status(&a, "dir:1", "dnd");
    a.log_with(&["push failed", "has not loaded its merged table yet"]);
    let (status, body) = http(
        "POST",
        &format!("{}/api/pipelines/demo/run", b.base),
        &[("Authorization", BEARER)],
        "",
    );
    assert_eq!(status, 200, "{body}");
    eventually(
        20,
        "b to receive the change once its table is loaded",
        || (state(&b, "dir:1")["presence"] == "dnd").then_some(()),
    );
}
