//! The import stage against a real HTTP server on 127.0.0.1 (started here, port 0): good files,
//! ETags, truncated bodies, 5xx then success, 404, a stalled server, invalid XML, basic auth
//! with awkward passwords, bearer tokens, gzip. Every failing case leaves the staged source and
//! the `contacts` table exactly as they were.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use common::{Workspace, contacts_xml};

/// A password with every character the original product choked on.
const PASSWORD: &str = "p:a@s%s&w\"o r\\d é€";

#[derive(Default)]
struct Server {
    hits: Mutex<HashMap<String, usize>>,
    flaky: AtomicUsize,
}

impl Server {
    fn hit(&self, name: &str) {
        *self
            .hits
            .lock()
            .unwrap()
            .entry(name.to_owned())
            .or_default() += 1;
    }
    fn hits(&self, name: &str) -> usize {
        self.hits.lock().unwrap().get(name).copied().unwrap_or(0)
    }
}

fn good() -> String {
    contacts_xml(&[
        &[("e_mail", "a@ext.example"), ("site", "Gent")],
        &[("e_mail", "b@ext.example")],
    ])
}

fn other() -> String {
    contacts_xml(&[
        &[("e_mail", "a@ext.example"), ("site", "Brussels")],
        &[("e_mail", "c@ext.example")],
    ])
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

async fn serve(
    State(server): State<Arc<Server>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    server.hit(&name);
    match name.as_str() {
        "good.xml" => good().into_response(),
        "other.xml" => other().into_response(),
        "etag.xml" => {
            if headers
                .get(header::IF_NONE_MATCH)
                .is_some_and(|v| v == "\"v1\"")
            {
                return StatusCode::NOT_MODIFIED.into_response();
            }
            (
                [
                    (header::ETAG, "\"v1\""),
                    (header::LAST_MODIFIED, "Wed, 25 Nov 2026 10:00:00 GMT"),
                ],
                good(),
            )
                .into_response()
        }
        "flaky.xml" => {
            if server.flaky.fetch_add(1, Ordering::SeqCst) < 2 {
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            } else {
                other().into_response()
            }
        }
        "invalid.xml" => {
            "<contacts><contact><nickname>x</nickname></contact></contacts>".into_response()
        }
        "empty-body.xml" => "".into_response(),
        "slow.xml" => {
            let start = other();
            let stream = futures_util::stream::unfold(0, move |step| {
                let start = start.clone();
                async move {
                    match step {
                        0 => Some((Ok::<_, std::io::Error>(start[..20].to_owned()), 1)),
                        1 => {
                            tokio::time::sleep(Duration::from_secs(30)).await;
                            Some((Ok(start[20..].to_owned()), 2))
                        }
                        _ => None,
                    }
                }
            });
            Body::from_stream(stream).into_response()
        }
        "auth.xml" => {
            let expected = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("admin:{PASSWORD}"))
            );
            if headers
                .get(header::AUTHORIZATION)
                .is_some_and(|v| v.as_bytes() == expected.as_bytes())
            {
                other().into_response()
            } else {
                (
                    StatusCode::UNAUTHORIZED,
                    [(header::WWW_AUTHENTICATE, "Basic realm=\"contacts\"")],
                )
                    .into_response()
            }
        }
        "contacts.csv" => {
            // An Outlook export behind basic auth, with an ETag.
            let expected = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("admin:{PASSWORD}"))
            );
            if headers
                .get(header::AUTHORIZATION)
                .is_none_or(|v| v.as_bytes() != expected.as_bytes())
            {
                return StatusCode::UNAUTHORIZED.into_response();
            }
            if headers
                .get(header::IF_NONE_MATCH)
                .is_some_and(|v| v == "\"csv1\"")
            {
                return StatusCode::NOT_MODIFIED.into_response();
            }
            (
                [(header::ETAG, "\"csv1\"")],
                "First Name,Last Name,E-mail Address,Mobile Phone\r\n\
                 Anna,Peeters,a@ext.example,+32 475 11 11 11\r\nBob,,c@ext.example,\r\n",
            )
                .into_response()
        }
        "bearer.xml" => {
            if headers
                .get(header::AUTHORIZATION)
                .is_some_and(|v| v == "Bearer s3cret-t0ken")
            {
                other().into_response()
            } else {
                StatusCode::UNAUTHORIZED.into_response()
            }
        }
        "contacts.xml.gz" => (
            [(header::CONTENT_TYPE, "application/gzip")],
            gzip(other().as_bytes()),
        )
            .into_response(),
        "transfer-gzip.xml" => {
            if headers
                .get(header::ACCEPT_ENCODING)
                .is_some_and(|v| v.to_str().unwrap().contains("gzip"))
            {
                (
                    [(header::CONTENT_ENCODING, "gzip")],
                    gzip(other().as_bytes()),
                )
                    .into_response()
            } else {
                (StatusCode::BAD_REQUEST, "expected Accept-Encoding: gzip").into_response()
            }
        }
        "big.xml" => {
            // 1,000,000 contacts (about 60 MB), produced while sending.
            let stream = futures_util::stream::unfold(0u32, |chunk| async move {
                if chunk > 1000 {
                    return None;
                }
                let mut text = String::new();
                if chunk == 0 {
                    text.push_str("<contacts>\n");
                }
                if chunk == 1000 {
                    text.push_str("</contacts>\n");
                } else {
                    for i in 0..1000 {
                        text.push_str(&format!(
                            "<contact><e_mail>u{chunk}-{i}@big.example</e_mail></contact>\n"
                        ));
                    }
                }
                Some((Ok::<_, std::io::Error>(text), chunk + 1))
            });
            Body::from_stream(stream).into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Starts the HTTP server on its own thread; returns its base URL, its counters, and the
/// address of a raw TCP server that promises more bytes than it sends.
fn start_server() -> (String, Arc<Server>, SocketAddr) {
    let server = Arc::new(Server::default());
    let state = Arc::clone(&server);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let app = Router::new().route("/{name}", get(serve)).with_state(state);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let raw = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send((listener.local_addr().unwrap(), raw.local_addr().unwrap()))
                .unwrap();
            tokio::spawn(async move {
                // Content-Length larger than the body, then the connection closes.
                loop {
                    let (mut socket, _) = raw.accept().await.unwrap();
                    tokio::spawn(async move {
                        use tokio::io::{AsyncReadExt, AsyncWriteExt};
                        let mut buf = [0u8; 4096];
                        let _ = socket.read(&mut buf).await;
                        let body = good();
                        let head = format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
                            body.len() * 2
                        );
                        let _ = socket.write_all(head.as_bytes()).await;
                        let _ = socket.write_all(&body.as_bytes()[..body.len() / 2]).await;
                        let _ = socket.shutdown().await;
                    });
                }
            });
            axum::serve(listener, app).await.unwrap();
        });
    });
    let (addr, raw) = rx.recv().unwrap();
    (format!("http://{addr}"), server, raw)
}

/// A workspace whose pipeline fetches `url` (fast retries, 1 s idle timeout).
fn workspace(url: &str, extra: &str) -> Workspace {
    Workspace::new(&format!(
        "[source]\nurl = \"{url}\"\ntries = 3\nbackoff_ms = 10\nread_timeout_secs = 1\nconnect_timeout_secs = 2\n{extra}"
    ))
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Fetches and merges the good file; returns (staged metadata, export).
fn stage_good(ws: &Workspace) -> (String, String) {
    let report = json(&ws.ok(&["run", "--format", "json"]));
    assert_eq!(report["status"], "succeeded", "{report}");
    (ws.ok(&["staged", "--format", "json"]), ws.export())
}

/// The folder the staged copy is in (under `data_dir`), in the workspace.
fn staged_folder(ws: &Workspace) -> std::path::PathBuf {
    let staged = json(&ws.ok(&["staged", "--format", "json"]));
    let path = std::path::Path::new(staged["path"].as_str().unwrap());
    ws.path(path.parent().unwrap().to_str().unwrap())
}

/// Points the workspace at `url`, fetches, expects failure; checks nothing changed.
fn fails_and_changes_nothing(
    ws: &Workspace,
    before: &(String, String),
    url: &str,
    extra: &str,
) -> serde_json::Value {
    ws.config(&format!(
        "[source]\nurl = \"{url}\"\ntries = 3\nbackoff_ms = 10\nread_timeout_secs = 1\nconnect_timeout_secs = 2\n{extra}"
    ));
    let (stdout, _) = ws.fails(&["run", "--format", "json"]);
    let report = json(&stdout);
    assert_eq!(report["status"], "failed");
    assert_eq!(report["command"], "fetch");
    assert_eq!(
        ws.ok(&["staged", "--format", "json"]),
        before.0,
        "the staged source changed"
    );
    assert_eq!(ws.export(), before.1, "the contacts table changed");
    let runs = json(&ws.ok(&["runs", "--limit", "1", "--format", "json"]));
    assert_eq!(runs[0]["status"], "failed");
    assert_eq!(runs[0]["command"], "fetch");
    report
}

#[test]
fn a_good_file_is_fetched_staged_and_merged() {
    let (base, _, _) = start_server();
    let ws = workspace(&format!("{base}/good.xml"), "");
    let report = json(&ws.ok(&["fetch", "--format", "json"]));
    assert_eq!(report["status"], "succeeded");
    assert_eq!(report["fetch"]["http_status"], 200);
    assert_eq!(report["contacts_read"], 2);
    let staged = json(&ws.ok(&["staged", "--format", "json"]));
    assert_eq!(staged["contacts"], 2);
    assert_eq!(staged["url"], format!("{base}/good.xml"));
    assert!(std::path::Path::new(&ws.path(staged["path"].as_str().unwrap())).exists());
    assert_eq!(ws.rows().len(), 0, "fetch alone loads nothing");
    let merged = json(&ws.ok(&["merge", "--format", "json"]));
    assert_eq!(
        (merged["status"].clone(), merged["inserted"].clone()),
        ("succeeded".into(), 2.into())
    );
    assert_eq!(ws.row("a@ext.example")["site"], "Gent");
}

#[test]
fn merge_without_a_staged_source_says_so_and_exits_1() {
    let ws = workspace("http://127.0.0.1:9/none.xml", "");
    let (_, stderr) = ws.fails(&["merge"]);
    assert!(
        stderr.contains("no staged source yet; run `ucm fetch` first"),
        "{stderr}"
    );
}

#[test]
fn an_unchanged_etag_gets_304_and_changes_nothing() {
    let (base, server, _) = start_server();
    let ws = workspace(&format!("{base}/etag.xml"), "");
    let before = stage_good(&ws);
    let runs_before = json(&ws.ok(&["runs", "--format", "json"]))
        .as_array()
        .unwrap()
        .len();
    let report = json(&ws.ok(&["fetch", "--format", "json"]));
    assert_eq!(report["status"], "unchanged");
    assert_eq!(report["fetch"]["http_status"], 304);
    assert_eq!(server.hits("etag.xml"), 2);
    assert_eq!(ws.ok(&["staged", "--format", "json"]), before.0);
    let runs = json(&ws.ok(&["runs", "--format", "json"]));
    assert_eq!(
        runs.as_array().unwrap().len(),
        runs_before + 1,
        "the unchanged fetch is recorded"
    );
    assert_eq!(runs[0]["status"], "unchanged");
    let merged = json(&ws.ok(&["run", "--format", "json"]));
    assert_eq!(
        (
            merged["inserted"].clone(),
            merged["updated"].clone(),
            merged["deleted"].clone()
        ),
        (0.into(), 0.into(), 0.into())
    );
}

#[test]
fn the_same_content_again_is_unchanged_by_its_sha256() {
    let (base, _, _) = start_server();
    let ws = workspace(&format!("{base}/good.xml"), "");
    let before = stage_good(&ws);
    let report = json(&ws.ok(&["fetch", "--format", "json"]));
    assert_eq!(report["status"], "unchanged");
    assert!(
        report["fetch"]["unchanged_reason"]
            .as_str()
            .unwrap()
            .contains("sha256")
    );
    assert_eq!(ws.ok(&["staged", "--format", "json"]), before.0);
}

#[test]
fn a_body_cut_off_mid_way_is_retried_then_fails_and_changes_nothing() {
    let (base, _, raw) = start_server();
    let ws = workspace(&format!("{base}/good.xml"), "");
    let before = stage_good(&ws);
    let report =
        fails_and_changes_nothing(&ws, &before, &format!("http://{raw}/truncated.xml"), "");
    let error = report["error"].as_str().unwrap();
    assert!(
        error.contains(&format!("http://{raw}/truncated.xml")) && error.contains("try 3 of 3"),
        "{error}"
    );
    assert!(error.contains("bytes"), "{error}");
}

#[test]
fn two_500s_then_a_200_succeeds_on_the_third_try() {
    let (base, server, _) = start_server();
    let ws = workspace(&format!("{base}/flaky.xml"), "");
    let report = json(&ws.ok(&["run", "--format", "json"]));
    assert_eq!(report["status"], "succeeded");
    assert_eq!(report["fetch"]["tries"], 3);
    assert_eq!(server.hits("flaky.xml"), 3);
    assert_eq!(ws.row("c@ext.example")["origin"], "external");
}

#[test]
fn a_refused_connection_is_retried_then_fails_and_changes_nothing() {
    let (base, _, _) = start_server();
    let ws = workspace(&format!("{base}/good.xml"), "");
    let before = stage_good(&ws);
    // A port nothing listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let report = fails_and_changes_nothing(
        &ws,
        &before,
        &format!("http://127.0.0.1:{port}/gone.xml"),
        "",
    );
    let error = report["error"].as_str().unwrap();
    assert!(
        error.contains("try 3 of 3") && error.contains("cannot connect"),
        "{error}"
    );
    assert_eq!(report["fetch"]["tries"], 3);
}

#[test]
fn a_dry_run_merge_of_the_staged_source_writes_nothing() {
    let (base, _, _) = start_server();
    let ws = workspace(&format!("{base}/good.xml"), "");
    ws.ok(&["fetch"]);
    let report = json(&ws.ok(&["merge", "--dry-run", "--format", "json"]));
    assert_eq!(report["status"], "dry_run");
    assert_eq!(report["changes"].as_array().unwrap().len(), 2);
    assert_eq!(ws.rows().len(), 0, "a dry run writes nothing");
}

#[test]
fn a_404_is_not_retried_and_says_so() {
    let (base, server, _) = start_server();
    let ws = workspace(&format!("{base}/good.xml"), "");
    let before = stage_good(&ws);
    let report = fails_and_changes_nothing(&ws, &before, &format!("{base}/missing.xml"), "");
    assert_eq!(server.hits("missing.xml"), 1, "4xx must not be retried");
    let error = report["error"].as_str().unwrap();
    assert!(
        error.contains("try 1 of 3")
            && error.contains("HTTP 404 Not Found")
            && error.contains("check source.url"),
        "{error}"
    );
}

#[test]
fn a_server_stalled_past_the_idle_timeout_fails_and_changes_nothing() {
    let (base, server, _) = start_server();
    let ws = workspace(&format!("{base}/good.xml"), "");
    let before = stage_good(&ws);
    let report = fails_and_changes_nothing(&ws, &before, &format!("{base}/slow.xml"), "");
    let error = report["error"].as_str().unwrap();
    assert!(error.contains("timed out after 20 bytes"), "{error}");
    assert_eq!(server.hits("slow.xml"), 3, "timeouts are retried");
}

#[test]
fn an_invalid_file_is_refused_with_its_errors_and_changes_nothing() {
    let (base, _, _) = start_server();
    let ws = workspace(&format!("{base}/good.xml"), "");
    let before = stage_good(&ws);
    let report = fails_and_changes_nothing(&ws, &before, &format!("{base}/invalid.xml"), "");
    let error = report["error"].as_str().unwrap();
    assert!(
        error.contains(&format!(
            "{base}/invalid.xml:1:20: element <nickname> is not allowed"
        )),
        "{error}"
    );
    let leftovers: Vec<_> = std::fs::read_dir(staged_folder(&ws))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        leftovers.len(),
        1,
        "only the staged copy remains: {leftovers:?}"
    );
}

#[test]
fn a_source_over_max_bytes_is_refused() {
    let (base, _, _) = start_server();
    let ws = workspace(&format!("{base}/good.xml"), "");
    let before = stage_good(&ws);
    let report = fails_and_changes_nothing(
        &ws,
        &before,
        &format!("{base}/other.xml"),
        "max_bytes = 100\n",
    );
    assert!(
        report["error"]
            .as_str()
            .unwrap()
            .contains("larger than max_bytes = 100"),
        "{report}"
    );
}

#[test]
fn an_empty_body_is_invalid_and_changes_nothing() {
    let (base, _, _) = start_server();
    let ws = workspace(&format!("{base}/good.xml"), "");
    let before = stage_good(&ws);
    let report = fails_and_changes_nothing(&ws, &before, &format!("{base}/empty-body.xml"), "");
    assert!(
        report["error"]
            .as_str()
            .unwrap()
            .contains("no root element"),
        "{report}"
    );
}

/// Release notes 1.9.6 and 1.12.0 of the original product: "Authentication issue when using
/// specific passwords (M6201)", "Some password could result in invalid login".
#[test]
fn regression_m6201_basic_auth_works_with_any_password() {
    let (base, server, _) = start_server();
    let ws = workspace(&format!("{base}/good.xml"), "");
    let before = stage_good(&ws);
    let wrong = "[source.auth]\nusername = \"admin\"\npassword = \"wrong\"\n";
    let report = fails_and_changes_nothing(&ws, &before, &format!("{base}/auth.xml"), wrong);
    assert!(
        report["error"]
            .as_str()
            .unwrap()
            .contains("HTTP 401 Unauthorized"),
        "{report}"
    );
    assert_eq!(server.hits("auth.xml"), 1);
    // The right password, from a file, then from the environment.
    ws.write("password.txt", format!("{PASSWORD}\n"));
    ws.config(&format!("[source]\nurl = \"{base}/auth.xml\"\n[source.auth]\nusername = \"admin\"\npassword_file = \"password.txt\"\n"));
    let report = json(&ws.ok(&["run", "--format", "json"]));
    assert_eq!(report["status"], "succeeded", "{report}");
    assert_eq!(ws.row("c@ext.example")["origin"], "external");
    ws.config(&format!("[source]\nurl = \"{base}/auth.xml\"\n[source.auth]\nusername = \"admin\"\npassword_env = \"UCM_TEST_PASSWORD\"\n"));
    let out = std::process::Command::new(common::BIN)
        .current_dir(ws.dir.path())
        .env("UCM_TEST_PASSWORD", PASSWORD)
        .args([
            "-c",
            ws.path("pipeline.toml").to_str().unwrap(),
            "fetch",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn credentials_in_the_url_work_and_are_masked_in_messages() {
    let (base, _, _) = start_server();
    let encoded: String = PASSWORD
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let url = base.replace("http://", &format!("http://admin:{encoded}@"));
    let ws = workspace(&format!("{url}/auth.xml"), "");
    let report = json(&ws.ok(&["run", "--format", "json"]));
    assert_eq!(report["status"], "succeeded", "{report}");
    assert!(
        !report.to_string().contains(&encoded),
        "the password leaked: {report}"
    );
    assert_eq!(
        report["fetch"]["url"],
        format!("{}/auth.xml", base.replace("http://", "http://***@"))
    );
    ws.config(&format!(
        "[source]\nurl = \"{url}/missing.xml\"\ntries = 1\n"
    ));
    let (stdout, _) = ws.fails(&["fetch", "--format", "json"]);
    assert!(
        !stdout.contains(&encoded) && stdout.contains("http://***@") && !stdout.contains("admin"),
        "{stdout}"
    );
}

#[test]
fn a_bearer_token_from_config_is_sent() {
    let (base, _, _) = start_server();
    let ws = workspace(
        &format!("{base}/bearer.xml"),
        "[source.auth]\ntoken_env = \"UCM_TEST_TOKEN\"\n",
    );
    let out = std::process::Command::new(common::BIN)
        .current_dir(ws.dir.path())
        .env("UCM_TEST_TOKEN", "s3cret-t0ken")
        .args([
            "-c",
            ws.path("pipeline.toml").to_str().unwrap(),
            "run",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    ws.config(&format!(
        "[source]\nurl = \"{base}/bearer.xml\"\n[source.auth]\ntoken = \"wrong\"\n"
    ));
    ws.fails(&["fetch"]);
}

#[test]
fn gzip_sources_and_gzip_transfer_encoding_are_decompressed() {
    let (base, _, _) = start_server();
    for name in ["contacts.xml.gz", "transfer-gzip.xml"] {
        let ws = workspace(&format!("{base}/{name}"), "");
        let report = json(&ws.ok(&["run", "--format", "json"]));
        assert_eq!(report["status"], "succeeded", "{name}: {report}");
        assert_eq!(report["fetch"]["bytes"], other().len(), "{name}");
        assert_eq!(ws.row("c@ext.example")["origin"], "external");
    }
}

#[test]
fn a_dry_run_downloads_to_a_temporary_file_and_stages_nothing() {
    let (base, _, _) = start_server();
    let ws = workspace(&format!("{base}/good.xml"), "");
    let before = stage_good(&ws);
    ws.config(&format!("[source]\nurl = \"{base}/other.xml\"\n"));
    let report = json(&ws.ok(&["run", "--dry-run", "--format", "json"]));
    assert_eq!(report["status"], "dry_run");
    let changes = report["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 3, "{changes:?}");
    assert_eq!(ws.ok(&["staged", "--format", "json"]), before.0);
    assert_eq!(ws.export(), before.1);
    let files: Vec<_> = std::fs::read_dir(staged_folder(&ws)).unwrap().collect();
    assert_eq!(files.len(), 1, "the dry run's download is discarded");
}

#[test]
fn import_of_an_ad_hoc_file_never_replaces_the_staged_source() {
    let (base, _, _) = start_server();
    let ws = workspace(&format!("{base}/good.xml"), "");
    let before = stage_good(&ws);
    ws.write("adhoc.xml", other());
    ws.import("adhoc.xml", &[]);
    assert_eq!(ws.ok(&["staged", "--format", "json"]), before.0);
}

#[test]
fn a_new_source_replaces_the_staged_copy_and_removes_the_old_file() {
    let (base, _, _) = start_server();
    let ws = workspace(&format!("{base}/good.xml"), "");
    let before = stage_good(&ws);
    ws.config(&format!("[source]\nurl = \"{base}/other.xml\"\n"));
    let report = json(&ws.ok(&["run", "--format", "json"]));
    assert_eq!(
        (
            report["inserted"].clone(),
            report["updated"].clone(),
            report["deleted"].clone()
        ),
        (1.into(), 1.into(), 1.into())
    );
    let staged = json(&ws.ok(&["staged", "--format", "json"]));
    assert_ne!(staged.to_string(), before.0);
    let files: Vec<_> = std::fs::read_dir(staged_folder(&ws))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1);
    assert!(files[0].ends_with(staged["path"].as_str().unwrap().rsplit('/').next().unwrap()));
}

/// Regression: two pipelines with the same name and `data_dir` but different databases shared
/// one staged folder; when one fetched a new source it deleted the copy the other's database
/// still pointed at, and the other's next merge failed.
#[test]
fn one_name_and_data_dir_with_two_databases_keep_two_staged_copies() {
    let (base, _, _) = start_server();
    let ws = workspace(&format!("{base}/good.xml"), "");
    stage_good(&ws);
    let second = |args: &[&str]| ws.ok(&[&["--db", "sqlite://second.db"][..], args].concat());
    let report = json(&second(&["run", "--format", "json"]));
    assert_eq!(report["status"], "succeeded", "{report}");
    let staged = json(&second(&["staged", "--format", "json"]));
    ws.config(&format!(
        "[source]\nurl = \"{base}/other.xml\"\ntries = 3\nbackoff_ms = 10\n"
    ));
    let report = json(&ws.ok(&["run", "--format", "json"]));
    assert_eq!(report["status"], "succeeded", "{report}");
    assert!(
        ws.path(staged["path"].as_str().unwrap()).exists(),
        "the second database's staged copy was deleted: {staged}"
    );
    assert_ne!(staged_folder(&ws), ws.path("ucm-data/default"));
    let merge = json(&second(&["merge", "--format", "json"]));
    assert_ne!(merge["status"], "failed", "{merge}");
}

/// Downloads stream to disk: a 60 MB source does not raise the fetching process's memory.
#[test]
#[allow(clippy::zombie_processes)] // reaped by wait4
fn a_large_source_streams_to_disk_in_bounded_memory() {
    let (base, _, _) = start_server();
    let ws = workspace(&format!("{base}/big.xml"), "");
    let child = std::process::Command::new(common::BIN)
        .current_dir(ws.dir.path())
        .args([
            "-c",
            ws.path("pipeline.toml").to_str().unwrap(),
            "-q",
            "fetch",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 reaps our own child and writes into values we own.
    unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    let peak = usage.ru_maxrss as u64 * 1024;
    let staged = json(&ws.ok(&["staged", "--format", "json"]));
    assert_eq!(staged["contacts"], 1_000_000);
    assert!(staged["size"].as_u64().unwrap() > 50_000_000);
    eprintln!("fetch of {} bytes: peak {peak} bytes", staged["size"]);
    assert!(peak < 40 << 20, "fetching took {peak} bytes");
}

/// Runs `ucm -c pipeline.toml ARGS` and kills it after 30 s: a source that blocks must fail
/// the test, not hang it.
fn ucm_within_30s(ws: &Workspace, args: &[&str]) -> (Option<i32>, String, String) {
    let mut child = std::process::Command::new(common::BIN)
        .current_dir(ws.dir.path())
        .arg("-c")
        .arg(ws.path("pipeline.toml"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("ucm {args:?} still runs after 30 s: it blocks on its source");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[cfg(unix)]
#[test]
fn a_named_pipe_as_a_source_is_refused_at_once_and_changes_nothing() {
    let (base, _, _) = start_server();
    let ws = workspace(&format!("{base}/good.xml"), "");
    let before = stage_good(&ws);
    let pipe = ws.path("pipe.xml");
    let c_path = std::ffi::CString::new(pipe.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    // Nobody ever writes to the pipe: opening or reading it would wait forever.
    for args in [vec!["validate", "pipe.xml"], vec!["import", "pipe.xml"]] {
        let (code, stdout, stderr) = ucm_within_30s(&ws, &args);
        let said = format!("{stdout}{stderr}");
        assert_eq!(code, Some(1), "{args:?}: {said}");
        assert!(
            said.contains("cannot open pipe.xml: not a regular file (a named pipe)"),
            "{args:?}: {said}"
        );
    }
    let url = pipe.to_str().unwrap().to_owned();
    let report = fails_and_changes_nothing(&ws, &before, &url, "");
    let error = report["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("not a regular file (a named pipe)"),
        "{report}"
    );
    assert_eq!(ws.export(), before.1);
}

/// Regression: `--data-dir` was accepted and ignored; staged files went to the config's
/// `data_dir` whatever it said.
#[test]
fn the_data_dir_option_moves_the_staged_files() {
    let (base, _, _) = start_server();
    let ws = workspace(&format!("{base}/good.xml"), "");
    ws.ok(&["--data-dir", "elsewhere", "fetch"]);
    let staged = json(&ws.ok(&["staged", "--format", "json"]));
    let path = staged["path"].as_str().unwrap();
    assert!(path.starts_with("elsewhere/default/db-"), "{path}");
    assert!(ws.path(path).exists());
    assert!(!ws.path("ucm-data").exists());
}

/// Issue 25: a CSV source is fetched like XML: basic auth, staged under its own extension,
/// validated through its mapping before it is staged, an unchanged ETag gets 304 and no work.
#[test]
fn a_csv_export_over_http_with_basic_auth_is_staged_and_a_304_changes_nothing() {
    let (base, server, _) = start_server();
    let ws = workspace(
        &format!("{base}/contacts.csv"),
        "kind = \"csv\"\npreset = \"outlook-csv\"\n[source.auth]\nusername = \"admin\"\n\
         password_file = \"password.txt\"",
    );
    ws.write("password.txt", format!("{PASSWORD}\n"));
    let report = json(&ws.ok(&["run", "--format", "json"]));
    assert_eq!(report["status"], "succeeded", "{report}");
    assert_eq!(report["contacts_read"], 2, "{report}");
    let staged = json(&ws.ok(&["staged", "--format", "json"]));
    assert!(
        staged["path"].as_str().unwrap().ends_with(".csv"),
        "{staged}"
    );
    let rows = ws.rows();
    let anna = rows
        .iter()
        .find(|r| r["e_mail"] == "a@ext.example")
        .unwrap();
    assert_eq!(anna["mobile_number"], "+32 475 11 11 11");
    let before = ws.export();
    let again = json(&ws.ok(&["fetch", "--format", "json"]));
    assert_eq!(again["status"], "unchanged", "{again}");
    assert_eq!(again["fetch"]["http_status"], 304, "{again}");
    assert_eq!(ws.export(), before);
    assert_eq!(server.hits("contacts.csv"), 2);
}
