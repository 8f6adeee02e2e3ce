//! What fetching a source produces, whatever its kind (a download by URL, a local copy, an
//! LDAP directory read): the staged temporary file and its size and validators, progress
//! callbacks, the credentials, the errors (which URL, which try, what failed), and the
//! [`Sink`] every reader writes the temporary file through (a size limit, gzip).

use std::fmt;
use std::io::{self, Write};
use std::path::Path;

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
    /// The source says nothing changed since the staged copy (a CardDAV address book's
    /// sync-token or CTag): why.
    Unchanged(String),
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
    /// The source's server answered, and refused (an LDAP bind, a search, an untrusted
    /// certificate): the message says what to change.
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Io(String),
}

impl FetchErrorKind {
    pub(crate) fn retryable(&self) -> bool {
        match self {
            FetchErrorKind::Connect(_)
            | FetchErrorKind::Timeout { .. }
            | FetchErrorKind::Body { .. } => true,
            FetchErrorKind::Status { status, .. } => status.starts_with('5'),
            _ => false,
        }
    }
}

/// The temporary file being written, through a gzip decoder when the source is compressed,
/// counting (decompressed) bytes against the limit.
pub(crate) struct Sink {
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
    pub(crate) fn new(dir: &Path, max: u64, gzip: bool) -> Result<Sink, FetchErrorKind> {
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

    pub(crate) fn write(&mut self, bytes: &[u8], received: u64) -> Result<(), FetchErrorKind> {
        let result = match &mut self.out {
            SinkWriter::Plain(w) => w.write_all(bytes),
            SinkWriter::Gzip(w) => w.write_all(bytes),
        };
        result.map_err(|e| self.error(e, received))
    }

    pub(crate) fn finish(
        self,
        received: u64,
    ) -> Result<(tempfile::NamedTempFile, u64), FetchErrorKind> {
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

/// The transport error's message with its causes; `url` (which reqwest quotes) masked.
pub(crate) fn transport_error(e: &reqwest::Error, bytes: u64, url: &str) -> FetchErrorKind {
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
