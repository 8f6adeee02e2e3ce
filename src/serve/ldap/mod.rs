//! The LDAP directory for phones (`[ldap]` of the service config): a read-only LDAPv3 server
//! over one pipeline's merged table, so desk phones and softphones search the company
//! directory as their user types, and PBXes find caller names, with no other server.
//!
//! The wire format is kanidm's `ldap3_proto` on tokio; this module answers its messages:
//! binds (anonymous when allowed, simple with the configured DN and password, compared in
//! constant time, wrong ones throttled per client address as the phonebooks' are), searches
//! ([`search`], entries as [`entry`] writes them), compare, WhoAmI and StartTLS. Changes
//! (add, modify, delete, modify DN) are refused `unwillingToPerform`; other extended
//! operations `protocolError`. Each connection is bounded: at most `max_connections` open,
//! closed after `idle_timeout_secs` of silence (or of a client not reading its answers), a
//! message larger than `max_request_bytes` or one that is not LDAP closes that connection
//! only (logged). Every answer and refusal is counted in `ucm_ldap_requests_total{op,result}`.

mod config;
pub mod entry;
pub mod search;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt as _, StreamExt as _};
use ldap3_proto::LdapCodec;
use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::{
    LdapBindCred, LdapBindResponse, LdapExtendedResponse, LdapFilter, LdapMsg, LdapOp,
    LdapPartialAttribute, LdapResult, LdapResultCode, LdapSearchRequest, LdapSearchResultEntry,
    LdapSearchScope,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tokio_util::codec::Framed;

pub use config::{LdapConfig, LdapSettings};
use entry::{ContactRow, EntryStyle, Wanted, escape_rdn_value, parse_dn};
use search::{Cursor, Found};

use crate::serve::Service;
use crate::serve::search::{fold_case, same_folded};

const START_TLS: &str = "1.3.6.1.4.1.1466.20037";
const WHO_AM_I: &str = "1.3.6.1.4.1.4203.1.11.3";
const PAGED_RESULTS: &str = "1.2.840.113556.1.4.319";
const NOTICE_OF_DISCONNECTION: &str = "1.3.6.1.4.1.1466.20036";

/// A connection's byte stream: TCP, or TLS over it.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

type Connection = Framed<Box<dyn Io>, GuardedCodec>;

/// `ldap3_proto`'s codec behind a look at each message's first bytes: an LDAP message is a
/// BER SEQUENCE (0x30) whose length comes next, so a stream that starts otherwise (an HTTP
/// request, noise) or announces more than `max_request_bytes` is refused at once, rather
/// than read until the buffer fills or the connection idles out.
struct GuardedCodec {
    inner: LdapCodec,
    max_request_bytes: usize,
}

impl GuardedCodec {
    fn new(max_request_bytes: usize) -> GuardedCodec {
        GuardedCodec {
            inner: LdapCodec::new(Some(max_request_bytes), None),
            max_request_bytes,
        }
    }
}

impl tokio_util::codec::Decoder for GuardedCodec {
    type Item = LdapMsg;
    type Error = std::io::Error;

    fn decode(&mut self, buf: &mut bytes::BytesMut) -> Result<Option<LdapMsg>, std::io::Error> {
        let invalid =
            |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
        if let Some(&first) = buf.first()
            && first != 0x30
        {
            return Err(invalid("not an LDAP message (no BER SEQUENCE)"));
        }
        if let Some(&length) = buf.get(1)
            && length & 0x80 != 0
        {
            let bytes = usize::from(length & 0x7f);
            if bytes == 0 || bytes > 4 {
                return Err(invalid(
                    "an LDAP message of indefinite or impossible length",
                ));
            }
            if let Some(digits) = buf.get(2..2 + bytes) {
                let declared = digits
                    .iter()
                    .fold(0usize, |n, b| (n << 8) | usize::from(*b));
                if declared > self.max_request_bytes {
                    return Err(invalid(&format!(
                        "an LDAP message of {declared} bytes, over max_request_bytes ({})",
                        self.max_request_bytes
                    )));
                }
            }
        }
        self.inner.decode(buf)
    }
}

impl tokio_util::codec::Encoder<LdapMsg> for GuardedCodec {
    type Error = std::io::Error;

    fn encode(&mut self, msg: LdapMsg, buf: &mut bytes::BytesMut) -> Result<(), std::io::Error> {
        self.inner.encode(msg, buf)
    }
}

/// Binds the listeners `[ldap]` asks for and serves them until `stop`; logs where.
pub async fn listen(
    service: Arc<Service>,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let Some(settings) = service.ldap.clone() else {
        return Ok(Vec::new());
    };
    let settings = Arc::new(settings);
    let open = Arc::new(tokio::sync::Semaphore::new(settings.config.max_connections));
    let mut tasks = Vec::new();
    for (address, tls_now) in [
        (settings.config.listen.clone(), false),
        (settings.config.listen_tls.clone(), true),
    ] {
        let Some(address) = address else { continue };
        let listener = tokio::net::TcpListener::bind(&address)
            .await
            .map_err(|e| anyhow::anyhow!("[ldap] cannot listen on {address}: {e}"))?;
        let local = listener.local_addr()?;
        let scheme = if tls_now { "ldaps" } else { "ldap" };
        tracing::info!(
            pipeline = %settings.config.pipeline,
            base_dn = %settings.config.base_dn,
            start_tls = settings.tls.is_some() && !tls_now,
            "LDAP directory listening on {scheme}://{local}"
        );
        tasks.push(tokio::spawn(accept_loop(
            Arc::clone(&service),
            Arc::clone(&settings),
            listener,
            tls_now,
            Arc::clone(&open),
            stop.clone(),
        )));
    }
    Ok(tasks)
}

async fn accept_loop(
    service: Arc<Service>,
    settings: Arc<LdapSettings>,
    listener: tokio::net::TcpListener,
    tls_now: bool,
    open: Arc<tokio::sync::Semaphore>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.changed() => return,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors, most likely: let some close.
                tracing::warn!("LDAP: cannot accept a connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if !crate::serve::phone_access::network_allows(&settings.allow, Some(peer.ip())) {
            service.metrics.ldap("connect", "network_not_allowed");
            continue;
        }
        let _ = stream.set_nodelay(true);
        let Ok(permit) = Arc::clone(&open).try_acquire_owned() else {
            service.metrics.ldap("connect", "busy");
            tokio::spawn(async move {
                let mut connection: Connection =
                    Framed::new(Box::new(stream), GuardedCodec::new(1024));
                let notice = disconnection(LdapResultCode::Busy, "too many open connections");
                let _ = tokio::time::timeout(Duration::from_secs(5), connection.send(notice)).await;
            });
            continue;
        };
        let (service, settings, stop) = (Arc::clone(&service), Arc::clone(&settings), stop.clone());
        tokio::spawn(async move {
            serve_connection(service, settings, stream, peer, tls_now, stop).await;
            drop(permit);
        });
    }
}

/// Who a connection is bound as.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Bound {
    /// Not bound, or bound anonymously.
    Anonymous,
    /// Bound with the configured DN (as the client wrote it).
    As(String),
}

/// What the connection does after answering a message.
enum Next {
    Continue,
    Close,
    StartTls,
}

async fn serve_connection(
    service: Arc<Service>,
    settings: Arc<LdapSettings>,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    tls_now: bool,
    mut stop: watch::Receiver<bool>,
) {
    let idle = Duration::from_secs(settings.config.idle_timeout_secs);
    let codec = || GuardedCodec::new(settings.config.max_request_bytes);
    let stream: Box<dyn Io> = if tls_now {
        let Some(tls) = &settings.tls else { return };
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(tls));
        match tokio::time::timeout(idle, acceptor.accept(stream)).await {
            Ok(Ok(tls)) => Box::new(tls),
            _ => {
                service.metrics.ldap("connect", "tls_handshake_failed");
                return;
            }
        }
    } else {
        Box::new(stream)
    };
    let mut connection: Connection = Framed::new(stream, codec());
    let mut session = Session {
        bound: Bound::Anonymous,
        tls: tls_now,
        peer,
    };
    loop {
        let message = tokio::select! {
            message = tokio::time::timeout(idle, connection.next()) => message,
            _ = stop.changed() => {
                let notice = disconnection(LdapResultCode::Unavailable, "the service is stopping");
                let _ = tokio::time::timeout(Duration::from_secs(1), connection.send(notice)).await;
                return;
            }
        };
        let message = match message {
            Err(_) => {
                tracing::debug!(%peer, "LDAP connection idle for {idle:?}: closed");
                return;
            }
            Ok(None) => return,
            Ok(Some(Err(e))) => {
                tracing::warn!(%peer, "LDAP: a message that could not be read ({e}): connection closed");
                service.metrics.ldap("malformed", "protocol_error");
                let notice = disconnection(LdapResultCode::ProtocolError, "malformed LDAP message");
                let _ = tokio::time::timeout(Duration::from_secs(1), connection.send(notice)).await;
                return;
            }
            Ok(Some(Ok(message))) => message,
        };
        let (answers, next) = answer(&service, &settings, &mut session, message).await;
        let sent = tokio::time::timeout(idle, async {
            for message in answers {
                connection.feed(message).await?;
            }
            connection.flush().await
        })
        .await;
        if !matches!(sent, Ok(Ok(()))) {
            tracing::debug!(%peer, "LDAP client not reading its answers: connection closed");
            return;
        }
        match next {
            Next::Continue => {}
            Next::Close => return,
            Next::StartTls => {
                let parts = connection.into_parts();
                if !parts.read_buf.is_empty() {
                    // RFC 4511 §4.14.1: nothing may follow the request before the answer.
                    service.metrics.ldap("malformed", "protocol_error");
                    return;
                }
                let Some(tls) = &settings.tls else { return };
                let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(tls));
                match tokio::time::timeout(idle, acceptor.accept(parts.io)).await {
                    Ok(Ok(tls)) => {
                        connection = Framed::new(Box::new(tls), codec());
                        session.tls = true;
                        // RFC 4513 §3.1.3: the client binds again over TLS if it wants.
                        session.bound = Bound::Anonymous;
                    }
                    _ => {
                        service.metrics.ldap("start_tls", "tls_handshake_failed");
                        return;
                    }
                }
            }
        }
    }
}

/// A connection's state.
struct Session {
    bound: Bound,
    tls: bool,
    peer: SocketAddr,
}

/// The name of a result code in `/metrics`: its name in snake case.
fn code_name(code: &LdapResultCode) -> String {
    let name = format!("{code:?}");
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

fn result(code: LdapResultCode, message: &str) -> LdapResult {
    LdapResult {
        code,
        matcheddn: String::new(),
        message: message.to_owned(),
        referral: Vec::new(),
    }
}

fn reply(msgid: i32, op: LdapOp) -> LdapMsg {
    LdapMsg {
        msgid,
        op,
        ctrl: Vec::new(),
    }
}

/// RFC 4511 §4.4.1: the server is closing the connection, and why.
fn disconnection(code: LdapResultCode, message: &str) -> LdapMsg {
    reply(
        0,
        LdapOp::ExtendedResponse(LdapExtendedResponse {
            res: result(code, message),
            name: Some(NOTICE_OF_DISCONNECTION.to_owned()),
            value: None,
        }),
    )
}

const READ_ONLY: &str = "this directory is read-only: change contacts in the external source or \
     the internal directory, and ucm's next run brings the change here";

/// The answers to one message, and what the connection does next.
async fn answer(
    service: &Service,
    settings: &LdapSettings,
    session: &mut Session,
    message: LdapMsg,
) -> (Vec<LdapMsg>, Next) {
    let LdapMsg { msgid, op, ctrl } = message;
    let metrics = &service.metrics;
    let refuse = |op: &str, code: LdapResultCode, message: &str, wrap: fn(LdapResult) -> LdapOp| {
        metrics.ldap(op, &code_name(&code));
        (
            vec![reply(msgid, wrap(result(code, message)))],
            Next::Continue,
        )
    };
    match op {
        LdapOp::BindRequest(request) => {
            let (code, message) = bind(
                service,
                settings,
                session,
                request.version,
                &request.dn,
                &request.cred,
            );
            metrics.ldap("bind", &code_name(&code));
            let response = LdapBindResponse {
                res: result(code, &message),
                saslcreds: None,
            };
            (
                vec![reply(msgid, LdapOp::BindResponse(response))],
                Next::Continue,
            )
        }
        LdapOp::UnbindRequest => {
            metrics.ldap("unbind", "success");
            (Vec::new(), Next::Close)
        }
        LdapOp::SearchRequest(request) => {
            let answers = search_answers(service, settings, session, msgid, &request, &ctrl).await;
            (answers, Next::Continue)
        }
        LdapOp::CompareRequest(request) => {
            let value = String::from_utf8_lossy(&request.val).into_owned();
            let (code, message) = match compare(
                service,
                settings,
                session,
                &request.dn,
                &request.atype,
                value,
            )
            .await
            {
                Ok(true) => (LdapResultCode::CompareTrue, String::new()),
                Ok(false) => (LdapResultCode::CompareFalse, String::new()),
                Err(refusal) => refusal,
            };
            refuse("compare", code, &message, LdapOp::CompareResult)
        }
        LdapOp::AddRequest(_) => refuse(
            "add",
            LdapResultCode::UnwillingToPerform,
            READ_ONLY,
            LdapOp::AddResponse,
        ),
        LdapOp::ModifyRequest(_) => refuse(
            "modify",
            LdapResultCode::UnwillingToPerform,
            READ_ONLY,
            LdapOp::ModifyResponse,
        ),
        LdapOp::DelRequest(_) => refuse(
            "delete",
            LdapResultCode::UnwillingToPerform,
            READ_ONLY,
            LdapOp::DelResponse,
        ),
        LdapOp::ModifyDNRequest(_) => refuse(
            "modify_dn",
            LdapResultCode::UnwillingToPerform,
            READ_ONLY,
            LdapOp::ModifyDNResponse,
        ),
        LdapOp::AbandonRequest(_) => {
            // Each search is answered whole before the next message is read: nothing to stop.
            metrics.ldap("abandon", "success");
            (Vec::new(), Next::Continue)
        }
        LdapOp::ExtendedRequest(request) => {
            let extended = |code: LdapResultCode,
                            message: &str,
                            name: Option<&str>,
                            value: Option<Vec<u8>>| {
                LdapOp::ExtendedResponse(LdapExtendedResponse {
                    res: result(code, message),
                    name: name.map(str::to_owned),
                    value,
                })
            };
            match request.name.as_str() {
                START_TLS => {
                    let (code, message, next) = if settings.tls.is_none() {
                        (
                            LdapResultCode::Unavailable,
                            "StartTLS needs a certificate: [ldap] tls_certificate and tls_key",
                            Next::Continue,
                        )
                    } else if session.tls {
                        (
                            LdapResultCode::OperationsError,
                            "TLS is already on",
                            Next::Continue,
                        )
                    } else {
                        (LdapResultCode::Success, "", Next::StartTls)
                    };
                    metrics.ldap("start_tls", &code_name(&code));
                    (
                        vec![reply(msgid, extended(code, message, Some(START_TLS), None))],
                        next,
                    )
                }
                WHO_AM_I => {
                    metrics.ldap("who_am_i", "success");
                    let who = match &session.bound {
                        Bound::Anonymous => String::new(),
                        Bound::As(dn) => format!("dn:{dn}"),
                    };
                    (
                        vec![reply(
                            msgid,
                            extended(LdapResultCode::Success, "", None, Some(who.into_bytes())),
                        )],
                        Next::Continue,
                    )
                }
                other => {
                    metrics.ldap("extended", "protocol_error");
                    let message = format!(
                        "extended operation {other} is not supported (StartTLS and WhoAmI are)"
                    );
                    (
                        vec![reply(
                            msgid,
                            extended(LdapResultCode::ProtocolError, &message, None, None),
                        )],
                        Next::Continue,
                    )
                }
            }
        }
        // A response sent to the server: not a client's message.
        _ => {
            metrics.ldap("malformed", "protocol_error");
            tracing::warn!(peer = %session.peer, "LDAP: a client sent a response, not a request: connection closed");
            (
                vec![disconnection(
                    LdapResultCode::ProtocolError,
                    "not an LDAP request",
                )],
                Next::Close,
            )
        }
    }
}

/// A bind's result code and message; sets who the session is bound as.
fn bind(
    service: &Service,
    settings: &LdapSettings,
    session: &mut Session,
    version: i64,
    dn: &str,
    cred: &LdapBindCred,
) -> (LdapResultCode, String) {
    use crate::serve::http::constant_time_eq;
    // RFC 4511 §4.2.1: a bind that fails leaves the connection anonymous.
    session.bound = Bound::Anonymous;
    if version != 3 {
        return (
            LdapResultCode::ProtocolError,
            "only LDAP version 3 is supported".into(),
        );
    }
    let LdapBindCred::Simple(password) = cred else {
        return (
            LdapResultCode::AuthMethodNotSupported,
            "only simple binds are supported".into(),
        );
    };
    if dn.is_empty() && password.is_empty() {
        // Anonymous: always a success (clients bind so before probing the root DSE); the
        // contacts are only shown when `anonymous = true` (else searches answer 50).
        return (LdapResultCode::Success, String::new());
    }
    if password.is_empty() {
        // RFC 4513 §5.1.2: an unauthenticated bind (a DN and no password) is refused.
        return (
            LdapResultCode::UnwillingToPerform,
            "a bind with a DN needs its password".into(),
        );
    }
    let ip = session.peer.ip();
    if let Some(wait) = service.phone_throttle.refused(ip) {
        return (
            LdapResultCode::UnwillingToPerform,
            format!(
                "too many failed binds from this address: try again in {} s",
                wait.as_secs().max(1)
            ),
        );
    }
    let right = settings.bind.as_ref().is_some_and(|(bind_dn, expected)| {
        let dn_ok = parse_dn(dn).is_some_and(|given| given == *bind_dn);
        let password_ok = constant_time_eq(password.as_bytes(), expected.as_bytes());
        dn_ok & password_ok
    });
    if right {
        session.bound = Bound::As(dn.to_owned());
        (LdapResultCode::Success, String::new())
    } else {
        service.phone_throttle.failed(ip);
        (LdapResultCode::InvalidCredentials, String::new())
    }
}

/// Whether the session may read contacts.
fn may_read(settings: &LdapSettings, session: &Session) -> bool {
    settings.config.anonymous || matches!(session.bound, Bound::As(_))
}

/// What a search's base and scope reach.
#[derive(Debug, PartialEq, Eq)]
enum Reach {
    /// The root DSE.
    RootDse,
    /// The base entry (the container) and/or the contacts under it.
    Tree { container: bool, contacts: bool },
    /// One contact, by its uid.
    Contact(String),
    /// Nothing, but the base exists.
    Empty,
}

/// What `base` with `scope` reaches in this directory; Err is the result to answer.
fn reach(
    settings: &LdapSettings,
    base: &str,
    scope: &LdapSearchScope,
) -> Result<Reach, (LdapResultCode, String)> {
    let dn = parse_dn(base).ok_or_else(|| {
        (
            LdapResultCode::InvalidDNSyntax,
            format!("{base:?} is not a DN"),
        )
    })?;
    let ours = &settings.base;
    let subtree = matches!(scope, LdapSearchScope::Subtree);
    let below = matches!(scope, LdapSearchScope::OneLevel | LdapSearchScope::Children);
    if dn.is_empty() {
        return Ok(match scope {
            LdapSearchScope::Base => Reach::RootDse,
            // No base: the whole directory, as a default search base does.
            _ => Reach::Tree {
                container: subtree,
                contacts: true,
            },
        });
    }
    if dn == *ours {
        return Ok(match scope {
            LdapSearchScope::Base => Reach::Tree {
                container: true,
                contacts: false,
            },
            _ => Reach::Tree {
                container: subtree,
                contacts: true,
            },
        });
    }
    if dn.len() == ours.len() + 1 && dn[1..] == ours[..] {
        let (attribute, value) = &dn[0];
        if attribute == "uid" && !below {
            // The uid as written (parse_dn lowercases values; identities keep their case).
            let written = entry::parse_dn_as_written(base)
                .and_then(|rdns| rdns.into_iter().next())
                .map_or_else(|| value.clone(), |(_, v)| v);
            return Ok(Reach::Contact(written));
        }
        if attribute == "uid" {
            return Ok(Reach::Empty);
        }
    } else if dn.len() < ours.len() && ours[ours.len() - dn.len()..] == dn[..] {
        // Above the base DN: entries there are not ours, but the subtree holds ours.
        return Ok(match scope {
            LdapSearchScope::Subtree => Reach::Tree {
                container: true,
                contacts: true,
            },
            LdapSearchScope::OneLevel | LdapSearchScope::Children if ours.len() == dn.len() + 1 => {
                Reach::Tree {
                    container: true,
                    contacts: false,
                }
            }
            _ => return Err((LdapResultCode::NoSuchObject, String::new())),
        });
    }
    Err((LdapResultCode::NoSuchObject, format!("no entry {base}")))
}

/// Whether a contact row is one the directory lists (the feed filters of `[ldap]`).
fn listed(config: &LdapConfig, row: &ContactRow) -> bool {
    let wanted = |list: &[String], value: &Option<String>| {
        list.is_empty() || value.as_ref().is_some_and(|v| list.contains(v))
    };
    (config.origins.is_empty() || config.origins.contains(&row.origin))
        && wanted(&config.sites, &row.site)
        && wanted(&config.departments, &row.department)
}

/// The entry for the base DN itself.
fn container_attributes(settings: &LdapSettings) -> Vec<(String, Vec<String>)> {
    let (attribute, value) = entry::parse_dn_as_written(&settings.config.base_dn)
        .and_then(|rdns| rdns.into_iter().next())
        .unwrap_or_else(|| ("ou".into(), String::new()));
    let class = match attribute.as_str() {
        "ou" => "organizationalUnit",
        "o" => "organization",
        "dc" => "dcObject",
        _ => "extensibleObject",
    };
    vec![
        ("objectClass".into(), vec!["top".into(), class.into()]),
        (attribute, vec![value]),
    ]
}

/// The root DSE: what a client probing the server learns.
fn root_dse(settings: &LdapSettings) -> Vec<(String, Vec<String>)> {
    let mut extensions = vec![WHO_AM_I.to_owned()];
    if settings.tls.is_some() {
        extensions.push(START_TLS.to_owned());
    }
    vec![
        ("objectClass".into(), vec!["top".into()]),
        (
            "namingContexts".into(),
            vec![settings.config.base_dn.clone()],
        ),
        ("supportedLDAPVersion".into(), vec!["3".into()]),
        ("supportedControl".into(), vec![PAGED_RESULTS.into()]),
        ("supportedExtension".into(), extensions),
        ("vendorName".into(), vec!["ucm".into()]),
        (
            "vendorVersion".into(),
            vec![format!("ucm {}", env!("CARGO_PKG_VERSION"))],
        ),
    ]
}

/// A fixed entry's attributes as a search asked for them.
fn selected(
    attributes: Vec<(String, Vec<String>)>,
    list: &[String],
    types_only: bool,
) -> Vec<LdapPartialAttribute> {
    let all = list.is_empty() || list.iter().any(|a| a == "*" || a == "+");
    attributes
        .into_iter()
        .filter(|(name, _)| all || list.iter().any(|a| a.eq_ignore_ascii_case(name)))
        .map(|(name, values)| LdapPartialAttribute {
            atype: name,
            vals: if types_only {
                Vec::new()
            } else {
                values.into_iter().map(String::into_bytes).collect()
            },
        })
        .collect()
}

/// Whether `filter` is true of a fixed entry (values compared without regard to case; an
/// attribute it does not have is false).
fn fixed_matches(filter: &LdapFilter, attributes: &[(String, Vec<String>)]) -> bool {
    let values = |name: &str| {
        attributes
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
            .unwrap_or_default()
    };
    match filter {
        LdapFilter::And(all) => all.iter().all(|f| fixed_matches(f, attributes)),
        LdapFilter::Or(any) => any.iter().any(|f| fixed_matches(f, attributes)),
        LdapFilter::Not(inner) => !fixed_matches(inner, attributes),
        LdapFilter::Present(name) => !values(name).is_empty(),
        LdapFilter::Equality(name, v) | LdapFilter::Approx(name, v) => {
            values(name).iter().any(|x| same_folded(x, v))
        }
        LdapFilter::Substring(name, parts) => values(name)
            .iter()
            .any(|x| entry::substrings(&fold_case(x), &entry::fold_parts(parts))),
        _ => false,
    }
}

/// The paged results control of a request, if any; Err for a critical control this
/// directory does not know.
fn paging(controls: &[LdapControl]) -> Result<Option<(i64, Vec<u8>)>, String> {
    let mut paged = None;
    for control in controls {
        match control {
            LdapControl::SimplePagedResults { size, cookie } => {
                paged = Some((*size, cookie.clone()))
            }
            LdapControl::Unknown {
                oid,
                criticality: true,
                ..
            } => {
                return Err(format!("control {oid} is not supported"));
            }
            LdapControl::SyncRequest {
                criticality: true, ..
            } => {
                return Err("the sync request control is not supported".into());
            }
            _ => {}
        }
    }
    Ok(paged)
}

/// Everything a search is answered with: its entries, then its result.
async fn search_answers(
    service: &Service,
    settings: &LdapSettings,
    session: &Session,
    msgid: i32,
    request: &LdapSearchRequest,
    controls: &[LdapControl],
) -> Vec<LdapMsg> {
    let done = |code: LdapResultCode, message: &str, ctrl: Vec<LdapControl>| {
        service.metrics.ldap("search", &code_name(&code));
        LdapMsg {
            msgid,
            op: LdapOp::SearchResultDone(result(code, message)),
            ctrl,
        }
    };
    let reach = match reach(settings, &request.base, &request.scope) {
        Ok(reach) => reach,
        Err((code, message)) => return vec![done(code, &message, Vec::new())],
    };
    if reach == Reach::RootDse {
        let attributes = root_dse(settings);
        let mut answers = Vec::new();
        if fixed_matches(&request.filter, &attributes) {
            answers.push(entry_message(
                msgid,
                String::new(),
                selected(attributes, &request.attrs, request.typesonly),
            ));
        }
        answers.push(done(LdapResultCode::Success, "", Vec::new()));
        return answers;
    }
    if !may_read(settings, session) {
        return vec![done(
            LdapResultCode::InsufficentAccessRights,
            "bind first: this directory does not answer anonymous searches",
            Vec::new(),
        )];
    }
    let paged = match paging(controls) {
        Ok(paged) => paged,
        Err(message) => {
            return vec![done(
                LdapResultCode::UnavailableCriticalExtension,
                &message,
                Vec::new(),
            )];
        }
    };
    let config = &settings.config;
    let page_control = |cookie: Vec<u8>| vec![LdapControl::SimplePagedResults { size: 0, cookie }];
    if let Some((0, _)) = paged {
        // RFC 2696 §3: a page size of 0 ends the paged search.
        return vec![done(LdapResultCode::Success, "", page_control(Vec::new()))];
    }
    let requested = |n: i64| u32::try_from(n).ok().filter(|n| *n > 0);
    let mut want = config.size_limit;
    if let Some(n) = requested(i64::from(request.sizelimit)) {
        want = want.min(n);
    }
    if let Some((size, _)) = &paged
        && let Some(n) = requested(*size)
    {
        want = want.min(n);
    }
    let mut seconds = config.time_limit_secs;
    if let Some(n) = requested(i64::from(request.timelimit)) {
        seconds = seconds.min(n);
    }
    let deadline = Instant::now() + Duration::from_secs(u64::from(seconds));
    // What binds a paged results cookie to its search (worked out for paged searches only).
    let fingerprint = || {
        xxhash_rust::xxh3::xxh3_64(
            format!(
                "{}|{:?}|{:?}|{:?}|{}",
                request.base, request.scope, request.filter, request.attrs, request.typesonly
            )
            .as_bytes(),
        )
    };
    let from_cookie = match &paged {
        Some((_, cookie)) if !cookie.is_empty() => match Cursor::of_cookie(cookie, fingerprint()) {
            Some(cursor) => Some(cursor),
            None => {
                return vec![done(
                    LdapResultCode::UnwillingToPerform,
                    "the paged results cookie is not one of this search's",
                    Vec::new(),
                )];
            }
        },
        _ => None,
    };
    let mut answers = Vec::new();
    let (container, contacts, uid) = match reach {
        Reach::Tree {
            container,
            contacts,
        } => (container, contacts, None),
        Reach::Contact(uid) => (false, true, Some(uid)),
        Reach::Empty | Reach::RootDse => (false, false, None),
    };
    let mut want = want as usize;
    if container && from_cookie.is_none() {
        let attributes = container_attributes(settings);
        if fixed_matches(&request.filter, &attributes) {
            answers.push(entry_message(
                msgid,
                config.base_dn.clone(),
                selected(attributes, &request.attrs, request.typesonly),
            ));
            want -= 1;
        }
    }
    let mut found = Found::default();
    if contacts {
        let store = match directory_store(service, settings) {
            Ok(store) => store,
            Err((code, message)) => return vec![done(code, &message, Vec::new())],
        };
        let style = style_of(config, &store);
        let lane = tokio::time::timeout_at(deadline.into(), service.search_lane.acquire()).await;
        let Ok(Ok(_lane)) = lane else {
            return vec![done(
                LdapResultCode::Busy,
                "the directory is busy: try again",
                Vec::new(),
            )];
        };
        let read = match &uid {
            // The entry the base names: there or not (noSuchObject), then the filter.
            Some(uid) => contact_by_uid(&store, settings, uid, &style, deadline)
                .await
                .map(|row| {
                    row.map(|row| Found {
                        rows: row
                            .matches(&request.filter, &style)
                            .then_some(row)
                            .into_iter()
                            .collect(),
                        ..Found::default()
                    })
                }),
            None => {
                let plan = search::plan(&request.filter, &style);
                let from = from_cookie.unwrap_or_else(|| Cursor::start(&plan, 0));
                let keep =
                    |row: &ContactRow| listed(config, row) && row.matches(&request.filter, &style);
                search::find(&store, &plan, from, want, deadline, &style, keep)
                    .await
                    .map(Some)
            }
        };
        found = match read {
            Ok(Some(found)) => found,
            Ok(None) => {
                return vec![done(
                    LdapResultCode::NoSuchObject,
                    &format!("no entry {}", request.base),
                    Vec::new(),
                )];
            }
            Err(e) => {
                tracing::warn!("LDAP search: {e}");
                return vec![done(
                    LdapResultCode::Unavailable,
                    "the directory cannot be read now: try again",
                    Vec::new(),
                )];
            }
        };
        let wanted = Wanted::of(&request.attrs);
        for row in &found.rows {
            let dn = format!("uid={},{}", escape_rdn_value(&row.uid()), config.base_dn);
            answers.push(entry_message(
                msgid,
                dn,
                row.attributes(&wanted, request.typesonly, &style),
            ));
        }
    }
    let ctrl = match &paged {
        Some(_) => page_control(match (&found.more, found.timed_out) {
            (Some(cursor), false) => cursor.cookie(fingerprint()),
            _ => Vec::new(),
        }),
        None => Vec::new(),
    };
    let (code, message) = if found.timed_out {
        (
            LdapResultCode::TimeLimitExceeded,
            format!("the search ran for its time limit ({seconds} s)"),
        )
    } else if found.more.is_some() && paged.is_none() {
        (
            LdapResultCode::SizeLimitExceeded,
            format!("more entries match than the size limit ({want})"),
        )
    } else {
        (LdapResultCode::Success, String::new())
    };
    answers.push(done(code, &message, ctrl));
    answers
}

/// The store of the directory's pipeline; Err is the result to answer when it is not loaded.
fn directory_store(
    service: &Service,
    settings: &LdapSettings,
) -> Result<crate::load::Store, (LdapResultCode, String)> {
    service
        .pipeline(&settings.config.pipeline)
        .and_then(|p| p.loaded.as_ref().ok())
        .map(|l| l.store.clone())
        .ok_or_else(|| {
            (
                LdapResultCode::Unavailable,
                "the directory's pipeline is not loaded (see the service's log)".into(),
            )
        })
}

fn style_of<'s>(config: &'s LdapConfig, store: &'s crate::load::Store) -> EntryStyle<'s> {
    EntryStyle {
        name_style: config.name_style,
        organization: config.organization.as_deref(),
        numbers: store.numbers(),
    }
}

/// The listed contact whose uid is `uid` (one read of an identity index), if any.
async fn contact_by_uid(
    store: &crate::load::Store,
    settings: &LdapSettings,
    uid: &str,
    style: &EntryStyle<'_>,
    deadline: Instant,
) -> Result<Option<ContactRow>, crate::load::LoadError> {
    let plan = search::plan(&LdapFilter::Equality("uid".into(), uid.to_owned()), style);
    let keep = |row: &ContactRow| listed(&settings.config, row) && row.uid() == uid;
    let found = search::find(
        store,
        &plan,
        Cursor::start(&plan, 0),
        1,
        deadline,
        style,
        keep,
    )
    .await?;
    Ok(found.rows.into_iter().next())
}

fn entry_message(msgid: i32, dn: String, attributes: Vec<LdapPartialAttribute>) -> LdapMsg {
    reply(
        msgid,
        LdapOp::SearchResultEntry(LdapSearchResultEntry { dn, attributes }),
    )
}

/// A compare: whether the contact `dn` names has `value` in `attribute` (compared as a
/// filter's equality is); Err for the result code and message of a refusal.
async fn compare(
    service: &Service,
    settings: &LdapSettings,
    session: &Session,
    dn: &str,
    attribute: &str,
    value: String,
) -> Result<bool, (LdapResultCode, String)> {
    if !may_read(settings, session) {
        return Err((
            LdapResultCode::InsufficentAccessRights,
            "bind first: this directory does not answer anonymous requests".into(),
        ));
    }
    let Reach::Contact(uid) = reach(settings, dn, &LdapSearchScope::Base)? else {
        return Err((
            LdapResultCode::UnwillingToPerform,
            "compare works on contact entries (uid=...)".into(),
        ));
    };
    if entry::Attr::parse(attribute).is_none() {
        return Err((
            LdapResultCode::UndefinedAttributeType,
            format!("contacts have no attribute {attribute}"),
        ));
    }
    let store = directory_store(service, settings)?;
    let style = style_of(&settings.config, &store);
    let deadline = Instant::now() + Duration::from_secs(u64::from(settings.config.time_limit_secs));
    let row = contact_by_uid(&store, settings, &uid, &style, deadline)
        .await
        .map_err(|e| {
            tracing::warn!("LDAP compare: {e}");
            (
                LdapResultCode::Unavailable,
                "the directory cannot be read now: try again".into(),
            )
        })?
        .ok_or_else(|| (LdapResultCode::NoSuchObject, format!("no entry {dn}")))?;
    Ok(row.matches(&LdapFilter::Equality(attribute.to_owned(), value), &style))
}

/// The settings of `config`'s `[ldap]`, checked; None when LDAP is off (no listen address).
pub fn resolve(
    config: Option<&LdapConfig>,
    pipelines: &[String],
) -> Result<Option<LdapSettings>, String> {
    let Some(config) = config else {
        return Ok(None);
    };
    if config.listen.is_none() && config.listen_tls.is_none() {
        return Ok(None);
    }
    if !pipelines.contains(&config.pipeline) {
        return Err(format!(
            "[ldap] pipeline = {:?} is not one of the service's pipelines ({})",
            config.pipeline,
            pipelines.join(", ")
        ));
    }
    config.resolve().map(Some)
}
