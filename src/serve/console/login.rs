//! The console's login and logout: a form, checked as the API's login is (throttled, in
//! constant time), opening a browser session with its cookie.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::page::{LoggedIn, TokenForm, csrf_refused, layout, problem};
use super::session;
use crate::serve::state::Service;

type Shared = State<Arc<Service>>;

#[derive(Deserialize)]
pub(super) struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

pub(super) fn login_form(message: Option<&str>) -> Markup {
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

pub(super) async fn login_page(State(service): Shared, headers: HeaderMap) -> Response {
    if service.browser_sessions.of(&headers).is_some() {
        return Redirect::to("/").into_response();
    }
    login_form(None).into_response()
}

/// `POST /login`: the same checks as `POST /api/login` (throttled per address and user,
/// constant-time comparison); a session cookie and a redirect to the overview.
pub(super) async fn login(
    State(service): Shared,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    axum::Form(form): axum::Form<LoginForm>,
) -> Response {
    use crate::serve::auth::{LoginRefused, verify_login};
    let address = crate::serve::connections::client_of(&extensions)
        .map(|c| c.ip())
        .unwrap_or([0, 0, 0, 0].into());
    if let Err(refused) = verify_login(&service, address, &form.username, &form.password).await {
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
            "the operating system's random generator failed",
        );
    };
    tracing::info!(user = %crate::redact::printable(&form.username, 64), client = %address, "logged in to the console");
    let cookie = session::set_cookie(
        &id,
        service.browser_sessions.seconds(),
        crate::serve::urls::behind_tls(&headers),
    );
    ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
}

pub(super) async fn logout(
    State(service): Shared,
    headers: HeaderMap,
    LoggedIn(session): LoggedIn,
    axum::Form(form): axum::Form<TokenForm>,
) -> Response {
    if let Some(refused) = csrf_refused(&session, &form.csrf) {
        return refused;
    }
    service.browser_sessions.close(&headers);
    let cookie = session::clear_cookie(crate::serve::urls::behind_tls(&headers));
    ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
}
