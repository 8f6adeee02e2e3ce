//! The console: the pages an administrator runs the directory from, at `/` and below.
//! Overview (per pipeline: contacts by origin, the staged source, last success, next fires,
//! health, plans awaiting approval), Runs (the history and each run's diff), Plans (a plan's
//! diff with Approve and Discard, Dry run now, a sample upload), Contacts (search, and each
//! contact's fields with where each value came from).
//!
//! Everything but the overview's health needs a browser session (`session`); every form
//! carries the session's CSRF token. Pages are maud templates (docs/decisions/0010): every
//! value is escaped; the console runs no script, and its stylesheet is a same-origin file.

mod contacts;
mod overview;
mod plans;
mod runs;
pub mod session;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;

use crate::load::Store;
use crate::load::plans::ChangeList;
use crate::plan::PlanError;
use crate::report::{Action, Change};
use crate::serve::{Pipeline, Service};
use session::Session;

type Shared = State<Arc<Service>>;

/// The console's stylesheet, served as `/console.css` (the CSP allows styles from the
/// service itself only).
const STYLESHEET: &str = include_str!("console.css");

/// The console's pages and quick forms: answered within the request timeout.
pub fn pages() -> Router<Arc<Service>> {
    Router::new()
        .route("/", get(overview::page))
        .route("/console.css", get(stylesheet))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/runs", get(runs::list))
        .route("/runs/{pipeline}/{id}", get(runs::one))
        .route("/plans", get(plans::list))
        .route("/plans/{pipeline}/{id}", get(plans::one))
        .route("/plans/{pipeline}/{id}/discard", post(plans::discard))
        .route("/contacts", get(contacts::search))
        .route("/contact", get(contacts::one))
}

/// The forms that start work lasting as long as a run (approve, dry run now, upload): no
/// request timeout, like `POST /api/pipelines/{name}/run`. The upload's body is bounded by
/// `[limits] max_upload_bytes`.
pub fn actions(max_upload_bytes: usize) -> Router<Arc<Service>> {
    Router::new()
        .route("/plans/{pipeline}/{id}/approve", post(plans::approve))
        .route("/pipelines/{pipeline}/dry-run", post(plans::dry_run_now))
        .route(
            "/pipelines/{pipeline}/upload",
            post(plans::upload).layer(DefaultBodyLimit::max(max_upload_bytes)),
        )
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response()
}

/// A request with an open browser session. A page asked for without one redirects to the
/// login form; a form posted without one is refused (403) and does nothing.
pub struct LoggedIn(pub Session);

impl FromRequestParts<Arc<Service>> for LoggedIn {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        service: &Arc<Service>,
    ) -> Result<LoggedIn, Response> {
        match service.browser_sessions.of(&parts.headers) {
            Some(session) => Ok(LoggedIn(session)),
            None if parts.method == Method::GET => Err(Redirect::to("/login").into_response()),
            None => Err(problem(
                StatusCode::FORBIDDEN,
                None,
                "Not logged in",
                "This form needs a login: nothing was done. Log in and try again.",
            )),
        }
    }
}

/// Refuses a form whose CSRF token is not the session's (a forged post from another page).
fn csrf_refused(session: &Session, given: &str) -> Option<Response> {
    if session.csrf_matches(given) {
        return None;
    }
    tracing::warn!(user = %session.user, "a console form was refused: missing or wrong CSRF token");
    Some(problem(
        StatusCode::FORBIDDEN,
        Some(session),
        "Form refused",
        "The form's security token is missing or wrong, so nothing was done. Reload the page \
         and submit the form again.",
    ))
}

/// A form with nothing but its CSRF token.
#[derive(Deserialize)]
struct TokenForm {
    #[serde(default)]
    csrf: String,
}

/// Every page: the navigation (with the logout form when logged in), the title, the body.
fn layout(title: &str, session: Option<&Session>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · ucm" }
                link rel="stylesheet" href="/console.css";
            }
            body {
                header {
                    nav {
                        a.brand href="/" { "ucm" }
                        @if let Some(session) = session {
                            a href="/" { "Overview" }
                            a href="/runs" { "Runs" }
                            a href="/plans" { "Plans" }
                            a href="/contacts" { "Contacts" }
                            form.logout method="post" action="/logout" {
                                (csrf_field(session))
                                span.user { (session.user) }
                                button type="submit" { "Log out" }
                            }
                        } @else {
                            a href="/login" { "Log in" }
                        }
                    }
                }
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

fn csrf_field(session: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

/// An error page.
fn problem(status: StatusCode, session: Option<&Session>, title: &str, message: &str) -> Response {
    (
        status,
        layout(title, session, html! { p.failed.problem { (message) } }),
    )
        .into_response()
}

fn not_found(session: &Session, what: &str) -> Response {
    problem(StatusCode::NOT_FOUND, Some(session), "Not found", what)
}

fn unavailable(session: &Session, e: impl std::fmt::Display) -> Response {
    problem(
        StatusCode::SERVICE_UNAVAILABLE,
        Some(session),
        "Database unavailable",
        &e.to_string(),
    )
}

/// The loaded pipeline `name` and its store.
fn loaded<'s>(service: &'s Service, name: &str) -> Option<(&'s Arc<Pipeline>, &'s Store)> {
    let pipeline = service.pipeline(name)?;
    let store = &pipeline.loaded.as_ref().ok()?.store;
    Some((pipeline, store))
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

fn login_form(message: Option<&str>) -> Markup {
    layout(
        "Log in",
        None,
        html! {
            @if let Some(message) = message { p.failed.problem { (message) } }
            form.login method="post" action="/login" {
                label { "User name " input type="text" name="username" autocomplete="username" required; }
                label { "Password " input type="password" name="password" autocomplete="current-password" required; }
                button type="submit" { "Log in" }
            }
        },
    )
}

async fn login_page(State(service): Shared, headers: HeaderMap) -> Response {
    if service.browser_sessions.of(&headers).is_some() {
        return Redirect::to("/").into_response();
    }
    login_form(None).into_response()
}

/// `POST /login`: the same checks as `POST /api/login` (throttled per address and user,
/// constant-time comparison); a session cookie and a redirect to the overview.
async fn login(
    State(service): Shared,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    axum::Form(form): axum::Form<LoginForm>,
) -> Response {
    use crate::serve::http::{LoginRefused, verify_login};
    let address = crate::serve::connections::client_of(&extensions)
        .map(|c| c.ip())
        .unwrap_or([0, 0, 0, 0].into());
    if let Err(refused) = verify_login(&service, address, &form.username, &form.password) {
        let (status, message) = match refused {
            LoginRefused::Throttled { by, seconds } => (
                StatusCode::TOO_MANY_REQUESTS,
                format!("Too many login attempts for this {by}; try again in {seconds} s."),
            ),
            LoginRefused::Wrong => (
                StatusCode::UNAUTHORIZED,
                "Wrong user name or password.".to_owned(),
            ),
        };
        return (status, login_form(Some(&message))).into_response();
    }
    let Ok((id, _)) = service.browser_sessions.open(&form.username) else {
        return problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            None,
            "Login failed",
            "cannot read /dev/urandom",
        );
    };
    tracing::info!(user = %crate::redact::printable(&form.username, 64), client = %address, "logged in to the console");
    let cookie = session::set_cookie(
        &id,
        service.browser_sessions.seconds(),
        session::behind_tls(&headers),
    );
    ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
}

async fn logout(
    State(service): Shared,
    headers: HeaderMap,
    LoggedIn(session): LoggedIn,
    axum::Form(form): axum::Form<TokenForm>,
) -> Response {
    if let Some(refused) = csrf_refused(&session, &form.csrf) {
        return refused;
    }
    service.browser_sessions.close(&headers);
    let cookie = session::clear_cookie(session::behind_tls(&headers));
    ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
}

/// How old a stored time (`crate::load::now()`) is, for people: "3 h 12 min ago".
fn age(stored: &str) -> String {
    let Ok(at) = stored.parse::<jiff::Timestamp>() else {
        return String::new();
    };
    let secs = (jiff::Timestamp::now() - at).get_seconds();
    let ago = |n: i64, unit: &str| format!("{n} {unit} ago");
    match secs {
        s if s < 0 => "in the future (clock skew?)".into(),
        s if s < 60 => ago(s, "s"),
        s if s < 3600 => ago(s / 60, "min"),
        s if s < 86_400 => format!("{} h {} min ago", s / 3600, s % 3600 / 60),
        s => format!("{} d {} h ago", s / 86_400, s % 86_400 / 3600),
    }
}

/// A path segment or query value, percent-encoded.
pub(crate) fn encoded(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// The filter of a change list (run and plan pages): by action, by field, by contact (a
/// piece of its identity or of any value, any case), from position `after`.
#[derive(Clone, Debug, Default, Deserialize, serde::Serialize)]
struct ChangeFilter {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    action: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    field: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    contact: String,
    #[serde(default)]
    after: i64,
}

impl ChangeFilter {
    fn matches(&self, change: &Change, needle: &str) -> bool {
        (self.action.is_empty() || change.action.as_str() == self.action)
            && (self.field.is_empty() || change.fields.iter().any(|f| f.field == self.field))
            && (needle.is_empty() || {
                let has = |v: Option<&str>| v.is_some_and(|v| v.to_lowercase().contains(needle));
                has(change.key.as_deref())
                    || has(change.directory_id.as_deref())
                    || change
                        .fields
                        .iter()
                        .any(|f| has(f.old.as_deref()) || has(f.new.as_deref()))
            })
    }

    /// The query string of the page after `after`, with the same filter.
    fn next(&self, after: i64) -> String {
        let mut next = self.clone();
        next.after = after;
        serde_urlencoded::to_string(&next).unwrap_or_default()
    }
}

/// Changes a page shows.
const CHANGES_SHOWN: usize = 100;
/// Stored changes read per query while a filter looks for matches.
const SCAN_CHUNK: i64 = 500;
/// Stored changes a page reads at most: a filter that matches little answers with what it
/// found so far and a link onwards, instead of reading a million-change list in one request.
const SCAN_BUDGET: i64 = 20_000;

/// A page of a change list: up to [`CHANGES_SHOWN`] matching changes after `filter.after`,
/// and where the next page starts (none at the end of the list).
struct ChangesPage {
    changes: Vec<(i64, Change)>,
    next_after: Option<i64>,
}

/// Reads a page of `list` by its primary key: only the rows shown (and, with a filter, at
/// most [`SCAN_BUDGET`] more); never the contacts table.
async fn changes_page(
    store: &Store,
    list: ChangeList,
    filter: &ChangeFilter,
) -> Result<ChangesPage, PlanError> {
    let needle = filter.contact.trim().to_lowercase();
    let mut after = filter.after.max(0);
    let mut changes = Vec::new();
    let mut scanned = 0;
    loop {
        let chunk = crate::plan::changes(store, list, after, SCAN_CHUNK).await?;
        let full = chunk.len() as i64 == SCAN_CHUNK;
        for (seq, change) in chunk {
            after = seq;
            scanned += 1;
            if filter.matches(&change, &needle) {
                changes.push((seq, change));
                if changes.len() == CHANGES_SHOWN {
                    return Ok(ChangesPage {
                        changes,
                        next_after: Some(after),
                    });
                }
            }
        }
        if !full {
            return Ok(ChangesPage {
                changes,
                next_after: None,
            });
        }
        if scanned >= SCAN_BUDGET {
            return Ok(ChangesPage {
                changes,
                next_after: Some(after),
            });
        }
    }
}

/// The filter form, the changes as tables (one per contact: each changed field's old and new
/// value and the side the new one came from), and the link to the next page.
fn changes_section(path: &str, filter: &ChangeFilter, page: &ChangesPage) -> Markup {
    let actions = ["insert", "update", "delete"];
    html! {
        form.filter method="get" action=(path) {
            label { "Action "
                select name="action" {
                    option value="" { "any" }
                    @for a in actions {
                        option value=(a) selected[filter.action == a] { (a) }
                    }
                }
            }
            label { "Field "
                select name="field" {
                    option value="" { "any" }
                    @for f in crate::fields::FIELD_NAMES {
                        option value=(f) selected[filter.field == f] { (f) }
                    }
                }
            }
            label { "Contact " input type="search" name="contact" value=(filter.contact) placeholder="name, e-mail, id"; }
            button type="submit" { "Filter" }
        }
        @if page.changes.is_empty() {
            p.empty { "No changes" @if filter.after > 0 { " after #" (filter.after) } " match." }
        }
        @for (seq, change) in &page.changes {
            table.change.(change.action.as_str()) id=(format!("change-{seq}")) {
                caption {
                    span.seq { "#" (seq) " " }
                    span.action { (change.action.as_str()) }
                    " " (crate::plan::render::identity(change))
                    " · " (change.origin.as_str())
                    @if let Some(old) = change.old_origin {
                        @if old != change.origin { " (was " (old.as_str()) ")" }
                    }
                }
                thead { tr { th { "field" } th { "old" } th { "new" } th { "from" } } }
                tbody {
                    @for f in &change.fields {
                        tr {
                            td.field { (f.field) }
                            td.old { (f.old.as_deref().unwrap_or("")) }
                            td.new { (f.new.as_deref().unwrap_or("")) }
                            td.side { @if change.action != Action::Delete { (f.side.as_str()) } }
                        }
                    }
                }
            }
        }
        @if let Some(next) = page.next_after {
            p.pager { a href=(format!("{path}?{}", filter.next(next))) { "Next changes →" } }
        }
    }
}

/// A report's rejections (contacts the source held that could not be merged), with their
/// line numbers, as `ucm plan show` words them.
fn rejections_section(report: &serde_json::Value) -> Markup {
    let (rejected, lines) = crate::plan::render::rejection_lines(report);
    html! {
        @if rejected > 0 {
            h2 { "Rejections (" (rejected) ")" }
            ul.rejections {
                @for line in &lines { li { (line) } }
                @if (lines.len() as u64) < rejected { li { "… and " (rejected - lines.len() as u64) " more" } }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::FieldChange;
    use crate::transform::{Origin, Side};

    fn change(action: Action, key: &str, field: &'static str, new: &str) -> Change {
        Change {
            action,
            origin: Origin::External,
            directory_id: None,
            key: Some(key.into()),
            old_origin: None,
            row_id: None,
            sides: 0,
            fields: vec![FieldChange {
                field,
                old: None,
                new: Some(new.into()),
                side: Side::External,
            }],
        }
    }

    #[test]
    fn a_change_filter_matches_action_field_and_contact_in_any_case() {
        let c = change(Action::Insert, "ada@x.org", "site", "Gent");
        let filter = |action: &str, field: &str, contact: &str| ChangeFilter {
            action: action.into(),
            field: field.into(),
            contact: contact.into(),
            after: 0,
        };
        let matches = |f: ChangeFilter| {
            let needle = f.contact.to_lowercase();
            f.matches(&c, &needle)
        };
        assert!(matches(filter("", "", "")));
        assert!(matches(filter("insert", "site", "ADA@")));
        assert!(matches(filter("", "", "gent")));
        assert!(!matches(filter("delete", "", "")));
        assert!(!matches(filter("", "e_mail", "")));
        assert!(!matches(filter("", "", "bob")));
    }

    #[test]
    fn the_next_page_keeps_the_filter_and_encodes_it() {
        let f = ChangeFilter {
            action: "update".into(),
            field: String::new(),
            contact: "a&b c".into(),
            after: 3,
        };
        assert_eq!(f.next(700), "action=update&contact=a%26b+c&after=700");
    }

    #[test]
    fn a_value_with_markup_is_shown_as_text() {
        let page = ChangesPage {
            changes: vec![(
                1,
                change(Action::Insert, "x", "site", "<script>alert(1)</script>"),
            )],
            next_after: None,
        };
        let html = changes_section("/p", &ChangeFilter::default(), &page).into_string();
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(!html.contains("<script>"), "{html}");
    }

    #[test]
    fn ages_read_as_people_say_them() {
        let at = |secs: i64| {
            crate::load::stored_time(
                time::OffsetDateTime::now_utc() - time::Duration::seconds(secs),
            )
        };
        assert_eq!(age(&at(5)), "5 s ago");
        assert_eq!(age(&at(7260)), "2 h 1 min ago");
        assert_eq!(age(&at(90_000)), "1 d 1 h ago");
        assert_eq!(age("not a time"), "");
    }
}
