//! Plans over HTTP (login required): list them, read one with a page of its changes, apply
//! one (on a task of its own, like a run), discard one.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::load::plans;
use crate::serve::answers::{answer_task, error};
use crate::serve::started::Asked;
use crate::serve::state::Service;

/// Changes a page holds at most.
const MAX_PAGE: i64 = 1000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only this pipeline's plans.
    pipeline: Option<String>,
}

/// `GET /api/plans[?pipeline=NAME]`: every loaded pipeline's plans, newest first.
pub async fn list(State(service): State<Arc<Service>>, Query(q): Query<ListQuery>) -> Response {
    let now = crate::load::now();
    let mut all = Vec::new();
    for pipeline in &service.pipelines {
        if q.pipeline.as_ref().is_some_and(|p| *p != pipeline.name) {
            continue;
        }
        let Ok(loaded) = &pipeline.loaded else {
            continue;
        };
        match plans::list(&loaded.store, &pipeline.name, &now).await {
            Ok(found) => all.extend(found),
            Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        }
    }
    all.sort_by(|a, b| b.created_at.cmp(&a.created_at));
    Json(all).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Changes after this position (0: from the start).
    after: Option<i64>,
    /// Changes per page (default 100, at most 1000).
    limit: Option<i64>,
}

/// `GET /api/pipelines/{name}/plans/{id}?after=N&limit=M`: the plan, a page of its changes,
/// and where the next page starts (`next_after`, absent at the end).
pub async fn show(
    State(service): State<Arc<Service>>,
    Path((name, id)): Path<(String, i64)>,
    Query(q): Query<PageQuery>,
) -> Response {
    let Some(store) = store_of(&service, &name) else {
        return error(StatusCode::NOT_FOUND, format!("no loaded pipeline {name}"));
    };
    let plan = match plans::get(store, id).await {
        Ok(Some(plan)) if plan.pipeline == name => plan,
        Ok(_) => return error(StatusCode::NOT_FOUND, format!("no plan #{id} of {name}")),
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    };
    let limit = q.limit.unwrap_or(100).clamp(1, MAX_PAGE);
    let page = match crate::plan::changes(
        store,
        plans::ChangeList::Plan(id),
        q.after.unwrap_or(0),
        limit,
    )
    .await
    {
        Ok(page) => page,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let next_after = (page.len() as i64 == limit)
        .then(|| page.last().map(|(seq, _)| *seq))
        .flatten();
    let report: serde_json::Value = serde_json::from_str(&plan.report).unwrap_or_default();
    Json(json!({
        "plan": plan,
        "rejected": report["rejected"],
        "rejections": report["rejections"],
        "changes": page.into_iter().map(|(_, c)| c).collect::<Vec<_>>(),
        "next_after": next_after,
    }))
    .into_response()
}

/// `POST /api/pipelines/{name}/plans/{id}/apply`: applies the plan (see `crate::plan::apply`)
/// and answers its run report: 200 when it landed, 422 when it was refused or failed, 409
/// while the pipeline runs.
pub async fn apply(
    State(service): State<Arc<Service>>,
    Path((name, id)): Path<(String, i64)>,
) -> Response {
    let Some(pipeline) = service.pipeline(&name) else {
        return error(StatusCode::NOT_FOUND, format!("no pipeline {name}"));
    };
    let watch = service.started.begin(&name, Asked::Apply(id));
    answer_task(&name, service.start_apply(pipeline, id, watch)).await
}

/// `POST /api/pipelines/{name}/plans/{id}/discard`.
pub async fn discard(
    State(service): State<Arc<Service>>,
    Path((name, id)): Path<(String, i64)>,
) -> Response {
    let Some(store) = store_of(&service, &name) else {
        return error(StatusCode::NOT_FOUND, format!("no loaded pipeline {name}"));
    };
    match plans::get(store, id).await {
        Ok(Some(plan)) if plan.pipeline == name => {}
        Ok(_) => return error(StatusCode::NOT_FOUND, format!("no plan #{id} of {name}")),
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
    match plans::discard(store, id).await {
        Ok(true) => Json(json!({"plan": id, "status": "discarded"})).into_response(),
        Ok(false) => error(
            StatusCode::CONFLICT,
            format!("plan #{id} was applied or discarded already"),
        ),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

fn store_of<'s>(service: &'s Service, name: &str) -> Option<&'s crate::load::Store> {
    service
        .pipeline(name)
        .and_then(|p| p.loaded.as_ref().ok())
        .map(|l| &l.store)
}
