//! Helpers for tests of `ucm serve`: real service processes on 127.0.0.1, a tiny HTTP/1.1
//! client, and pipelines on the samples.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{BIN, Workspace, repo};

pub const PASSWORD: &str = "p:a@s%s&w\"o r\\d é€";

/// A running `ucm serve`; killed when dropped.
pub struct Serve {
    pub child: Child,
    pub base: String,
    pub log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Serve {
    /// The service's log once it holds every one of `needles` (waiting up to 10 s: stderr is
    /// read by a thread of its own, so a line the service wrote may not be here yet); panics
    /// with the log when one never comes.
    pub fn log_with(&self, needles: &[&str]) -> String {
        let has_all = || {
            let log = self.log.lock().unwrap();
            needles.iter().all(|n| log.contains(n))
        };
        assert!(
            wait_for(10, has_all),
            "the log lacks one of {needles:?}:\n{}",
            self.log.lock().unwrap()
        );
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes `p.toml` (pipeline `demo` on the samples, both crons as given) into `ws`.
pub fn pipeline(ws: &Workspace, name: &str, source: &str, fetch_cron: &str, merge_cron: &str) {
    let config = std::fs::read_to_string(ws.path("pipeline.toml")).unwrap();
    let database = config[config.find("[database]").unwrap()..].to_owned();
    ws.write(
        &format!("{name}.toml"),
        format!(
            "name = \"{name}\"\nspread_secs = 0\ntime_zone = \"Europe/Brussels\"\n\
             [source]\nurl = \"{source}\"\nschedule = \"{fetch_cron}\"\n\
             [directory]\ncsv = \"{}\"\n[merge]\nschedule = \"{merge_cron}\"\n{database}",
            repo("samples/directory.csv").display()
        ),
    );
}

/// A generated source of `contacts` contacts in the workspace; its path.
pub fn generated(ws: &Workspace, contacts: u64) -> String {
    let status = Command::new(BIN)
        .args([
            "generate",
            "--contacts",
            &contacts.to_string(),
            "--seed",
            "3",
            "--xml",
        ])
        .arg(ws.path("big.xml"))
        .status()
        .unwrap();
    assert!(status.success());
    ws.path("big.xml").display().to_string()
}

pub fn samples() -> String {
    repo("samples/external-contacts.xml").display().to_string()
}

/// Starts `ucm serve` with `service.toml` holding `pipelines` and the credentials, at
/// `speed` times the real clock; returns once it listens.
pub fn serve(ws: &Workspace, pipelines: &[&str], speed: u32) -> Serve {
    serve_with(ws, pipelines, speed, "127.0.0.1:0", "")
}

/// `ucm serve` of one pipeline `demo` whose `[source]` (and its sections) is `source`, on the
/// workspace's database, never fired by its schedules; runs it once over HTTP and returns the
/// service and the run's report.
pub fn serve_source_and_run(ws: &Workspace, source: &str) -> (Serve, Value) {
    let config = std::fs::read_to_string(ws.path("pipeline.toml")).unwrap();
    let database = config[config.find("[database]").unwrap()..].to_owned();
    ws.write(
        "demo.toml",
        format!(
            "name = \"demo\"\nspread_secs = 0\n{source}\n[merge]\nschedule = \"0 0 1 1 ?\"\n{database}"
        ),
    );
    let s = serve(ws, &["demo"], 1);
    let report = run_demo(&s.base);
    (s, report)
}

/// [`serve`] on `listen`, with `extra` TOML appended to the service config (e.g. a
/// `[cluster]` section).
pub fn serve_with(
    ws: &Workspace,
    pipelines: &[&str],
    speed: u32,
    listen: &str,
    extra: &str,
) -> Serve {
    serve_in(ws, pipelines, speed, listen, extra, None)
}

/// [`serve_with`], the process started with an open-file limit of `open_files` (soft and
/// hard, as systemd's default LimitNOFILE=1024 gives a service) when given.
pub fn serve_in(
    ws: &Workspace,
    pipelines: &[&str],
    speed: u32,
    listen: &str,
    extra: &str,
    open_files: Option<u64>,
) -> Serve {
    let auth = "password_env = \"UCM_TEST_ADMIN_PASSWORD\"\n";
    serve_authenticated(ws, pipelines, speed, listen, auth, extra, open_files)
}

/// [`serve_in`] with `password` the `[auth]` lines that give admin's password (e.g.
/// `password_hash = "..."`); the static token is always `static-token`.
pub fn serve_authenticated(
    ws: &Workspace,
    pipelines: &[&str],
    speed: u32,
    listen: &str,
    password: &str,
    extra: &str,
    open_files: Option<u64>,
) -> Serve {
    let list: Vec<String> = pipelines.iter().map(|p| format!("\"{p}.toml\"")).collect();
    ws.write(
        "service.toml",
        format!(
            "listen = \"{listen}\"\npipelines = [{}]\n[auth]\nusername = \"admin\"\n\
             {password}token = \"static-token\"\n{extra}",
            list.join(", ")
        ),
    );
    let mut command = Command::new(BIN);
    command
        .current_dir(ws.dir.path())
        .args(["serve", "--service", "service.toml"])
        .env("UCM_CLOCK_SPEED", speed.to_string())
        .env("UCM_TEST_ADMIN_PASSWORD", PASSWORD)
        .env("UCM_LOG", "ucm=info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(n) = open_files {
        use std::os::unix::process::CommandExt as _;
        // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            command.pre_exec(move || {
                let limit = libc::rlimit {
                    rlim_cur: n as libc::rlim_t,
                    rlim_max: n as libc::rlim_t,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
    }
    let mut child = command.spawn().unwrap();
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let stderr = child.stderr.take().unwrap();
    let sink = std::sync::Arc::clone(&log);
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let mut log = sink.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let base = first
        .trim()
        .strip_prefix("ucm serve: listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}: {}", log.lock().unwrap()))
        .to_owned();
    Serve { child, base, log }
}

/// One HTTP/1.1 request: (status, body).
pub fn http(method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let mut stream = TcpStream::connect(host).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response[9..12].parse().unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    (status, body)
}

pub fn dechunk(body: &str) -> String {
    String::from_utf8_lossy(&dechunk_bytes(body.as_bytes())).into_owned()
}

/// A body sent with `Transfer-Encoding: chunked`, put together.
pub fn dechunk_bytes(mut body: &[u8]) -> Vec<u8> {
    let mut whole = Vec::new();
    while let Some(end) = body.windows(2).position(|w| w == b"\r\n") {
        let size = String::from_utf8_lossy(&body[..end]);
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        whole.extend_from_slice(&body[end + 2..end + 2 + n]);
        body = &body[end + 2 + n + 2..];
    }
    whole
}

pub fn get_json(url: &str) -> Value {
    let (status, body) = http("GET", url, &[], "");
    assert_eq!(status, 200, "{url}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// Polls `check` until it returns Some, for up to `secs` seconds.
pub fn eventually<T>(secs: u64, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let mut found = None;
    let done = wait_for(secs, || {
        found = check();
        found.is_some()
    });
    assert!(done, "timed out waiting for {what}");
    found.expect("wait_for returned true")
}

/// Polls `check` until it returns true, for up to `secs` seconds; false when it never did
/// (for tests that say what they saw last).
pub fn wait_for(secs: u64, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn login(base: &str, user: &str, password: &str) -> (u16, String) {
    let body = serde_json::json!({ "username": user, "password": password }).to_string();
    http(
        "POST",
        &format!("{base}/api/login"),
        &[("Content-Type", "application/json")],
        &body,
    )
}

/// A service on the samples with the merged table loaded; (service, bearer header value).
pub fn loaded_service(ws: &Workspace) -> (Serve, &'static str) {
    pipeline(ws, "demo", &samples(), "0 0 1 1 ?", "0 0 1 1 ?");
    let s = serve(ws, &["demo"], 1);
    run_demo(&s.base);
    (s, "Bearer static-token")
}

/// Runs pipeline `demo` of the service at `base` now (`POST /api/pipelines/demo/run` with
/// the test token); its report.
pub fn run_demo(base: &str) -> Value {
    let (status, body) = http(
        "POST",
        &format!("{base}/api/pipelines/demo/run"),
        &[("Authorization", "Bearer static-token")],
        "",
    );
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

pub fn put(url: &str, bearer: &str, body: &str) -> (u16, Value) {
    let (status, text) = http(
        "PUT",
        url,
        &[
            ("Authorization", bearer),
            ("Content-Type", "application/json"),
        ],
        body,
    );
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

pub fn get_auth(url: &str, bearer: &str) -> (u16, Value) {
    let (status, text) = http("GET", url, &[("Authorization", bearer)], "");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// A free port on 127.0.0.1 (bound and released: a peer's URL must be known before it starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Opens `/api/events` on `s`; returns a reader past the response headers.
pub fn events(s: &Serve, bearer: &str) -> BufReader<TcpStream> {
    let host = s.base.strip_prefix("http://").unwrap().to_owned();
    let mut stream = TcpStream::connect(&host).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET /api/events HTTP/1.1\r\nHost: {host}\r\nAuthorization: {bearer}\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("HTTP/1.1 200"), "{line}");
    // Subscribed once the headers are out.
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" {
            return reader;
        }
    }
}

/// Reads the stream until `needle` has been seen; returns what was read.
pub fn wait_for_event(reader: &mut BufReader<TcpStream>, needle: &str) -> String {
    let mut seen = String::new();
    let mut line = String::new();
    while !seen.contains(needle) {
        line.clear();
        reader.read_line(&mut line).expect("the event arrives");
        seen.push_str(&line);
    }
    seen
}

/// One raw HTTP/1.1 exchange with the service at `base`: (status, head, body bytes, a
/// chunked body put together).
pub fn exchange_bytes(base: &str, request: &[u8]) -> (u16, String, Vec<u8>) {
    let mut stream = TcpStream::connect(base.trim_start_matches("http://")).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head");
    let head = String::from_utf8_lossy(&answer[..split]).into_owned();
    let mut body = answer[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk_bytes(&body);
    }
    (head[9..12].parse().unwrap(), head, body)
}

/// [`exchange_bytes`] with the body as text.
pub fn exchange(base: &str, request: &[u8]) -> (u16, String, String) {
    let (status, head, body) = exchange_bytes(base, request);
    (status, head, String::from_utf8_lossy(&body).into_owned())
}

/// A TCP connection to `address` (`host:port`) from the loopback address `source` (e.g.
/// "127.0.0.2", standing for another client), reads timing out after 30 s.
pub fn connect_from(address: &str, source: &str) -> TcpStream {
    let target: std::net::SocketAddr = address.parse().unwrap();
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let from: std::net::SocketAddr = format!("{source}:0").parse().unwrap();
    socket.bind(&from.into()).unwrap();
    socket.connect(&target.into()).unwrap();
    let stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream
}
