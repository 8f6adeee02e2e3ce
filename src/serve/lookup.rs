//! Caller-ID lookup for PBXes (`[[lookups]]` of the service config): `GET
//! /lookup/{pipeline}?number=...` (or `/lookup/{pipeline}/{token}?number=...`) answers the
//! display name of the contact a calling number belongs to, from the pipeline's merged table
//! as the last run left it.
//!
//! - `text/plain` by default: the name alone (what Asterisk's `CURL()` and FreePBX's HTTP
//!   caller-ID sources put on the phone's display), or an empty `404` when no contact has
//!   the number;
//! - JSON with `Accept: application/json`: the name, the contact id, the field that matched
//!   and the key it matched as, how many contacts share the number and the rule that chose.
//!
//! The calling number is read as `crate::numbers` says (E.164 in the pipeline's
//! `[lookup] default_region`, extensions as written), and found with one read of the number
//! index (`contact_numbers_by_number`, at most [`MAX_MATCHES`] entries per key), whatever the
//! table's size. Access is the phonebooks' (`crate::serve::phone_access`).

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::fields::FIELD_NAMES;
use crate::load::{Backend, LoadError, Store};
use crate::numbers::{RANK_RULE, field_of_rank};
use crate::phonebook::{Entry, NameStyle};
use crate::serve::Service;
use crate::serve::phone_access::{AccessSettings, PhoneAccess, admit};
use crate::serve::search::on_sqlite_reader;
use rusqlite::OptionalExtension;

/// Contacts read per key at most: a number shared by more (a switchboard number on every
/// card) still costs one bounded read; the JSON answer counts up to this many.
pub const MAX_MATCHES: i64 = 100;

/// `[[lookups]]`: caller-ID lookup in one pipeline's merged table.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LookupEndpointConfig {
    /// The pipeline whose merged table is searched (its `[lookup] default_region` reads the
    /// numbers).
    pub pipeline: String,
    /// "first_last" ("Anna Peeters", the default) or "last_first" ("Peeters, Anna").
    #[serde(default)]
    pub name_style: NameStyle,
    /// HTTP basic auth for the PBX (password inline, from the environment or a file).
    pub username: Option<String>,
    pub password: Option<String>,
    pub password_env: Option<String>,
    pub password_file: Option<PathBuf>,
    /// A token the PBX puts in the URL: `/lookup/{pipeline}/{token}?number=...`.
    pub token: Option<String>,
    pub token_env: Option<String>,
    pub token_file: Option<PathBuf>,
    /// Client networks allowed (CIDR, e.g. "10.20.0.5/32" for the PBX); empty: any network.
    #[serde(default)]
    pub allow: Vec<String>,
}

/// A lookup endpoint with its secrets read.
#[derive(Clone)]
pub struct LookupEndpoint {
    pub config: LookupEndpointConfig,
    access: PhoneAccess,
}

impl std::fmt::Debug for LookupEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LookupEndpoint({})", self.config.pipeline)
    }
}

impl LookupEndpointConfig {
    /// Reads the secrets and parses the networks; refuses an endpoint nobody could be kept
    /// out of.
    pub fn resolve(&self) -> Result<LookupEndpoint, String> {
        let at = format!("[[lookups]] {}", self.pipeline);
        let access = PhoneAccess::resolve(
            &at,
            "a lookup",
            AccessSettings {
                username: &self.username,
                password: &self.password,
                password_env: &self.password_env,
                password_file: &self.password_file,
                token: &self.token,
                token_env: &self.token_env,
                token_file: &self.token_file,
                allow: &self.allow,
            },
        )?;
        Ok(LookupEndpoint {
            config: self.clone(),
            access,
        })
    }
}

#[derive(Deserialize, Default)]
pub struct LookupQuery {
    number: Option<String>,
}

/// The JSON answer.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct LookupAnswer {
    /// The number as asked.
    pub number: String,
    /// The display name; null when no contact has the number.
    pub name: Option<String>,
    pub contact_id: Option<i64>,
    /// The field the number was found in (extension, mobile_number, home_number, fax_number).
    pub field: Option<String>,
    /// The contact's origin (directory, merged, external).
    pub origin: Option<String>,
    /// The index key that matched (E.164, or the extension as written).
    pub matched: Option<String>,
    /// Contacts with this number (counted up to 100): more than one means it is shared and
    /// `rule` chose.
    pub contacts: usize,
    /// The other contacts with the number, best first (at most 10).
    pub others: Vec<i64>,
    pub rule: &'static str,
}

/// `GET /lookup/{pipeline}?number=...`.
pub async fn lookup(
    State(service): State<Arc<Service>>,
    Path(pipeline): Path<String>,
    Query(query): Query<LookupQuery>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
) -> Response {
    answer(&service, &pipeline, None, query, &headers, &extensions).await
}

/// `GET /lookup/{pipeline}/{token}?number=...`.
pub async fn lookup_with_token(
    State(service): State<Arc<Service>>,
    Path((pipeline, token)): Path<(String, String)>,
    Query(query): Query<LookupQuery>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
) -> Response {
    answer(
        &service,
        &pipeline,
        Some(&token),
        query,
        &headers,
        &extensions,
    )
    .await
}

async fn answer(
    service: &Service,
    pipeline: &str,
    token: Option<&str>,
    query: LookupQuery,
    headers: &HeaderMap,
    extensions: &axum::http::Extensions,
) -> Response {
    let Some(endpoint) = service
        .lookups
        .iter()
        .find(|l| l.config.pipeline == pipeline)
    else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let client: Option<IpAddr> = crate::serve::connections::client_of(extensions).map(|c| c.ip());
    if let Some(refused) = admit(
        service,
        &endpoint.access,
        client,
        headers,
        token,
        "lookup",
        "ucm lookup",
    ) {
        return refused;
    }
    let Some(store) = service
        .pipeline(pipeline)
        .and_then(|p| p.loaded.as_ref().ok())
        .map(|l| l.store.clone())
    else {
        return plain(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("pipeline {pipeline} is not loaded (see the service log)\n"),
        );
    };
    let number = query.number.unwrap_or_default();
    let keys = store.numbers().query_keys(&number);
    if keys.is_empty() {
        return plain(
            StatusCode::BAD_REQUEST,
            format!(
                "number= is {}: give the calling number, e.g. /lookup/{pipeline}?number=%2B3247511111\n",
                if number.trim().is_empty() {
                    "missing or blank".to_owned()
                } else {
                    format!("longer than {} bytes", crate::numbers::MAX_NUMBER_BYTES)
                }
            ),
        );
    }
    let found = match find(&store, &keys).await {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(pipeline, "lookup failed: {e}");
            return plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "the directory cannot be read now; try again\n".into(),
            );
        }
    };
    let region = store.numbers().region();
    if found.built_with.as_deref() != Some(region.as_str()) {
        return plain(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the number index of pipeline {pipeline} is {} region \"{region}\" yet: the \
                 service builds it at start, every run keeps it\n",
                if found.built_with.is_none() {
                    "not built for"
                } else {
                    "not rebuilt for"
                }
            ),
        );
    }
    service
        .metrics
        .looked_up(pipeline, !found.matches.is_empty());
    let best = found.matches.first();
    let name = best.map(|m| m.entry.display_name(endpoint.config.name_style));
    if !wants_json(headers) {
        return match name {
            Some(name) => plain(StatusCode::OK, name),
            None => plain(StatusCode::NOT_FOUND, String::new()),
        };
    }
    let body = LookupAnswer {
        number: number.trim().to_owned(),
        name,
        contact_id: best.map(|m| m.contact_id),
        field: best
            .and_then(|m| field_of_rank(m.rank))
            .map(|f| FIELD_NAMES[f].to_owned()),
        origin: best.map(|m| m.origin.clone()),
        matched: best.map(|m| m.number.clone()),
        contacts: found.matches.len(),
        others: found
            .matches
            .iter()
            .skip(1)
            .take(10)
            .map(|m| m.contact_id)
            .collect(),
        rule: RANK_RULE,
    };
    let status = if best.is_some() {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    };
    (status, axum::Json(body)).into_response()
}

fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"))
}

fn plain(status: StatusCode, text: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}

/// A contact that has the number.
struct Match {
    number: String,
    rank: i64,
    contact_id: i64,
    origin: String,
    entry: Entry,
}

/// What the index holds for a number's keys.
struct Found {
    /// Best first, each contact once.
    matches: Vec<Match>,
    /// The region the index was built with; None when it is not built.
    built_with: Option<String>,
}

/// Each key's entries in index order (at most [`MAX_MATCHES`] per key), with their contacts;
/// the region the index was built with comes along (one statement).
const LOOKUP_SQL: &str = "SELECT k.number, CAST(k.rank AS BIGINT), c.id, c.origin, c.first_name, c.last_name, \
     c.e_mail, (SELECT region FROM number_index) AS built_with FROM (\
     SELECT * FROM (SELECT number, rank, contact_id FROM contact_numbers WHERE number = $1 \
     ORDER BY rank, contact_id LIMIT 100) AS first_key UNION ALL \
     SELECT * FROM (SELECT number, rank, contact_id FROM contact_numbers WHERE number = $2 \
     ORDER BY rank, contact_id LIMIT 100) AS second_key) AS k \
     JOIN contacts AS c ON c.id = k.contact_id ORDER BY k.rank, k.contact_id";

/// The region the index was built with, when no key matched.
const BUILT_WITH_SQL: &str = "SELECT region FROM number_index";

/// A row of [`LOOKUP_SQL`] as a match and the region the index was built with, read through
/// the backend's getters (text, optional text, integer), whichever the driver.
fn match_of<E>(
    text: impl Fn(usize) -> Result<String, E>,
    optional: impl Fn(usize) -> Result<Option<String>, E>,
    integer: impl Fn(usize) -> Result<i64, E>,
) -> Result<(Match, Option<String>), E> {
    Ok((
        Match {
            number: text(0)?,
            rank: integer(1)?,
            contact_id: integer(2)?,
            origin: text(3)?,
            entry: Entry {
                first_name: optional(4)?,
                last_name: optional(5)?,
                e_mail: optional(6)?,
                ..Entry::default()
            },
        },
        optional(7)?,
    ))
}

/// Reads the index for `keys` (one or two: the number as written and normalised). On SQLite
/// through the search's read connections (rusqlite, a cached statement, one hand-off from the
/// runtime); on PostgreSQL through the pool.
async fn find(store: &Store, keys: &[String]) -> Result<Found, LoadError> {
    let first = keys[0].clone();
    let second = keys.get(1).unwrap_or(&keys[0]).clone();
    let (rows, built_with): (Vec<Match>, Option<String>) = match store.backend() {
        Backend::Sqlite { path, .. } => {
            on_sqlite_reader(store, path, move |conn| {
                let mut lookup = conn.prepare_cached(LOOKUP_SQL)?;
                let rows = lookup
                    .query_map([&first, &second], |row| {
                        match_of(|i| row.get(i), |i| row.get(i), |i| row.get(i))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                let built_with = match rows.first() {
                    Some((_, built_with)) => built_with.clone(),
                    None => conn
                        .prepare_cached(BUILT_WITH_SQL)?
                        .query_row([], |r| r.get(0))
                        .optional()?,
                };
                Ok((rows.into_iter().map(|(m, _)| m).collect(), built_with))
            })
            .await?
        }
        Backend::Postgres { pool } => {
            let found = sqlx::query(LOOKUP_SQL)
                .bind(&first)
                .bind(&second)
                .fetch_all(pool)
                .await
                .and_then(|rows| {
                    rows.iter()
                        .map(|row| {
                            match_of(|i| row.try_get(i), |i| row.try_get(i), |i| row.try_get(i))
                        })
                        .collect::<Result<Vec<_>, sqlx::Error>>()
                })
                .map_err(|e| store.error(e))?;
            let built_with = match found.first() {
                Some((_, built_with)) => built_with.clone(),
                None => sqlx::query_scalar(BUILT_WITH_SQL)
                    .fetch_optional(pool)
                    .await
                    .map_err(|e| store.error(e))?,
            };
            (found.into_iter().map(|(m, _)| m).collect(), built_with)
        }
    };
    // A contact found by both keys (its extension and its mobile written alike) once.
    let mut matches: Vec<Match> = Vec::new();
    for m in rows {
        if !matches.iter().any(|known| known.contact_id == m.contact_id) {
            matches.push(m);
        }
    }
    Ok(Found {
        matches,
        built_with,
    })
}

/// The database's plan for a lookup, one line a step: what a test (or an operator who
/// doubts the index) reads to see that no step scans a table. On PostgreSQL with sequential
/// scans disabled, so that it uses an index whenever one applies, even on a small table.
pub async fn lookup_plan(store: &Store) -> Result<String, LoadError> {
    use crate::serve::search::{Bind, explain};
    let keys = ["0475111111", "+32475111111"].map(|k| Bind::Text(k.to_owned()));
    explain(store, LOOKUP_SQL, keys.into()).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::phone_access::Refusal;

    fn config(toml_text: &str) -> Result<LookupEndpointConfig, String> {
        toml::from_str(toml_text).map_err(|e| e.to_string())
    }

    #[test]
    fn a_lookup_endpoint_needs_protection_and_refuses_unknown_keys() {
        let c = config("pipeline = \"p\"\nallow = [\"10.0.0.5/32\"]").unwrap();
        assert_eq!(c.name_style, NameStyle::FirstLast);
        assert!(c.resolve().is_ok());
        let error = config("pipeline = \"p\"").unwrap().resolve().unwrap_err();
        assert!(
            error.contains("[[lookups]] p") && error.contains("needs basic auth"),
            "{error}"
        );
        assert!(config("pipeline = \"p\"\nregion = \"BE\"").is_err());
    }

    #[test]
    fn each_key_reads_at_most_max_matches_entries() {
        assert_eq!(
            LOOKUP_SQL.matches(&format!("LIMIT {MAX_MATCHES})")).count(),
            2
        );
    }

    #[test]
    fn only_the_whole_configured_token_lets_a_lookup_in() {
        let endpoint = config("pipeline = \"p\"\ntoken = \"0123456789abcdef0\"")
            .unwrap()
            .resolve()
            .unwrap();
        let headers = HeaderMap::new();
        assert_eq!(
            endpoint.access.check(None, &headers, Some("guess")),
            Err(Refusal::Unauthorized)
        );
        for near in ["0123456789abcdef", "0123456789abcdef01", ""] {
            assert_eq!(
                endpoint.access.check(None, &headers, Some(near)),
                Err(Refusal::Unauthorized),
                "{near:?}"
            );
        }
        assert!(
            endpoint
                .access
                .check(None, &headers, Some("0123456789abcdef0"))
                .is_ok()
        );
    }
}
