//! The answers to one message: bind, search, compare, the read-only refusals, StartTLS,
//! WhoAmI, abandon and unbind; each counted in `ucm_ldap_requests_total{op,result}`.

use ldap3_proto::proto::{
    LdapBindCred, LdapBindResponse, LdapExtendedResponse, LdapMsg, LdapOp, LdapResult,
    LdapResultCode,
};

use super::config::LdapSettings;
use super::entry::parse_dn;
use super::reads::compare;
use super::search_answer::search_answers;
use super::session::{
    Bound, Next, READ_ONLY, START_TLS, Session, WHO_AM_I, code_name, disconnection, reply, result,
};
use crate::serve::state::Service;

/// The result of every change request: this directory is read-only.
const UNWILLING: LdapResultCode = LdapResultCode::UnwillingToPerform;

/// The answers to one message, and what the connection does next.
pub(super) async fn answer(
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
        LdapOp::AddRequest(_) => refuse("add", UNWILLING, READ_ONLY, LdapOp::AddResponse),
        LdapOp::ModifyRequest(_) => refuse("modify", UNWILLING, READ_ONLY, LdapOp::ModifyResponse),
        LdapOp::DelRequest(_) => refuse("delete", UNWILLING, READ_ONLY, LdapOp::DelResponse),
        LdapOp::ModifyDNRequest(_) => {
            refuse("modify_dn", UNWILLING, READ_ONLY, LdapOp::ModifyDNResponse)
        }
        LdapOp::AbandonRequest(_) => {
            // Each search is answered whole before the next message is read: nothing to stop.
            metrics.ldap("abandon", "success");
            (Vec::new(), Next::Continue)
        }
        LdapOp::ExtendedRequest(request) => {
            extended(service, settings, session, msgid, &request.name)
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

/// An extended operation: StartTLS (when a certificate is configured and TLS is not on yet),
/// WhoAmI; any other is a protocol error.
fn extended(
    service: &Service,
    settings: &LdapSettings,
    session: &Session,
    msgid: i32,
    name: &str,
) -> (Vec<LdapMsg>, Next) {
    let metrics = &service.metrics;
    let extended =
        |code: LdapResultCode, message: &str, name: Option<&str>, value: Option<Vec<u8>>| {
            LdapOp::ExtendedResponse(LdapExtendedResponse {
                res: result(code, message),
                name: name.map(str::to_owned),
                value,
            })
        };
    match name {
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
            let message =
                format!("extended operation {other} is not supported (StartTLS and WhoAmI are)");
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

/// A bind's result code and message; sets who the session is bound as.
pub(super) fn bind(
    service: &Service,
    settings: &LdapSettings,
    session: &mut Session,
    version: i64,
    dn: &str,
    cred: &LdapBindCred,
) -> (LdapResultCode, String) {
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
    if settings.require_tls && !session.tls {
        // RFC 4513 §5.1.2 and OpenLDAP's `security simple_bind=`: no password in clear.
        return (
            LdapResultCode::ConfidentialityRequired,
            "start TLS first (StartTLS, or ldaps://): this directory takes passwords over \
             TLS only ([ldap] require_tls)"
                .into(),
        );
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
        let password_ok = expected.matches(password);
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
