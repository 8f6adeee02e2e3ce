//! Plans through `ucm serve`: a run a guard refuses leaves its plan awaiting approval (in
//! `/api/plans`, `/metrics`, the page and the log); the plan is read page by page, applied
//! once, or discarded, over HTTP with a login. Both backends.

mod common;

use common::Workspace;
use common::service::*;
use serde_json::Value;

const EMPTY: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<contacts/>\n";

fn post(url: &str, bearer: &str) -> (u16, Value) {
    let (status, text) = http("POST", url, &[("Authorization", bearer)], "");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[test]
fn a_run_a_guard_refuses_leaves_a_plan_awaiting_approval_that_is_applied_once_over_http() {
    let ws = Workspace::new("");
    let source = ws.write("source.xml", std::fs::read(samples()).unwrap());
    pipeline(
        &ws,
        "demo",
        source.to_str().unwrap(),
        "0 0 1 1 ?",
        "0 0 1 1 ?",
    );
    let s = serve(&ws, &["demo"], 1);
    let bearer = "Bearer static-token";
    let run = format!("{}/api/pipelines/demo/run", s.base);
    assert_eq!(post(&run, bearer).0, 200);
    let loaded = ws.export();

    // The source empties: the run is refused and its plan awaits approval.
    ws.write("source.xml", EMPTY);
    let (status, refused) = post(&run, bearer);
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["status"], "refused");
    let id = refused["plan_id"]
        .as_i64()
        .expect("the refused run names its plan");
    assert_eq!(ws.export(), loaded, "nothing changed");
    s.log_with(&[&format!("its plan #{id} awaits approval")]);

    let plans = format!("{}/api/plans", s.base);
    assert_eq!(http("GET", &plans, &[], "").0, 401, "plans need a login");
    let (status, listed) = get_auth(&plans, bearer);
    assert_eq!(status, 200, "{listed}");
    let plan = &listed[0];
    assert_eq!(plan["id"], id);
    assert_eq!(plan["pipeline"], "demo");
    assert_eq!(plan["status"], "awaiting_approval");
    assert!(
        plan["reason"]
            .as_str()
            .unwrap()
            .contains("holds no contacts"),
        "{plan}"
    );
    let deleted = plan["deleted"].as_i64().unwrap();
    assert!(deleted > 0, "{plan}");
    let total = deleted + plan["updated"].as_i64().unwrap() + plan["inserted"].as_i64().unwrap();
    let metrics = http("GET", &format!("{}/metrics", s.base), &[], "").1;
    assert!(
        metrics.contains("ucm_plans_awaiting{pipeline=\"demo\"} 1"),
        "{metrics}"
    );
    // On the page for who is logged in (a bearer token here; tests/console.rs logs in).
    let page = http(
        "GET",
        &format!("{}/", s.base),
        &[("Authorization", bearer)],
        "",
    )
    .1;
    assert!(page.contains("1 plan awaiting approval"), "{page}");
    let public = http("GET", &format!("{}/", s.base), &[], "").1;
    assert!(!public.contains("awaiting approval"), "{public}");

    // Read page by page: two changes, then the rest from next_after.
    let shown = format!("{}/api/pipelines/demo/plans/{id}", s.base);
    let (status, first) = get_auth(&format!("{shown}?limit=2"), bearer);
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["changes"].as_array().unwrap().len(), 2);
    let after = first["next_after"].as_i64().expect("more pages");
    let (_, rest) = get_auth(&format!("{shown}?after={after}&limit=1000"), bearer);
    assert_eq!(2 + rest["changes"].as_array().unwrap().len() as i64, total);
    assert_eq!(rest["next_after"], Value::Null);

    // Approve: exactly the reviewed deletions land, once.
    let apply = format!("{shown}/apply");
    assert_eq!(post(&apply, "Bearer wrong").0, 401);
    let (status, applied) = post(&apply, bearer);
    assert_eq!(status, 200, "{applied}");
    assert_eq!(applied["command"], "apply");
    assert_eq!(applied["deleted"], deleted);
    assert_ne!(ws.export(), loaded);
    let metrics = http("GET", &format!("{}/metrics", s.base), &[], "").1;
    assert!(
        metrics.contains("ucm_plans_awaiting{pipeline=\"demo\"} 0"),
        "{metrics}"
    );
    let (status, again) = post(&apply, bearer);
    assert_eq!(status, 422, "{again}");
    assert!(again["error"].as_str().unwrap().contains("already applied"));
}

#[test]
fn a_dry_run_over_http_stores_a_plan_that_can_be_discarded_once() {
    let ws = Workspace::new("");
    let (s, bearer) = loaded_service(&ws);
    let (status, dry) = post(
        &format!("{}/api/pipelines/demo/run?dry_run=true", s.base),
        bearer,
    );
    assert_eq!(status, 200, "{dry}");
    let id = dry["plan_id"].as_i64().expect("a dry run stores a plan");
    let discard = format!("{}/api/pipelines/demo/plans/{id}/discard", s.base);
    let (status, body) = post(&discard, bearer);
    assert_eq!(
        (status, &body["status"]),
        (200, &"discarded".into()),
        "{body}"
    );
    assert_eq!(post(&discard, bearer).0, 409);
    let (status, applied) = post(
        &format!("{}/api/pipelines/demo/plans/{id}/apply", s.base),
        bearer,
    );
    assert_eq!(status, 422);
    assert!(applied["error"].as_str().unwrap().contains("was discarded"));
    assert_eq!(
        get_auth(&format!("{}/api/pipelines/demo/plans/999", s.base), bearer).0,
        404
    );
}

/// A source that sends half of `body`, then waits for `go` before the rest (later requests get
/// it all at once): a run that is deterministically under way.
fn held_source(body: Vec<u8>) -> (String, std::sync::mpsc::Sender<()>) {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/contacts.xml", listener.local_addr().unwrap());
    let (go, wait) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        for (n, stream) in listener.incoming().enumerate() {
            let Ok(mut stream) = stream else { return };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read_exact(&mut byte).is_ok() {
                head.push(byte[0]);
            }
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n",
                body.len()
            );
            let half = body.len() / 2;
            let _ = stream.write_all(&body[..half]);
            let _ = stream.flush();
            if n == 0 {
                let _ = wait.recv_timeout(std::time::Duration::from_secs(60));
            }
            let _ = stream.write_all(&body[half..]);
        }
    });
    (url, go)
}

/// Hardening 3: Approve, Dry run now and Upload held the browser's request for the whole run.
/// Now the form is answered at once with the run's page, which shows its phase and the bytes
/// read while it goes (reloading itself), then leads to the plan; `GET /api/runs/s{n}` shows
/// the same, and `POST /api/pipelines/{name}/run?wait=false` answers 202 with where to follow.
#[test]
fn a_dry_run_from_the_console_answers_at_once_and_its_page_shows_progress_until_its_plan() {
    use common::console_forms::{
        csrf_token, follow, get_page, location, post_form, session_cookie,
    };
    let ws = Workspace::new("");
    let (url, go) = held_source(std::fs::read(samples()).unwrap());
    pipeline(&ws, "demo", &url, "0 0 1 1 ?", "0 0 1 1 ?");
    let s = serve(&ws, &["demo"], 1);
    let cookie = session_cookie(&s.base);
    let csrf = csrf_token(&s.base, &cookie);
    let answer = post_form(&s.base, &cookie, &csrf, "/pipelines/demo/dry-run");
    // Answered while the source is still half sent.
    assert_eq!(answer.0, 303, "{}", answer.1);
    let page_path = location(&answer.1).unwrap();
    assert!(page_path.starts_with("/runs/demo/started/"), "{page_path}");
    let started = format!("s{}", page_path.rsplit('/').next().unwrap());
    let progress = eventually(30, "the download under way", || {
        let (_, run) = get_auth(
            &format!("{}/api/runs/{started}", s.base),
            "Bearer static-token",
        );
        (run["phase"] == "downloading the source" && run["bytes_downloaded"].as_u64() > Some(0))
            .then_some(run)
    });
    assert_eq!(progress["running"], true, "{progress}");
    assert_eq!(progress["what"], "dry run", "{progress}");
    let (status, _, page) = get_page(&s.base, &cookie, &page_path);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("http-equiv=\"refresh\""), "{page}");
    assert!(page.contains("downloading the source"), "{page}");
    // The rest of the source arrives: the page leads to the plan.
    go.send(()).unwrap();
    let again = (303, format!("location: {page_path}"), String::new());
    let (status, _, plan_page, at) = follow(&s.base, &cookie, again);
    assert_eq!(status, 200, "{plan_page}");
    assert!(at.starts_with("/plans/demo/"), "{at}");
    let (_, done) = get_auth(
        &format!("{}/api/runs/{started}", s.base),
        "Bearer static-token",
    );
    assert_eq!(
        (done["running"].as_bool(), done["status"].as_str()),
        (Some(false), Some("dry_run")),
        "{done}"
    );
    assert!(done["contacts_read"].as_u64() > Some(0), "{done}");
    assert_eq!(format!("/plans/demo/{}", done["plan_id"]), at);

    // The API: 202 at once, then the run's outcome at the address it gave.
    let (status, text) = http(
        "POST",
        &format!("{}/api/pipelines/demo/run?wait=false", s.base),
        &[("Authorization", "Bearer static-token")],
        "",
    );
    assert_eq!(status, 202, "{text}");
    let accepted: Value = serde_json::from_str(&text).unwrap();
    let follow_at = format!("{}{}", s.base, accepted["progress"].as_str().unwrap());
    let ended = eventually(60, "the API's run to end", || {
        let (_, run) = get_auth(&follow_at, "Bearer static-token");
        (run["running"] == false).then_some(run)
    });
    assert_eq!(ended["status"], "succeeded", "{ended}");
    assert!(ended["run_id"].as_i64().is_some(), "{ended}");
}
