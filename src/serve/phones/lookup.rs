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
//! index through `crate::directory::caller_id`, whatever the table's size. Access is the
//! phonebooks' (`super::access`); its config is `super::lookup_config`.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::admission::admit;
use crate::directory::caller_id::{Found, find};
use crate::fields::FIELD_NAMES;
use crate::load::Store;
use crate::numbers::{RANK_RULE, field_of_rank};
use crate::serve::state::Service;

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
    let found = match read_index(&store, pipeline, &number).await {
        Ok(found) => found,
        Err(refused) => return refused,
    };
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
    let body = json_answer(&number, name, &found);
    let status = if best.is_some() {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    };
    (status, axum::Json(body)).into_response()
}

/// The index's entries for `number`, as written and normalised; Err is the answer when the
/// number is missing or too long, the database cannot be read, or the index was not built
/// for the pipeline's region.
async fn read_index(store: &Store, pipeline: &str, number: &str) -> Result<Found, Response> {
    let keys = store.numbers().query_keys(number);
    if keys.is_empty() {
        return Err(plain(
            StatusCode::BAD_REQUEST,
            format!(
                "number= is {}: give the calling number, e.g. /lookup/{pipeline}?number=%2B3247511111\n",
                if number.trim().is_empty() {
                    "missing or blank".to_owned()
                } else {
                    format!("longer than {} bytes", crate::numbers::MAX_NUMBER_BYTES)
                }
            ),
        ));
    }
    let found = match find(store, &keys).await {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(pipeline, "lookup failed: {e}");
            return Err(plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "the directory cannot be read now; try again\n".into(),
            ));
        }
    };
    let region = store.numbers().region();
    if found.built_with.as_deref() != Some(region.as_str()) {
        return Err(plain(
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
        ));
    }
    Ok(found)
}

/// The JSON answer: the best match and how it was chosen, and the others sharing the number.
fn json_answer(number: &str, name: Option<String>, found: &Found) -> LookupAnswer {
    let best = found.matches.first();
    LookupAnswer {
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
    }
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
