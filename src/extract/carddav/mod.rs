//! A CardDAV address book as the source (`kind = "carddav"`: Nextcloud, Radicale, SOGo,
//! iCloud, ...), read into a staged vCard file (`staged`) that the merge reads as any vCard
//! file. `url` is the address book collection's URL; credentials come from `[source.auth]`;
//! https is verified as for every download.
//!
//! A run asks the collection for its sync-token (RFC 6578) or CTag first: the same as the
//! staged copy's means nothing changed, and nothing else is read. Otherwise it finds what
//! changed: with a sync-token, the `sync-collection` report since the staged token (a token
//! the server no longer knows: every member); without one, every member's ETag (PROPFIND),
//! compared with the staged copy's. Only the cards that changed are read
//! (`addressbook-multiget`, 100 at a time); the others are copied from the staged copy.
//! Decision record: docs/decisions/0015-ldap-and-carddav-sources.md.

pub mod dav;
pub mod staged;

use std::collections::{HashMap, HashSet};
use std::path::Path;

use dav::{DavFailure, DavRequest, DavResponse};

use crate::extract::document::Document;
use crate::extract::download::{Auth, Download, DownloadProgress, FetchErrorKind, Fetched, Sink};

/// Cards asked for in one addressbook-multiget.
const MULTIGET_BATCH: usize = 100;

/// What a CardDAV read starts from: the credentials, the staged copy and its token.
pub struct CarddavRead<'a> {
    pub auth: Option<&'a Auth>,
    /// The sync-token (or CTag) the staged copy was read at.
    pub token: Option<&'a str>,
    /// The staged copy, whose unchanged cards are copied.
    pub staged: Option<&'a Path>,
    /// The largest staged file, and the largest answer read, in bytes.
    pub max_bytes: u64,
}

/// What changed since the staged copy: the members to read and the ones gone.
struct Changes {
    to_read: Vec<String>,
    removed: HashSet<String>,
}

/// Reads the address book at `url` into a temporary vCard file in `dir`, or says it is
/// unchanged.
pub async fn sync(
    client: &reqwest::Client,
    url: reqwest::Url,
    dir: &Path,
    read: &CarddavRead<'_>,
    progress: &dyn DownloadProgress,
) -> Result<Fetched, FetchErrorKind> {
    let dav = DavRequest {
        client,
        auth: read.auth,
        max_bytes: read.max_bytes,
    };
    let found = dav
        .send("PROPFIND", &url, "0", dav::collection_properties())
        .await
        .map_err(failure)?;
    let Some(book) = found.responses.into_iter().find(|r| r.address_book) else {
        return Err(FetchErrorKind::Refused(format!(
            "{url} is not an address book (its resourcetype names no addressbook): set \
             source.url to the address book collection's URL"
        )));
    };
    let token = book.sync_token.clone().or(book.ctag.clone());
    let previous = match read.staged.filter(|p| p.is_file()) {
        Some(path) => Some(Document::open(path).map_err(|e| {
            FetchErrorKind::Io(format!("cannot read the staged copy {}: {e}", path.display()))
        })?),
        None => None,
    };
    if let (Some(now), Some(before), Some(_)) = (&token, read.token, &previous)
        && now == before
    {
        let which = if book.sync_token.is_some() { "sync-token" } else { "CTag" };
        return Ok(Fetched::Unchanged(format!("the address book's {which} is unchanged")));
    }
    let staged_cards = previous.as_ref().map(|d| staged::cards(d.bytes())).unwrap_or_default();
    let known: HashMap<&str, &str> = staged_cards.iter().map(|c| (c.href, c.etag)).collect();
    let collection = url.path().to_owned();
    let (changes, new_token) =
        changes(&dav, &url, &book, read.token.filter(|_| previous.is_some()), &known, &collection)
            .await?;
    progress.start(None);
    let mut sink = Sink::new(dir, read.max_bytes, false)?;
    let mut written = 0u64;
    let mut out = Vec::new();
    let reread: HashSet<&str> = changes.to_read.iter().map(String::as_str).collect();
    for card in &staged_cards {
        if !changes.removed.contains(card.href) && !reread.contains(card.href) {
            written += card.text.len() as u64;
            sink.write(card.text, written)?;
        }
    }
    for batch in changes.to_read.chunks(MULTIGET_BATCH) {
        let body = dav::multiget(batch.iter().map(String::as_str));
        let answer = dav.send("REPORT", &url, "1", body).await.map_err(failure)?;
        out.clear();
        for card in answer.responses {
            let (Some(text), None | Some(200)) = (&card.address_data, card.status) else {
                continue;
            };
            let etag = card.etag.as_deref().unwrap_or_default();
            staged::write_card(&mut out, &card.href, etag, text).map_err(FetchErrorKind::Refused)?;
        }
        written += out.len() as u64;
        sink.write(&out, written)?;
        progress.advance(written);
    }
    progress.finish();
    let (file, bytes) = sink.finish(written)?;
    Ok(Fetched::Downloaded(Download {
        file,
        bytes,
        etag: new_token.or(token),
        last_modified: None,
        http_status: Some(207),
        tries: 1,
    }))
}

fn failure(f: DavFailure) -> FetchErrorKind {
    match f {
        DavFailure::Fetch(kind) => kind,
        DavFailure::TokenRefused => {
            FetchErrorKind::Refused("the server refused the request's sync-token".into())
        }
    }
}

/// What changed since the staged copy (`known`: its members and ETags, read at `since`),
/// and the token of the answer.
async fn changes(
    dav: &DavRequest<'_>,
    url: &reqwest::Url,
    book: &DavResponse,
    since: Option<&str>,
    known: &HashMap<&str, &str>,
    collection: &str,
) -> Result<(Changes, Option<String>), FetchErrorKind> {
    let is_member = |r: &DavResponse| !r.href.is_empty() && r.href != collection && !r.href.ends_with('/');
    if book.sync_token.is_some() {
        if let Some(since) = since {
            match dav.send("REPORT", url, "0", dav::sync_collection(since)).await {
                Ok(answer) => {
                    let mut delta = Changes {
                        to_read: Vec::new(),
                        removed: HashSet::new(),
                    };
                    for member in answer.responses.into_iter().filter(is_member) {
                        if member.status == Some(404) {
                            delta.removed.insert(member.href);
                        } else {
                            delta.to_read.push(member.href);
                        }
                    }
                    return Ok((delta, answer.sync_token));
                }
                Err(DavFailure::TokenRefused) => {
                    tracing::info!("{url}: the server no longer knows the staged sync-token; reading every member");
                }
                Err(DavFailure::Fetch(kind)) => return Err(kind),
            }
        }
        let answer = dav.send("REPORT", url, "0", dav::sync_collection("")).await.map_err(failure)?;
        let members: Vec<DavResponse> = answer.responses.into_iter().filter(is_member).collect();
        return Ok((listing(members, known), answer.sync_token));
    }
    let answer = dav.send("PROPFIND", url, "1", dav::member_etags()).await.map_err(failure)?;
    let members: Vec<DavResponse> = answer.responses.into_iter().filter(is_member).collect();
    Ok((listing(members, known), None))
}

/// Every member with its ETag, against the staged copy's: the new and changed ones are read,
/// the staged ones not listed are gone.
fn listing(members: Vec<DavResponse>, known: &HashMap<&str, &str>) -> Changes {
    let listed: HashSet<&str> = members.iter().map(|m| m.href.as_str()).collect();
    let removed = known
        .keys()
        .filter(|href| !listed.contains(*href))
        .map(|href| href.to_string())
        .collect();
    let to_read = members
        .iter()
        .filter(|m| m.etag.is_none() || known.get(m.href.as_str()).copied() != m.etag.as_deref())
        .map(|m| m.href.clone())
        .collect();
    Changes { to_read, removed }
}
