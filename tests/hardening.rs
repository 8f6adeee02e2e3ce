//! `ucm serve` against hostile and unlucky clients: idle and slow connections, more
//! connections than descriptors, bodies sent before a login, password guessing, clients that
//! go away mid-run, and what is shown to whoever has no login. Real service processes on
//! 127.0.0.1 and raw sockets; other loopback addresses (127.0.0.2, ...) stand for other
//! clients.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::Workspace;
use common::service::{
    PASSWORD, eventually, generated, get_auth, http, login, pipeline, samples, serve, serve_in,
    serve_with, wait_for,
};

/// A connection to `base` from the loopback address `source` (e.g. "127.0.0.2").
fn connect_from(base: &str, source: &str) -> TcpStream {
    common::service::connect_from(base.strip_prefix("http://").unwrap(), source)
}

/// One request on a fresh connection from `source`: (status, head, body).
fn request_from(base: &str, source: &str, request: &str) -> (u16, String, String) {
    let mut stream = connect_from(base, source);
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (status, head.to_ascii_lowercase(), body.to_owned())
}

fn get_from(base: &str, source: &str, path: &str, headers: &str) -> (u16, String, String) {
    request_from(
        base,
        source,
        &format!("GET {path} HTTP/1.1\r\nHost: ucm\r\nConnection: close\r\n{headers}\r\n"),
    )
}

/// Lets this test process hold more than 1,100 sockets.
fn raise_own_open_file_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain calls on a struct of ours.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        limit.rlim_cur = limit.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
    }
    assert!(
        limit.rlim_cur >= 4096,
        "the test needs 4096 descriptors: {}",
        limit.rlim_cur
    );
}

fn demo(ws: &Workspace) {
    pipeline(ws, "demo", &samples(), "0 0 1 1 ?", "0 0 1 1 ?");
}

#[test]
fn idle_connections_beyond_the_descriptors_are_shed_and_health_still_answers() {
    raise_own_open_file_limit();
    let ws = Workspace::new("");
    demo(&ws);
    // systemd's default: 1,024 descriptors.
    let s = serve_in(
        &ws,
        &["demo"],
        1,
        "127.0.0.1:0",
        // Long enough that the idle connections opened first are still open when the last
        // ones arrive on a busy machine.
        "[limits]\nheader_read_timeout_secs = 20\n",
        Some(1024),
    );
    // 1,100 connections from one client that send nothing.
    let idle: Vec<TcpStream> = (0..1100)
        .map(|_| connect_from(&s.base, "127.0.0.1"))
        .collect();
    let (status, _, body) = get_from(&s.base, "127.0.0.2", "/health", "");
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    // Those beyond max_connections_per_client (64) are answered 503 and closed at once; the
    // others are closed when their header_read_timeout_secs runs out. None stays open.
    let mut shed = 0;
    for mut stream in idle {
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut answer = Vec::new();
        stream
            .read_to_end(&mut answer)
            .expect("the service closes every idle connection");
        if answer.starts_with(b"HTTP/1.1 503") {
            shed += 1;
        }
    }
    assert!(shed >= 900, "{shed} of 1,100 shed");

    // 1,100 idle connections from 50 clients: the service sheds what its descriptors cannot
    // hold instead of running out of them, and answers again once the idle ones time out.
    let crowd: Vec<TcpStream> = (0..1100)
        .map(|i| connect_from(&s.base, &format!("127.0.1.{}", 1 + i % 50)))
        .collect();
    eventually(40, "/health answering", || {
        let (status, _, _) = get_from(&s.base, "127.0.0.3", "/health", "");
        (status == 200).then_some(())
    });
    let (_, _, metrics) = get_from(&s.base, "127.0.0.3", "/metrics", "");
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {name}: {metrics}"))
            .parse()
            .unwrap()
    };
    // How many are shed depends on how many idle ones timed out while the crowd connected;
    // that some were, and that never more than the limit were open, does not.
    assert!(
        value("ucm_http_connections_shed_total{limit=\"max_connections\"}") >= 1.0,
        "{metrics}"
    );
    assert!(value("ucm_http_connections_open") <= 960.0, "{metrics}");
    drop(crowd);
    let log = s.log_with(&["max_connections=960"]);
    assert!(
        !log.contains("Too many open files") && !log.contains("cannot accept"),
        "the service ran out of descriptors: {log}"
    );
}

#[test]
fn a_slowloris_and_an_idle_keep_alive_connection_are_closed_after_the_header_read_timeout() {
    let ws = Workspace::new("");
    demo(&ws);
    let s = serve_with(
        &ws,
        &["demo"],
        1,
        "127.0.0.1:0",
        "[limits]\nheader_read_timeout_secs = 2\n",
    );
    let mut slow = connect_from(&s.base, "127.0.0.1");
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: ucm\r\nX-Slow: ")
        .unwrap();
    let started = Instant::now();
    let mut closed = false;
    while started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(250));
        if slow.write_all(b"a").is_err() {
            closed = true;
            break;
        }
        slow.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 256];
        let read = slow.read(&mut buf);
        slow.set_nonblocking(false).unwrap();
        if read.is_ok() {
            closed = true;
            break;
        }
    }
    assert!(
        closed,
        "a header trickling one byte every 250 ms was never cut off"
    );
    assert!(started.elapsed() < Duration::from_secs(15));

    // Keep-alive: one answer, then silence: the server closes the connection.
    let mut kept = connect_from(&s.base, "127.0.0.1");
    kept.write_all(b"GET /health HTTP/1.1\r\nHost: ucm\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = kept.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.ends_with("ok\n"),
        "{answer}"
    );
}

#[test]
fn a_request_body_is_not_read_before_the_login_is_checked() {
    let ws = Workspace::new("");
    demo(&ws);
    let s = serve(&ws, &["demo"], 1);
    let pid = s.child.id();
    let rss = || -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
            .unwrap()
    };
    // Headers that announce a 2 MB body and no login: refused at once.
    let (status, _, _) = request_from(
        &s.base,
        "127.0.0.1",
        "PUT /api/contacts/dir:1/status HTTP/1.1\r\nHost: ucm\r\n\
         Content-Type: application/json\r\nContent-Length: 2000000\r\n\r\n",
    );
    assert_eq!(status, 401);
    let before = rss();
    let chunk = vec![b'{'; 512 * 1024];
    let mut held = Vec::new();
    for i in 0..300 {
        let mut stream = connect_from(&s.base, &format!("127.0.2.{}", 1 + i % 200));
        stream
            .set_write_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream
            .write_all(
                b"PUT /api/contacts/dir:1/status HTTP/1.1\r\nHost: ucm\r\n\
                  Content-Type: application/json\r\nContent-Length: 2000000\r\n\r\n",
            )
            .unwrap();
        // The server may close the connection while this is being sent.
        let _ = stream.write_all(&chunk);
        held.push(stream);
    }
    std::thread::sleep(Duration::from_millis(500));
    let grown_kb = rss().saturating_sub(before);
    assert!(
        grown_kb < 40 * 1024,
        "300 unauthenticated partial bodies of 512 kB raised memory by {grown_kb} kB"
    );
    drop(held);
}

/// One login from `source` (a loopback address standing for a client): (status, head, body).
fn login_from(base: &str, source: &str, user: &str, password: &str) -> (u16, String, String) {
    let body = serde_json::json!({ "username": user, "password": password }).to_string();
    request_from(
        base,
        source,
        &format!(
            "POST /api/login HTTP/1.1\r\nHost: ucm\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
}

fn retry_after(head: &str) -> u64 {
    head.lines()
        .find_map(|l| l.strip_prefix("retry-after: "))
        .unwrap_or_else(|| panic!("{head}"))
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn logins_are_throttled_per_address_and_per_user_name_at_that_address_and_logged() {
    let ws = Workspace::new("");
    demo(&ws);
    let s = serve_with(
        &ws,
        &["demo"],
        1,
        "127.0.0.1:0",
        "[limits]\nlogin_attempts_per_minute_per_user = 3\n",
    );
    for _ in 0..3 {
        assert_eq!(login_from(&s.base, "127.0.0.1", "admin", "guess").0, 401);
    }
    // Three wrong passwords for admin from this address: admin is refused here, even with
    // the right password, before it is compared.
    let (status, head, body) = login_from(&s.base, "127.0.0.1", "admin", PASSWORD);
    assert_eq!(status, 429, "{body}");
    assert!((1..=20).contains(&retry_after(&head)), "{head}");
    assert!(body.contains("user name from this address"), "{body}");
    // Other names from the same address are not refused; the address's own allowance (10 a
    // minute, right or wrong) ends them: 4 attempts so far, 6 more.
    for i in 0..6 {
        let name = format!("guest{i}");
        assert_eq!(
            login_from(&s.base, "127.0.0.1", &name, "guess").0,
            401,
            "{name}"
        );
    }
    let (status, head, body) = login_from(&s.base, "127.0.0.1", "operator", "guess");
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("client address"), "{body}");
    assert!((1..=6).contains(&retry_after(&head)), "{head}");
    // Another address with the right password gets in.
    assert_eq!(login_from(&s.base, "127.0.0.2", "admin", PASSWORD).0, 200);
    s.log_with(&[
        "a login was refused",
        "user=admin",
        "client=127.0.0.1",
        "a login was throttled",
        "by=\"user name from this address\"",
        "by=\"client address\"",
    ]);
}

/// Hardening 3: 40 wrong passwords for the configured user from four other addresses, and
/// the administrator's right password from a fresh address was answered 429.
#[test]
fn strangers_guessing_the_administrators_password_cannot_lock_the_administrator_out() {
    let ws = Workspace::new("");
    demo(&ws);
    let s = serve(&ws, &["demo"], 1);
    for i in 1..=4 {
        for _ in 0..10 {
            let status = login_from(&s.base, &format!("127.0.5.{i}"), "admin", "guess").0;
            assert!(status == 401 || status == 429, "{status}");
        }
    }
    let (status, _, body) = login_from(&s.base, "127.0.5.9", "admin", PASSWORD);
    assert_eq!(status, 200, "{body}");
}

#[test]
fn a_user_name_guessed_from_many_addresses_is_answered_slowly_but_the_owner_gets_in() {
    let ws = Workspace::new("");
    demo(&ws);
    let limits = "[limits]\nlogin_slowdown_after_failures_per_minute = 10\n";
    let s = serve_with(&ws, &["demo"], 1, "127.0.0.1:0", limits);
    for i in 1..=4 {
        for _ in 0..3 {
            let status = login_from(&s.base, &format!("127.0.7.{i}"), "admin", "guess").0;
            assert_eq!(status, 401);
        }
    }
    // 12 wrong passwords for admin from everywhere, 10 allowed: answers for admin now wait
    // 1 s first, right or wrong, and are never refused for it.
    let started = Instant::now();
    let (status, _, body) = login_from(&s.base, "127.0.7.9", "admin", PASSWORD);
    assert_eq!(status, 200, "{body}");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(900), "{waited:?}");
    s.log_with(&[
        "a login was slowed: this user name is being guessed",
        "user=admin",
    ]);
}

/// Hardening 3: after failures for several made-up names, a fresh address got 429 for
/// `root`, `operator` and `Admin` but 401 for `admin`: the throttle told the configured name.
#[test]
fn the_login_throttle_answers_known_and_unknown_user_names_alike() {
    let ws = Workspace::new("");
    demo(&ws);
    let s = serve(&ws, &["demo"], 1);
    let names = ["root", "operator", "Admin", "admin"];
    for (i, name) in names.iter().enumerate() {
        for j in 0..10 {
            login_from(
                &s.base,
                &format!("127.0.6.{}", i * 10 + j + 1),
                name,
                "guess",
            );
        }
    }
    for name in names {
        let (status, _, body) = login_from(&s.base, "127.0.6.99", name, "guess");
        assert_eq!(status, 401, "{name}: {body}");
    }
}

#[test]
fn a_run_started_over_http_is_recorded_and_counted_when_its_client_goes_away() {
    let ws = Workspace::new("");
    let source = generated(&ws, 200_000);
    pipeline(&ws, "demo", &source, "0 0 1 1 ?", "0 0 1 1 ?");
    let s = serve(&ws, &["demo"], 1);
    let token = "Bearer static-token";
    let recorded = || -> Vec<serde_json::Value> {
        let (_, runs) = get_auth(&format!("{}/api/runs?pipeline=demo", s.base), token);
        runs.as_array().unwrap().clone()
    };
    // Gone during the fetch, then gone 700 ms into a second run (its merge).
    for (wait_ms, runs_after) in [(0, 2), (700, 4)] {
        let mut stream = connect_from(&s.base, "127.0.0.1");
        stream
            .write_all(
                b"POST /api/pipelines/demo/run HTTP/1.1\r\nHost: ucm\r\n\
                  Authorization: Bearer static-token\r\nContent-Length: 0\r\n\r\n",
            )
            .unwrap();
        // The client goes away once the service has taken the request (a request that never
        // reached a handler starts nothing): at once, or 700 ms later.
        let taken = wait_for(30, || {
            let (_, pipelines) = get_auth(&format!("{}/api/pipelines", s.base), token);
            pipelines[0]["running"] == true || recorded().len() + 1 >= runs_after
        });
        assert!(
            taken,
            "the run was never started: {}",
            s.log.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(wait_ms));
        drop(stream);
        // Both stages of the run are recorded.
        let mut last = (Vec::new(), serde_json::Value::Null);
        let done = wait_for(120, || {
            let (_, pipelines) = get_auth(&format!("{}/api/pipelines", s.base), token);
            last = (recorded(), pipelines[0]["running"].clone());
            last.0.len() == runs_after && last.1 == false
        });
        assert!(
            done,
            "after {wait_ms} ms: {runs_after} runs expected, recorded {:?}, running {}; log:\n{}",
            last.0,
            last.1,
            s.log.lock().unwrap()
        );
    }
    let runs = recorded();
    assert!(
        runs.iter()
            .all(|r| r["status"] == "succeeded" || r["status"] == "unchanged"),
        "{runs:?}"
    );
    let (_, _, metrics) = get_from(&s.base, "127.0.0.1", "/metrics", "");
    let counted: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("ucm_runs_total{pipeline=\"demo\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(counted, 2.0, "{metrics}");
}

#[test]
fn every_answer_carries_the_security_headers_and_every_error_is_json() {
    let ws = Workspace::new("");
    demo(&ws);
    let s = serve(&ws, &["demo"], 1);
    let cases: [(&str, u16); 7] = [
        ("GET /health HTTP/1.1", 200),
        ("GET / HTTP/1.1", 200),
        ("GET /api/runs/not-a-number HTTP/1.1", 400),
        ("GET /api/runs?limit=many HTTP/1.1", 400),
        ("GET /api/login HTTP/1.1", 405),
        ("GET /no/such/page HTTP/1.1", 404),
        ("GET /api/contacts?q=a HTTP/1.1", 401),
    ];
    for (line, expected) in cases {
        let (status, head, body) = request_from(
            &s.base,
            "127.0.0.1",
            &format!("{line}\r\nHost: ucm\r\nConnection: close\r\n\r\n"),
        );
        assert_eq!(status, expected, "{line}: {head}\n{body}");
        for header in [
            "x-content-type-options: nosniff",
            "x-frame-options: deny",
            "content-security-policy: default-src 'none'",
            "frame-ancestors 'none'",
            "cache-control: no-store",
        ] {
            assert!(head.contains(header), "{line}: no {header} in {head}");
        }
        assert!(!head.contains("script-src"), "{head}");
        if status >= 400 {
            let error: serde_json::Value = serde_json::from_str(&body)
                .unwrap_or_else(|e| panic!("{line}: not JSON ({e}): {body}"));
            assert!(error["error"].is_string(), "{line}: {body}");
        }
    }
    let (status, _, body) = request_from(
        &s.base,
        "127.0.0.1",
        "POST /api/login HTTP/1.1\r\nHost: ucm\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: 9\r\n\r\n{\"user\": ",
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        serde_json::from_str::<serde_json::Value>(&body).is_ok(),
        "{body}"
    );
    // The scheme of an Authorization header is case-insensitive.
    let (status, _, body) = get_from(
        &s.base,
        "127.0.0.1",
        "/api/parameters",
        "Authorization: bearer static-token\r\n",
    );
    assert_eq!(status, 200, "{body}");
    let (status, token) = login(&s.base, "admin", PASSWORD);
    assert_eq!(status, 200, "{token}");
}

#[test]
fn without_a_login_pipelines_runs_and_readiness_show_statuses_only() {
    let ws = Workspace::new("");
    let secret_url = "http://user:S3cr#tPW@127.0.0.1:1/x.xml?api_key=K3Y";
    pipeline(&ws, "leaky", secret_url, "0 0 1 1 ?", "0 0 1 1 ?");
    ws.write(
        "broken.toml",
        "name = \"broken\"\n[source]\nurl = \"x\"\nbogus_key = 1\n",
    );
    let s = serve(&ws, &["leaky", "broken"], 1);
    let token = "Bearer static-token";
    let (status, report) = common::service::get_auth(&format!("{}/api/runs", s.base), token);
    assert_eq!(status, 200);
    assert!(report.as_array().unwrap().is_empty());
    let (status, body) = http(
        "POST",
        &format!("{}/api/pipelines/leaky/run", s.base),
        &[("Authorization", token)],
        "",
    );
    assert_eq!(status, 422, "{body}");
    let workspace = ws.path("").display().to_string();
    for path in ["/", "/api/pipelines", "/api/runs", "/api/runs/1", "/ready"] {
        let (_, _, body) = get_from(&s.base, "127.0.0.1", path, "");
        for secret in [
            "S3cr",
            "K3Y",
            workspace.as_str(),
            "sqlite://",
            "invalid",
            "bogus_key",
        ] {
            assert!(!body.contains(secret), "{path} shows {secret:?}: {body}");
        }
    }
    let (_, _, ready) = get_from(&s.base, "127.0.0.1", "/ready", "");
    assert!(ready.contains("pipeline broken: not loaded"), "{ready}");
    // With a login: the reasons, still masked.
    let (_, runs) = get_auth(&format!("{}/api/runs", s.base), token);
    let error = runs[0]["error"].as_str().unwrap();
    assert!(
        error.contains("fetching http://***@127.0.0.1:1/x.xml?api_key=*** failed"),
        "{error}"
    );
    let shown = runs.to_string();
    assert!(!shown.contains("S3cr") && !shown.contains("K3Y"), "{shown}");
    assert!(
        shown.contains("http://***@127.0.0.1:1/x.xml?api_key=***"),
        "{shown}"
    );
    let (_, ready) = get_auth(&format!("{}/ready", s.base), token);
    assert!(ready.to_string().contains("bogus_key"), "{ready}");
}

#[test]
fn a_pipeline_file_name_cannot_forge_a_metrics_series() {
    let ws = Workspace::new("");
    demo(&ws);
    let evil = "evil\"} 1\nucm_fake{x=\"y";
    // The service's default: every pipelines/*.toml.
    std::fs::create_dir(ws.path("pipelines")).unwrap();
    std::fs::rename(ws.path("demo.toml"), ws.path("pipelines/demo.toml")).unwrap();
    ws.write(&format!("pipelines/{evil}.toml"), "not a config");
    let s = serve(&ws, &[], 1);
    let (_, _, metrics) = get_from(&s.base, "127.0.0.1", "/metrics", "");
    assert!(
        !metrics.lines().any(|l| l.starts_with("ucm_fake")),
        "{metrics}"
    );
    for line in metrics
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        assert!(value.parse::<f64>().is_ok(), "{line}");
        assert!(series.starts_with("ucm_"), "{line}");
    }
    assert!(
        metrics.contains("ucm_pipeline_loaded{pipeline=\"evil\\\"} 1\\nucm_fake{x=\\\"y\"} 0"),
        "{metrics}"
    );
}

#[test]
fn two_pipelines_with_the_same_name_are_refused_at_start() {
    let ws = Workspace::new("");
    demo(&ws);
    let other = std::fs::read_to_string(ws.path("demo.toml")).unwrap();
    ws.write("again.toml", other);
    ws.write(
        "service.toml",
        "listen = \"127.0.0.1:0\"\npipelines = [\"demo.toml\", \"again.toml\"]\n",
    );
    let out = std::process::Command::new(common::BIN)
        .current_dir(ws.path(""))
        .args(["serve", "--service", "service.toml"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("demo.toml and again.toml are both pipeline \"demo\""),
        "{stderr}"
    );
}

/// Hardening 3: the logged-out overview showed the host's name.
#[test]
fn the_logged_out_overview_shows_each_pipelines_health_and_nothing_of_the_host() {
    let ws = Workspace::new("");
    demo(&ws);
    let s = serve(&ws, &["demo"], 1);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_owned();
    assert!(!host.is_empty());
    let (status, _, page) = get_from(&s.base, "127.0.0.1", "/", "");
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("health:") && page.contains("<h2>demo</h2>"),
        "{page}"
    );
    assert!(!page.contains(&host), "the host's name {host:?} in {page}");
    assert!(!page.contains("pipeline(s)"), "{page}");
    // Logged in, the host is shown.
    let (status, _, page) = get_from(
        &s.base,
        "127.0.0.1",
        "/",
        "Authorization: Bearer static-token\r\n",
    );
    assert_eq!(status, 200, "{page}");
    assert!(page.contains(&host), "{page}");
}

/// Hardening 3: passwords in the service config only in clear (or env/file). `ucm
/// hash-password` makes an Argon2 hash; `password_hash` takes it for [auth] and the phones'
/// basic auth (a feed here), and the right password logs in while a wrong one does not.
#[test]
fn a_password_hash_from_ucm_hash_password_lets_the_right_password_in() {
    let ws = Workspace::new("");
    demo(&ws);
    let mut hasher = std::process::Command::new(common::BIN)
        .arg("hash-password")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    hasher
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{PASSWORD}\n").as_bytes())
        .unwrap();
    let out = hasher.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let hash = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(hash.starts_with("$argon2id$v=19$"), "{hash}");
    let feed = format!(
        "[[phonebooks]]\npipeline = \"demo\"\nformat = \"csv\"\nusername = \"phone\"\n\
         password_hash = \"{hash}\"\n"
    );
    let s = common::service::serve_authenticated(
        &ws,
        &["demo"],
        1,
        "127.0.0.1:0",
        &format!("password_hash = \"{hash}\"\n"),
        &feed,
        None,
    );
    assert_eq!(login_from(&s.base, "127.0.0.1", "admin", PASSWORD).0, 200);
    assert_eq!(login_from(&s.base, "127.0.0.1", "admin", "not it").0, 401);
    assert_eq!(login_from(&s.base, "127.0.0.1", "admin", PASSWORD).0, 200);
    use base64::Engine as _;
    let basic = |password: &str| {
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("phone:{password}"));
        format!("Authorization: Basic {encoded}\r\n")
    };
    assert_eq!(
        get_from(
            &s.base,
            "127.0.0.1",
            "/phonebook/demo/csv",
            &basic(PASSWORD)
        )
        .0,
        200
    );
    assert_eq!(
        get_from(&s.base, "127.0.0.1", "/phonebook/demo/csv", &basic("nope")).0,
        401
    );
}

#[test]
fn a_password_and_a_password_hash_together_are_refused_at_start() {
    let ws = Workspace::new("");
    demo(&ws);
    ws.write(
        "service.toml",
        "pipelines = [\"demo.toml\"]\n[auth]\nusername = \"admin\"\npassword = \"x\"\n\
         password_hash = \"$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA\"\n",
    );
    let out = ws.ucm(&["serve", "--service", "service.toml"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("sets both a password and password_hash"),
        "{stderr}"
    );
    ws.write(
        "service.toml",
        "pipelines = [\"demo.toml\"]\n[auth]\nusername = \"admin\"\npassword_hash = \"secret\"\n",
    );
    let out = ws.ucm(&["serve", "--service", "service.toml"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("password_hash is not a PHC string"),
        "{stderr}"
    );
}
