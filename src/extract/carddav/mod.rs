//! A CardDAV address book as the source (`kind = "carddav"`: Nextcloud, Radicale, SOGo,
//! iCloud, ...), read into a staged vCard file (`staged`) that the merge reads as any vCard
//! file. `url` is the address book collection's URL; credentials come from `[source.auth]`;
//! https is verified as for every download.
//!
//! A run asks the collection for its sync-token (RFC 6578) or CTag first: the same as the
//! staged copy's means nothing changed, and nothing else is read. Otherwise it finds what
//! changed: with a sync-token, the `sync-collection` report since the staged token; without
//! one, every member's ETag (PROPFIND), compared with the staged copy's. Only the cards that
//! changed are read (`addressbook-multiget`, 500 at a time); the others are copied from the
//! staged copy. Without a staged copy (or when the server no longer knows its token), every
//! card is read in one `addressbook-query`, its answer kept in a temporary file and read card
//! by card (memory does not grow with the book).
//! Decision record: docs/decisions/0015-ldap-and-carddav-sources.md.

pub mod dav;
pub mod staged;

use std::collections::{HashMap, HashSet};
use std::path::Path;

use dav::{DavFailure, DavRequest, DavResponse};

use crate::extract::document::Document;
use crate::extract::download::{Auth, Download, DownloadProgress, FetchErrorKind, Fetched, Sink};

/// Cards asked for in one addressbook-multiget.
const MULTIGET_BATCH: usize = 500;

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
    let token = match &book.sync_token {
        Some(token) => Some(token.clone()),
        None => {
            let found = dav
                .send("PROPFIND", &url, "0", dav::collection_ctag())
                .await;
            found
                .map_err(failure)?
                .responses
                .into_iter()
                .find_map(|r| r.ctag)
        }
    };
    let previous = match read.staged.filter(|p| p.is_file()) {
        Some(path) => Some(Document::open(path).map_err(|e| {
            FetchErrorKind::Io(format!(
                "cannot read the staged copy {}: {e}",
                path.display()
            ))
        })?),
        None => None,
    };
    if let (Some(now), Some(before), Some(_)) = (&token, read.token, &previous)
        && now == before
    {
        let which = if book.sync_token.is_some() {
            "sync-token"
        } else {
            "CTag"
        };
        return Ok(Fetched::Unchanged(format!(
            "the address book's {which} is unchanged"
        )));
    }
    let staged_cards = previous
        .as_ref()
        .map(|d| staged::cards(d.bytes()))
        .unwrap_or_default();
    progress.start(None);
    let mut out = StagedOut {
        sink: Sink::new(dir, read.max_bytes, false)?,
        written: 0,
        progress,
    };
    let since = read.token.filter(|_| previous.is_some());
    let new_token = match changes(&dav, &url, &book, since, &staged_cards).await? {
        Some((changes, new_token)) => {
            let reread: HashSet<&str> = changes.to_read.iter().map(String::as_str).collect();
            for card in &staged_cards {
                if !changes.removed.contains(card.href) && !reread.contains(card.href) {
                    out.write(card.text)?;
                }
            }
            read_cards(&dav, &url, &changes.to_read, &mut out).await?;
            new_token.or(token)
        }
        None => {
            read_every_card(&dav, &url, dir, &mut out).await?;
            token
        }
    };
    progress.finish();
    let (file, bytes) = out.sink.finish(out.written)?;
    Ok(Fetched::Downloaded(Download {
        file,
        bytes,
        etag: new_token,
        last_modified: None,
        http_status: Some(207),
        tries: 1,
    }))
}

/// The staged file being written.
struct StagedOut<'p> {
    sink: Sink,
    written: u64,
    progress: &'p dyn DownloadProgress,
}

impl StagedOut<'_> {
    fn write(&mut self, bytes: &[u8]) -> Result<(), FetchErrorKind> {
        self.written += bytes.len() as u64;
        self.sink.write(bytes, self.written)?;
        self.progress.advance(self.written);
        Ok(())
    }

    /// A card of an answer, unless the answer says it is gone.
    fn card(&mut self, card: &DavResponse, buffer: &mut Vec<u8>) -> Result<(), FetchErrorKind> {
        let (Some(text), None | Some(200)) = (&card.address_data, card.status) else {
            return Ok(());
        };
        buffer.clear();
        let etag = card.etag.as_deref().unwrap_or_default();
        staged::write_card(buffer, &card.href, etag, text).map_err(FetchErrorKind::Refused)?;
        self.write(buffer)
    }
}

/// The cards at `hrefs`, by addressbook-multiget, [`MULTIGET_BATCH`] a request.
async fn read_cards(
    dav: &DavRequest<'_>,
    url: &reqwest::Url,
    hrefs: &[String],
    out: &mut StagedOut<'_>,
) -> Result<(), FetchErrorKind> {
    let mut buffer = Vec::new();
    for batch in hrefs.chunks(MULTIGET_BATCH) {
        let body = dav::multiget(batch.iter().map(String::as_str));
        let answer = dav.send("REPORT", url, "1", body).await.map_err(failure)?;
        for card in &answer.responses {
            out.card(card, &mut buffer)?;
        }
    }
    Ok(())
}

/// Every card of the book in one addressbook-query, its answer kept in a temporary file
/// and read card by card.
async fn read_every_card(
    dav: &DavRequest<'_>,
    url: &reqwest::Url,
    dir: &Path,
    out: &mut StagedOut<'_>,
) -> Result<(), FetchErrorKind> {
    let answer = dav
        .send_to_file("REPORT", url, "1", dav::every_card(), dir)
        .await
        .map_err(failure)?;
    let document = Document::open(answer.path())
        .map_err(|e| FetchErrorKind::Io(format!("cannot read the answer of {url}: {e}")))?;
    let mut buffer = Vec::new();
    let mut failed = None;
    dav::for_each_response(document.bytes(), |card| {
        out.card(&card, &mut buffer).map_err(|e| {
            let message = e.to_string();
            failed = Some(e);
            message
        })
    })
    .map_err(|why| {
        failed
            .take()
            .unwrap_or_else(|| failure(dav::unreadable(url, why)))
    })?;
    Ok(())
}

fn failure(f: DavFailure) -> FetchErrorKind {
    match f {
        DavFailure::Fetch(kind) => kind,
        DavFailure::TokenRefused => {
            FetchErrorKind::Refused("the server refused the request's sync-token".into())
        }
    }
}

/// What changed since the staged copy (its cards, read at `since`), and the token of the
/// answer; None when there is no staged copy to start from, or the server no longer knows
/// its sync-token: every card is read.
async fn changes(
    dav: &DavRequest<'_>,
    url: &reqwest::Url,
    book: &DavResponse,
    since: Option<&str>,
    staged: &[staged::StagedCard<'_>],
) -> Result<Option<(Changes, Option<String>)>, FetchErrorKind> {
    if staged.is_empty() {
        return Ok(None);
    }
    let collection = url.path();
    let is_member =
        |r: &DavResponse| !r.href.is_empty() && r.href != collection && !r.href.ends_with('/');
    if let (Some(_), Some(since)) = (&book.sync_token, since) {
        return match dav
            .send("REPORT", url, "0", dav::sync_collection(since))
            .await
        {
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
                Ok(Some((delta, answer.sync_token)))
            }
            Err(DavFailure::TokenRefused) => {
                tracing::warn!(
                    "{url}: the server no longer knows the staged sync-token; reading every card"
                );
                Ok(None)
            }
            Err(DavFailure::Fetch(kind)) => Err(kind),
        };
    }
    let answer = dav
        .send("PROPFIND", url, "1", dav::member_etags())
        .await
        .map_err(failure)?;
    let members: Vec<DavResponse> = answer.responses.into_iter().filter(is_member).collect();
    let known: HashMap<&str, &str> = staged.iter().map(|c| (c.href, c.etag)).collect();
    Ok(Some((listing(members, &known), None)))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn member(href: &str, etag: Option<&str>) -> DavResponse {
        DavResponse {
            href: href.into(),
            etag: etag.map(Into::into),
            ..DavResponse::default()
        }
    }

    #[test]
    fn a_listing_reads_new_and_changed_members_and_drops_the_ones_gone() {
        let known = HashMap::from([
            ("/b/a.vcf", "\"1\""),
            ("/b/b.vcf", "\"2\""),
            ("/b/c.vcf", "\"3\""),
        ]);
        let members = vec![
            member("/b/a.vcf", Some("\"1\"")),
            member("/b/b.vcf", Some("\"2b\"")),
            member("/b/d.vcf", Some("\"4\"")),
            member("/b/e.vcf", None),
        ];
        let changes = listing(members, &known);
        assert_eq!(changes.to_read, ["/b/b.vcf", "/b/d.vcf", "/b/e.vcf"]);
        assert_eq!(changes.removed, HashSet::from(["/b/c.vcf".to_owned()]));
    }
}
