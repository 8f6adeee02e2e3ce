//! The service's HTTP side: `app(service)` is the whole router. Liveness and readiness, the
//! pipelines and their runs as JSON, runs started over HTTP (authenticated), Prometheus
//! metrics, and the status page.
//!
//! Every answer carries the security headers; every error is JSON. Routes that need a login
//! check it before the request body is read; requests beyond `[limits]
//! max_requests_in_flight` are shed with 503, and a request that takes longer than
//! `request_timeout_secs` gets 408. Without a login, the pipelines, runs and readiness are
//! shown as statuses only: no paths, database URLs, sources or error texts.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Value, json};
use tower::ServiceBuilder;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;

use crate::load::{Store, runs};
use crate::serve::{Pipeline, Service, StartRefused};

type Shared = State<Arc<Service>>;

/// The Content-Security-Policy of every answer: nothing is loaded from another origin, no
/// script runs (no `script-src`: the console is forms and links), styles only from the
/// service's own stylesheet (no inline styles), forms post only to the service, and no
/// other site may frame it.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; \
     img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The service's routes.
pub fn app(service: Arc<Service>) -> Router {
    let limits = &service.limits;
    let login_required = middleware::from_fn_with_state(Arc::clone(&service), require_login);
    // Routes that need a login: checked before the body is read.
    let private = Router::new()
        .route("/api/contacts", get(super::live::search))
        .route("/api/contacts/{id}", get(super::live::contact))
        .route("/api/contacts/{id}/status", put(super::live::put_status))
        .route("/api/contacts/{id}/profile", put(super::live::put_profile))
        .route("/api/events", get(super::live::events))
        .route("/api/parameters", get(super::live::parameters))
        .route("/api/cluster", get(super::live::cluster_status))
        .route("/api/cluster/sync", post(super::live::cluster_sync))
        .route("/api/plans", get(super::plans::list))
        .route("/api/pipelines/{name}/plans/{id}", get(super::plans::show))
        .route(
            "/api/pipelines/{name}/plans/{id}/discard",
            post(super::plans::discard),
        )
        .route_layer(login_required.clone());
    // The console's pages check their browser session themselves.
    let public = super::console::pages()
        .route("/ready", get(ready))
        .route("/api/pipelines", get(pipelines))
        .route("/api/runs", get(list_runs))
        .route("/api/runs/{id}", get(one_run))
        .route("/metrics", get(metrics))
        // A login body is a user name and a password.
        .route(
            "/api/login",
            post(login).layer(DefaultBodyLimit::max(LOGIN_BODY_BYTES)),
        )
        // Signed by a peer: the signature headers are checked before the body is read.
        .route("/api/cluster/changes", post(super::live::receive));
    // Phonebooks check their own access (basic auth, token, networks) and answer refusals
    // with nothing but the status (so they stay outside `json_errors`); gzip when asked.
    let phonebooks = Router::new()
        .route(
            "/phonebook/{pipeline}/{format}",
            get(super::phonebooks::feed),
        )
        .route(
            "/phonebook/{pipeline}/{format}/{token}",
            get(super::phonebooks::feed_with_token),
        )
        .route(
            "/phonebook/{pipeline}/{format}/{token}/search",
            get(super::phonebooks::search_with_token),
        )
        // Caller-ID lookup answers like the phonebooks: bare refusals, its own access.
        .route("/lookup/{pipeline}", get(super::lookup::lookup))
        .route(
            "/lookup/{pipeline}/{token}",
            get(super::lookup::lookup_with_token),
        )
        .layer(tower_http::compression::CompressionLayer::new())
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout(),
        ));
    let timed = public.merge(private).layer(TimeoutLayer::with_status_code(
        StatusCode::REQUEST_TIMEOUT,
        limits.request_timeout(),
    ));
    // A run lasts as long as it lasts: no request timeout (it runs on a task of its own).
    let runs = Router::new()
        .route("/api/pipelines/{name}/run", post(start_run))
        .route(
            "/api/pipelines/{name}/plans/{id}/apply",
            post(super::plans::apply),
        )
        .route_layer(login_required)
        .merge(super::console::actions(limits.max_upload_bytes));
    let shed = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(|_: tower::BoxError| async {
            overloaded()
        }))
        .layer(tower::load_shed::LoadShedLayer::new())
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
            limits.max_requests_in_flight,
        ));
    Router::new()
        .merge(timed)
        .merge(runs)
        .layer(shed.clone())
        // Liveness is answered whatever the load.
        .route("/health", get(|| async { "ok\n" }))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such endpoint") })
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(middleware::from_fn(json_errors))
        .merge(phonebooks.layer(shed))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        // Answers hold tokens, contact data and live state: never stored by a cache.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .with_state(service)
}

/// The largest login body.
const LOGIN_BODY_BYTES: usize = 4096;

/// Refuses a request without a valid login before its body is read.
async fn require_login(State(service): Shared, request: Request, next: Next) -> Response {
    if !authorized(&service, request.headers()) {
        return unauthorized();
    }
    next.run(request).await
}

/// 503 for a request beyond `max_requests_in_flight`.
fn overloaded() -> Response {
    let mut response = error(
        StatusCode::SERVICE_UNAVAILABLE,
        "the service is handling as many requests as it is allowed to; try again shortly",
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// Errors as JSON: a refusal produced below the handlers (an extractor's rejection, a body
/// over the limit, a timeout, an unknown method) is rewritten as `{"error": "..."}` with its
/// status and headers kept.
async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    // JSON already, or one of the console's pages (its errors are pages too).
    let kept = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| {
            v.as_bytes().starts_with(b"application/json") || v.as_bytes().starts_with(b"text/html")
        });
    if kept || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 16 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("error")
            .to_ascii_lowercase()
    } else {
        text
    };
    let body = serde_json::to_vec(&json!({ "error": message })).unwrap_or_default();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(body))
}

pub(super) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

/// The distinct databases of the loaded pipelines.
pub(super) fn stores(service: &Service) -> Vec<&Store> {
    let mut stores: Vec<&Store> = Vec::new();
    for p in &service.pipelines {
        if let Ok(l) = &p.loaded
            && !stores.iter().any(|s| s.url() == l.store.url())
        {
            stores.push(&l.store);
        }
    }
    stores
}

async fn ready(State(service): Shared, headers: HeaderMap) -> Response {
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

/// The fields of a run report shown without a login: what ran, when, how it ended and the
/// counts; not its source, error text, rejections or changes.
const PUBLIC_REPORT_FIELDS: [&str; 14] = [
    "run_id",
    "pipeline",
    "command",
    "status",
    "dry_run",
    "started_at",
    "finished_at",
    "contacts_read",
    "rejected",
    "inserted",
    "updated",
    "deleted",
    "unchanged",
    "duration_ms",
];

/// A run report as shown: whole with a login, its public fields without.
pub(super) fn shown_report(report: Value, full: bool) -> Value {
    if full {
        return report;
    }
    let Value::Object(fields) = report else {
        return Value::Null;
    };
    Value::Object(
        fields
            .into_iter()
            .filter(|(k, _)| PUBLIC_REPORT_FIELDS.contains(&k.as_str()))
            .collect(),
    )
}

/// One pipeline as `/api/pipelines` and the status page show it; `full` (a login) adds its
/// config path, database and errors.
pub(super) async fn describe(service: &Service, p: &Pipeline, full: bool) -> Value {
    let Ok(l) = &p.loaded else {
        let mut value = json!({ "name": p.name, "loaded": false });
        if full {
            value["config"] = json!(p.path.display().to_string());
            value["error"] = json!(p.loaded.as_ref().err());
        }
        return value;
    };
    let schedules: Vec<Value> = l
        .schedules
        .iter()
        .map(|s| {
            let next = s
                .next
                .lock()
                .expect("no poisoning")
                .clone()
                .or_else(|| s.schedule.next_fire(service.clock.now()));
            json!({
                "stage": s.stage.as_str(),
                "cron": s.schedule.expr.as_str(),
                "explain": s.schedule.expr.explain(),
                "spread_offset_secs": s.schedule.offset.as_secs_f64(),
                "next_cron_time": next.as_ref().map(|f| f.cron_time.to_string()),
                "next_fire_at": next.as_ref().map(|f| f.at.to_string()),
                "next_fire_local": next.as_ref().map(|f| {
                    f.at.to_zoned(s.schedule.zone.clone())
                        .strftime("%a %Y-%m-%d %H:%M:%S %Z")
                        .to_string()
                }),
            })
        })
        .collect();
    let last = runs::latest_of(&l.store, Some(&p.name), 1)
        .await
        .ok()
        .and_then(|mut r| r.pop());
    let mut value = json!({
        "name": p.name,
        "loaded": true,
        "time_zone": l.schedules.first().and_then(|s| s.schedule.zone.iana_name().map(str::to_owned)),
        "running": p.busy.try_lock().is_err(),
        "schedules": schedules,
        "last_run": last.map(|run| {
            if full {
                json!(run)
            } else {
                json!({
                    "id": run.id,
                    "command": run.command,
                    "status": run.status,
                    "started_at": run.started_at,
                    "duration_ms": run.duration_ms,
                })
            }
        }),
    });
    if full {
        value["config"] = json!(p.path.display().to_string());
        value["database"] = json!(crate::extract::fetch::mask_url(l.store.url()));
        value["error"] = Value::Null;
    }
    value
}

async fn pipelines(State(service): Shared, headers: HeaderMap) -> Json<Vec<Value>> {
    let full = authorized(&service, &headers);
    let mut out = Vec::new();
    for p in &service.pipelines {
        out.push(describe(&service, p, full).await);
    }
    Json(out)
}

#[derive(Deserialize)]
struct RunsQuery {
    pipeline: Option<String>,
    limit: Option<i64>,
}

/// A recorded report as JSON, with its run id.
fn with_id(id: i64, report: &str) -> Option<Value> {
    let mut value: Value = serde_json::from_str(report).ok()?;
    value["run_id"] = json!(id);
    Some(value)
}

async fn report_json(store: &Store, id: i64) -> Option<Value> {
    with_id(id, &runs::report(store, id).await.ok()??)
}

async fn list_runs(
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
struct RunQuery {
    pipeline: Option<String>,
}

async fn one_run(
    State(service): Shared,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Query(q): Query<RunQuery>,
) -> Response {
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
struct StartQuery {
    #[serde(default)]
    dry_run: bool,
}

/// `POST /api/pipelines/{name}/run`: starts the run on a task of its own and answers with
/// its report when it ends. A client that goes away does not stop it: it is recorded and
/// counted all the same.
async fn start_run(
    State(service): Shared,
    Path(name): Path<String>,
    Query(q): Query<StartQuery>,
) -> Response {
    let Some(pipeline) = service.pipeline(&name) else {
        return error(StatusCode::NOT_FOUND, format!("no pipeline {name}"));
    };
    answer_task(&name, service.start_run(pipeline, q.dry_run)).await
}

/// The answer to a request that started a run (or an apply) on a task of its own: its report,
/// 200 when it succeeded, 422 when it failed or was refused; 409 when it could not start.
pub(super) async fn answer_task(
    name: &str,
    started: Result<tokio::sync::oneshot::Receiver<crate::report::RunReport>, StartRefused>,
) -> Response {
    let report = match started {
        Ok(report) => report,
        Err(StartRefused::NotLoaded) => {
            return error(
                StatusCode::CONFLICT,
                format!("pipeline {name} is not loaded: see GET /ready"),
            );
        }
        Err(StartRefused::Running) => {
            return error(
                StatusCode::CONFLICT,
                format!("pipeline {name} is running; try again when it has finished"),
            );
        }
    };
    let Ok(report) = report.await else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the run ended without a report: see the service log",
        );
    };
    let status = if report.status.is_success() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let body: Value = serde_json::from_str(&report.to_json()).unwrap_or(Value::Null);
    (status, Json(body)).into_response()
}

#[derive(Deserialize)]
struct Login {
    username: String,
    password: String,
}

/// `POST /api/login` with `{"username": ..., "password": ...}`: a bearer token for the write
/// endpoints. Wrong credentials get 401 and nothing else; too many attempts from one address
/// or for one user get 429 with `Retry-After`, before the password is compared.
async fn login(State(service): Shared, request: Request) -> Response {
    let client = super::connections::client_of(request.extensions());
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
    if let Err(refused) = verify_login(&service, address, &login.username, &login.password) {
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
            "cannot read /dev/urandom",
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
pub(super) enum LoginRefused {
    /// Too many attempts from this client address or for this user: retry after `seconds`.
    Throttled { by: &'static str, seconds: u64 },
    /// A wrong user name or password, or no login configured.
    Wrong,
}

/// Checks a login (the API's and the console's): throttled per client address and per user
/// before the password is compared, both compared in constant time, every refusal logged.
pub(super) fn verify_login(
    service: &Service,
    address: std::net::IpAddr,
    username: &str,
    password: &str,
) -> Result<(), LoginRefused> {
    let shown_user = crate::redact::printable(username, 64);
    if let Err(throttled) = service.login_throttle.attempt(address, username) {
        let by = match throttled.by {
            super::throttle::Exhausted::Address => "client address",
            super::throttle::Exhausted::User => "user",
        };
        tracing::warn!(user = %shown_user, client = %address, by, "a login was throttled");
        let seconds = throttled.retry_after.as_secs_f64().ceil().max(1.0) as u64;
        return Err(LoginRefused::Throttled { by, seconds });
    }
    let Some((user, expected)) = &service.auth.login else {
        tracing::warn!(user = %shown_user, client = %address, "a login was refused: no login is configured");
        return Err(LoginRefused::Wrong);
    };
    // Both compared, whatever the first says: the time does not tell which was wrong.
    let user_ok = constant_time_eq(username.as_bytes(), user.as_bytes());
    let password_ok = constant_time_eq(password.as_bytes(), expected.as_bytes());
    if !(user_ok & password_ok) {
        tracing::warn!(user = %shown_user, client = %address, "a login was refused: wrong user name or password");
        return Err(LoginRefused::Wrong);
    }
    Ok(())
}

pub(super) fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        Json(json!({ "error": "unauthorized" })),
    )
        .into_response()
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
pub(super) fn authorized(service: &Service, headers: &HeaderMap) -> bool {
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

/// Equality in time that depends only on the lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn random_token() -> std::io::Result<String> {
    random_hex(32)
}

/// `bytes` random bytes from the system's generator, as hex.
pub fn random_hex(bytes: usize) -> std::io::Result<String> {
    use std::io::Read as _;
    let mut buffer = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut buffer)?;
    Ok(buffer.iter().map(|b| format!("{b:02x}")).collect())
}

async fn metrics(State(service): Shared) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        super::metrics::render(&service).await,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn a_report_without_a_login_keeps_only_its_public_fields() {
        let report = json!({
            "run_id": 3, "pipeline": "p", "status": "failed", "source": "http://u:pw@h/x.xml",
            "error": "cannot connect to db.internal", "changes": [{"key": "a@b"}], "inserted": 1,
        });
        let shown = shown_report(report.clone(), false);
        assert_eq!(
            shown,
            json!({"run_id": 3, "pipeline": "p", "status": "failed", "inserted": 1})
        );
        assert_eq!(shown_report(report.clone(), true), report);
    }

    #[test]
    fn secrets_are_equal_only_when_every_byte_is() {
        assert!(constant_time_eq(b"p:a@s%s", b"p:a@s%s"));
        assert!(!constant_time_eq(b"p:a@s%s", b"p:a@s%t"));
        assert!(!constant_time_eq(b"short", b"shorter"));
        assert!(constant_time_eq(b"", b""));
    }
}
