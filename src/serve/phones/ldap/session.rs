//! A connection's state (who it is bound as, TLS, its peer), what it does after a message,
//! and the pieces every answer is made of: results, replies, the notice of disconnection.

use std::net::SocketAddr;

use ldap3_proto::proto::{
    LdapExtendedResponse, LdapMsg, LdapOp, LdapPartialAttribute, LdapResult, LdapResultCode,
    LdapSearchResultEntry,
};

use super::config::LdapSettings;

pub(super) const START_TLS: &str = "1.3.6.1.4.1.1466.20037";

pub(super) const WHO_AM_I: &str = "1.3.6.1.4.1.4203.1.11.3";

pub(super) const PAGED_RESULTS: &str = "1.2.840.113556.1.4.319";

pub(super) const NOTICE_OF_DISCONNECTION: &str = "1.3.6.1.4.1.1466.20036";

/// Who a connection is bound as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Bound {
    /// Not bound, or bound anonymously.
    Anonymous,
    /// Bound with the configured DN (as the client wrote it).
    As(String),
}

/// What the connection does after answering a message.
pub(super) enum Next {
    Continue,
    Close,
    StartTls,
}

/// A connection's state.
pub(super) struct Session {
    pub(super) bound: Bound,
    pub(super) tls: bool,
    pub(super) peer: SocketAddr,
}

/// The name of a result code in `/metrics`: its name in snake case.
pub(super) fn code_name(code: &LdapResultCode) -> String {
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

pub(super) fn result(code: LdapResultCode, message: &str) -> LdapResult {
    LdapResult {
        code,
        matcheddn: String::new(),
        message: message.to_owned(),
        referral: Vec::new(),
    }
}

pub(super) fn reply(msgid: i32, op: LdapOp) -> LdapMsg {
    LdapMsg {
        msgid,
        op,
        ctrl: Vec::new(),
    }
}

/// RFC 4511 §4.4.1: the server is closing the connection, and why.
pub(super) fn disconnection(code: LdapResultCode, message: &str) -> LdapMsg {
    reply(
        0,
        LdapOp::ExtendedResponse(LdapExtendedResponse {
            res: result(code, message),
            name: Some(NOTICE_OF_DISCONNECTION.to_owned()),
            value: None,
        }),
    )
}

pub(super) const READ_ONLY: &str = "this directory is read-only: change contacts in the external source or \
     the internal directory, and ucm's next run brings the change here";

/// Whether the session may read contacts.
pub(super) fn may_read(settings: &LdapSettings, session: &Session) -> bool {
    settings.config.anonymous || matches!(session.bound, Bound::As(_))
}

pub(super) fn entry_message(
    msgid: i32,
    dn: String,
    attributes: Vec<LdapPartialAttribute>,
) -> LdapMsg {
    reply(
        msgid,
        LdapOp::SearchResultEntry(LdapSearchResultEntry { dn, attributes }),
    )
}

/// Why the session may not read contacts yet: TLS is required and not started
/// (confidentialityRequired, 13).
pub(super) fn needs_tls(
    settings: &LdapSettings,
    session: &Session,
) -> Option<(LdapResultCode, String)> {
    (settings.require_tls && !session.tls).then(|| {
        (
            LdapResultCode::ConfidentialityRequired,
            "start TLS first (StartTLS, or ldaps://): this directory answers over TLS only \
             ([ldap] require_tls)"
                .to_owned(),
        )
    })
}
