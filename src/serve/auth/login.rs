//! Logins: `POST /api/login` (a bearer token), the check of a bearer token or login token on
//! every private route, and the login check the console shares (throttled per client address
//! and per user, compared in constant time, every refusal logged).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::json;

use crate::secrets::{constant_time_eq, random_hex};
use crate::serve::answers::{error, unauthorized};
use crate::serve::state::Service;
use crate::serve::throttle::{Exhausted, SLOWDOWN};

type Shared = State<Arc<Service>>;

/// The largest login body.
pub const LOGIN_BODY_BYTES: usize = 4096;

/// Refuses a request without a valid login before its body is read.
pub async fn require_login(State(service): Shared, request: Request, next: Next) -> Response {
    if !authorized(&service, request.headers()) {
        return unauthorized();
    }
    next.run(request).await
}

#[derive(Deserialize)]
struct Login {
    username: String,
    password: String,
}

/// `POST /api/login` with `{"username": ..., "password": ...}` as `application/json` (415
/// otherwise: a cross-site form can only send text/plain, urlencoded or multipart bodies): a
/// bearer token for the write endpoints. Wrong credentials get 401 and nothing else; too many
/// attempts from one address, or for one user name from one address, get 429 with
/// `Retry-After`, before the password is compared.
pub async fn login(State(service): Shared, request: Request) -> Response {
    if !is_json(request.headers()) {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "a login is a JSON body: send Content-Type: application/json",
        );
    }
    let client = crate::serve::connections::client_of(request.extensions());
    let address = client.map(|c| c.ip()).unwrap_or([0, 0, 0, 0].into());
    let bytes = match axum::body::to_bytes(request.into_body(), LOGIN_BODY_BYTES).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("a login body is at most {LOGIN_BODY_BYTES} bytes"),
            );
        }
    };
    let Ok(login) = serde_json::from_slice::<Login>(&bytes) else {
        return error(
            StatusCode::BAD_REQUEST,
            "the body must be {\"username\": \"...\", \"password\": \"...\"}",
        );
    };
    if let Err(refused) = verify_login(&service, address, &login.username, &login.password).await {
        return match refused {
            LoginRefused::Throttled { by, seconds } => {
                let mut response = error(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!("too many login attempts for this {by}; try again in {seconds} s"),
                );
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
                response
            }
            LoginRefused::Wrong => unauthorized(),
        };
    }
    let shown_user = crate::redact::printable(&login.username, 64);
    let Ok(token) = random_token() else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the operating system's random generator failed",
        );
    };
    tracing::info!(user = %shown_user, client = %address, "logged in");
    let minutes = service.auth.session_minutes.max(1) as i64;
    let expires = Timestamp::now() + jiff::SignedDuration::from_mins(minutes);
    let mut sessions = service.sessions.lock().expect("no poisoning");
    let now = Timestamp::now();
    sessions.retain(|_, until| *until > now);
    sessions.insert(token.clone(), expires);
    Json(json!({ "token": token, "expires_at": expires.to_string() })).into_response()
}

/// Why a login was refused.
pub enum LoginRefused {
    /// Too many attempts from this client address or for this user: retry after `seconds`.
    Throttled { by: &'static str, seconds: u64 },
    /// A wrong user name or password, or no login configured.
    Wrong,
}

/// Checks a login (the API's and the console's): throttled per client address, and per
/// user name at that address, before the password is compared (a name guessed from
/// everywhere is answered [`SLOWDOWN`] later, never refused); user name and password compared
/// in constant time; every refusal logged.
pub async fn verify_login(
    service: &Service,
    address: std::net::IpAddr,
    username: &str,
    password: &str,
) -> Result<(), LoginRefused> {
    let shown_user = crate::redact::printable(username, 64);
    let throttle = &service.login_throttle;
    if let Err(throttled) = throttle.attempt(address, username) {
        let by = match throttled.by {
            Exhausted::Address => "client address",
            Exhausted::User => "user name from this address",
        };
        tracing::warn!(user = %shown_user, client = %address, by, "a login was throttled");
        let seconds = throttled.retry_after.as_secs_f64().ceil().max(1.0) as u64;
        return Err(LoginRefused::Throttled { by, seconds });
    }
    if throttle.slowed(username) {
        tracing::warn!(user = %shown_user, client = %address, "a login was slowed: this user name is being guessed");
        tokio::time::sleep(SLOWDOWN).await;
    }
    let Some((user, expected)) = &service.auth.login else {
        throttle.failed(address, username);
        tracing::warn!(user = %shown_user, client = %address, "a login was refused: no login is configured");
        return Err(LoginRefused::Wrong);
    };
    // Both compared, whatever the first says: the time does not tell which was wrong.
    let user_ok = constant_time_eq(username.as_bytes(), user.as_bytes());
    let password_ok = expected.matches(password);
    if !(user_ok & password_ok) {
        throttle.failed(address, username);
        tracing::warn!(user = %shown_user, client = %address, "a login was refused: wrong user name or password");
        return Err(LoginRefused::Wrong);
    }
    Ok(())
}

/// Whether the request says its body is JSON (`application/json`, with parameters or not).
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

/// The token of an `Authorization: Bearer TOKEN` header (the scheme in any case, RFC 9110).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// A static token from config, or a login token that has not expired.
pub fn authorized(service: &Service, headers: &HeaderMap) -> bool {
    let Some(given) = bearer(headers) else {
        return false;
    };
    if let Some(token) = &service.auth.token
        && constant_time_eq(given.as_bytes(), token.as_bytes())
    {
        return true;
    }
    let now = Timestamp::now();
    let sessions = service.sessions.lock().expect("no poisoning");
    // Every session compared, so the time does not depend on which one matches.
    sessions.iter().fold(false, |found, (token, until)| {
        found | (constant_time_eq(given.as_bytes(), token.as_bytes()) & (*until > now))
    })
}

/// A login token: 32 random bytes as hex.
fn random_token() -> Result<String, getrandom::Error> {
    random_hex(32)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hardening 3: a `text/plain` body (what a cross-site form can send) got a token.
    #[test]
    fn only_a_json_body_is_a_login() {
        let headers = |value: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, value.parse().unwrap());
            h
        };
        assert!(is_json(&headers("application/json")));
        assert!(is_json(&headers("Application/JSON; charset=utf-8")));
        for other in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/jsonp",
        ] {
            assert!(!is_json(&headers(other)), "{other}");
        }
        assert!(!is_json(&HeaderMap::new()));
    }

    #[test]
    fn the_bearer_scheme_is_read_in_any_case() {
        let headers = |value: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, value.parse().unwrap());
            h
        };
        assert_eq!(bearer(&headers("Bearer abc")), Some("abc"));
        assert_eq!(bearer(&headers("bearer abc")), Some("abc"));
        assert_eq!(bearer(&headers("BEARER   abc ")), Some("abc"));
        assert_eq!(bearer(&headers("Basic abc")), None);
        assert_eq!(bearer(&headers("Bearer ")), None);
        assert_eq!(bearer(&HeaderMap::new()), None);
    }
}
