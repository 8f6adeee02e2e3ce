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

/// A refusal: its status and reason (`{"error": reason}`), or 401 and nothing else.
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.0 == StatusCode::UNAUTHORIZED {
            unauthorized()
        } else {
            error(self.0, self.1)
        }
    }
}

type Answer = Result<Response, ApiError>;

fn unavailable(e: impl ToString) -> ApiError {
    ApiError(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
}

fn check(service: &Service, headers: &HeaderMap) -> Result<(), ApiError> {
    if authorized(service, headers) {
        Ok(())
    } else {
        Err(ApiError(StatusCode::UNAUTHORIZED, String::new()))
    }
}

/// The objects' database, or the reason there is none.
fn store(service: &Service) -> Result<&crate::load::Store, ApiError> {
    service
        .objects_store()
        .ok_or_else(|| unavailable("no pipeline is loaded, so there is no contacts database"))
}

#[derive(Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
    limit: Option<i64>,
}

pub async fn search(
    State(service): Shared,
    headers: HeaderMap,
    Query(q): Query<SearchQuery>,
) -> Answer {
    check(&service, &headers)?;
    let store = store(&service)?;
    if q.q.trim().is_empty() {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "q is empty: give a name, number or e-mail to search for".into(),
        ));
    }
    let limit = q.limit.unwrap_or(20).clamp(1, 500);
    let found = objects::search(store, &q.q, limit)
        .await
        .map_err(unavailable)?;
    Ok(Json(found).into_response())
}

pub async fn contact(State(service): Shared, headers: HeaderMap, Path(id): Path<String>) -> Answer {
    check(&service, &headers)?;
    current(store(&service)?, &id).await
}

/// Reads a JSON body, answering 400 with serde's reason when it does not fit.
fn body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, format!("invalid body: {e}")))
}

/// Checks the caller and that the contact exists.
async fn target<'s>(
    service: &'s Service,
    headers: &HeaderMap,
    id: &str,
) -> Result<&'s crate::load::Store, ApiError> {
    check(service, headers)?;
    let store = store(service)?;
    match objects::get(store, id).await.map_err(unavailable)? {
        Some(_) => Ok(store),
        None => Err(ApiError(StatusCode::NOT_FOUND, format!("no contact {id}"))),
    }
}

pub async fn put_status(
    State(service): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
    bytes: axum::body::Bytes,
) -> Answer {
    let store = target(&service, &headers, &id).await?;
    let status: Status = body(&bytes)?;
    if let Some(problem) = status.problem() {
        return Err(ApiError(StatusCode::BAD_REQUEST, problem));
    }
    let version = service.versions.next();
    objects::set_status(store, &id, &status, &version)
        .await
        .map_err(unavailable)?;
    let _ = service.events.send(Change {
        kind: "status",
        contact: id.clone(),
        version,
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
) -> Answer {
    let store = target(&service, &headers, &id).await?;
    let wanted: ProfileBody = body(&bytes)?;
    if !service.profiles.contains(&wanted.profile) {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            format!(
                "unknown profile \"{}\": one of {}",
                wanted.profile,
                service.profiles.join(", ")
            ),
        ));
    }
    let version = service.versions.next();
    objects::set_profile(store, &id, &wanted.profile, &version)
        .await
        .map_err(unavailable)?;
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
async fn current(store: &crate::load::Store, id: &str) -> Answer {
    match objects::get(store, id).await.map_err(unavailable)? {
        Some(c) => Ok(Json(c).into_response()),
        None => Err(ApiError(StatusCode::NOT_FOUND, format!("no contact {id}"))),
    }
}

/// `GET /api/events`: each status or profile change as an SSE event named `status` or
/// `profile` with the change as JSON.
pub async fn events(State(service): Shared, headers: HeaderMap) -> Answer {
    check(&service, &headers)?;
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
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

pub async fn parameters(State(service): Shared, headers: HeaderMap) -> Answer {
    check(&service, &headers)?;
    Ok(
        Json(json!({ "parameters": service.parameters, "profiles": service.profiles }))
            .into_response(),
    )
}
