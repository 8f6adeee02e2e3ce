//! The live objects over HTTP: contact search and lookup with their live state, status and
//! profile changes, the Server-Sent Events stream of those changes, and the global
//! parameters. Every endpoint needs the same authentication as the write endpoints.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::serve::Service;
use crate::serve::http::{authorized, error, unauthorized};
use crate::serve::objects::{self, Status};

/// One change, as `/api/events` sends it.
#[derive(Clone, Debug, Serialize)]
pub struct Change {
    /// `status` or `profile`.
    #[serde(skip)]
    pub kind: &'static str,
    pub contact: String,
    pub version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

type Shared = State<Arc<Service>>;

/// The objects' database, or the reason there is none.
fn store(service: &Service) -> Result<&crate::load::Store, Response> {
    service.objects_store().ok_or_else(|| {
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            "no pipeline is loaded, so there is no contacts database",
        )
    })
}

#[derive(Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
    limit: Option<i64>,
}

pub async fn search(State(service): Shared, headers: HeaderMap, Query(q): Query<SearchQuery>) -> Response {
    if !authorized(&service, &headers) {
        return unauthorized();
    }
    let store = match store(&service) {
        Ok(s) => s,
        Err(r) => return r,
    };
    if q.q.trim().is_empty() {
        return error(StatusCode::BAD_REQUEST, "q is empty: give a name, number or e-mail to search for");
    }
    let limit = q.limit.unwrap_or(20).clamp(1, 500);
    match objects::search(store, &q.q, limit).await {
        Ok(found) => Json(found).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

pub async fn contact(State(service): Shared, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if !authorized(&service, &headers) {
        return unauthorized();
    }
    let store = match store(&service) {
        Ok(s) => s,
        Err(r) => return r,
    };
    match objects::get(store, &id).await {
        Ok(Some(c)) => Json(c).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no contact {id}")),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

/// Reads a JSON body, answering 400 with serde's reason when it does not fit.
fn body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, Response> {
    serde_json::from_slice(bytes).map_err(|e| error(StatusCode::BAD_REQUEST, format!("invalid body: {e}")))
}

/// Checks the caller and that the contact exists.
async fn target<'s>(
    service: &'s Service,
    headers: &HeaderMap,
    id: &str,
) -> Result<&'s crate::load::Store, Response> {
    if !authorized(service, headers) {
        return Err(unauthorized());
    }
    let store = store(service)?;
    match objects::get(store, id).await {
        Ok(Some(_)) => Ok(store),
        Ok(None) => Err(error(StatusCode::NOT_FOUND, format!("no contact {id}"))),
        Err(e) => Err(error(StatusCode::SERVICE_UNAVAILABLE, e.to_string())),
    }
}

pub async fn put_status(
    State(service): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
    bytes: axum::body::Bytes,
) -> Response {
    let store = match target(&service, &headers, &id).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let status: Status = match body(&bytes) {
        Ok(s) => s,
        Err(r) => return r,
    };
    if let Some(problem) = status.problem() {
        return error(StatusCode::BAD_REQUEST, problem);
    }
    let version = service.versions.next();
    if let Err(e) = objects::set_status(store, &id, &status, &version).await {
        return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string());
    }
    let _ = service.events.send(Change {
        kind: "status",
        contact: id.clone(),
        version: version.clone(),
        status: Some(status),
        profile: None,
    });
    current(store, &id).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileBody {
    profile: String,
}

pub async fn put_profile(
    State(service): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
    bytes: axum::body::Bytes,
) -> Response {
    let store = match target(&service, &headers, &id).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let wanted: ProfileBody = match body(&bytes) {
        Ok(p) => p,
        Err(r) => return r,
    };
    if !service.profiles.contains(&wanted.profile) {
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "unknown profile \"{}\": one of {}",
                wanted.profile,
                service.profiles.join(", ")
            ),
        );
    }
    let version = service.versions.next();
    if let Err(e) = objects::set_profile(store, &id, &wanted.profile, &version).await {
        return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string());
    }
    let _ = service.events.send(Change {
        kind: "profile",
        contact: id.clone(),
        version,
        status: None,
        profile: Some(wanted.profile),
    });
    current(store, &id).await
}

/// The contact as stored now.
async fn current(store: &crate::load::Store, id: &str) -> Response {
    match objects::get(store, id).await {
        Ok(Some(c)) => Json(c).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no contact {id}")),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

/// `GET /api/events`: each status or profile change as an SSE event named `status` or
/// `profile` with the change as JSON.
pub async fn events(State(service): Shared, headers: HeaderMap) -> Response {
    if !authorized(&service, &headers) {
        return unauthorized();
    }
    let receiver = service.events.subscribe();
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            match receiver.recv().await {
                Ok(change) => {
                    let data = serde_json::to_string(&change).unwrap_or_default();
                    let event = Event::default().event(change.kind).data(data);
                    return Some((Ok::<_, Infallible>(event), receiver));
                }
                // A slow client misses changes rather than holding the others back.
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default()).into_response()
}

pub async fn parameters(State(service): Shared, headers: HeaderMap) -> Response {
    if !authorized(&service, &headers) {
        return unauthorized();
    }
    Json(json!({ "parameters": service.parameters, "profiles": service.profiles })).into_response()
}
