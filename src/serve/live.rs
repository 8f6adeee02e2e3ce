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
use crate::serve::version::Version;

/// One change, as `/api/events` sends it and nodes send each other: a status or a profile.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Change {
    pub contact: String,
    pub version: Version,
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
    let _lane = service.search_lane.acquire().await.map_err(unavailable)?;
    let found = super::search::search(store, &q.q, limit)
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
    landed(&service, store, change).await
}

/// Records a change made here and answers with the contact as stored: 200 when the change
/// landed, 409 with the newer version that won when one was already stored (a peer's change,
/// or a node sharing this database, got there first).
async fn landed(service: &Service, store: &crate::load::Store, change: Change) -> Answer {
    let id = change.contact.clone();
    let (kind, version) = (change.kind(), change.version.clone());
    if service.record(store, change).await? {
        return current(store, &id).await;
    }
    let contact = objects::get(store, &id)
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

/// A change as a peer sends it, before it is checked.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReceivedChange {
    contact: String,
    version: String,
    #[serde(default)]
    status: Option<Status>,
    #[serde(default)]
    profile: Option<String>,
}

/// `POST /api/cluster/changes`: a peer's changes. The signature headers are checked before the
/// body is read, the signature and nonce after; then each change on its own: refused ones
/// are answered with their reason, the others applied (the newer version of each wins).
pub async fn receive(State(service): Shared, request: axum::extract::Request) -> Answer {
    let cluster = cluster(&service)?;
    let refuse = |reason: &'static str, from: &str| {
        cluster.count_refused(reason);
        tracing::warn!(from = %crate::redact::printable(from, 64), reason, "a cluster push was refused");
        ApiError(StatusCode::UNAUTHORIZED, String::new())
    };
    let claimed = request
        .headers()
        .get(crate::serve::cluster::NODE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("an unnamed node")
        .to_owned();
    let push = cluster
        .check_headers(request.headers())
        .map_err(|reason| refuse(reason, &claimed))?;
    let bytes = axum::body::to_bytes(request.into_body(), service.limits.max_body_bytes)
        .await
        .map_err(|e| {
            ApiError(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("cannot read the body: {e}"),
            )
        })?;
    cluster
        .verify(&push, &bytes)
        .map_err(|reason| refuse(reason, &push.node))?;
    let changes: Vec<serde_json::Value> = body(&bytes)?;
    let store = store(&service)?;
    // Before its first run has landed, this node would refuse every change as being for an
    // unknown contact, and the peer would drop them for good: ask it to retry instead.
    if !objects::table_loaded(store).await.map_err(unavailable)? {
        return Err(ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "node {} has not loaded its merged table yet (no run has landed): retry later",
                cluster.node
            ),
        ));
    }
    let mut applied = 0u64;
    let mut refused = Vec::new();
    for value in changes {
        match check_received(&service, cluster, store, value).await? {
            Err(refusal) => {
                cluster.count_refused(refusal.reason_key);
                refused.push(refusal.change);
            }
            Ok(change) => {
                service.versions.observe(&change.version);
                cluster.count_received(change.kind());
                if apply_received(&service, store, &cluster.node, change).await? {
                    applied += 1;
                }
            }
        }
    }
    if let Some(first) = refused.first() {
        tracing::warn!(
            from = %push.node,
            refused = refused.len(),
            reason = %first.reason,
            contact = %crate::redact::printable(&first.contact, 80),
            "changes from a peer were refused: {}",
            first.detail
        );
    }
    Ok(Json(crate::serve::cluster::Delivery { applied, refused }).into_response())
}

/// A received change that was refused: the counter it goes to and what the peer is told.
struct Refusal {
    reason_key: &'static str,
    change: crate::serve::cluster::RefusedChange,
}

/// Checks one received change: well formed, a real version not too far ahead, a known
/// contact, a configured profile, profile sync on here.
async fn check_received(
    service: &Service,
    cluster: &crate::serve::cluster::Cluster,
    store: &crate::load::Store,
    value: serde_json::Value,
) -> Result<Result<Change, Refusal>, ApiError> {
    let text = |v: &serde_json::Value, key: &str| -> String {
        let s = v.get(key).and_then(|s| s.as_str()).unwrap_or_default();
        crate::redact::printable(s, 80)
    };
    let (contact, version_text) = (text(&value, "contact"), text(&value, "version"));
    let refuse = |reason_key: &'static str, detail: String| {
        Ok(Err(Refusal {
            reason_key,
            change: crate::serve::cluster::RefusedChange {
                contact: contact.clone(),
                version: version_text.clone(),
                reason: reason_key.to_owned(),
                detail,
            },
        }))
    };
    let received: ReceivedChange = match serde_json::from_value(value) {
        Ok(r) => r,
        Err(e) => return refuse("malformed", format!("not a change: {e}")),
    };
    let version = match Version::parse(&received.version) {
        Ok(v) => v,
        Err(e) => return refuse("malformed_version", e.to_string()),
    };
    let now = jiff::Timestamp::now().as_millisecond();
    let ahead_ms = version.millis() - now;
    if ahead_ms > cluster.max_clock_skew.as_millis() as i64 {
        return refuse(
            "clock_skew",
            format!(
                "version {version} is {} s ahead of node {}'s clock (max_clock_skew_secs = {}): check the peer's clock",
                ahead_ms / 1000,
                cluster.node,
                cluster.max_clock_skew.as_secs()
            ),
        );
    }
    match (&received.status, &received.profile) {
        (Some(status), None) => {
            if let Some(problem) = status.problem() {
                return refuse("malformed", problem);
            }
        }
        (None, Some(profile)) => {
            if !cluster.profile_sync {
                return refuse(
                    "profile_sync_off",
                    format!(
                        "profile sync is off on node {}: it accepts no profile changes",
                        cluster.node
                    ),
                );
            }
            if !service.profiles.contains(profile) {
                return refuse(
                    "unknown_profile",
                    format!(
                        "profile \"{}\" is not configured on node {} (profiles: {})",
                        crate::redact::printable(profile, 64),
                        cluster.node,
                        service.profiles.join(", ")
                    ),
                );
            }
        }
        _ => {
            return refuse(
                "malformed",
                "a change has exactly one of status and profile".into(),
            );
        }
    }
    if !objects::exists(store, &received.contact)
        .await
        .map_err(unavailable)?
    {
        return refuse(
            "unknown_contact",
            format!(
                "no contact {contact} in node {}'s merged table",
                cluster.node
            ),
        );
    }
    Ok(Ok(Change {
        contact: received.contact,
        version,
        status: received.status,
        profile: received.profile,
    }))
}

/// Stores a checked change from a peer and tells this node's event clients. Returns whether
/// it was stored (an older one is not).
async fn apply_received(
    service: &Service,
    store: &crate::load::Store,
    node: &str,
    change: Change,
) -> Result<bool, ApiError> {
    let stored = crate::serve::cluster::record_local(store, node, &change, false)
        .await
        .map_err(unavailable)?;
    // Nodes sharing one database find the change already stored: their clients hear of it
    // all the same.
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
                version == Some(change.version.to_string())
            });
    if stored || current {
        let _ = service.events.send(change);
    }
    Ok(stored)
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
