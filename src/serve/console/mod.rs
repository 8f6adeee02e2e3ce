//! The console: the pages an administrator runs the directory from, at `/` and below.
//! Overview (per pipeline: contacts by origin, the staged source, last success, next fires,
//! health, plans awaiting approval), Runs (the history and each run's diff), Plans (a plan's
//! diff with Approve and Discard, Dry run now, a sample upload; each of these answers at once
//! with the run's page, which shows its progress, then leads to its result), Contacts (search, and each
//! contact's fields with where each value came from).
//!
//! Everything but the overview's health needs a browser session (`session`); every form
//! carries the session's CSRF token. Pages are maud templates (docs/decisions/0010): every
//! value is escaped; the console runs no script, and its stylesheet is a same-origin file.

mod changes;
mod contacts;
mod login;
mod overview;
pub mod page;
mod plans;
mod runs;
pub mod session;
mod started;
mod test_source;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use crate::serve::state::Service;

/// The console's pages and quick forms: answered within the request timeout.
pub fn pages() -> Router<Arc<Service>> {
    Router::new()
        .route("/", get(overview::page))
        .route("/console.css", get(page::stylesheet))
        .route("/login", get(login::login_page).post(login::login))
        .route("/logout", post(login::logout))
        .route("/runs", get(runs::list))
        .route("/runs/{pipeline}/{id}", get(runs::one))
        .route("/runs/{pipeline}/started/{id}", get(started::page))
        .route("/plans", get(plans::list))
        .route("/plans/{pipeline}/{id}", get(plans::one))
        .route("/plans/{pipeline}/{id}/discard", post(plans::discard))
        .route("/contacts", get(contacts::search))
        .route("/contact", get(contacts::one))
}

/// The forms that start work lasting as long as a run (approve, dry run now, upload): each
/// answers at once with the run's page (`started`), which shows its progress and then its
/// result. No request timeout: an upload's body may take long to arrive (bounded by
/// `[limits] max_upload_bytes` and `body_idle_timeout_secs`).
pub fn actions(max_upload_bytes: usize) -> Router<Arc<Service>> {
    Router::new()
        .route("/plans/{pipeline}/{id}/approve", post(plans::approve))
        .route("/pipelines/{pipeline}/dry-run", post(plans::dry_run_now))
        .route(
            "/pipelines/{pipeline}/test-source",
            post(test_source::test_source),
        )
        .route(
            "/pipelines/{pipeline}/upload",
            post(plans::upload).layer(DefaultBodyLimit::max(max_upload_bytes)),
        )
}
