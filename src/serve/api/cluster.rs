//! The cluster over HTTP: `POST /api/cluster/changes` (a peer's signed push: the headers
//! checked before the body is read, the signature and nonce after, then each change on its
//! own), `GET /api/cluster` (this node and its peers' health) and `POST /api/cluster/sync`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::json;

use super::request::{body, check, store};
use crate::cluster::{Change, Cluster, Version};
use crate::directory::{self, Status};
use crate::serve::answers::{Answer, ApiError, unavailable};
use crate::serve::state::Service;

type Shared = State<Arc<Service>>;

/// The node's cluster, or 404 when it has none.
fn cluster(service: &Service) -> Result<&Arc<Cluster>, ApiError> {
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
        .get(crate::cluster::node::NODE_HEADER)
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
    if !directory::contacts::table_loaded(store)
        .await
        .map_err(unavailable)?
    {
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
    Ok(Json(crate::cluster::node::Delivery { applied, refused }).into_response())
}

/// A received change that was refused: the counter it goes to and what the peer is told.
struct Refusal {
    reason_key: &'static str,
    change: crate::cluster::node::RefusedChange,
}

/// Checks one received change: well formed, a real version not too far ahead, a known
/// contact, a configured profile, profile sync on here.
async fn check_received(
    service: &Service,
    cluster: &Cluster,
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
            change: crate::cluster::node::RefusedChange {
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
    if !directory::contacts::exists(store, &received.contact)
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
    let stored = crate::cluster::record_local(store, node, &change, false)
        .await
        .map_err(unavailable)?;
    // Nodes sharing one database find the change already stored: their clients hear of it
    // all the same.
    let current = !stored
        && directory::contacts::get(store, &change.contact)
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
