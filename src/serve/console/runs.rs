//! Runs: the history of a pipeline (paged, newest first) and each run's page: its report,
//! its rejections with their line numbers, and its full diff (paged, filtered by action,
//! field and contact). A run's diff is its change list (`run_changes`, the first
//! `[merge] run_changes_kept` changes), or for a dry run, a refused run and an apply, its plan's.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;

use super::changes::{ChangeFilter, changes_page, changes_section, rejections_section};
use super::page::{LoggedIn, layout, loaded, not_found, unavailable};
use crate::load::plans::{self, ChangeList};
use crate::load::runs;
use crate::serve::state::Service;
use crate::serve::urls::encoded;

/// Runs a history page lists.
const RUNS_PER_PAGE: i64 = 50;

#[derive(Deserialize)]
pub struct ListQuery {
    /// The pipeline (default: the first).
    pipeline: Option<String>,
    /// Runs older than this one.
    before: Option<i64>,
}

/// `GET /runs?pipeline=NAME&before=ID`.
pub async fn list(
    State(service): State<Arc<Service>>,
    LoggedIn(session): LoggedIn,
    Query(q): Query<ListQuery>,
) -> Response {
    let Some(name) = q
        .pipeline
        .clone()
        .or_else(|| service.pipelines.first().map(|p| p.name.clone()))
    else {
        return not_found(&session, "No pipeline is configured.");
    };
    let Some((_, store)) = loaded(&service, &name) else {
        return not_found(&session, &format!("No loaded pipeline {name}."));
    };
    let history = match runs::older_than(store, Some(&name), q.before, RUNS_PER_PAGE).await {
        Ok(history) => history,
        Err(e) => return unavailable(&session, e),
    };
    let body = html! {
        p.pipelines { "Pipeline: "
            @for p in &service.pipelines {
                @if p.name == name { b { (p.name) } } @else { a href=(format!("/runs?pipeline={}", encoded(&p.name))) { (p.name) } }
                " "
            }
        }
        @if history.is_empty() { p.empty { "No runs." } }
        @else {
            table.runs {
                thead { tr { th { "run" } th { "command" } th { "status" } th { "started" } th { "ms" } th { "read" } th { "rejected" } th { "+" } th { "~" } th { "−" } th { "error" } } }
                tbody {
                    @for r in &history {
                        tr {
                            td { a href=(format!("/runs/{}/{}", encoded(&name), r.id)) { "#" (r.id) } }
                            td { (r.command) }
                            td { span class=(format!("status {}", r.status)) { (r.status) } }
                            td { (r.started_at) }
                            td.count { (r.duration_ms) }
                            td.count { (r.contacts_read) }
                            td.count { (r.rejected) }
                            td.count { (r.inserted) }
                            td.count { (r.updated) }
                            td.count { (r.deleted) }
                            td.failed { (r.error.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
        }
        @if history.len() as i64 == RUNS_PER_PAGE {
            @if let Some(last) = history.last() {
                p.pager { a href=(format!("/runs?pipeline={}&before={}", encoded(&name), last.id)) { "Older runs →" } }
            }
        }
    };
    layout(&format!("Runs of {name}"), Some(&session), body).into_response()
}

/// `GET /runs/{pipeline}/{id}?action=&field=&contact=&after=`.
pub async fn one(
    State(service): State<Arc<Service>>,
    LoggedIn(session): LoggedIn,
    Path((name, id)): Path<(String, i64)>,
    Query(filter): Query<ChangeFilter>,
) -> Response {
    let Some((_, store)) = loaded(&service, &name) else {
        return not_found(&session, &format!("No loaded pipeline {name}."));
    };
    let report = match runs::report(store, id).await {
        Ok(Some(report)) => report,
        Ok(None) => return not_found(&session, &format!("No run #{id} of {name}.")),
        Err(e) => return unavailable(&session, e),
    };
    let report: serde_json::Value = serde_json::from_str(&report).unwrap_or_default();
    if report["pipeline"].as_str().is_some_and(|p| p != name) {
        return not_found(&session, &format!("No run #{id} of {name}."));
    }
    let plan = match plans::of_run(store, id).await {
        Ok(plan) => plan,
        Err(e) => return unavailable(&session, e),
    };
    let changed = ["inserted", "updated", "deleted"]
        .iter()
        .map(|k| report[k].as_u64().unwrap_or(0))
        .sum::<u64>();
    let list = match (&plan, report["changes_kept"].as_u64()) {
        (Some(plan), _) => Some(ChangeList::Plan(plan.id)),
        (None, Some(_)) => Some(ChangeList::Run(id)),
        (None, None) => None,
    };
    let page = match list {
        Some(list) => match changes_page(store, list, &filter).await {
            Ok(page) => Some(page),
            Err(e) => return unavailable(&session, e),
        },
        None => None,
    };
    let path = format!("/runs/{}/{id}", encoded(&name));
    let field = |key: &str| match &report[key] {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let status = field("status");
    let body = html! {
        table.summary {
            tr { th { "pipeline" } td { (name) } }
            tr { th { "command" } td { (field("command")) @if report["dry_run"] == true { " (dry run)" } } }
            tr { th { "status" } td { span class=(format!("status {status}")) { (status) } } }
            tr { th { "started" } td { (field("started_at")) } }
            tr { th { "finished" } td { (field("finished_at")) " (" (field("duration_ms")) " ms)" } }
            tr { th { "source" } td { (field("source")) } }
            tr { th { "sha256" } td { code { (field("source_sha256")) } } }
            tr { th { "contacts read" } td { (field("contacts_read")) } }
            tr { th { "changes" } td { "+" (field("inserted")) " ~" (field("updated")) " −" (field("deleted")) " · " (field("unchanged")) " unchanged · " (field("rejected")) " rejected" } }
            @if !field("error").is_empty() { tr { th { "error" } td.failed { (field("error")) } } }
        }
        @if let Some(plan) = &plan {
            p.plan-link { "Its changes are those of "
                a href=(format!("/plans/{}/{}", encoded(&name), plan.id)) { "plan #" (plan.id) }
                " (" (plan.status) ")." }
        }
        (rejections_section(&report))
        h2 { "Changes" }
        @match &page {
            Some(page) => {
                @if let (None, Some(kept)) = (&plan, report["changes_kept"].as_u64()) {
                    @if kept < changed {
                        p.note { "This run kept its first " (kept) " of " (changed) " changes ([merge] run_changes_kept)." }
                    }
                }
                (changes_section(&path, &filter, page))
            }
            None => {
                @if changed == 0 { p.empty { "This run changed nothing." } }
                @else { p.empty { "This run keeps no change list: a first load into an empty table (its changes are the whole table: see Contacts), a run recorded before ucm kept change lists, or one whose list was pruned after [merge] run_changes_ttl_hours." } }
            }
        }
    };
    layout(&format!("Run #{id} of {name}"), Some(&session), body).into_response()
}
