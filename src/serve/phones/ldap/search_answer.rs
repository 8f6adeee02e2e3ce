//! Answering a search: its reach, access, size and time limits and paged results cookie,
//! the fixed entries, then the contacts read in index order (`super::search`), and its result.

use std::time::{Duration, Instant};

use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::{LdapMsg, LdapOp, LdapResultCode, LdapSearchRequest};

use super::config::LdapSettings;
use super::entry::{ContactRow, Wanted, escape_rdn_value};
use super::reads::{contact_by_uid, directory_store, style_of};
use super::search::{self, Cursor, Found};
use super::session::{Session, code_name, entry_message, may_read, result};
use super::tree::{
    Reach, container_attributes, fixed_matches, listed, paging, reach, root_dse, selected,
};
use crate::serve::state::Service;

/// Everything a search is answered with: its entries, then its result.
pub(super) async fn search_answers(
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
