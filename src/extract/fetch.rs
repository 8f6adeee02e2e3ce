//! Fetching the external source by URL (`http://`, `https://`, `file://` or a plain path) into
//! a temporary file, streaming: the body never sits in memory. Conditional GET, retries with
//! exponential backoff and jitter, timeouts, a size limit, gzip, and errors that say which URL
//! (credentials masked), which status, how many bytes and which try.

use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use flate2::write::GzDecoder;

/// Credentials for the source.
#[derive(Clone)]
pub enum Auth {
    Basic { username: String, password: String },
    Bearer { token: String },
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::Basic { username, .. } => write!(f, "Basic({username}, ***)"),
            Auth::Bearer { .. } => write!(f, "Bearer(***)"),
        }
    }
}

/// How to fetch.
#[derive(Clone, Debug)]
pub struct FetchOptions {
    pub connect_timeout: Duration,
    /// Longest a download may go without receiving a byte.
    pub read_timeout: Duration,
    /// Largest source accepted, in bytes after decompression.
    pub max_bytes: u64,
    /// Attempts in all (connection errors, timeouts and 5xx are retried; 4xx are not).
    pub tries: u32,
    /// First backoff delay; it doubles each try, with jitter.
    pub backoff: Duration,
    pub auth: Option<Auth>,
    /// Validators of the last staged copy, for a conditional GET.
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

/// Receives download progress.
pub trait DownloadProgress: Send + Sync {
    /// A try starts; `total` is the body's length when the server says it.
    fn start(&self, total: Option<u64>);
    fn advance(&self, bytes: u64);
    fn finish(&self);
}

/// No progress display.
pub struct Silent;

impl DownloadProgress for Silent {
    fn start(&self, _: Option<u64>) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}

/// What a fetch produced.
#[derive(Debug)]
pub enum Fetched {
    /// The server answered 304 Not Modified to the conditional GET.
    NotModified,
    /// The source, in a temporary file that is removed when dropped unless kept.
    Downloaded(Download),
}

#[derive(Debug)]
pub struct Download {
    pub file: tempfile::NamedTempFile,
    pub bytes: u64,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// HTTP status of the successful try (none for files).
    pub http_status: Option<u16>,
    pub tries: u32,
}

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
#[error("fetching {url} failed {}: {kind}", tries_text(*.attempt, *.tries))]
pub struct FetchError {
    /// The URL with any password masked.
    pub url: String,
    pub attempt: u32,
    pub tries: u32,
    pub kind: FetchErrorKind,
}

/// "on try 2 of 3", or "before the first try" for a URL or client that could not be set up.
fn tries_text(attempt: u32, tries: u32) -> String {
    if attempt == 0 {
        "before the first try".into()
    } else {
        format!("on try {attempt} of {tries}")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FetchErrorKind {
    #[error("invalid URL: {0}")]
    InvalidUrl(String),
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error(
        "timed out after {bytes} bytes (no data for the configured read timeout or connect timeout)"
    )]
    Timeout { bytes: u64 },
    #[error("HTTP {status}, no body read{hint}")]
    Status { status: String, hint: &'static str },
    #[error("the connection broke after {bytes} bytes: {message}")]
    Body { bytes: u64, message: String },
    #[error("the source is larger than max_bytes = {max} bytes")]
    TooLarge { max: u64 },
    #[error("the gzip data is corrupt or truncated after {bytes} bytes: {message}")]
    Gzip { bytes: u64, message: String },
    #[error("{0}")]
    Io(String),
}

impl FetchErrorKind {
    fn retryable(&self) -> bool {
        match self {
            FetchErrorKind::Connect(_)
            | FetchErrorKind::Timeout { .. }
            | FetchErrorKind::Body { .. } => true,
            FetchErrorKind::Status { status, .. } => status.starts_with('5'),
            _ => false,
        }
    }
}

pub use crate::redact::mask_url;

/// Whether `url` is fetched over HTTP (otherwise it is a local file).
pub fn is_http(url: &str) -> bool {
    url.starts_with("http://") || url.starts_with("https://")
}

/// The local path of a `file://` URL or plain path.
pub fn local_path(url: &str) -> PathBuf {
    PathBuf::from(url.strip_prefix("file://").unwrap_or(url))
}

/// Fetches `url` into a temporary file in `dir` (a source whose path ends in `.gz` is
/// decompressed while streaming).
pub async fn fetch(
    url: &str,
    dir: &Path,
    options: &FetchOptions,
    progress: Arc<dyn DownloadProgress>,
) -> Result<Fetched, FetchError> {
    let masked = mask_url(url);
    let tries = options.tries.max(1);
    let attempt = Arc::new(AtomicU32::new(0));
    let fail = |kind: FetchErrorKind, attempt: u32| FetchError {
        url: masked.clone(),
        attempt,
        tries,
        kind,
    };
    if !is_http(url) {
        attempt.store(1, Ordering::Relaxed);
        return copy_local(local_path(url), dir, options, url.ends_with(".gz"))
            .await
            .map_err(|k| fail(k, 1));
    }
    let parsed =
        reqwest::Url::parse(url).map_err(|e| fail(FetchErrorKind::InvalidUrl(e.to_string()), 0))?;
    let gzip = parsed.path().ends_with(".gz");
    let client = reqwest::Client::builder()
        .connect_timeout(options.connect_timeout)
        .read_timeout(options.read_timeout)
        .user_agent(concat!("ucm/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| fail(FetchErrorKind::Connect(e.to_string()), 0))?;
    let one_try = || {
        let n = attempt.fetch_add(1, Ordering::Relaxed) + 1;
        let client = client.clone();
        let parsed = parsed.clone();
        let progress = Arc::clone(&progress);
        async move {
            download(&client, parsed, dir, options, gzip, &*progress)
                .await
                .map_err(|k| (k, n))
        }
    };
    let backoff = ExponentialBuilder::default()
        .with_min_delay(options.backoff)
        .with_max_times((tries - 1) as usize)
        .with_jitter();
    let result = one_try
        .retry(backoff)
        .sleep(tokio::time::sleep)
        .when(|(kind, _)| kind.retryable())
        .notify(|(kind, n), delay| {
            tracing::warn!(
                "fetching {masked}: try {n} of {tries} failed: {kind}; retrying in {delay:?}"
            );
        })
        .await;
    progress.finish();
    match result {
        Ok(Fetched::Downloaded(mut d)) => {
            d.tries = attempt.load(Ordering::Relaxed);
            Ok(Fetched::Downloaded(d))
        }
        Ok(other) => Ok(other),
        Err((kind, n)) => Err(fail(kind, n)),
    }
}

fn header(response: &reqwest::Response, name: reqwest::header::HeaderName) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn download(
    client: &reqwest::Client,
    url: reqwest::Url,
    dir: &Path,
    options: &FetchOptions,
    gzip: bool,
    progress: &dyn DownloadProgress,
) -> Result<Fetched, FetchErrorKind> {
    let url_text = url.to_string();
    let mut request = client.get(url);
    if let Some(etag) = &options.etag {
        request = request.header(reqwest::header::IF_NONE_MATCH, etag);
    }
    if let Some(modified) = &options.last_modified {
        request = request.header(reqwest::header::IF_MODIFIED_SINCE, modified);
    }
    request = match &options.auth {
        Some(Auth::Basic { username, password }) => request.basic_auth(username, Some(password)),
        Some(Auth::Bearer { token }) => request.bearer_auth(token),
        None => request,
    };
    let shown = url_text.as_str();
    let mut response = request
        .send()
        .await
        .map_err(|e| transport_error(&e, 0, shown))?;
    let status = response.status();
    if status == reqwest::StatusCode::NOT_MODIFIED {
        return Ok(Fetched::NotModified);
    }
    if !status.is_success() {
        let hint = match status.as_u16() {
            401 | 403 => ": check the credentials in [source.auth]",
            404 => ": check source.url",
            _ => "",
        };
        return Err(FetchErrorKind::Status {
            status: status.to_string(),
            hint,
        });
    }
    let etag = header(&response, reqwest::header::ETAG);
    let last_modified = header(&response, reqwest::header::LAST_MODIFIED);
    progress.start(response.content_length());
    let mut sink = Sink::new(dir, options.max_bytes, gzip)?;
    let mut received = 0u64;
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                received += chunk.len() as u64;
                sink.write(&chunk, received)?;
                progress.advance(received);
            }
            Ok(None) => break,
            Err(e) => return Err(transport_error(&e, received, shown)),
        }
    }
    let (file, bytes) = sink.finish(received)?;
    Ok(Fetched::Downloaded(Download {
        file,
        bytes,
        etag,
        last_modified,
        http_status: Some(status.as_u16()),
        tries: 1,
    }))
}

/// The transport error's message with its causes; `url` (which reqwest quotes) masked.
fn transport_error(e: &reqwest::Error, bytes: u64, url: &str) -> FetchErrorKind {
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    let message = crate::redact::mask_in(&message, url);
    if e.is_timeout() {
        FetchErrorKind::Timeout { bytes }
    } else if e.is_connect() {
        FetchErrorKind::Connect(message)
    } else {
        FetchErrorKind::Body { bytes, message }
    }
}

/// Copies a local source (a regular file: see [`super::local`]) on a blocking thread, so the
/// async runtime never waits on file I/O. The read timeout applies as to a download: when
/// no byte arrives for that long (a hung network file system), the copy is abandoned and
/// reported as timed out.
async fn copy_local(
    path: PathBuf,
    dir: &Path,
    options: &FetchOptions,
    gzip: bool,
) -> Result<Fetched, FetchErrorKind> {
    let received = Arc::new(AtomicU64::new(0));
    let abandoned = Arc::new(AtomicBool::new(false));
    let mut copy = tokio::task::spawn_blocking({
        let (dir, max_bytes) = (dir.to_owned(), options.max_bytes);
        let (received, abandoned) = (Arc::clone(&received), Arc::clone(&abandoned));
        move || copy_file(&path, &dir, max_bytes, gzip, &received, &abandoned)
    });
    let check_every = options.read_timeout.min(Duration::from_millis(250));
    let (mut seen, mut since) = (0, tokio::time::Instant::now());
    loop {
        match tokio::time::timeout(check_every, &mut copy).await {
            Ok(done) => {
                return done
                    .unwrap_or_else(|e| Err(FetchErrorKind::Io(format!("the copy stopped: {e}"))));
            }
            Err(_) => {
                let now = received.load(Ordering::Relaxed);
                if now != seen {
                    (seen, since) = (now, tokio::time::Instant::now());
                } else if since.elapsed() >= options.read_timeout {
                    abandoned.store(true, Ordering::Relaxed);
                    return Err(FetchErrorKind::Timeout { bytes: now });
                }
            }
        }
    }
}

fn copy_file(
    path: &Path,
    dir: &Path,
    max_bytes: u64,
    gzip: bool,
    progress: &AtomicU64,
    abandoned: &AtomicBool,
) -> Result<Fetched, FetchErrorKind> {
    let mut input = super::local::open_regular(path)
        .map_err(|e| FetchErrorKind::Io(format!("cannot open {}: {e}", path.display())))?;
    let mut sink = Sink::new(dir, max_bytes, gzip)?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut received = 0u64;
    loop {
        if abandoned.load(Ordering::Relaxed) {
            return Err(FetchErrorKind::Io(format!(
                "the copy of {} was abandoned",
                path.display()
            )));
        }
        let n = io::Read::read(&mut input, &mut buf)
            .map_err(|e| FetchErrorKind::Io(format!("cannot read {}: {e}", path.display())))?;
        if n == 0 {
            break;
        }
        received += n as u64;
        progress.store(received, Ordering::Relaxed);
        sink.write(&buf[..n], received)?;
    }
    let (file, bytes) = sink.finish(received)?;
    Ok(Fetched::Downloaded(Download {
        file,
        bytes,
        etag: None,
        last_modified: None,
        http_status: None,
        tries: 1,
    }))
}

/// The temporary file being written, through a gzip decoder when the source is compressed,
/// counting (decompressed) bytes against the limit.
struct Sink {
    out: SinkWriter,
}

enum SinkWriter {
    Plain(Limited),
    Gzip(Box<GzDecoder<Limited>>),
}

struct Limited {
    file: io::BufWriter<tempfile::NamedTempFile>,
    written: u64,
    max: u64,
}

impl Write for Limited {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.written + buf.len() as u64 > self.max {
            return Err(io::Error::new(io::ErrorKind::FileTooLarge, "max_bytes"));
        }
        self.written += buf.len() as u64;
        self.file.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Sink {
    fn new(dir: &Path, max: u64, gzip: bool) -> Result<Sink, FetchErrorKind> {
        std::fs::create_dir_all(dir)
            .map_err(|e| FetchErrorKind::Io(format!("cannot create {}: {e}", dir.display())))?;
        let file = tempfile::Builder::new()
            .prefix(".download-")
            .tempfile_in(dir)
            .map_err(|e| {
                FetchErrorKind::Io(format!(
                    "cannot create a temporary file in {}: {e}",
                    dir.display()
                ))
            })?;
        let limited = Limited {
            file: io::BufWriter::with_capacity(256 * 1024, file),
            written: 0,
            max,
        };
        let out = if gzip {
            SinkWriter::Gzip(Box::new(GzDecoder::new(limited)))
        } else {
            SinkWriter::Plain(limited)
        };
        Ok(Sink { out })
    }

    fn error(&self, e: io::Error, received: u64) -> FetchErrorKind {
        let max = match &self.out {
            SinkWriter::Plain(l) => l.max,
            SinkWriter::Gzip(g) => g.get_ref().max,
        };
        match e.kind() {
            io::ErrorKind::FileTooLarge => FetchErrorKind::TooLarge { max },
            _ if matches!(self.out, SinkWriter::Gzip(_)) => FetchErrorKind::Gzip {
                bytes: received,
                message: e.to_string(),
            },
            _ => FetchErrorKind::Io(format!("cannot write the download: {e}")),
        }
    }

    fn write(&mut self, bytes: &[u8], received: u64) -> Result<(), FetchErrorKind> {
        let result = match &mut self.out {
            SinkWriter::Plain(w) => w.write_all(bytes),
            SinkWriter::Gzip(w) => w.write_all(bytes),
        };
        result.map_err(|e| self.error(e, received))
    }

    fn finish(self, received: u64) -> Result<(tempfile::NamedTempFile, u64), FetchErrorKind> {
        let limited = match self.out {
            SinkWriter::Plain(l) => l,
            SinkWriter::Gzip(g) => g.finish().map_err(|e| FetchErrorKind::Gzip {
                bytes: received,
                message: e.to_string(),
            })?,
        };
        let written = limited.written;
        let file = limited
            .file
            .into_inner()
            .map_err(|e| FetchErrorKind::Io(format!("cannot write the download: {}", e.error())))?;
        file.as_file()
            .sync_all()
            .map_err(|e| FetchErrorKind::Io(format!("cannot sync the download: {e}")))?;
        Ok((file, written))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_urls_are_masked() {
        assert_eq!(
            mask_url("https://bob:s3cr%40t@example.com/x.xml"),
            "https://***@example.com/x.xml"
        );
        assert_eq!(
            mask_url("https://example.com/x.xml"),
            "https://example.com/x.xml"
        );
        assert_eq!(mask_url("samples/x.xml"), "samples/x.xml");
    }

    #[test]
    fn only_transient_failures_are_retried() {
        assert!(
            FetchErrorKind::Status {
                status: "503 Service Unavailable".into(),
                hint: ""
            }
            .retryable()
        );
        assert!(
            !FetchErrorKind::Status {
                status: "404 Not Found".into(),
                hint: ""
            }
            .retryable()
        );
        assert!(FetchErrorKind::Timeout { bytes: 5 }.retryable());
        assert!(!FetchErrorKind::TooLarge { max: 1 }.retryable());
    }
}
