//! What every console page is made of: the layout (navigation, title, body), the login a
//! page needs ([`LoggedIn`]) and the CSRF token a form carries, the error pages, the
//! stylesheet, and small formatting helpers.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;

use super::session::Session;
use crate::load::Store;
use crate::serve::state::{Pipeline, Service};

/// The console's stylesheet, served as `/console.css` (the CSP allows styles from the
/// service itself only).
pub(super) const STYLESHEET: &str = include_str!("console.css");

pub(super) async fn stylesheet() -> Response {
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
pub(super) fn csrf_refused(session: &Session, given: &str) -> Option<Response> {
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
pub(super) struct TokenForm {
    #[serde(default)]
    pub(super) csrf: String,
}

/// Every page: the navigation (with the logout form when logged in), the title, the body.
pub(super) fn layout(title: &str, session: Option<&Session>, body: Markup) -> Markup {
    refreshing_layout(title, session, body, None)
}

/// [`layout`], reloaded by the browser every `refresh` seconds when given (a meta refresh:
/// the console runs no script).
pub(super) fn refreshing_layout(
    title: &str,
    session: Option<&Session>,
    body: Markup,
    refresh: Option<u32>,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                @if let Some(seconds) = refresh {
                    meta http-equiv="refresh" content=(seconds);
                }
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

pub(super) fn csrf_field(session: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

/// An error page.
pub(super) fn problem(
    status: StatusCode,
    session: Option<&Session>,
    title: &str,
    message: &str,
) -> Response {
    (
        status,
        layout(title, session, html! { p.failed.problem { (message) } }),
    )
        .into_response()
}

pub(super) fn not_found(session: &Session, what: &str) -> Response {
    problem(StatusCode::NOT_FOUND, Some(session), "Not found", what)
}

pub(super) fn unavailable(session: &Session, e: impl std::fmt::Display) -> Response {
    problem(
        StatusCode::SERVICE_UNAVAILABLE,
        Some(session),
        "Database unavailable",
        &e.to_string(),
    )
}

/// The loaded pipeline `name` and its store.
pub(super) fn loaded<'s>(
    service: &'s Service,
    name: &str,
) -> Option<(&'s Arc<Pipeline>, &'s Store)> {
    let pipeline = service.pipeline(name)?;
    let store = &pipeline.loaded.as_ref().ok()?.store;
    Some((pipeline, store))
}

/// How old a stored time (`crate::load::now()`) is, for people: "3 h 12 min ago".
pub(super) fn age(stored: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

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
