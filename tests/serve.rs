//! `ucm serve` as operators run it: real service processes on 127.0.0.1 port 0 against real
//! databases, driven over HTTP. Schedules run on the service's clock sped up with
//! `UCM_CLOCK_SPEED` (the same scheduling code, minutes passing in seconds).

mod common;

use std::process::Command;
use std::time::Duration;

use common::service::*;
use common::{BIN, Workspace, headless};
use serde_json::Value;

#[test]
fn an_every_minute_schedule_fires_both_stages_and_the_runs_are_served() {
    let ws = Workspace::new("");
    pipeline(&ws, "demo", &samples(), "* * * * ?", "* * * * ?");
    let s = serve(&ws, &["demo"], 60);
    assert_eq!(http("GET", &format!("{}/health", s.base), &[], "").0, 200);
    let runs = eventually(30, "a fetch and a merge", || {
        let runs = get_json(&format!("{}/api/runs?pipeline=demo", s.base));
        let done = |command: &str| {
            runs.as_array()
                .unwrap()
                .iter()
                .any(|r| r["command"] == command && r["status"] == "succeeded")
        };
        (done("fetch") && done("merge")).then_some(runs)
    });
    let merge = runs
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["command"] == "merge")
        .unwrap();
    assert_eq!(merge["inserted"], 9);
    let id = merge["run_id"].as_i64().unwrap();
    let one = get_json(&format!("{}/api/runs/{id}", s.base));
    assert_eq!(one["command"], "merge");
    assert_eq!(
        http("GET", &format!("{}/api/runs/999999", s.base), &[], "").0,
        404
    );
    let pipelines = get_json(&format!("{}/api/pipelines", s.base));
    let demo = &pipelines[0];
    assert_eq!(demo["name"], "demo");
    assert_eq!(demo["time_zone"], "Europe/Brussels");
    assert_eq!(demo["schedules"][0]["explain"], "every minute, every day");
    assert!(demo["schedules"][0]["next_fire_at"].is_string(), "{demo}");
    assert!(demo["last_run"]["id"].is_i64(), "{demo}");
    assert_eq!(http("GET", &format!("{}/ready", s.base), &[], "").0, 200);
    s.log_with(&["next fire"]);
}

#[test]
fn a_fire_while_the_stages_previous_run_is_going_is_recorded_as_skipped() {
    let ws = Workspace::new("");
    let big = generated(&ws, 150_000);
    // A minute every 0.1 s: the fetch of 150,000 contacts takes longer than that.
    pipeline(&ws, "demo", &big, "* * * * ?", "0 0 1 1 ?");
    let s = serve(&ws, &["demo"], 600);
    let skipped = eventually(60, "a skipped fire", || {
        let (_, runs) = get_auth(
            &format!("{}/api/runs?pipeline=demo&limit=50", s.base),
            "Bearer static-token",
        );
        runs.as_array()
            .unwrap()
            .iter()
            .find(|r| r["status"] == "skipped")
            .cloned()
    });
    assert_eq!(skipped["command"], "fetch");
    assert!(
        skipped["error"]
            .as_str()
            .unwrap()
            .contains("the previous fetch run of pipeline demo is still going"),
        "{skipped}"
    );
    let metrics = http("GET", &format!("{}/metrics", s.base), &[], "").1;
    assert!(
        metrics.contains("ucm_runs_total{pipeline=\"demo\",status=\"skipped\"}"),
        "{metrics}"
    );
}

#[test]
fn login_with_a_password_of_special_characters_starts_runs_and_wrong_credentials_get_401() {
    let ws = Workspace::new("");
    pipeline(&ws, "demo", &samples(), "0 0 1 1 ?", "0 0 1 1 ?");
    let s = serve(&ws, &["demo"], 1);
    let run_url = format!("{}/api/pipelines/demo/run", s.base);
    let unauthorized = r#"{"error":"unauthorized"}"#;

    // No credentials, wrong password, wrong user, credentials in the query string, a
    // made-up token: 401 and nothing else.
    assert_eq!(http("POST", &run_url, &[], ""), (401, unauthorized.into()));
    assert_eq!(
        login(&s.base, "admin", "p:a@s%s&w\"o r\\d é"),
        (401, unauthorized.into())
    );
    assert_eq!(
        login(&s.base, "Admin", PASSWORD),
        (401, unauthorized.into())
    );
    // Credentials in the query string are not read: the body is what counts.
    let query = format!("{}/api/login?username=admin&password=x", s.base);
    let json = [("Content-Type", "application/json")];
    assert_eq!(http("POST", &query, &json, "").0, 400);
    // A login is JSON: a text/plain body (what a cross-site form can send) is refused.
    let body = r#"{"username": "admin", "password": "x"}"#;
    let plain = [("Content-Type", "text/plain")];
    assert_eq!(
        http("POST", &format!("{}/api/login", s.base), &plain, body).0,
        415
    );
    assert_eq!(
        http("POST", &run_url, &[("Authorization", "Bearer made-up")], ""),
        (401, unauthorized.into())
    );
    assert_eq!(
        get_json(&format!("{}/api/runs", s.base))
            .as_array()
            .unwrap()
            .len(),
        0,
        "nothing ran"
    );

    let (status, body) = login(&s.base, "admin", PASSWORD);
    assert_eq!(status, 200, "{body}");
    let token = serde_json::from_str::<Value>(&body).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let bearer = format!("Bearer {token}");
    let auth = [("Authorization", bearer.as_str())];

    let (status, body) = http("POST", &format!("{run_url}?dry_run=true"), &auth, "");
    assert_eq!(status, 200, "{body}");
    let dry: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(dry["status"], "dry_run");
    assert!(!dry["changes"].as_array().unwrap().is_empty(), "{dry}");

    let (status, body) = http("POST", &run_url, &auth, "");
    assert_eq!(status, 200, "{body}");
    let report: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["status"], "succeeded");
    assert_eq!(report["inserted"], 9);
    assert_eq!(ws.rows().len(), 9);

    // The static token from config works too.
    let (status, _) = http(
        "POST",
        &run_url,
        &[("Authorization", "Bearer static-token")],
        "",
    );
    assert_eq!(status, 200);

    let metrics = http("GET", &format!("{}/metrics", s.base), &[], "").1;
    for line in [
        "ucm_runs_total{pipeline=\"demo\",status=\"succeeded\"} 2",
        "ucm_runs_total{pipeline=\"demo\",status=\"dry_run\"} 1",
        "ucm_rows_total{pipeline=\"demo\",action=\"inserted\"} 9",
        "ucm_contacts{pipeline=\"demo\",origin=\"merged\"}",
        "ucm_run_duration_seconds_count{pipeline=\"demo\"} 3",
        "ucm_fetch_bytes_total{pipeline=\"demo\"}",
        "ucm_last_success_timestamp_seconds{pipeline=\"demo\"}",
    ] {
        assert!(metrics.contains(line), "{line} missing from:\n{metrics}");
    }
}

#[test]
fn one_bad_pipeline_config_is_reported_and_the_others_run() {
    let ws = Workspace::new("");
    pipeline(&ws, "good", &samples(), "* * * * ?", "* * * * ?");
    pipeline(&ws, "bad", &samples(), "0 23 * * *", "* * * * ?");
    let s = serve(&ws, &["bad", "good"], 60);
    let (_, pipelines) = get_auth(&format!("{}/api/pipelines", s.base), "Bearer static-token");
    let bad = &pipelines[0];
    assert!(
        bad["error"]
            .as_str()
            .unwrap()
            .contains("exactly one of them must be \"?\""),
        "{bad}"
    );
    let (status, body) = http("GET", &format!("{}/ready", s.base), &[], "");
    assert_eq!(status, 503);
    assert!(body.contains("pipeline bad: not loaded"), "{body}");
    eventually(30, "a run of the good pipeline", || {
        let runs = get_json(&format!("{}/api/runs?pipeline=good", s.base));
        runs.as_array()
            .unwrap()
            .iter()
            .any(|r| r["status"] == "succeeded")
            .then_some(())
    });
    let metrics = http("GET", &format!("{}/metrics", s.base), &[], "").1;
    assert!(
        metrics.contains("ucm_pipeline_loaded{pipeline=\"bad\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("ucm_pipeline_loaded{pipeline=\"good\"} 1"),
        "{metrics}"
    );
}

#[test]
fn fires_missed_while_the_service_was_down_are_logged_and_not_replayed() {
    let ws = Workspace::new("");
    pipeline(&ws, "demo", &samples(), "* * * * ?", "0 0 1 1 ?");
    // A fetch recorded ten minutes ago, then the service was down.
    ws.ok_with("demo.toml", &["-q", "fetch"]);
    let ten_minutes_ago = jiff::Timestamp::now() - jiff::SignedDuration::from_mins(10);
    backdate_runs(&ws, &ten_minutes_ago.to_string());
    let s = serve(&ws, &["demo"], 1);
    let log = eventually(10, "the missed fires in the log", || {
        let log = s.log.lock().unwrap().clone();
        log.contains("fires missed while the service was down; not replayed")
            .then_some(log)
    });
    assert!(
        log.contains("missed=9") || log.contains("missed=10"),
        "{log}"
    );
    std::thread::sleep(Duration::from_secs(1));
    let runs = get_json(&format!("{}/api/runs?pipeline=demo", s.base));
    // The recorded fetch, and at most the one fire of the current minute: no replay.
    assert!(runs.as_array().unwrap().len() <= 2, "{runs}");
}

/// Sets every run's start and end time (SQL on either backend).
fn backdate_runs(ws: &Workspace, at: &str) {
    let sql = format!("UPDATE runs SET started_at = '{at}', finished_at = '{at}'");
    if ws.is_postgres() {
        common::psql(&ws.db_url(), &sql);
    } else {
        let url = ws.db_url();
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            let store = ucm::load::Store::open(&url).await.unwrap();
            store.select_text(&sql).await.unwrap();
            store.close().await;
        });
    }
}

/// Starts a run of `demo` over HTTP, sends SIGTERM once it is running, and returns the run
/// request's answer.
fn run_then_sigterm(s: &Serve) -> (u16, String) {
    let run_url = format!("{}/api/pipelines/demo/run", s.base);
    let request = std::thread::spawn(move || {
        http(
            "POST",
            &run_url,
            &[("Authorization", "Bearer static-token")],
            "",
        )
    });
    eventually(30, "the run to start", || {
        let pipelines = get_json(&format!("{}/api/pipelines", s.base));
        (pipelines[0]["running"] == true).then_some(())
    });
    unsafe { libc::kill(s.child.id() as i32, libc::SIGTERM) };
    request.join().unwrap()
}

#[test]
fn sigterm_during_a_run_lets_it_finish_and_exits_0() {
    let ws = Workspace::new("");
    let big = generated(&ws, 200_000);
    pipeline(&ws, "demo", &big, "0 0 1 1 ?", "0 0 1 1 ?");
    let mut s = serve(&ws, &["demo"], 1);
    let (status, body) = run_then_sigterm(&s);
    assert_eq!(status, 200, "{body}");
    let exit = s.child.wait().unwrap();
    assert_eq!(exit.code(), Some(0), "{}", s.log.lock().unwrap());
    // The run landed whole: every external contact and the directory's rows.
    let report: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["status"], "succeeded");
    let rows = ws.rows().len() as u64;
    assert_eq!(rows, report["inserted"].as_u64().unwrap());
    s.log_with(&["stopped"]);
}

/// Regression: a run still going 10 s after SIGTERM (the connections' shutdown grace) could
/// lose its HTTP answer: the run landed, but the process exited while the answer was being
/// written, and its client got an empty reply (seen once under parallel test load, in
/// `sigterm_during_a_run_lets_it_finish_and_exits_0`). The grace period now starts once the
/// runs in flight are done, and the server waits for the answers within it. (A race: this
/// test does not lose the answer every time on the old code.)
#[test]
fn a_run_longer_than_the_shutdown_grace_still_answers_its_client() {
    use std::io::{Read, Write};
    let ws = Workspace::new("");
    let body = std::fs::read(common::repo("samples/external-contacts.xml")).unwrap();
    // A source that takes about 13 s to send the samples, a chunk a second.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let source = format!("http://{}/contacts.xml", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let body = body.clone();
            std::thread::spawn(move || {
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request);
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes());
                for chunk in body.chunks(body.len().div_ceil(13)) {
                    let _ = stream.write_all(chunk);
                    let _ = stream.flush();
                    std::thread::sleep(Duration::from_secs(1));
                }
            });
        }
    });
    pipeline(&ws, "demo", &source, "0 0 1 1 ?", "0 0 1 1 ?");
    let mut s = serve(&ws, &["demo"], 1);
    let (status, body) = run_then_sigterm(&s);
    assert_eq!(status, 200, "{body}");
    let report: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["status"], "succeeded", "{report}");
    assert_eq!(s.child.wait().unwrap().code(), Some(0));
}

/// The page anyone reaching the port sees: each pipeline's health, nothing else (the logged-in
/// overview is driven in a real browser by tests/console.rs).
#[test]
fn logged_out_the_status_page_shows_each_pipelines_health_and_nothing_else() {
    let Some(chromium) = common::chromium() else {
        return;
    };
    let ws = Workspace::new("");
    pipeline(&ws, "demo", &samples(), "0 0 1 1 ?", "0 0 1 1 ?");
    ws.write("broken.xml", "<contacts><contact>");
    pipeline(
        &ws,
        "broken",
        &ws.path("broken.xml").display().to_string(),
        "0 0 1 1 ?",
        "0 0 1 1 ?",
    );
    let s = serve(&ws, &["demo", "broken"], 1);
    for name in ["demo", "broken"] {
        http(
            "POST",
            &format!("{}/api/pipelines/{name}/run", s.base),
            &[("Authorization", "Bearer static-token")],
            "",
        );
    }
    let profile = ws.path("chromium");
    let dom = headless(chromium, &profile, &format!("{}/", s.base), &["--dump-dom"]);
    for seen in [
        "<h2>demo</h2>",
        "<h2>broken</h2>",
        "health: <span class=\"status succeeded\">ok</span>",
        "health: <span class=\"failed\">failing</span>",
        "href=\"/login\"",
    ] {
        assert!(dom.contains(seen), "{seen} not on the page:\n{dom}");
    }
    for hidden in [
        "runs-chart",
        "schedules",
        "broken.xml",
        "Peeters",
        "contacts by origin",
    ] {
        assert!(
            !dom.contains(hidden),
            "logged out, the page shows {hidden}:\n{dom}"
        );
    }
    // With the static bearer token (scripts), the page is the full overview.
    let (_, full) = http(
        "GET",
        &format!("{}/", s.base),
        &[("Authorization", "Bearer static-token")],
        "",
    );
    assert!(full.contains("id=\"runs-chart-demo\""), "{full}");
}

#[test]
fn contacts_are_found_by_name_number_or_e_mail_each_with_its_live_status() {
    let ws = Workspace::new("");
    let (s, bearer) = loaded_service(&ws);
    let api = format!("{}/api/contacts", s.base);
    assert_eq!(http("GET", &format!("{api}?q=anna"), &[], "").0, 401);

    let (status, found) = get_auth(&format!("{api}?q=PEETERS"), bearer);
    assert_eq!(status, 200, "{found}");
    let anna = &found[0];
    assert_eq!(anna["id"], "dir:1");
    assert_eq!(anna["state"]["presence"], "offline");

    let status_body = r#"{"registered": true, "call_state": "busy", "presence": "dnd", "note": "on a call: \"urgent\" é"}"#;
    let (status, after) = put(&format!("{api}/dir:1/status"), bearer, status_body);
    assert_eq!(status, 200, "{after}");
    assert_eq!(after["state"]["call_state"], "busy");
    // A search with a single result carries the live status too (an old bug).
    // A number is searched as a prefix of its digits, whatever the separators.
    for query in [
        "anna.peeters@EXAMPLE.com",
        "%2B32%20475%2011",
        "32475111111",
    ] {
        let (_, found) = get_auth(&format!("{api}?q={query}"), bearer);
        assert_eq!(found.as_array().unwrap().len(), 1, "{query}: {found}");
        assert_eq!(found[0]["state"]["presence"], "dnd", "{query}: {found}");
        assert_eq!(found[0]["state"]["note"], "on a call: \"urgent\" é");
    }

    // Invalid values: 400 with the reason; unknown ids: 404.
    let (status, reason) = put(
        &format!("{api}/dir:1/status"),
        bearer,
        r#"{"registered": true, "call_state": "talking", "presence": "away"}"#,
    );
    assert_eq!(status, 400);
    assert!(
        reason["error"].as_str().unwrap().contains("talking"),
        "{reason}"
    );
    let long = format!(
        r#"{{"registered": false, "call_state": "idle", "presence": "away", "note": "{}"}}"#,
        "x".repeat(256)
    );
    let (status, reason) = put(&format!("{api}/dir:1/status"), bearer, &long);
    assert_eq!(status, 400);
    assert!(
        reason["error"].as_str().unwrap().contains("at most 255"),
        "{reason}"
    );
    let (status, reason) = put(
        &format!("{api}/dir:1/profile"),
        bearer,
        r#"{"profile": "beach"}"#,
    );
    assert_eq!(status, 400);
    assert!(
        reason["error"]
            .as_str()
            .unwrap()
            .contains("office, meeting, home, away"),
        "{reason}"
    );
    let (status, _) = put(
        &format!("{api}/dir:999/profile"),
        bearer,
        r#"{"profile": "home"}"#,
    );
    assert_eq!(status, 404);
    assert_eq!(get_auth(&format!("{api}/dir:999"), bearer).0, 404);

    let (status, after) = put(
        &format!("{api}/dir:1/profile"),
        bearer,
        r#"{"profile": "meeting"}"#,
    );
    assert_eq!(status, 200, "{after}");
    assert_eq!(after["state"]["profile"], "meeting");

    // A restart keeps the state.
    drop(s);
    let s = serve(&ws, &["demo"], 1);
    let (_, anna) = get_auth(&format!("{}/api/contacts/dir:1", s.base), bearer);
    assert_eq!(anna["state"]["profile"], "meeting");
    assert_eq!(anna["state"]["presence"], "dnd");
    let (_, parameters) = get_auth(&format!("{}/api/parameters", s.base), bearer);
    assert_eq!(parameters["parameters"]["language"], "en");
}

#[test]
fn status_and_profile_changes_stream_as_server_sent_events() {
    let ws = Workspace::new("");
    let (s, bearer) = loaded_service(&ws);
    let mut reader = events(&s, bearer);
    let api = format!("{}/api/contacts", s.base);
    assert_eq!(
        put(
            &format!("{api}/dir:2/profile"),
            bearer,
            r#"{"profile": "home"}"#
        )
        .0,
        200
    );
    let status = r#"{"registered": true, "call_state": "ringing", "presence": "available"}"#;
    assert_eq!(put(&format!("{api}/dir:2/status"), bearer, status).0, 200);
    let mut seen = wait_for_event(&mut reader, r#""profile":"home""#);
    seen.push_str(&wait_for_event(&mut reader, r#""call_state":"ringing""#));
    assert!(
        seen.contains("event: profile") && seen.contains("event: status"),
        "{seen}"
    );
    assert!(seen.contains(r#""contact":"dir:2""#), "{seen}");
}

#[test]
fn ucm_contacts_search_and_ucm_profile_set_go_through_the_service() {
    let ws = Workspace::new("");
    let (s, _) = loaded_service(&ws);
    let cli = |args: &[&str], token: Option<&str>| {
        let mut command = Command::new(BIN);
        command
            .current_dir(ws.dir.path())
            .args(args)
            .env("UCM_SERVICE_URL", &s.base)
            .env_remove("UCM_TOKEN");
        if let Some(token) = token {
            command.env("UCM_TOKEN", token);
        }
        command.output().unwrap()
    };
    let out = cli(&["profile", "set", "dir:3", "away"], Some("static-token"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("dir:3: profile away (version "));

    // A note with an escape sequence (it would repaint the terminal) is shown escaped.
    let status = r#"{"registered": true, "call_state": "idle", "presence": "away", "note": "\u001b[2Jgone"}"#;
    let (code, _) = put(
        &format!("{}/api/contacts/dir:3/status", s.base),
        "Bearer static-token",
        status,
    );
    assert_eq!(code, 200);
    let out = cli(&["contacts", "search", "chloé"], Some("static-token"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains('\u{1b}') && text.contains("\\u{1b}[2Jgone"),
        "control characters are neutralised in text output: {text:?}"
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.starts_with("dir:3") && text.contains("Chloé Maes") && text.contains("profile away"),
        "{text}"
    );

    // An external contact's id holds its match key: it travels as one path segment.
    let out = cli(
        &["profile", "set", "ext:hugo.wouters@partner.example", "home"],
        Some("static-token"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = cli(&["profile", "set", "dir:3", "beach"], Some("static-token"));
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("400 Bad Request: unknown profile \"beach\""),
        "{stderr}"
    );

    let out = cli(&["contacts", "search", "chloé"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no token for"));
    let out = cli(&["contacts", "search", "chloé"], Some("wrong"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("401 Unauthorized: unauthorized"));
}

#[test]
fn the_spread_offset_delays_the_fire_and_the_api_shows_the_actual_fire_time() {
    let ws = Workspace::new("");
    pipeline(&ws, "demo", &samples(), "0 23 ? * *", "0 0 1 1 ?");
    let config = std::fs::read_to_string(ws.path("demo.toml")).unwrap();
    ws.write(
        "demo.toml",
        config.replace("spread_secs = 0", "spread_secs = 50"),
    );
    let s = serve(&ws, &["demo"], 1);
    let pipelines = get_json(&format!("{}/api/pipelines", s.base));
    let fetch = &pipelines[0]["schedules"][0];
    let offset = fetch["spread_offset_secs"].as_f64().unwrap();
    assert!((0.0..50.0).contains(&offset), "{fetch}");
    let cron_time: jiff::Zoned = fetch["next_cron_time"].as_str().unwrap().parse().unwrap();
    let fires_at: jiff::Timestamp = fetch["next_fire_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(cron_time.strftime("%H:%M:%S").to_string(), "23:00:00");
    let delay = fires_at.as_millisecond() - cron_time.timestamp().as_millisecond();
    assert_eq!(delay, (offset * 1000.0).round() as i64, "{fetch}");
    // The same host and pipeline get the same offset after a restart.
    drop(s);
    let s = serve(&ws, &["demo"], 1);
    let again = get_json(&format!("{}/api/pipelines", s.base));
    assert_eq!(
        again[0]["schedules"][0]["spread_offset_secs"],
        fetch["spread_offset_secs"]
    );
    s.log_with(&["spread_offset_ms="]);
}

#[test]
fn a_contact_shows_where_each_value_came_from_and_the_run_that_changed_it() {
    let ws = Workspace::new("");
    let (s, bearer) = loaded_service(&ws);
    let run = get_json(&format!("{}/api/runs", s.base))[0].clone();
    let (status, anna) = get_auth(&format!("{}/api/contacts/dir:1", s.base), bearer);
    assert_eq!(status, 200, "{anna}");
    // Directory entry 1 has no home number: the external contact's fills it.
    assert_eq!(anna["provenance"]["first_name"], "directory", "{anna}");
    assert_eq!(anna["provenance"]["home_number"], "external", "{anna}");
    assert_eq!(anna["provenance"]["fax_number"], Value::Null, "{anna}");
    assert_eq!(anna["changed_by_run"], run["run_id"], "{anna}");
}
