//! The page of a run started from the console (Approve, Dry run now, Upload): the form is
//! answered at once with a redirect here, and this page shows the run's progress (its phase,
//! the bytes downloaded and read, the contacts read), reloading itself every second (a meta
//! refresh: the console runs no script), until the run ends; then it leads to what the run
//! made: the plan of a dry run, the run that applied a plan, or why it failed.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;

use super::page::{LoggedIn, layout, not_found, problem, refreshing_layout};
use super::session::Session;
use crate::report::RunReport;
use crate::serve::started::{Asked, StartedRun};
use crate::serve::state::Service;
use crate::serve::urls::encoded;

/// How long the page waits for a run to end before it shows its progress: a run of a small
/// file leads to its result without a reload.
const WAIT_FOR_THE_END: Duration = Duration::from_millis(500);

/// Where the console follows started run `run`.
pub(super) fn started_path(run: &StartedRun) -> String {
    format!("/runs/{}/started/{}", encoded(&run.pipeline), run.id)
}

/// `GET /runs/{pipeline}/started/{n}`.
pub async fn page(
    State(service): State<Arc<Service>>,
    LoggedIn(session): LoggedIn,
    Path((name, id)): Path<(String, u64)>,
) -> Response {
    let Some(run) = service.started.get(id).filter(|r| r.pipeline == name) else {
        return not_found(
            &session,
            &format!("No run s{id} started for {name} (the service keeps the latest ones)."),
        );
    };
    run.ended_within(WAIT_FOR_THE_END).await;
    match run.outcome() {
        None => progress(&session, &run),
        Some(Err(why)) => problem(
            StatusCode::CONFLICT,
            Some(&session),
            &format!("{} not started", capitalised(&run.asked.to_string())),
            why,
        ),
        Some(Ok(report)) => result(&session, &run, report),
    }
}

/// Where a run that ended leads: its plan, the run that applied one, or why it failed.
fn result(session: &Session, run: &StartedRun, report: &RunReport) -> Response {
    let name = encoded(&run.pipeline);
    match &run.asked {
        Asked::Apply(plan) => {
            if report.status.is_success() {
                let id = report.run_id.unwrap_or_default();
                return Redirect::to(&format!("/runs/{name}/{id}")).into_response();
            }
            let reason = format!(
                "Not applied ({}): {}",
                report.status.as_str(),
                report.error.as_deref().unwrap_or("see the service log")
            );
            let body = html! {
                p.failed.problem { (reason) }
                p { a href=(format!("/plans/{name}/{plan}")) { "Back to plan #" (plan) } }
            };
            let title = format!("Plan #{plan} not applied");
            (StatusCode::CONFLICT, layout(&title, Some(session), body)).into_response()
        }
        Asked::Run | Asked::DryRun | Asked::Sample(_) => match (report.plan_id, report.run_id) {
            (Some(plan), _) => Redirect::to(&format!("/plans/{name}/{plan}")).into_response(),
            (None, Some(id)) if run.asked == Asked::Run => {
                Redirect::to(&format!("/runs/{name}/{id}")).into_response()
            }
            _ => problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(session),
                "Dry run failed",
                &format!(
                    "The dry run {} and stored no plan: {}",
                    report.status.as_str(),
                    report.error.as_deref().unwrap_or("see the service log")
                ),
            ),
        },
    }
}

/// The page of a run still going: what it does now and how far it got.
fn progress(session: &Session, run: &StartedRun) -> Response {
    let (read, total) = run.read();
    let read_shown = match total {
        Some(total) => format!(
            "{} of {} ({:.0} %)",
            bytes(read),
            bytes(total),
            read as f64 * 100.0 / total as f64
        ),
        None => bytes(read),
    };
    let body = html! {
        table.summary.progress {
            tr { th { "pipeline" } td { (run.pipeline) } }
            tr { th { "phase" } td.phase { (run.phase().as_str()) } }
            tr { th { "running for" } td { (format!("{:.0} s", run.elapsed_secs())) } }
            @if run.downloaded() > 0 {
                tr { th { "downloaded" } td { (bytes(run.downloaded())) } }
            }
            tr { th { "read" } td.read { (read_shown) } }
            tr { th { "contacts read" } td.contacts { (run.contacts()) } }
        }
        p {
            "This page reloads itself every second until the run ends, then shows what it \
             made. The run goes on if you leave the page; its progress is also at "
            code { "GET /api/runs/s" (run.id) } "."
        }
    };
    let title = format!(
        "{} of {}",
        capitalised(&run.asked.to_string()),
        run.pipeline
    );
    refreshing_layout(&title, Some(session), body, Some(1)).into_response()
}

/// A size for people: bytes, KiB, MiB.
fn bytes(n: u64) -> String {
    match n {
        n if n < 1024 => format!("{n} bytes"),
        n if n < 1024 * 1024 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{:.1} MiB", n as f64 / (1024.0 * 1024.0)),
    }
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_titles_read_as_people_write_them() {
        assert_eq!(bytes(512), "512 bytes");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 * 1024 * 1024), "3.0 MiB");
        assert_eq!(capitalised("apply of plan #7"), "Apply of plan #7");
    }
}
