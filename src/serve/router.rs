//! The service's routes: `app(service)` is the whole router, its routes and layers, and no
//! handler body (those live in `api/`, `console/`, `phones/` and `auth`).
//!
//! Every answer carries the security headers; every error is JSON (the console's are pages,
//! the phone endpoints' bare statuses). Routes that need a login check it before the request
//! body is read; requests beyond `[limits] max_requests_in_flight` are shed with 503, and a
//! request that takes longer than `request_timeout_secs` gets 408.

use std::sync::Arc;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post, put};
use serde_json::json;
use tower::ServiceBuilder;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;

use super::answers::{error, overloaded};
use super::api::{cluster, live, metrics, plans, runs};
use super::auth::{LOGIN_BODY_BYTES, login, require_login};
use super::console;
use super::phones::{feeds, lookup};
use super::state::Service;

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
        .route("/api/contacts", get(live::search))
        .route("/api/contacts/{id}", get(live::contact))
        .route("/api/contacts/{id}/status", put(live::put_status))
        .route("/api/contacts/{id}/profile", put(live::put_profile))
        .route("/api/events", get(live::events))
        .route("/api/parameters", get(live::parameters))
        .route("/api/cluster", get(cluster::cluster_status))
        .route("/api/cluster/sync", post(cluster::cluster_sync))
        .route("/api/plans", get(plans::list))
        .route("/api/pipelines/{name}/plans/{id}", get(plans::show))
        .route(
            "/api/pipelines/{name}/plans/{id}/discard",
            post(plans::discard),
        )
        .route_layer(login_required.clone());
    // The console's pages check their browser session themselves.
    let public = console::pages()
        .route("/ready", get(runs::ready))
        .route("/api/pipelines", get(runs::pipelines))
        .route("/api/runs", get(runs::list_runs))
        .route("/api/runs/{id}", get(runs::one_run))
        .route("/metrics", get(metrics::metrics))
        // A login body is a user name and a password.
        .route(
            "/api/login",
            post(login).layer(DefaultBodyLimit::max(LOGIN_BODY_BYTES)),
        )
        // Signed by a peer: the signature headers are checked before the body is read.
        .route("/api/cluster/changes", post(cluster::receive));
    let timed = public.merge(private).layer(TimeoutLayer::with_status_code(
        StatusCode::REQUEST_TIMEOUT,
        limits.request_timeout(),
    ));
    // A run lasts as long as it lasts: no request timeout (it runs on a task of its own).
    let runs = Router::new()
        .route("/api/pipelines/{name}/run", post(runs::start_run))
        .route("/api/pipelines/{name}/plans/{id}/apply", post(plans::apply))
        .route_layer(login_required)
        .merge(console::actions(limits.max_upload_bytes));
    let shed = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(|_: tower::BoxError| async {
            overloaded()
        }))
        .layer(tower::load_shed::LoadShedLayer::new())
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
            limits.max_requests_in_flight,
        ));
    let app = Router::new()
        .merge(timed)
        .merge(runs)
        .layer(shed.clone())
        // Liveness is answered whatever the load.
        .route("/health", get(|| async { "ok\n" }))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such endpoint") })
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(middleware::from_fn(json_errors))
        .merge(phone_routes(limits).layer(shed));
    with_security_headers(app).with_state(service)
}

/// Phonebooks check their own access (basic auth, token, networks) and answer refusals with
/// nothing but the status (so they stay outside `json_errors`); gzip when asked. Caller-ID
/// lookup answers like the phonebooks: bare refusals, its own access.
fn phone_routes(limits: &crate::serve::limits::Limits) -> Router<Arc<Service>> {
    Router::new()
        .route("/phonebook/{pipeline}/{format}", get(feeds::feed))
        .route(
            "/phonebook/{pipeline}/{format}/{token}",
            get(feeds::feed_with_token),
        )
        .route(
            "/phonebook/{pipeline}/{format}/{token}/search",
            get(feeds::search_with_token),
        )
        .route("/lookup/{pipeline}", get(lookup::lookup))
        .route("/lookup/{pipeline}/{token}", get(lookup::lookup_with_token))
        .layer(tower_http::compression::CompressionLayer::new())
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout(),
        ))
}

/// The security headers of every answer; `Cache-Control: no-store` unless the handler set
/// one (answers hold tokens, contact data and live state).
fn with_security_headers(app: Router<Arc<Service>>) -> Router<Arc<Service>> {
    app.layer(SetResponseHeaderLayer::overriding(
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
