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

/// One change, as `/api/events` sends it and nodes send each other: a status or a profile.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Change {
    pub contact: String,
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

impl Change {
    /// `status` or `profile`.
    pub fn kind(&self) -> &'static str {
        if self.status.is_some() {
            "status"
        } else {
            "profile"
        }
    }
}

type Shared = State<Arc<Service>>;

/// A refusal: its status and reason (`{"error": reason}`), or 401 and nothing else.
pub struct ApiError(pub StatusCode, pub String);

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

pub(super) fn unavailable(e: impl ToString) -> ApiError {
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
    let change = Change {
        contact: id.clone(),
        version: service.versions.next(),
        status: Some(status),
        profile: None,
    };
    service.record(store, change).await?;
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
    let change = Change {
        contact: id.clone(),
        version: service.versions.next(),
        status: None,
        profile: Some(wanted.profile),
    };
    service.record(store, change).await?;
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

/// The node's cluster, or 404 when it has none.
fn cluster(service: &Service) -> Result<&Arc<crate::serve::cluster::Cluster>, ApiError> {
    service.cluster.as_ref().ok_or_else(|| {
        ApiError(
            StatusCode::NOT_FOUND,
            "this node has no [cluster] in its service config".into(),
        )
    })
}

/// `POST /api/cluster/changes`: a peer's changes, signed with the shared secret. The newer
/// version of each wins; profile changes are refused when profile_sync is off here.
pub async fn receive(
    State(service): Shared,
    headers: HeaderMap,
    bytes: axum::body::Bytes,
) -> Answer {
    use crate::serve::cluster::{NODE_HEADER, SIGNATURE_HEADER};
    let cluster = cluster(&service)?;
    let from = headers
        .get(NODE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("an unnamed node")
        .to_owned();
    let signed = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|s| cluster.verify(&bytes, s));
    if !signed {
        cluster.count_refused("signature");
        tracing::warn!(from = %from, "a cluster request without a valid signature was refused");
        return Err(ApiError(StatusCode::UNAUTHORIZED, String::new()));
    }
    let changes: Vec<Change> = body(&bytes)?;
    if !cluster.profile_sync && changes.iter().any(|c| c.profile.is_some()) {
        cluster.count_refused("profile_sync_off");
        tracing::warn!(from = %from, "profile changes refused: profile_sync is off on this node");
        return Err(ApiError(
            StatusCode::CONFLICT,
            format!(
                "profile sync is off on node {}: it accepts no profile changes",
                cluster.node
            ),
        ));
    }
    let store = store(&service)?;
    let mut applied = 0u64;
    for change in changes {
        if let Some(problem) = change.status.as_ref().and_then(Status::problem) {
            return Err(ApiError(StatusCode::BAD_REQUEST, problem));
        }
        service.versions.observe(&change.version);
        cluster.count_received(change.kind());
        let stored = crate::serve::cluster::record_local(store, &cluster.node, &change, false)
            .await
            .map_err(unavailable)?;
        // Nodes sharing one database find the change already stored: their clients hear
        // of it all the same.
        let current = !stored
            && objects::get(store, &change.contact)
                .await
                .map_err(unavailable)?
                .is_some_and(|c| {
                    let version = if change.status.is_some() {
                        c.state.status_version
                    } else {
                        c.state.profile_version
                    };
                    version.as_deref() == Some(change.version.as_str())
                });
        if stored {
            applied += 1;
        }
        if stored || current {
            let _ = service.events.send(change);
        }
    }
    Ok(Json(json!({ "applied": applied })).into_response())
}

/// `GET /api/cluster`: this node, profile sync, and each peer's health.
pub async fn cluster_status(State(service): Shared, headers: HeaderMap) -> Answer {
    check(&service, &headers)?;
    let cluster = cluster(&service)?;
    let peers = cluster.peer_snapshot();
    Ok(Json(json!({
        "node": cluster.node,
        "profile_sync": cluster.profile_sync,
        "peers": peers,
    }))
    .into_response())
}

/// `POST /api/cluster/sync`: sends this node's whole state to every peer now.
pub async fn cluster_sync(State(service): Shared, headers: HeaderMap) -> Answer {
    check(&service, &headers)?;
    let cluster = cluster(&service)?;
    let outcomes = cluster
        .sync_all(store(&service)?)
        .await
        .map_err(unavailable)?;
    Ok(Json(json!({ "node": cluster.node, "peers": outcomes })).into_response())
}
