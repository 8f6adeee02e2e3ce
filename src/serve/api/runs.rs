//! Pipelines and runs as JSON: `GET /ready`, `/api/pipelines`, `/api/runs`, `/api/runs/{id}`,
//! and `POST /api/pipelines/{name}/run`. Without a login, pipelines and runs are shown as
//! statuses only ([`crate::serve::status`]).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::load::{Store, runs};
use crate::serve::answers::{answer_task, error};
use crate::serve::auth::authorized;
use crate::serve::started::{Asked, KEPT, StartedRuns};
use crate::serve::state::Service;
use crate::serve::status::{describe, shown_report, stores};

type Shared = State<Arc<Service>>;

pub async fn ready(State(service): Shared, headers: HeaderMap) -> Response {
    let full = authorized(&service, &headers);
    let mut problems = Vec::new();
    for p in &service.pipelines {
        match &p.loaded {
            Err(e) if full => problems.push(format!("pipeline {}: {e}", p.name)),
            Err(_) => problems.push(format!("pipeline {}: not loaded", p.name)),
            Ok(l) => match runs::ping(&l.store).await {
                Err(e) if full => problems.push(format!("pipeline {}: {e}", p.name)),
                Err(_) => problems.push(format!("pipeline {}: database unreachable", p.name)),
                Ok(_) => {}
            },
        }
    }
    if problems.is_empty() {
        (StatusCode::OK, Json(json!({ "ready": true }))).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "ready": false, "problems": problems })),
        )
            .into_response()
    }
}

pub async fn pipelines(State(service): Shared, headers: HeaderMap) -> Json<Vec<Value>> {
    let full = authorized(&service, &headers);
    let mut out = Vec::new();
    for p in &service.pipelines {
        out.push(describe(&service, p, full).await);
    }
    Json(out)
}

#[derive(Deserialize)]
pub struct RunsQuery {
    pub pipeline: Option<String>,
    pub limit: Option<i64>,
}

/// A recorded report as JSON, with its run id.
fn with_id(id: i64, report: &str) -> Option<Value> {
    let mut value: Value = serde_json::from_str(report).ok()?;
    value["run_id"] = json!(id);
    Some(value)
}

pub async fn report_json(store: &Store, id: i64) -> Option<Value> {
    with_id(id, &runs::report(store, id).await.ok()??)
}

pub async fn list_runs(
    State(service): Shared,
    headers: HeaderMap,
    Query(q): Query<RunsQuery>,
) -> Response {
    let full = authorized(&service, &headers);
    let limit = q.limit.unwrap_or(20).clamp(1, 1000);
    let mut found: Vec<(String, Value)> = Vec::new();
    for store in stores(&service) {
        let reports = match runs::reports_of(store, q.pipeline.as_deref(), limit).await {
            Ok(r) => r,
            Err(e) if full => return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
            Err(_) => return error(StatusCode::SERVICE_UNAVAILABLE, "database unreachable"),
        };
        found.extend(
            reports
                .into_iter()
                .filter_map(|(id, started_at, report)| Some((started_at, with_id(id, &report)?))),
        );
    }
    found.sort_by(|a, b| b.0.cmp(&a.0));
    found.truncate(limit as usize);
    Json(
        found
            .into_iter()
            .map(|(_, r)| shown_report(r, full))
            .collect::<Vec<_>>(),
    )
    .into_response()
}

#[derive(Deserialize)]
pub struct RunQuery {
    pub pipeline: Option<String>,
}

/// `GET /api/runs/{id}`: run `id` as recorded, or, for `s{n}`, a run started over HTTP as it
/// goes (phase, bytes and contacts read), then its outcome with the run's id.
pub async fn one_run(
    State(service): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<RunQuery>,
) -> Response {
    if let Some(started) = StartedRuns::parse_id(&id) {
        return match service.started.get(started) {
            Some(run) => {
                let mut shown = run.to_json();
                if !authorized(&service, &headers) {
                    // As a recorded run's: statuses only without a login.
                    shown.as_object_mut().map(|o| o.remove("error"));
                }
                Json(shown).into_response()
            }
            None => error(
                StatusCode::NOT_FOUND,
                format!("no started run {id} (the service keeps the last {KEPT})"),
            ),
        };
    }
    let Ok(id) = id.parse::<i64>() else {
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "run id {id:?}: a run is a number (42), a run started over HTTP s and a number (s7)"
            ),
        );
    };
    let full = authorized(&service, &headers);
    let stores: Vec<&Store> = match &q.pipeline {
        Some(name) => match service.pipeline(name).map(|p| &p.loaded) {
            Some(Ok(l)) => vec![&l.store],
            _ => return error(StatusCode::NOT_FOUND, format!("no pipeline {name}")),
        },
        None => stores(&service),
    };
    for store in stores {
        if let Some(report) = report_json(store, id).await {
            return Json(shown_report(report, full)).into_response();
        }
    }
    error(StatusCode::NOT_FOUND, format!("no run {id}"))
}

#[derive(Deserialize)]
pub struct StartQuery {
    #[serde(default)]
    pub dry_run: bool,
    /// false: answer 202 at once with the started run's name (`s{n}`), whose progress
    /// `GET /api/runs/s{n}` shows.
    #[serde(default = "wait_for_the_report")]
    pub wait: bool,
}

fn wait_for_the_report() -> bool {
    true
}

/// `POST /api/pipelines/{name}/run`: starts the run on a task of its own and answers with
/// its report when it ends (or, with `wait=false`, 202 and where to follow it at once). A
/// client that goes away does not stop it: it is recorded and counted all the same.
pub async fn start_run(
    State(service): Shared,
    Path(name): Path<String>,
    Query(q): Query<StartQuery>,
) -> Response {
    let Some(pipeline) = service.pipeline(&name) else {
        return error(StatusCode::NOT_FOUND, format!("no pipeline {name}"));
    };
    let asked = if q.dry_run { Asked::DryRun } else { Asked::Run };
    let watch = service.started.begin(&name, asked);
    let id = watch.id;
    let started = service.start_run(pipeline, q.dry_run, watch);
    if q.wait || started.is_err() {
        return answer_task(&name, started).await;
    }
    (
        StatusCode::ACCEPTED,
        Json(serde_json::json!({
            "started": format!("s{id}"),
            "progress": format!("/api/runs/s{id}"),
        })),
    )
        .into_response()
}
