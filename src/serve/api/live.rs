//! The live objects over HTTP: contact search and lookup with their live state, status and
//! profile changes, the Server-Sent Events stream of those changes, and the global
//! parameters. Every endpoint needs the same authentication as the write endpoints. The
//! cluster's endpoints are in [`super::cluster`].

use std::convert::Infallible;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::response::sse::{Event, KeepAlive, Sse};
use serde::Deserialize;
use serde_json::json;

use super::request::{body, check, store};
use crate::cluster::Change;
use crate::directory::{self, Status};
use crate::serve::answers::{Answer, ApiError, unavailable};
use crate::serve::state::Service;

type Shared = State<Arc<Service>>;

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
    let _lane = service.search_lane.acquire().await.map_err(unavailable)?;
    let found = crate::directory::search(store, &q.q, limit)
        .await
        .map_err(unavailable)?;
    Ok(Json(found).into_response())
}

pub async fn contact(State(service): Shared, headers: HeaderMap, Path(id): Path<String>) -> Answer {
    check(&service, &headers)?;
    current(store(&service)?, &id).await
}

/// Checks the caller and that the contact exists.
async fn target<'s>(
    service: &'s Service,
    headers: &HeaderMap,
    id: &str,
) -> Result<&'s crate::load::Store, ApiError> {
    check(service, headers)?;
    let store = store(service)?;
    match directory::contacts::get(store, id)
        .await
        .map_err(unavailable)?
    {
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
    let change = Change {
        contact: id.clone(),
        version: service.versions.next(),
        status: Some(status),
        profile: None,
    };
    landed(&service, store, change).await
}

/// Records a change made here and answers with the contact as stored: 200 when the change
/// landed, 409 with the newer version that won when one was already stored (a peer's change,
/// or a node sharing this database, got there first).
async fn landed(service: &Service, store: &crate::load::Store, change: Change) -> Answer {
    let id = change.contact.clone();
    let (kind, version) = (change.kind(), change.version.clone());
    if service.record(store, change).await.map_err(unavailable)? {
        return current(store, &id).await;
    }
    let contact = directory::contacts::get(store, &id)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no contact {id}")))?;
    let stored = if kind == "status" {
        contact.state.status_version.clone()
    } else {
        contact.state.profile_version.clone()
    };
    Ok((
        StatusCode::CONFLICT,
        Json(json!({
            "error": format!(
                "not stored: a newer {kind} change (version {}) is stored; this one was {version}",
                stored.as_deref().unwrap_or("unknown")
            ),
            "contact": contact,
        })),
    )
        .into_response())
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
    let change = Change {
        contact: id.clone(),
        version: service.versions.next(),
        status: None,
        profile: Some(wanted.profile),
    };
    landed(&service, store, change).await
}

/// The contact as stored now.
async fn current(store: &crate::load::Store, id: &str) -> Answer {
    match directory::contacts::get(store, id)
        .await
        .map_err(unavailable)?
    {
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
                    let event = Event::default().event(change.kind()).data(data);
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
