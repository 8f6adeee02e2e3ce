//! Contacts: search the merged directory (the same indexed search as `GET /api/contacts`),
//! and each contact's page: every field, the side its value came from (the directory or the
//! external source) and the run that last changed the row.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;
use sqlx::Row;

use super::page::{LoggedIn, layout, not_found, unavailable};
use crate::fields::{FIELD_COUNT, FIELD_NAMES};
use crate::load::{LoadError, Store, on_pool};
use crate::serve::state::Service;
use crate::serve::urls::encoded;

/// Contacts a search page lists.
const RESULTS: i64 = 50;

#[derive(Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
}

/// `GET /contacts?q=TEXT`.
pub async fn search(
    State(service): State<Arc<Service>>,
    LoggedIn(session): LoggedIn,
    Query(query): Query<SearchQuery>,
) -> Response {
    let Some(store) = service.objects_store() else {
        return not_found(&session, "No pipeline is loaded, so there is no directory.");
    };
    let found = if query.q.trim().is_empty() {
        Vec::new()
    } else {
        let Ok(_lane) = service.search_lane.acquire().await else {
            return unavailable(&session, "the service is shutting down");
        };
        match crate::directory::search(store, &query.q, RESULTS).await {
            Ok(found) => found,
            Err(e) => return unavailable(&session, e),
        }
    };
    let body = html! {
        form.search method="get" action="/contacts" {
            input type="search" name="q" value=(query.q) placeholder="a name, an e-mail address or a number" autofocus;
            button type="submit" { "Search" }
        }
        @if !query.q.trim().is_empty() {
            @if found.is_empty() { p.empty { "No contact matches." } }
            @else {
                table.contacts {
                    thead { tr { th { "name" } th { "e-mail" } th { "extension" } th { "mobile" } th { "department" } th { "origin" } } }
                    tbody {
                        @for c in &found {
                            tr {
                                td { a href=(format!("/contact?id={}", encoded(&c.id))) {
                                    (c.first_name.as_deref().unwrap_or("")) " " (c.last_name.as_deref().unwrap_or(""))
                                } }
                                td { (c.e_mail.as_deref().unwrap_or("")) }
                                td { (c.extension.as_deref().unwrap_or("")) }
                                td { (c.mobile_number.as_deref().unwrap_or("")) }
                                td { (c.department.as_deref().unwrap_or("")) }
                                td { (c.origin) }
                            }
                        }
                    }
                }
                @if found.len() as i64 == RESULTS { p.note { "The first " (RESULTS) " matches; type more to narrow the search." } }
            }
        }
    };
    layout("Contacts", Some(&session), body).into_response()
}

#[derive(Deserialize)]
pub struct ContactQuery {
    /// `dir:DIRECTORY_ID` or `ext:MATCH_KEY`.
    id: String,
}

/// A merged row, every field, with its provenance.
struct ContactRow {
    origin: String,
    values: Vec<Option<String>>,
    sides: i64,
    changed_by_run: Option<i64>,
}

/// The row of identity `id` (one indexed read).
async fn read(store: &Store, id: &str) -> Result<Option<ContactRow>, LoadError> {
    let Some((filter, value)) = crate::directory::contacts::identity_filter(id) else {
        return Ok(None);
    };
    let sql = format!(
        "SELECT origin, sides, changed_by_run, {} FROM contacts AS c WHERE {filter}",
        *crate::load::contacts::FIELD_COLUMNS
    );
    on_pool!(store, |pool| {
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(value)
            .fetch_optional(pool)
            .await
            .map_err(|e| store.error(e))?;
        row.map(|r| {
            Ok(ContactRow {
                origin: r.try_get(0)?,
                sides: r.try_get::<Option<i64>, _>(1)?.unwrap_or_default(),
                changed_by_run: r.try_get(2)?,
                values: (0..FIELD_COUNT)
                    .map(|i| r.try_get(3 + i))
                    .collect::<Result<_, _>>()?,
            })
        })
        .transpose()
        .map_err(|e: sqlx::Error| store.error(e))
    })
}

/// `GET /contact?id=IDENTITY`.
pub async fn one(
    State(service): State<Arc<Service>>,
    LoggedIn(session): LoggedIn,
    Query(query): Query<ContactQuery>,
) -> Response {
    let Some(store) = service.objects_store() else {
        return not_found(&session, "No pipeline is loaded, so there is no directory.");
    };
    let row = match read(store, &query.id).await {
        Ok(Some(row)) => row,
        Ok(None) => return not_found(&session, &format!("No contact {}.", query.id)),
        Err(e) => return unavailable(&session, e),
    };
    // The run pages are per pipeline; the directory is the first loaded pipeline's.
    let pipeline = service
        .pipelines
        .iter()
        .find(|p| p.loaded.is_ok())
        .map(|p| p.name.clone())
        .unwrap_or_default();
    let sides = crate::load::sides_of(row.sides as u32);
    let body = html! {
        table.summary {
            tr { th { "identity" } td { code { (query.id) } } }
            tr { th { "origin" } td { (row.origin) } }
            tr { th { "last changed by" } td {
                @match row.changed_by_run {
                    Some(run) => { a href=(format!("/runs/{}/{run}", encoded(&pipeline))) { "run #" (run) } }
                    None => { "unknown (changed before ucm recorded provenance)" }
                }
            } }
        }
        table.provenance {
            thead { tr { th { "field" } th { "value" } th { "from" } } }
            tbody {
                @for (i, name) in FIELD_NAMES.iter().enumerate() {
                    tr {
                        td.field { (name) }
                        td.value { (row.values[i].as_deref().unwrap_or("")) }
                        td class=(format!("side {}", sides[i].as_str())) {
                            @if row.values[i].is_some() { (sides[i].as_str()) }
                        }
                    }
                }
            }
        }
    };
    let title = [&row.values[1], &row.values[2]]
        .iter()
        .filter_map(|v| v.as_deref())
        .collect::<Vec<_>>()
        .join(" ");
    layout(
        if title.is_empty() { "Contact" } else { &title },
        Some(&session),
        body,
    )
    .into_response()
}
