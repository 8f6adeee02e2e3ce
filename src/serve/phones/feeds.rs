//! Phonebook feeds for desk phones (`[[phonebooks]]` of the service config): `GET
//! /phonebook/{pipeline}/{format}` (or `.../{format}/{token}`) writes the pipeline's merged
//! table in that format (`crate::phonebook`), streamed, never built whole in memory.
//!
//! Phones poll: each answer carries an ETag made of the last run that changed the table and
//! the feed's settings, so `If-None-Match` is answered `304` from one indexed read of the
//! run history, with no read of the contacts. Access is checked first: HTTP basic auth, a
//! token in the path, and/or an allow-list of client networks; refusals are `401`/`403`
//! with nothing else, counted in `/metrics`. Feeds never show live status or profiles.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::admission::admit;
use super::cisco::cisco;
use super::feed_rows::{entry_of, sort_sql};
use super::feeds_config::PhonebookConfig;
use crate::load::{LoadError, Store, on_pool};
use crate::phonebook::{FeedWriter, Format, write_cisco_search};
use crate::serve::delivery::Delivery;
use crate::serve::state::Service;

#[derive(Deserialize, Default)]
pub struct FeedQuery {
    /// Cisco: the page (from 1).
    page: Option<usize>,
    /// Cisco: a search (names containing it, any case).
    q: Option<String>,
}

/// `GET /phonebook/{pipeline}/{format}`.
pub async fn feed(
    State(service): State<Arc<Service>>,
    Path((pipeline, format)): Path<(String, String)>,
    Query(query): Query<FeedQuery>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
) -> Response {
    answer(
        &service,
        &pipeline,
        &format,
        Request::Feed(None),
        query,
        &headers,
        &extensions,
    )
    .await
}

/// `GET /phonebook/{pipeline}/{format}/{token}`, and Cisco's search form without a token:
/// `GET /phonebook/{pipeline}/cisco/search`.
pub async fn feed_with_token(
    State(service): State<Arc<Service>>,
    Path((pipeline, format, token)): Path<(String, String, String)>,
    Query(query): Query<FeedQuery>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
) -> Response {
    let request = if format == "cisco" && token == "search" {
        Request::Search(None)
    } else {
        Request::Feed(Some(&token))
    };
    answer(
        &service,
        &pipeline,
        &format,
        request,
        query,
        &headers,
        &extensions,
    )
    .await
}

/// `GET /phonebook/{pipeline}/cisco/{token}/search`: Cisco's search form, with a token.
pub async fn search_with_token(
    State(service): State<Arc<Service>>,
    Path((pipeline, format, token)): Path<(String, String, String)>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
) -> Response {
    if format != "cisco" {
        return bare(StatusCode::NOT_FOUND);
    }
    let request = Request::Search(Some(&token));
    answer(
        &service,
        &pipeline,
        &format,
        request,
        FeedQuery::default(),
        &headers,
        &extensions,
    )
    .await
}

/// What a phone asked for, with the token of its URL if any.
enum Request<'t> {
    Feed(Option<&'t str>),
    /// Cisco's search form.
    Search(Option<&'t str>),
}

fn bare(status: StatusCode) -> Response {
    status.into_response()
}

async fn answer(
    service: &Service,
    pipeline: &str,
    format: &str,
    request: Request<'_>,
    query: FeedQuery,
    headers: &HeaderMap,
    extensions: &axum::http::Extensions,
) -> Response {
    let (token, search) = match request {
        Request::Feed(token) => (token, false),
        Request::Search(token) => (token, true),
    };
    let Some(feed) = Format::parse(format).and_then(|f| {
        service
            .phonebooks
            .iter()
            .find(|p| p.config.pipeline == pipeline && p.config.format == f)
    }) else {
        return bare(StatusCode::NOT_FOUND);
    };
    let client = crate::serve::connections::client_of(extensions).map(|c| c.ip());
    if let Some(refused) = admit(
        service,
        &feed.access,
        client,
        headers,
        token,
        "phonebook",
        "ucm phonebook",
    ) {
        return refused;
    }
    let Some(store) = service
        .pipeline(pipeline)
        .and_then(|p| p.loaded.as_ref().ok())
        .map(|l| l.store.clone())
    else {
        return bare(StatusCode::SERVICE_UNAVAILABLE);
    };
    let base = feed_url(headers, pipeline, format, token);
    if search {
        let mut out = Vec::new();
        let _ = write_cisco_search(&mut out, &feed.config.title, &base);
        return xml(out);
    }
    let landed = match last_change(&store).await {
        Ok(run) => run,
        Err(_) => return bare(StatusCode::SERVICE_UNAVAILABLE),
    };
    let etag = etag(&feed.config, store.url(), &landed, &query);
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    let body = if feed.config.format == Format::Cisco {
        match cisco_page(service, &store, &feed.config, &query, &base).await {
            Ok(out) => Body::from(out),
            Err(refused) => return refused,
        }
    } else {
        // Each feed being written holds a database connection: a bounded number at once.
        let Ok(permit) = Arc::clone(&service.phonebook_lane).try_acquire_owned() else {
            return busy(service);
        };
        stream(
            store,
            feed.config.clone(),
            permit,
            service.limits.body_idle_timeout(),
            extensions.get::<Arc<Delivery>>().cloned(),
        )
    };
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(feed.config.format.content_type()),
            ),
            (
                header::ETAG,
                HeaderValue::from_str(&etag).expect("hex is header-safe"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}

/// A Cisco page, or the answer refusing it. A search reads index ranges, in the lane the
/// contact search uses; a page of the whole feed reads the table, in a phonebook place, and
/// never the last one: feeds keep a place whatever Cisco phones do.
async fn cisco_page(
    service: &Service,
    store: &Store,
    config: &PhonebookConfig,
    query: &FeedQuery,
    base: &str,
) -> Result<Vec<u8>, Response> {
    let searching = query.q.as_deref().is_some_and(|q| !q.trim().is_empty());
    let _places = if searching {
        let Ok(lane) = service.search_lane.acquire().await else {
            return Err(bare(StatusCode::SERVICE_UNAVAILABLE));
        };
        (Some(lane), None)
    } else {
        let Ok(browse) = Arc::clone(&service.cisco_page_lane).try_acquire_owned() else {
            return Err(busy(service));
        };
        let Ok(place) = Arc::clone(&service.phonebook_lane).try_acquire_owned() else {
            return Err(busy(service));
        };
        (None, Some((browse, place)))
    };
    cisco(store, config, query.page, query.q.as_deref(), base)
        .await
        .map_err(|_| bare(StatusCode::SERVICE_UNAVAILABLE))
}

/// Every phonebook place is taken: 503, try again in a few seconds.
fn busy(service: &Service) -> Response {
    service.metrics.refused("phonebook_busy");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "5")],
    )
        .into_response()
}

fn xml(out: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "text/xml; charset=utf-8")], out).into_response()
}

/// The feed's absolute URL as the phone reached it (Cisco soft keys need absolute URLs).
fn feed_url(headers: &HeaderMap, pipeline: &str, format: &str, token: Option<&str>) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let scheme = if crate::serve::urls::behind_tls(headers) {
        "https"
    } else {
        "http"
    };
    use crate::serve::urls::encoded as segment;
    let mut url = format!(
        "{scheme}://{host}/phonebook/{}/{}",
        segment(pipeline),
        segment(format)
    );
    if let Some(token) = token {
        url.push('/');
        url.push_str(&segment(token));
    }
    url
}

/// The last run that changed the merged table: its id and when it started (0 and "" before
/// any). With the database it is in, it names one state of one table: two databases (or
/// pipelines) whose last changing runs have the same number started at other times.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct LastChange {
    run: i64,
    started_at: String,
}

async fn last_change(store: &Store) -> Result<LastChange, LoadError> {
    let row: Option<(i64, String)> = on_pool!(store, |pool| sqlx::query_as(
        "SELECT id, started_at FROM runs WHERE status = 'succeeded' \
         AND inserted + updated + deleted > 0 ORDER BY id DESC LIMIT 1"
    )
    .fetch_optional(pool)
    .await
    .map_err(|e| store.error(e)))?;
    Ok(row
        .map(|(run, started_at)| LastChange { run, started_at })
        .unwrap_or_default())
}

/// `"r{run}-{hash}"`: changes when a run changes the table or the feed's settings (or the
/// Cisco page asked for), not with the clock; the hash also covers the pipeline, the
/// database and when the run started, so a phone polling one feed never gets `304` for
/// another pipeline's or database's directory.
fn etag(
    config: &PhonebookConfig,
    database: &str,
    landed: &LastChange,
    query: &FeedQuery,
) -> String {
    // What the feed shows, never its secrets (the database URL is the masked one).
    let settings = format!(
        "{}|{}|{}|{}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{}|{}|{}",
        config.pipeline,
        database,
        landed.started_at,
        config.format.name(),
        config.numbers,
        config.name_style,
        config.sort,
        config.origins,
        config.sites,
        config.departments,
        config.title,
        query.page.unwrap_or(1),
        query.q.as_deref().unwrap_or("")
    );
    let hash = xxhash_rust::xxh3::xxh3_64(settings.as_bytes());
    format!("\"r{}-{hash:016x}\"", landed.run)
}

/// Bytes written before a chunk is sent to the client.
const CHUNK_BYTES: usize = 64 * 1024;

/// A `Write` whose bytes a feed's task takes a chunk at a time.
#[derive(Clone, Default)]
struct Chunks(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Chunks {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("no poisoning").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Chunks {
    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().expect("no poisoning"))
    }
}

/// The feed as a body: a task reads the table row by row and sends 64 KiB chunks through a
/// channel of four, so memory holds a few chunks whatever the size of the directory. A
/// database error ends the body early (the client sees a truncated answer, never a wrong one);
/// so does a client that is idle for `idle` (its place in the lane, `permit`, and its
/// database connection are freed): idle is taking nothing, neither a chunk nor, as its
/// connection's `delivery` shows, a byte of what was written to it.
fn stream(
    store: Store,
    config: PhonebookConfig,
    permit: tokio::sync::OwnedSemaphorePermit,
    idle: std::time::Duration,
    delivery: Option<Arc<Delivery>>,
) -> Body {
    let (sender, receiver) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
    let failed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let ended_early = Arc::clone(&failed);
    tokio::spawn(async move {
        let _permit = permit;
        let chunks = Chunks::default();
        let result: Result<(), String> = async {
            let mut writer = FeedWriter::begin(chunks.clone(), config.format, config.name_style)
                .map_err(|e| e.to_string())?;
            on_pool!(&store, |pool| {
                use futures_util::TryStreamExt as _;
                let mut rows = sqlx::query(sort_sql(config.sort)).fetch(pool);
                while let Some(row) = rows.try_next().await.map_err(|e| e.to_string())? {
                    if let Some(entry) = entry_of(&row, &config).map_err(|e| e.to_string())? {
                        writer.entry(&entry).map_err(|e| e.to_string())?;
                        writer.flush().map_err(|e| e.to_string())?;
                    }
                    if chunks.0.lock().expect("no poisoning").len() >= CHUNK_BYTES {
                        let chunk = Ok(Bytes::from(chunks.take()));
                        send_while_taken(&sender, chunk, idle, delivery.as_deref()).await?;
                    }
                }
                Ok::<(), String>(())
            })?;
            writer.finish().map_err(|e| e.to_string())?;
            Ok(())
        }
        .await;
        let result = match result {
            Ok(()) => {
                let last = Ok(Bytes::from(chunks.take()));
                send_while_taken(&sender, last, idle, delivery.as_deref()).await
            }
            Err(why) => Err(why),
        };
        if let Err(why) = result {
            tracing::warn!(pipeline = %config.pipeline, format = config.format.name(), %why, "a phonebook feed ended early");
            // Never waits on a client that does not read: the body ends in an error after
            // the chunks already queued (no clean end: a truncated feed is never taken
            // for a whole one).
            ended_early.store(true, std::sync::atomic::Ordering::Release);
        }
    });
    // Fused: a body may be polled again after its end (the gzip layer does).
    use futures_util::StreamExt as _;
    Body::from_stream(
        futures_util::stream::unfold((receiver, failed), |(mut receiver, failed)| async move {
            match receiver.recv().await {
                Some(chunk) => Some((chunk, (receiver, failed))),
                None if failed.swap(false, std::sync::atomic::Ordering::AcqRel) => Some((
                    Err(std::io::Error::other("the phonebook feed ended early")),
                    (receiver, failed),
                )),
                None => None,
            }
        })
        .fuse(),
    )
}

/// Sends `chunk` into the feed's channel, waiting as long as the client makes progress: Err
/// when it went away, or took nothing (no chunk, no byte of its connection's `delivery`)
/// for `idle`.
async fn send_while_taken(
    sender: &tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
    chunk: std::io::Result<Bytes>,
    idle: std::time::Duration,
    delivery: Option<&Delivery>,
) -> Result<(), String> {
    let mut taken = delivery.and_then(Delivery::taken);
    let send = sender.send(chunk);
    tokio::pin!(send);
    loop {
        match tokio::time::timeout(idle, &mut send).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(_)) => return Err("the client went away".to_owned()),
            Err(_) => {
                let now = delivery.and_then(Delivery::taken);
                if now.is_none() || now <= taken {
                    return Err(format!(
                        "the client read nothing for {} s (body_idle_timeout_secs)",
                        idle.as_secs()
                    ));
                }
                taken = now;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phonebook::NameStyle;

    fn config(toml_text: &str) -> Result<PhonebookConfig, String> {
        toml::from_str(toml_text).map_err(|e| e.to_string())
    }

    #[test]
    fn an_allow_list_matches_ipv4_clients_also_when_they_arrive_mapped_into_ipv6() {
        let feed =
            config("pipeline = \"p\"\nformat = \"csv\"\nallow = [\"10.9.0.0/16\", \"192.0.2.7\"]")
                .unwrap()
                .resolve()
                .unwrap();
        let headers = HeaderMap::new();
        let ok = |ip: &str| {
            feed.access
                .check(Some(ip.parse().unwrap()), &headers, None)
                .is_ok()
        };
        assert!(ok("10.9.3.4"));
        assert!(ok("::ffff:10.9.3.4"));
        assert!(ok("192.0.2.7"));
        assert!(!ok("10.10.0.1"));
        assert!(feed.access.check(None, &headers, None).is_err());
    }

    #[test]
    fn the_etag_follows_the_run_and_the_settings_not_the_clock() {
        let c =
            config("pipeline = \"p\"\nformat = \"vcard\"\ntoken = \"0123456789abcdef\"").unwrap();
        let q = FeedQuery::default();
        let run = |run: i64, started_at: &str| LastChange {
            run,
            started_at: started_at.into(),
        };
        let seven = run(7, "2026-12-07T10:00:00.000Z");
        let db = "sqlite://a.db";
        assert_eq!(etag(&c, db, &seven, &q), etag(&c, db, &seven, &q));
        assert_ne!(
            etag(&c, db, &seven, &q),
            etag(&c, db, &run(8, "2026-12-07T11:00:00.000Z"), &q)
        );
        let mut other = c.clone();
        other.name_style = NameStyle::LastFirst;
        assert_ne!(etag(&c, db, &seven, &q), etag(&other, db, &seven, &q));
    }

    /// Hardening 3: two pipelines (or two databases) whose last changing runs had the same
    /// number gave the same ETag, so a phone polling one feed got 304 for a directory it
    /// never had.
    #[test]
    fn the_etag_names_the_pipeline_and_the_database_as_well_as_the_run() {
        let c =
            config("pipeline = \"p\"\nformat = \"vcard\"\ntoken = \"0123456789abcdef\"").unwrap();
        let q = FeedQuery::default();
        let seven = LastChange {
            run: 7,
            started_at: "2026-12-07T10:00:00.000Z".into(),
        };
        let mut other_pipeline = c.clone();
        other_pipeline.pipeline = "q".into();
        let tag = etag(&c, "sqlite://a.db", &seven, &q);
        assert_ne!(tag, etag(&other_pipeline, "sqlite://a.db", &seven, &q));
        assert_ne!(tag, etag(&c, "sqlite://b.db", &seven, &q));
        let same_number_elsewhere = LastChange {
            started_at: "2026-12-07T10:00:00.001Z".into(),
            ..seven.clone()
        };
        assert_ne!(tag, etag(&c, "sqlite://a.db", &same_number_elsewhere, &q));
    }
}
