//! Fetching the external source by URL (`http://`, `https://`, `file://` or a plain path) into
//! a temporary file, streaming: the body never sits in memory. Conditional GET, retries with
//! exponential backoff and jitter, timeouts, a size limit, gzip, and errors that say which URL
//! (credentials masked), which status, how many bytes and which try. An LDAP source's
//! read (`super::ldap::search`) goes through the same tries and limits.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};

use super::carddav::{self, CarddavRead};
pub use super::download::{
    Auth, Download, DownloadProgress, FetchError, FetchErrorKind, Fetched, Silent,
};
use super::download::{Sink, transport_error};

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
    /// For an LDAP source (`ldap://`, `ldaps://`): the search, read into a staged LDIF file.
    pub ldap: Option<crate::extract::ldap::search::LdapSearch>,
    /// A CardDAV address book: synchronised (`etag` holds the staged copy's sync-token).
    pub carddav: bool,
    /// The last staged copy, whose unchanged parts a CardDAV read copies.
    pub staged: Option<PathBuf>,
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
    if !is_http(url) && options.ldap.is_none() {
        attempt.store(1, Ordering::Relaxed);
        return copy_local(local_path(url), dir, options, url.ends_with(".gz"))
            .await
            .map_err(|k| fail(k, 1));
    }
    let mut http = None;
    if options.ldap.is_none() {
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| fail(FetchErrorKind::InvalidUrl(e.to_string()), 0))?;
        let client = reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .read_timeout(options.read_timeout)
            .user_agent(concat!("ucm/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| fail(FetchErrorKind::Connect(e.to_string()), 0))?;
        http = Some((client, parsed));
    }
    let one_try = || {
        let n = attempt.fetch_add(1, Ordering::Relaxed) + 1;
        let http = http.clone();
        let progress = Arc::clone(&progress);
        async move {
            let fetched = match (&options.ldap, http) {
                (Some(search), _) => read_directory(url, search, dir, options, &*progress).await,
                (None, Some((client, parsed))) if options.carddav => {
                    let read = CarddavRead {
                        auth: options.auth.as_ref(),
                        token: options.etag.as_deref(),
                        staged: options.staged.as_deref(),
                        max_bytes: options.max_bytes,
                    };
                    carddav::sync(&client, parsed, dir, &read, &*progress).await
                }
                (None, Some((client, parsed))) => {
                    let gzip = parsed.path().ends_with(".gz");
                    download(&client, parsed, dir, options, gzip, &*progress).await
                }
                (None, None) => unreachable!("an HTTP fetch has its client"),
            };
            fetched.map_err(|k| (k, n))
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

/// One read of an LDAP source into a staged LDIF file.
async fn read_directory(
    url: &str,
    search: &crate::extract::ldap::search::LdapSearch,
    dir: &Path,
    options: &FetchOptions,
    progress: &dyn DownloadProgress,
) -> Result<Fetched, FetchErrorKind> {
    let limits = crate::extract::ldap::search::ReadLimits {
        connect_timeout: options.connect_timeout,
        read_timeout: options.read_timeout,
        max_bytes: options.max_bytes,
    };
    crate::extract::ldap::search::read_directory(url, search, dir, &limits, progress)
        .await
        .map(Fetched::Downloaded)
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
