//! Plans: every pipeline's plans (awaiting approval first), a plan's page (its summary, base
//! fingerprint, rejections and diff, with **Approve** and **Discard**), **Dry run now**, and a
//! sample XML uploaded for an ad-hoc dry run (bounded by `[limits] max_upload_bytes`,
//! validated like any source, stored as a plan).

use std::io::Write as _;
use std::sync::Arc;

use axum::extract::{Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};

use super::changes::{ChangeFilter, changes_page, changes_section, rejections_section};
use super::page::{
    LoggedIn, TokenForm, csrf_field, csrf_refused, layout, loaded, not_found, problem, unavailable,
};
use super::session::Session;
use super::started::started_path;
use crate::load::plans::{self, ChangeList, PlanRecord};
use crate::report::RunReport;
use crate::serve::started::{Asked, StartedRun};
use crate::serve::state::{Service, StartRefused};
use crate::serve::urls::encoded;

fn plan_path(plan: &PlanRecord) -> String {
    format!("/plans/{}/{}", encoded(&plan.pipeline), plan.id)
}

fn open(plan: &PlanRecord) -> bool {
    matches!(plan.status.as_str(), "pending" | "awaiting_approval")
}

/// `GET /plans`.
pub async fn list(State(service): State<Arc<Service>>, LoggedIn(session): LoggedIn) -> Response {
    let now = crate::load::now();
    let mut all = Vec::new();
    for p in &service.pipelines {
        let Ok(l) = &p.loaded else { continue };
        match plans::list(&l.store, &p.name, &now).await {
            Ok(found) => all.extend(found),
            Err(e) => return unavailable(&session, e),
        }
    }
    // Awaiting approval first, then newest first.
    all.sort_by(|a, b| {
        (b.status == "awaiting_approval")
            .cmp(&(a.status == "awaiting_approval"))
            .then(b.created_at.cmp(&a.created_at))
    });
    let body = html! {
        @if all.is_empty() { p.empty { "No plans. A dry run, or a run a guard refuses, stores one." } }
        @else {
            table.plans {
                thead { tr { th { "plan" } th { "pipeline" } th { "status" } th { "created" } th { "expires" } th { "+" } th { "~" } th { "−" } th { "source" } th { "why" } } }
                tbody {
                    @for plan in &all {
                        tr class=(plan.status) {
                            td { a href=(plan_path(plan)) { "#" (plan.id) } }
                            td { (plan.pipeline) }
                            td { span class=(format!("status {}", plan.status)) { (plan.status.replace('_', " ")) } }
                            td { (plan.created_at) }
                            td { (plan.expires_at) }
                            td.count { (plan.inserted) }
                            td.count { (plan.updated) }
                            td.count { (plan.deleted) }
                            td { (plan.source.as_deref().unwrap_or("")) }
                            td { (plan.reason.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
        }
        h2 { "New plans" }
        @for p in &service.pipelines {
            @if p.loaded.is_ok() {
                section.new-plan {
                    h3 { (p.name) }
                    form.inline method="post" action=(format!("/pipelines/{}/dry-run", encoded(&p.name))) {
                        (csrf_field(&session))
                        button type="submit" { "Dry run now" }
                        " fetches the source and stores what a run would change."
                    }
                    form.upload method="post" enctype="multipart/form-data" action=(format!("/pipelines/{}/upload", encoded(&p.name))) {
                        (csrf_field(&session))
                        label { "Sample XML " input type="file" name="sample" accept=".xml,application/xml,text/xml" required; }
                        button type="submit" { "Upload and dry run" }
                        " (at most " (service.limits.max_upload_bytes / (1024 * 1024)) " MiB)"
                    }
                }
            }
        }
    };
    layout("Plans", Some(&session), body).into_response()
}

/// `GET /plans/{pipeline}/{id}?action=&field=&contact=&after=`: reads the plan's row and one
/// page of its changes by primary key; never the contacts table.
pub async fn one(
    State(service): State<Arc<Service>>,
    LoggedIn(session): LoggedIn,
    Path((name, id)): Path<(String, i64)>,
    Query(filter): Query<ChangeFilter>,
) -> Response {
    plan_page(&service, &session, &name, id, &filter, None).await
}

async fn plan_page(
    service: &Service,
    session: &Session,
    name: &str,
    id: i64,
    filter: &ChangeFilter,
    outcome: Option<(StatusCode, String)>,
) -> Response {
    let Some((_, store)) = loaded(service, name) else {
        return not_found(session, &format!("No loaded pipeline {name}."));
    };
    let plan = match plans::get(store, id).await {
        Ok(Some(plan)) if plan.pipeline == name => plan,
        Ok(_) => {
            return not_found(
                session,
                &format!("No plan #{id} of {name} (expired plans are pruned)."),
            );
        }
        Err(e) => return unavailable(session, e),
    };
    let page = match changes_page(store, ChangeList::Plan(id), filter).await {
        Ok(page) => page,
        Err(e) => return unavailable(session, e),
    };
    let report: serde_json::Value = serde_json::from_str(&plan.report).unwrap_or_default();
    let status = outcome.as_ref().map_or(StatusCode::OK, |(s, _)| *s);
    let body = html! {
        @if let Some((_, message)) = &outcome { p.failed.problem { (message) } }
        @if plan.status == "awaiting_approval" {
            p.failed.awaiting { "A guard refused the run: " (plan.reason.as_deref().unwrap_or("")) ". Approving applies exactly these changes." }
        }
        (summary(&plan))
        @if open(&plan) { (decision_forms(session, &plan)) }
        (rejections_section(&report))
        h2 { "Changes" }
        (changes_section(&plan_path(&plan), filter, &page))
    };
    (
        status,
        layout(&format!("Plan #{id} of {name}"), Some(session), body),
    )
        .into_response()
}

fn summary(plan: &PlanRecord) -> Markup {
    html! {
        table.summary {
            tr { th { "status" } td { span class=(format!("status {}", plan.status)) { (plan.status.replace('_', " ")) } } }
            tr { th { "created" } td { (plan.created_at) } }
            tr { th { "expires" } td { (plan.expires_at) } }
            tr { th { "source" } td { (plan.source.as_deref().unwrap_or("")) } }
            tr { th { "sha256" } td { code { (plan.source_sha256.as_deref().unwrap_or("")) } } }
            tr { th { "changes" } td.counts { "+" (plan.inserted) " ~" (plan.updated) " −" (plan.deleted) } }
            @if let Some(run) = plan.run_id {
                tr { th { "computed by" } td { a href=(format!("/runs/{}/{run}", encoded(&plan.pipeline))) { "run #" (run) } } }
            }
            @if let Some(run) = plan.applied_run_id {
                tr { th { "applied by" } td { a href=(format!("/runs/{}/{run}", encoded(&plan.pipeline))) { "run #" (run) } } }
            }
            tr { th { "computed against" } td.base {
                "table " code { (plan.base_table) } br;
                "directory " code { (plan.base_directory) } br;
                "policy " code { (plan.base_policy) }
            } }
        }
    }
}

fn decision_forms(session: &Session, plan: &PlanRecord) -> Markup {
    let path = plan_path(plan);
    html! {
        div.decision {
            form.inline method="post" action=(format!("{path}/approve")) {
                (csrf_field(session))
                button.approve type="submit" { "Approve" }
            }
            form.inline method="post" action=(format!("{path}/discard")) {
                (csrf_field(session))
                button.discard type="submit" { "Discard" }
            }
            p.note { "Approve applies exactly these changes in one transaction, if nothing they were computed against has moved since; otherwise it is refused and nothing changes." }
        }
    }
}

/// `POST /plans/{pipeline}/{id}/approve`: starts the apply of the plan (as `ucm apply`) and
/// answers at once with the run's page (its progress, then the run that applied it, or the
/// reason it was not); the plan again with the reason when it cannot start.
pub async fn approve(
    State(service): State<Arc<Service>>,
    LoggedIn(session): LoggedIn,
    Path((name, id)): Path<(String, i64)>,
    axum::Form(form): axum::Form<TokenForm>,
) -> Response {
    if let Some(refused) = csrf_refused(&session, &form.csrf) {
        return refused;
    }
    let Some(pipeline) = service.pipeline(&name) else {
        return not_found(&session, &format!("No pipeline {name}."));
    };
    tracing::info!(user = %session.user, pipeline = %name, plan = id, "plan approved in the console");
    let watch = service.started.begin(&name, Asked::Apply(id));
    let outcome = match service.start_apply(pipeline, id, Arc::clone(&watch)) {
        Ok(_) => return Redirect::to(&started_path(&watch)).into_response(),
        Err(refused) => (StatusCode::CONFLICT, refused.message(&name)),
    };
    plan_page(
        &service,
        &session,
        &name,
        id,
        &ChangeFilter::default(),
        Some(outcome),
    )
    .await
}

/// `POST /plans/{pipeline}/{id}/discard`.
pub async fn discard(
    State(service): State<Arc<Service>>,
    LoggedIn(session): LoggedIn,
    Path((name, id)): Path<(String, i64)>,
    axum::Form(form): axum::Form<TokenForm>,
) -> Response {
    if let Some(refused) = csrf_refused(&session, &form.csrf) {
        return refused;
    }
    let Some((_, store)) = loaded(&service, &name) else {
        return not_found(&session, &format!("No loaded pipeline {name}."));
    };
    match plans::get(store, id).await {
        Ok(Some(plan)) if plan.pipeline == name => {}
        Ok(_) => return not_found(&session, &format!("No plan #{id} of {name}.")),
        Err(e) => return unavailable(&session, e),
    }
    match plans::discard(store, id).await {
        Ok(true) => {
            tracing::info!(user = %session.user, pipeline = %name, plan = id, "plan discarded in the console");
            Redirect::to(&format!("/plans/{}/{id}", encoded(&name))).into_response()
        }
        Ok(false) => {
            let message = format!("Plan #{id} was applied or discarded already.");
            plan_page(
                &service,
                &session,
                &name,
                id,
                &ChangeFilter::default(),
                Some((StatusCode::CONFLICT, message)),
            )
            .await
        }
        Err(e) => unavailable(&session, e),
    }
}

/// The answer to a form that started `watch` (or was refused): the run's page, where its
/// progress and then its plan show.
fn started_answer(
    session: &Session,
    name: &str,
    watch: &StartedRun,
    started: Result<tokio::sync::oneshot::Receiver<RunReport>, StartRefused>,
) -> Response {
    match started {
        Ok(_) => Redirect::to(&started_path(watch)).into_response(),
        Err(refused) => problem(
            StatusCode::CONFLICT,
            Some(session),
            "Dry run not started",
            &refused.message(name),
        ),
    }
}

/// `POST /pipelines/{pipeline}/dry-run`: fetches the source and stores the plan of a run.
pub async fn dry_run_now(
    State(service): State<Arc<Service>>,
    LoggedIn(session): LoggedIn,
    Path(name): Path<String>,
    axum::Form(form): axum::Form<TokenForm>,
) -> Response {
    if let Some(refused) = csrf_refused(&session, &form.csrf) {
        return refused;
    }
    let Some(pipeline) = service.pipeline(&name) else {
        return not_found(&session, &format!("No pipeline {name}."));
    };
    tracing::info!(user = %session.user, pipeline = %name, "dry run started in the console");
    let watch = service.started.begin(&name, Asked::DryRun);
    let started = service.start_run(pipeline, true, Arc::clone(&watch));
    started_answer(&session, &name, &watch, started)
}

/// `POST /pipelines/{pipeline}/upload` (multipart: `csrf` first, then the `sample` file):
/// the sample is written to a temporary file as it arrives (at most `[limits]
/// max_upload_bytes`, refused with 413 beyond), then dry-run like an import of that file:
/// validated against the pipeline's schema, merged, stored as a plan. The file is deleted
/// after the dry run; the plan keeps what it would change.
pub async fn upload(
    State(service): State<Arc<Service>>,
    LoggedIn(session): LoggedIn,
    Path(name): Path<String>,
    mut multipart: Multipart,
) -> Response {
    let refuse =
        |status, message: String| problem(status, Some(&session), "Upload refused", &message);
    let failed = |e| upload_failed(&service, &session, e);
    // The token comes first, so nothing is written for a forged form.
    let token = match multipart.next_field().await {
        Ok(Some(field)) if field.name() == Some("csrf") => match field.text().await {
            Ok(token) => token,
            Err(e) => return failed(e),
        },
        Ok(_) => String::new(),
        Err(e) => return failed(e),
    };
    if let Some(refused) = csrf_refused(&session, &token) {
        return refused;
    }
    let Some(pipeline) = service.pipeline(&name) else {
        return not_found(&session, &format!("No pipeline {name}."));
    };
    let Ok(loaded) = &pipeline.loaded else {
        return refuse(
            StatusCode::CONFLICT,
            format!("Pipeline {name} is not loaded."),
        );
    };
    let mut field = match multipart.next_field().await {
        Ok(Some(field)) if field.name() == Some("sample") => field,
        Ok(_) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "The form has no sample file.".into(),
            );
        }
        Err(e) => return failed(e),
    };
    let shown = field
        .file_name()
        .map(|f| crate::redact::printable(f, 80))
        .unwrap_or_else(|| "sample.xml".into());
    let directory = crate::stage::pipeline_dir(&loaded.config).join("uploads");
    let file = std::fs::create_dir_all(&directory).and_then(|()| {
        tempfile::Builder::new()
            .prefix("upload-")
            .suffix(".xml")
            .tempfile_in(&directory)
    });
    let mut file = match file {
        Ok(file) => file,
        Err(e) => {
            return refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("Cannot create a file in {}: {e}", directory.display()),
            );
        }
    };
    let mut size = 0usize;
    loop {
        match field.chunk().await {
            Ok(Some(chunk)) => {
                size += chunk.len();
                if let Err(e) = file.write_all(&chunk) {
                    return refuse(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("Cannot write {}: {e}", file.path().display()),
                    );
                }
            }
            Ok(None) => break,
            Err(e) => return failed(e),
        }
    }
    if let Err(e) = file.flush() {
        return refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("Cannot write the sample: {e}"),
        );
    }
    tracing::info!(user = %session.user, pipeline = %name, file = %shown, bytes = size, "sample uploaded in the console");
    let path = file.into_temp_path();
    let watch = service.started.begin(&name, Asked::Sample(shown));
    let started = service.start_sample_dry_run(pipeline, path, Arc::clone(&watch));
    started_answer(&session, &name, &watch, started)
}

/// The page of an upload that failed as it arrived: 408 when its body paused too long, 413
/// when it was too large, otherwise multipart's own status and reason.
fn upload_failed(
    service: &Service,
    session: &Session,
    e: axum::extract::multipart::MultipartError,
) -> Response {
    if paused_too_long(&e) {
        return problem(
            StatusCode::REQUEST_TIMEOUT,
            Some(session),
            "Upload refused",
            &format!(
                "The upload paused longer than {} s ([limits] body_idle_timeout_secs); \
                 nothing was stored. Try again.",
                service.limits.body_idle_timeout_secs
            ),
        );
    }
    let status = e.status();
    let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
        format!(
            "The sample is larger than {} bytes ([limits] max_upload_bytes); nothing was stored.",
            service.limits.max_upload_bytes
        )
    } else {
        format!("The upload failed: {}", e.body_text())
    };
    problem(status, Some(session), "Upload refused", &message)
}

/// Whether an upload failed because its body paused longer than `body_idle_timeout_secs`
/// (the connection's `TimeoutBody`, somewhere in the error's causes).
fn paused_too_long(e: &axum::extract::multipart::MultipartError) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(error) = cause {
        if error.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        cause = error.source();
    }
    false
}
