//! Reading an LDAP directory (OpenLDAP, Active Directory, ...) into a staged LDIF file:
//! connect (`ldap://`, `ldaps://`, or StartTLS; the certificate always verified), bind as
//! the configured DN, search page by page (simple paged results, RFC 2696, so a server whose
//! size limit is below the number of entries still yields every entry), and write each entry
//! as it arrives. Memory holds one page at most; the file is what the merge reads
//! (`super::ldif`), so an LDAP source is staged, compared ("unchanged") and kept as last good
//! copy exactly as a downloaded file is.
//!
//! Failures say what failed and where, in words an administrator acts on: `LDAP bind as
//! cn=ucm,... to ldaps://dc1... refused: invalid credentials (49)`, `the certificate of
//! dc1... is not trusted: set ca_file`, `cannot connect: connection refused`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::asn1::{PL, StructureTag};
use ldap3::{LdapConnAsync, LdapConnSettings, LdapError, ResultEntry};

use super::ldif::{Attributes, LdifWriter};
use crate::extract::download::{Download, DownloadProgress, FetchErrorKind, Sink};

/// `[source.ldap]`, checked, with its password read.
#[derive(Clone)]
pub struct LdapSearch {
    pub base_dn: String,
    pub filter: String,
    pub scope: Scope,
    /// The bind DN and its password; None: anonymous.
    pub bind: Option<(String, String)>,
    pub start_tls: bool,
    pub ca_file: Option<PathBuf>,
    pub page_size: i32,
    /// The attributes asked for (`*`: all).
    pub attributes: Vec<String>,
}

impl std::fmt::Debug for LdapSearch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LdapSearch")
            .field("base_dn", &self.base_dn)
            .field("filter", &self.filter)
            .field("bind_dn", &self.bind.as_ref().map(|(dn, _)| dn))
            .field("start_tls", &self.start_tls)
            .finish_non_exhaustive()
    }
}

/// How deep the search goes under its base.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Base,
    One,
    Sub,
}

/// What limits a read: the connection and per-answer timeouts, the staged file's size.
pub struct ReadLimits {
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub max_bytes: u64,
}

/// Reads the directory at `url` into a temporary LDIF file in `dir`.
pub async fn read_directory(
    url: &str,
    search: &LdapSearch,
    dir: &Path,
    limits: &ReadLimits,
    progress: &dyn DownloadProgress,
) -> Result<Download, FetchErrorKind> {
    let secure = url.starts_with("ldaps://") || search.start_tls;
    if !url.starts_with("ldap://") && !url.starts_with("ldaps://") {
        return Err(FetchErrorKind::InvalidUrl(format!(
            "{url}: an LDAP source's url starts with ldap:// or ldaps://"
        )));
    }
    if !secure && search.bind.is_some() {
        tracing::warn!(
            "{url}: binding without TLS sends the password in clear; use ldaps:// or start_tls = true"
        );
    }
    let mut settings = LdapConnSettings::new()
        .set_conn_timeout(limits.connect_timeout)
        .set_starttls(search.start_tls);
    if let Some(ca) = &search.ca_file {
        settings = settings.set_config(tls_config(ca)?);
    }
    let (connection, mut ldap) = LdapConnAsync::with_settings(settings, url)
        .await
        .map_err(|e| connect_error(e, url))?;
    ldap3::drive!(connection);
    ldap.with_timeout(limits.read_timeout);
    if let Some((dn, password)) = &search.bind {
        let answer = ldap
            .simple_bind(dn, password)
            .await
            .map_err(|e| connect_error(e, url))?;
        if answer.rc != 0 {
            return Err(FetchErrorKind::Refused(format!(
                "LDAP bind as {dn} to {url} refused: {}{}",
                result_words(answer.rc),
                detail(&answer.text)
            )));
        }
    }
    progress.start(None);
    let written = entries_to_file(&mut ldap, search, dir, limits, url, progress).await;
    let _ = ldap.unbind().await;
    progress.finish();
    let (file, bytes) = written?;
    Ok(Download {
        file,
        bytes,
        etag: None,
        last_modified: None,
        http_status: None,
        tries: 1,
    })
}

/// The paged search, each entry written to the staged file as it arrives.
async fn entries_to_file(
    ldap: &mut ldap3::Ldap,
    search: &LdapSearch,
    dir: &Path,
    limits: &ReadLimits,
    url: &str,
    progress: &dyn DownloadProgress,
) -> Result<(tempfile::NamedTempFile, u64), FetchErrorKind> {
    let scope = match search.scope {
        Scope::Base => ldap3::Scope::Base,
        Scope::One => ldap3::Scope::OneLevel,
        Scope::Sub => ldap3::Scope::Subtree,
    };
    let adapters: Vec<Box<dyn Adapter<_, _>>> = vec![
        Box::new(EntriesOnly::new()),
        Box::new(PagedResults::new(search.page_size)),
    ];
    let mut stream = ldap
        .streaming_search_with(
            adapters,
            &search.base_dn,
            scope,
            &search.filter,
            search.attributes.clone(),
        )
        .await
        .map_err(|e| search_error(e, url))?;
    let mut sink = Sink::new(dir, limits.max_bytes, false)?;
    let mut ldif = LdifWriter::new();
    let mut written = 0u64;
    sink.write(ldif.header(), 0)?;
    while let Some(entry) = stream.next().await.map_err(|e| search_error(e, url))? {
        let (dn, attributes) = entry_parts(entry).map_err(|why| {
            FetchErrorKind::Refused(format!("{url} sent an entry ucm cannot read: {why}"))
        })?;
        let text = ldif.entry(&dn, &attributes);
        written += text.len() as u64;
        sink.write(text, written)?;
        progress.advance(written);
    }
    let done = stream.finish().await;
    if done.rc != 0 {
        return Err(FetchErrorKind::Refused(format!(
            "the search of {} under {} at {url} failed: {}{}",
            search.filter,
            search.base_dn,
            result_words(done.rc),
            detail(&done.text)
        )));
    }
    sink.finish(written)
}

/// An entry's DN and its attributes (values that are not UTF-8 are binary: left out).
fn entry_parts(entry: ResultEntry) -> Result<(String, Attributes), &'static str> {
    let mut parts = constructed(entry.0)?.into_iter();
    let dn = primitive(parts.next().ok_or("no DN")?)?;
    let dn = String::from_utf8(dn).map_err(|_| "a DN that is not UTF-8")?;
    let mut attributes = Vec::new();
    for attribute in constructed(parts.next().ok_or("no attributes")?)? {
        let mut pair = constructed(attribute)?.into_iter();
        let name = primitive(pair.next().ok_or("an attribute without a name")?)?;
        let name = String::from_utf8(name).map_err(|_| "an attribute name that is not UTF-8")?;
        let mut values = Vec::new();
        for value in constructed(pair.next().ok_or("an attribute without values")?)? {
            if let Ok(text) = String::from_utf8(primitive(value)?) {
                values.push(text);
            }
        }
        attributes.push((name, values));
    }
    Ok((dn, attributes))
}

fn constructed(tag: StructureTag) -> Result<Vec<StructureTag>, &'static str> {
    match tag.payload {
        PL::C(children) => Ok(children),
        PL::P(_) => Err("a primitive value where a sequence belongs"),
    }
}

fn primitive(tag: StructureTag) -> Result<Vec<u8>, &'static str> {
    match tag.payload {
        PL::P(bytes) => Ok(bytes),
        PL::C(_) => Err("a sequence where a value belongs"),
    }
}

/// A rustls configuration that trusts only the CA certificates in the PEM file `ca`.
fn tls_config(ca: &Path) -> Result<Arc<rustls::ClientConfig>, FetchErrorKind> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let unreadable =
        |why: String| FetchErrorKind::Refused(format!("ca_file {}: {why}", ca.display()));
    let mut roots = rustls::RootCertStore::empty();
    let certificates = CertificateDer::pem_file_iter(ca).map_err(|e| unreadable(e.to_string()))?;
    for certificate in certificates {
        let certificate = certificate.map_err(|e| unreadable(e.to_string()))?;
        roots
            .add(certificate)
            .map_err(|e| unreadable(format!("not a CA certificate ucm can use: {e}")))?;
    }
    if roots.is_empty() {
        return Err(unreadable(
            "no certificate in it (a PEM file: -----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| unreadable(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Why connecting (or binding) failed, in an administrator's words.
fn connect_error(e: LdapError, url: &str) -> FetchErrorKind {
    if let Some(tls) = tls_cause(&e) {
        return FetchErrorKind::Refused(tls_words(tls, url));
    }
    match e {
        LdapError::Timeout { .. } => FetchErrorKind::Timeout { bytes: 0 },
        LdapError::Io { source } => FetchErrorKind::Connect(source.to_string()),
        LdapError::LdapResult { result } => FetchErrorKind::Refused(format!(
            "{url} refused: {}{}",
            result_words(result.rc),
            detail(&result.text)
        )),
        LdapError::UrlParsing { source } => FetchErrorKind::InvalidUrl(format!("{url}: {source}")),
        other => FetchErrorKind::Connect(other.to_string()),
    }
}

/// Why the search failed.
fn search_error(e: LdapError, url: &str) -> FetchErrorKind {
    match e {
        LdapError::Timeout { .. } => FetchErrorKind::Timeout { bytes: 0 },
        LdapError::FilterParsing => {
            FetchErrorKind::Refused("[source.ldap] filter is not an LDAP filter".into())
        }
        other => connect_error(other, url),
    }
}

/// The rustls error under an LDAP error, if the TLS handshake is what failed.
fn tls_cause(e: &LdapError) -> Option<&rustls::Error> {
    if let LdapError::Rustls { source } = e {
        return Some(source);
    }
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(error) = cause {
        if let Some(tls) = error.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        if let Some(io) = error.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
            && let Some(tls) = inner.downcast_ref::<rustls::Error>()
        {
            return Some(tls);
        }
        cause = error.source();
    }
    None
}

fn tls_words(e: &rustls::Error, url: &str) -> String {
    use rustls::CertificateError;
    let host = url.split("://").nth(1).unwrap_or(url);
    match e {
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => format!(
            "the certificate of {host} is not trusted: set [source.ldap] ca_file to the PEM file \
             of the CA that signed it"
        ),
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => format!(
            "the certificate of {host} is not issued for that name: use the host name the \
             certificate names in the url"
        ),
        rustls::Error::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        ) => format!("the certificate of {host} has expired"),
        other => format!("TLS with {host} failed: {other}"),
    }
}

/// An LDAP result code in words, with the code (`invalid credentials (49)`).
fn result_words(rc: u32) -> String {
    let words = match rc {
        1 => "operations error",
        2 => "protocol error",
        3 => "time limit exceeded",
        4 => {
            "size limit exceeded (the server caps paged searches too: raise the service \
             account's limit, OpenLDAP's size.prtotal or AD's MaxResultSetSize, or narrow \
             base_dn and filter)"
        }
        7 => "authentication method not supported",
        8 => "stronger authentication required (use ldaps:// or start_tls = true)",
        11 => "administrative limit exceeded",
        12 => "unavailable critical extension (the server does not page results)",
        13 => "confidentiality required (use ldaps:// or start_tls = true)",
        32 => "no such object (check base_dn)",
        34 => "invalid DN syntax (check bind_dn and base_dn)",
        48 => "inappropriate authentication",
        49 => "invalid credentials",
        50 => "insufficient access rights",
        51 => "busy",
        52 => "unavailable",
        53 => "unwilling to perform",
        _ => "an error",
    };
    format!("{words} ({rc})")
}

/// The server's diagnostic message, when it gave one.
fn detail(text: &str) -> String {
    let text = text.trim_matches(|c: char| c.is_whitespace() || c == '\0');
    if text.is_empty() {
        String::new()
    } else {
        format!(": the server says {text:?}")
    }
}
