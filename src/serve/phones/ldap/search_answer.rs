//! Answering a search: its reach, access, size and time limits and paged results cookie,
//! the fixed entries, then the contacts read in index order (`super::search`), and its result.

use std::time::{Duration, Instant};

use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::{LdapMsg, LdapOp, LdapResultCode, LdapSearchRequest};

use super::config::LdapSettings;
use super::entry::{ContactRow, Wanted, escape_rdn_value};
use super::places::NoScanPlace;
use super::reads::{contact_by_uid, directory_store, style_of};
use super::search::{self, Bounds, Cursor, Found};
use super::session::{Session, code_name, entry_message, may_read, needs_tls, result};
use super::tree::{
    Reach, container_attributes, fixed_matches, listed, paging, reach, root_dse, selected,
};
use crate::serve::state::Service;

/// A refusal or failure of a search: its result code and message.
type Refusal = (LdapResultCode, String);

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
        let mut answers = fixed_entry(msgid, String::new(), root_dse(settings), request);
        answers.push(done(LdapResultCode::Success, "", Vec::new()));
        return answers;
    }
    if let Some((code, message)) = needs_tls(settings, session) {
        return vec![done(code, &message, Vec::new())];
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
            let code = LdapResultCode::UnavailableCriticalExtension;
            return vec![done(code, &message, Vec::new())];
        }
    };
    if let Some((0, _)) = paged {
        // RFC 2696 §3: a page size of 0 ends the paged search.
        return vec![done(LdapResultCode::Success, "", page_control(Vec::new()))];
    }
    let (want, seconds) = limits(settings, request, paged.as_ref());
    let deadline = Instant::now() + Duration::from_secs(u64::from(seconds));
    let from_cookie = match &paged {
        Some((_, cookie)) if !cookie.is_empty() => {
            match Cursor::of_cookie(cookie, fingerprint(request)) {
                Some(cursor) => Some(cursor),
                None => {
                    let message = "the paged results cookie is not one of this search's";
                    return vec![done(
                        LdapResultCode::UnwillingToPerform,
                        message,
                        Vec::new(),
                    )];
                }
            }
        }
        _ => None,
    };
    let (container, contacts, uid) = match reach {
        Reach::Tree {
            container,
            contacts,
        } => (container, contacts, None),
        Reach::Contact(uid) => (false, true, Some(uid)),
        Reach::Empty | Reach::RootDse => (false, false, None),
    };
    let mut want = want as usize;
    let mut answers = Vec::new();
    if container && from_cookie.is_none() {
        let base_dn = settings.config.base_dn.clone();
        answers = fixed_entry(msgid, base_dn, container_attributes(settings), request);
        want -= answers.len();
    }
    let mut found = Found::default();
    if contacts {
        let read = Read {
            request,
            uid,
            from_cookie,
            want,
            deadline,
            peer: session.peer.ip(),
        };
        found = match contact_entries(service, settings, read, msgid, &mut answers).await {
            Ok(found) => found,
            Err((code, message)) => return vec![done(code, &message, Vec::new())],
        };
    }
    let (code, message, ctrl) = outcome(&found, paged.is_some(), request, want, seconds);
    answers.push(done(code, &message, ctrl));
    answers
}

/// The paged results control answering a page: the cookie of the next page (empty at the
/// end).
fn page_control(cookie: Vec<u8>) -> Vec<LdapControl> {
    vec![LdapControl::SimplePagedResults { size: 0, cookie }]
}

/// How a search that read its contacts ends: its result code and message, and for a paged
/// search the cookie of the next page.
fn outcome(
    found: &Found,
    paged: bool,
    request: &LdapSearchRequest,
    want: usize,
    seconds: u32,
) -> (LdapResultCode, String, Vec<LdapControl>) {
    let ctrl = if paged {
        page_control(match (&found.more, found.timed_out) {
            (Some(cursor), false) => cursor.cookie(fingerprint(request)),
            _ => Vec::new(),
        })
    } else {
        Vec::new()
    };
    let (code, message) = if found.timed_out {
        (
            LdapResultCode::TimeLimitExceeded,
            format!("the search ran for its time limit ({seconds} s)"),
        )
    } else if found.more.is_some() && !paged {
        (
            LdapResultCode::SizeLimitExceeded,
            format!("more entries match than the size limit ({want})"),
        )
    } else {
        (LdapResultCode::Success, String::new())
    };
    (code, message, ctrl)
}

/// A fixed entry (the root DSE, the base entry) when the filter matches it.
fn fixed_entry(
    msgid: i32,
    dn: String,
    attributes: Vec<(String, Vec<String>)>,
    request: &LdapSearchRequest,
) -> Vec<LdapMsg> {
    if !fixed_matches(&request.filter, &attributes) {
        return Vec::new();
    }
    let attributes = selected(attributes, &request.attrs, request.typesonly);
    vec![entry_message(msgid, dn, attributes)]
}

/// The entries a search may answer and the seconds it may run: the smaller of the request's
/// (and its page size) and the directory's limits.
fn limits(
    settings: &LdapSettings,
    request: &LdapSearchRequest,
    paged: Option<&(i64, Vec<u8>)>,
) -> (u32, u32) {
    let config = &settings.config;
    let requested = |n: i64| u32::try_from(n).ok().filter(|n| *n > 0);
    let mut want = config.size_limit;
    if let Some(n) = requested(i64::from(request.sizelimit)) {
        want = want.min(n);
    }
    if let Some((size, _)) = paged
        && let Some(n) = requested(*size)
    {
        want = want.min(n);
    }
    let mut seconds = config.time_limit_secs;
    if let Some(n) = requested(i64::from(request.timelimit)) {
        seconds = seconds.min(n);
    }
    (want, seconds)
}

/// What binds a paged results cookie to its search.
fn fingerprint(request: &LdapSearchRequest) -> u64 {
    xxhash_rust::xxh3::xxh3_64(
        format!(
            "{}|{:?}|{:?}|{:?}|{}",
            request.base, request.scope, request.filter, request.attrs, request.typesonly
        )
        .as_bytes(),
    )
}

/// What a search reads of the contacts: one contact by uid, or the filter's plan from the
/// start or a cookie's cursor; at most `want` entries before `deadline`.
struct Read<'r> {
    request: &'r LdapSearchRequest,
    uid: Option<String>,
    from_cookie: Option<Cursor>,
    want: usize,
    deadline: Instant,
    /// The client's address (unindexed searches are counted per address).
    peer: std::net::IpAddr,
}

/// Rows a scan of the table reads in the search lane. A filter no index answers that matches
/// most contacts (`(objectClass=*)`, a first digit) has its entries by then; one that has not
/// is unindexed work (`(cn=*ann*)` reads the whole table for a few entries) and reads on in
/// a place of the unindexed searches' budget, never holding the lane.
const SCAN_ROWS_IN_LANE: usize = 1024;

/// Why an unindexed search is answered busy, in words a phone's administrator acts on.
fn refused_scan(refused: NoScanPlace, per_client: usize) -> String {
    match refused {
        NoScanPlace::Client => format!(
            "this address runs {per_client} unindexed search(es) already (a filter no index \
             answers reads every contact): wait for it, or search by the start of a name or \
             number"
        ),
        NoScanPlace::All => "the directory is busy with unindexed searches (filters no index \
             answers): try again, or search by the start of a name or number"
            .into(),
    }
}

/// Reads the contacts a search reaches (in the search lane, shared with the contact
/// search, then an unindexed search's place when it turns out to be one) and adds their entries to `answers`.
async fn contact_entries(
    service: &Service,
    settings: &LdapSettings,
    read: Read<'_>,
    msgid: i32,
    answers: &mut Vec<LdapMsg>,
) -> Result<Found, Refusal> {
    let Read {
        request,
        uid,
        from_cookie,
        want,
        deadline,
        peer,
    } = read;
    let config = &settings.config;
    let store = directory_store(service, settings)?;
    let style = style_of(config, &store);
    let lane = tokio::time::timeout_at(deadline.into(), service.search_lane.acquire()).await;
    let Ok(Ok(lane)) = lane else {
        return Err((
            LdapResultCode::Busy,
            "the directory is busy: try again".into(),
        ));
    };
    let found = match &uid {
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
            let bounds = Bounds {
                want,
                deadline,
                scan_rows: Some(SCAN_ROWS_IN_LANE),
            };
            let found = search::find(&store, &plan, from, bounds, &style, &keep).await;
            drop(lane);
            match found {
                // Unindexed: the rest of the table is read in a place of its own budget.
                Ok(found) if found.unindexed => {
                    let place = settings.scans.take(peer, deadline).await;
                    let _place = place.map_err(|refused| {
                        let per_client = config.max_unindexed_searches_per_client;
                        (LdapResultCode::Busy, refused_scan(refused, per_client))
                    })?;
                    let rest = Bounds {
                        want: want - found.rows.len(),
                        scan_rows: None,
                        ..bounds
                    };
                    let from = found.more.clone().expect("an unindexed stop says where");
                    search::find(&store, &plan, from, rest, &style, &keep)
                        .await
                        .map(|more| Some(found.followed_by(more)))
                }
                found => found.map(Some),
            }
        }
    };
    let found = match found {
        Ok(Some(found)) => found,
        Ok(None) => {
            return Err((
                LdapResultCode::NoSuchObject,
                format!("no entry {}", request.base),
            ));
        }
        Err(e) => {
            tracing::warn!("LDAP search: {e}");
            return Err((
                LdapResultCode::Unavailable,
                "the directory cannot be read now: try again".into(),
            ));
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
    Ok(found)
}
