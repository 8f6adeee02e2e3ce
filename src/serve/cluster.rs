//! The active/active pair: status changes (and profile changes, when `profile_sync` is on)
//! made on one node reach its peers. A local change is written with its outbox row in one
//! transaction ([`record_local`]); one pusher task per peer sends the outbox in order, signed
//! with an HMAC-SHA256 of the body, and remembers how far the peer got, so a peer that was
//! down gets the rest once it is back. The receiver applies what is newer (versions from a
//! hybrid logical clock), so concurrent changes converge. `ucm cluster sync --force` and the
//! periodic anti-entropy pass send the whole state.
//!
//! `profile_sync = false` is off completely: no profile change is queued, sent or accepted,
//! and the anti-entropy pass leaves profiles out.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use sqlx::Row;

use crate::load::{LoadError, Store, on_pool};
use crate::serve::live::Change;
use crate::serve::objects;

/// The header carrying the body's HMAC-SHA256, hex.
pub const SIGNATURE_HEADER: &str = "x-ucm-signature";
/// The header naming the sending node.
pub const NODE_HEADER: &str = "x-ucm-node";
/// Why a peer's request or change is refused (`ucm_cluster_refused_total{reason}`), each
/// shown in `/metrics` from 0.
pub const REFUSAL_REASONS: [&str; 2] = ["signature", "profile_sync_off"];
/// Changes a push sends at most.
const BATCH: i64 = 200;

/// What this node knows about one peer.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct PeerState {
    pub url: String,
    pub reachable: bool,
    pub outbox_depth: u64,
    pub sent_seq: i64,
    pub last_success: Option<String>,
    pub failures: u64,
    pub last_error: Option<String>,
}

/// The node's cluster settings and what it counted.
pub struct Cluster {
    pub node: String,
    pub peers: Vec<String>,
    secret: Vec<u8>,
    pub profile_sync: bool,
    pub anti_entropy: Duration,
    /// Per peer: woken when the outbox grows.
    pub wake: BTreeMap<String, tokio::sync::Notify>,
    pub peer_states: Mutex<BTreeMap<String, PeerState>>,
    /// kind → changes received from peers and applied or found older.
    pub received: Mutex<BTreeMap<String, u64>>,
    /// reason → peer requests refused.
    pub refused: Mutex<BTreeMap<&'static str, u64>>,
    client: reqwest::Client,
}

impl Cluster {
    /// Each peer's health as it is now, in peer order (a copy: the lock is not held while the
    /// caller writes it out).
    pub fn peer_snapshot(&self) -> Vec<PeerState> {
        self.peer_states
            .lock()
            .expect("no poisoning")
            .values()
            .cloned()
            .collect()
    }

    pub fn new(config: &super::config::ClusterConfig, node: String) -> Result<Cluster, String> {
        let secret = config.secret()?.into_bytes();
        // reqwest's TLS needs a crypto provider (the CLI installs the same one at start).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let peer_states = config
            .peers
            .iter()
            .map(|url| {
                (
                    url.clone(),
                    PeerState {
                        url: url.clone(),
                        ..PeerState::default()
                    },
                )
            })
            .collect();
        Ok(Cluster {
            node,
            peers: config.peers.clone(),
            secret,
            profile_sync: config.profile_sync,
            anti_entropy: Duration::from_secs(config.anti_entropy_secs.max(1)),
            wake: config
                .peers
                .iter()
                .map(|p| (p.clone(), tokio::sync::Notify::new()))
                .collect(),
            peer_states: Mutex::new(peer_states),
            received: Mutex::new(BTreeMap::new()),
            refused: Mutex::new(BTreeMap::new()),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .map_err(|e| e.to_string())?,
        })
    }

    /// The HMAC-SHA256 of `body`, hex.
    pub fn sign(&self, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).expect("any key length");
        mac.update(body);
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Whether `signature` is `body`'s, compared in constant time.
    pub fn verify(&self, body: &[u8], signature: &str) -> bool {
        super::http::constant_time_eq(self.sign(body).as_bytes(), signature.as_bytes())
    }

    /// Counts a refused peer request.
    pub fn count_refused(&self, reason: &'static str) {
        *self
            .refused
            .lock()
            .expect("no poisoning")
            .entry(reason)
            .or_default() += 1;
    }

    pub fn count_received(&self, kind: &str) {
        *self
            .received
            .lock()
            .expect("no poisoning")
            .entry(kind.to_owned())
            .or_default() += 1;
    }

    /// Wakes every pusher: the outbox grew.
    pub fn wake_all(&self) {
        for wake in self.wake.values() {
            wake.notify_one();
        }
    }

    /// Sends `changes` to `peer`, signed.
    async fn post(&self, peer: &str, changes: &[Change]) -> Result<(), String> {
        let body = serde_json::to_vec(changes).map_err(|e| e.to_string())?;
        let response = self
            .client
            .post(format!(
                "{}/api/cluster/changes",
                peer.trim_end_matches('/')
            ))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(NODE_HEADER, &self.node)
            .header(SIGNATURE_HEADER, self.sign(&body))
            .body(body)
            .send()
            .await
            .map_err(|e| format!("cannot reach {peer}: {e}"))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            let text = response.text().await.unwrap_or_default();
            Err(format!("{peer} answered {status}: {text}"))
        }
    }

    fn note_attempt(&self, peer: &str, outcome: &Result<(), String>) {
        let mut states = self.peer_states.lock().expect("no poisoning");
        let state = states.entry(peer.to_owned()).or_default();
        match outcome {
            Ok(()) => {
                state.reachable = true;
                state.last_success = Some(crate::load::now());
                state.last_error = None;
            }
            Err(e) => {
                state.reachable = false;
                state.failures += 1;
                state.last_error = Some(e.clone());
            }
        }
    }

    /// Sends this node's whole state to every peer (statuses always, profiles when
    /// profile_sync is on); the peers keep what is newer. Per peer: the outcome.
    pub async fn sync_all(&self, store: &Store) -> Result<BTreeMap<String, String>, LoadError> {
        let changes = full_state(store, self.profile_sync).await?;
        let mut outcomes = BTreeMap::new();
        for peer in &self.peers {
            let mut outcome = Ok(());
            for chunk in changes.chunks(BATCH as usize) {
                outcome = self.post(peer, chunk).await;
                if outcome.is_err() {
                    break;
                }
            }
            self.note_attempt(peer, &outcome);
            outcomes.insert(
                peer.clone(),
                match outcome {
                    Ok(()) => format!("sent {} changes", changes.len()),
                    Err(e) => e,
                },
            );
        }
        Ok(outcomes)
    }
}

/// Stores a change made on this node and, when it is to be sent, its outbox row, in one
/// transaction. Returns whether the change was stored (an older one is not).
pub async fn record_local(
    store: &Store,
    node: &str,
    change: &Change,
    send: bool,
) -> Result<bool, LoadError> {
    let payload = serde_json::to_string(change).unwrap_or_default();
    let kind = change.kind();
    on_pool!(store, |pool| {
        async {
        let mut tx = pool.begin().await?;
        let applied = match (&change.status, &change.profile) {
            (Some(status), _) => {
                objects::status_query!(&change.contact, status, &change.version)
                    .execute(&mut *tx)
                    .await?
            }
            (None, Some(profile)) => {
                objects::profile_query!(&change.contact, profile, &change.version)
                    .execute(&mut *tx)
                    .await?
            }
            (None, None) => return Ok(false),
        }
        .rows_affected()
            > 0;
        if applied && send {
            sqlx::query(
                "INSERT INTO outbox (node, kind, contact, change, created_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(node)
            .bind(kind)
            .bind(&change.contact)
            .bind(&payload)
            .bind(crate::load::now())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(applied)
    }
    .await
    .map_err(|e: sqlx::Error| store.error(e))
    })
}

/// Outbox rows of `node` after `after`, in order: (seq, change).
async fn pending(store: &Store, node: &str, after: i64) -> Result<Vec<(i64, Change)>, LoadError> {
    let rows: Vec<(i64, String)> = on_pool!(store, |pool| sqlx::query_as(
        "SELECT seq, change FROM outbox WHERE node = $1 AND seq > $2 ORDER BY seq LIMIT $3"
    )
    .bind(node)
    .bind(after)
    .bind(BATCH)
    .fetch_all(pool)
    .await
    .map_err(|e| store.error(e)))?;
    Ok(rows
        .into_iter()
        .filter_map(|(seq, text)| serde_json::from_str::<Change>(&text).ok().map(|c| (seq, c)))
        .collect())
}

async fn outbox_depth(store: &Store, node: &str, after: i64) -> Result<i64, LoadError> {
    on_pool!(store, |pool| sqlx::query_scalar(
        "SELECT count(*) FROM outbox WHERE node = $1 AND seq > $2"
    )
    .bind(node)
    .bind(after)
    .fetch_one(pool)
    .await
    .map_err(|e| store.error(e)))
}

async fn sent_seq(store: &Store, node: &str, peer: &str) -> Result<i64, LoadError> {
    on_pool!(store, |pool| sqlx::query_scalar(
        "SELECT sent_seq FROM peer_progress WHERE node = $1 AND peer = $2"
    )
    .bind(node)
    .bind(peer)
    .fetch_optional(pool)
    .await
    .map(|s: Option<i64>| s.unwrap_or(0))
    .map_err(|e| store.error(e)))
}

async fn set_sent_seq(store: &Store, node: &str, peer: &str, seq: i64) -> Result<(), LoadError> {
    on_pool!(store, |pool| sqlx::query(
        "INSERT INTO peer_progress (node, peer, sent_seq) VALUES ($1, $2, $3) \
         ON CONFLICT (node, peer) DO UPDATE SET sent_seq = excluded.sent_seq"
    )
    .bind(node)
    .bind(peer)
    .bind(seq)
    .execute(pool)
    .await
    .map(drop)
    .map_err(|e| store.error(e)))
}

/// Drops the outbox rows every one of the node's `peers` has received.
async fn prune(store: &Store, node: &str, peers: usize) -> Result<(), LoadError> {
    on_pool!(store, |pool| sqlx::query(
        "DELETE FROM outbox WHERE node = $1 \
         AND seq <= (SELECT min(sent_seq) FROM peer_progress WHERE node = $1) \
         AND (SELECT count(*) FROM peer_progress WHERE node = $1) >= $2"
    )
    .bind(node)
    .bind(peers as i64)
    .execute(pool)
    .await
    .map(drop)
    .map_err(|e| store.error(e)))
}

/// Every stored status (and profile, when `profiles`) as changes with their versions.
async fn full_state(store: &Store, profiles: bool) -> Result<Vec<Change>, LoadError> {
    let rows = on_pool!(store, |pool| {
        sqlx::query(
        "SELECT contact, registered, call_state, presence, note, status_version, profile, profile_version \
         FROM contact_state ORDER BY contact"
    )
    .fetch_all(pool)
    .await
    .map_err(|e| store.error(e))?
    .iter()
    .map(|r| {
        Ok::<_, sqlx::Error>((
            r.try_get::<String, _>(0)?,
            r.try_get::<i64, _>(1)?,
            r.try_get::<String, _>(2)?,
            r.try_get::<String, _>(3)?,
            r.try_get::<Option<String>, _>(4)?,
            r.try_get::<Option<String>, _>(5)?,
            r.try_get::<Option<String>, _>(6)?,
            r.try_get::<Option<String>, _>(7)?,
        ))
    })
    .collect::<Result<Vec<_>, _>>()
    .map_err(|e| store.error(e))
    })?;
    let mut changes = Vec::new();
    for (
        contact,
        registered,
        call_state,
        presence,
        note,
        status_version,
        profile,
        profile_version,
    ) in rows
    {
        if let Some(version) = status_version {
            let status = serde_json::from_value(serde_json::json!({
                "registered": registered != 0,
                "call_state": call_state,
                "presence": presence,
                "note": note,
            }));
            if let Ok(status) = status {
                changes.push(Change {
                    contact: contact.clone(),
                    version,
                    status: Some(status),
                    profile: None,
                });
            }
        }
        if let (true, Some(profile), Some(version)) = (profiles, profile, profile_version) {
            changes.push(Change {
                contact,
                version,
                status: None,
                profile: Some(profile),
            });
        }
    }
    Ok(changes)
}

/// Pushes this node's outbox to `peer` until `stop`: in order, each change once, retrying
/// with backoff while the peer is unreachable.
pub async fn push_loop(
    cluster: Arc<Cluster>,
    store: Store,
    peer: String,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(200);
    // How far the peer got: read once (this task is its only writer), then kept here, so a
    // failed read can never send the outbox again from the start.
    let mut after = loop {
        match sent_seq(&store, &cluster.node, &peer).await {
            Ok(seq) => break seq,
            Err(e) => {
                tracing::warn!(peer = %peer, "cannot read the peer's progress, trying again: {e}");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => return,
                }
            }
        }
    };
    loop {
        if *stop.borrow() {
            return;
        }
        let batch = pending(&store, &cluster.node, after)
            .await
            .unwrap_or_default();
        let depth = outbox_depth(&store, &cluster.node, after)
            .await
            .unwrap_or(0);
        {
            let mut states = cluster.peer_states.lock().expect("no poisoning");
            let state = states.entry(peer.clone()).or_default();
            state.outbox_depth = depth as u64;
            state.sent_seq = after;
        }
        if batch.is_empty() {
            let wake = &cluster.wake[&peer];
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stop.changed() => return,
            }
            continue;
        }
        let changes: Vec<Change> = batch.iter().map(|(_, c)| c.clone()).collect();
        let outcome = cluster.post(&peer, &changes).await;
        cluster.note_attempt(&peer, &outcome);
        match outcome {
            Ok(()) => {
                after = batch.last().map(|(seq, _)| *seq).unwrap_or(after);
                if let Err(e) = set_sent_seq(&store, &cluster.node, &peer, after).await {
                    tracing::error!(peer = %peer, "cannot record the peer's progress: {e}");
                }
                if let Err(e) = prune(&store, &cluster.node, cluster.peers.len()).await {
                    tracing::warn!("cannot prune the outbox: {e}");
                }
                backoff = Duration::from_millis(200);
            }
            Err(e) => {
                tracing::warn!(peer = %peer, retry_in_ms = backoff.as_millis() as u64, "push failed: {e}");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Sends the whole state to the peers every `anti_entropy` until `stop`.
pub async fn anti_entropy_loop(
    cluster: Arc<Cluster>,
    store: Store,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(cluster.anti_entropy) => {}
            _ = stop.changed() => return,
        }
        match cluster.sync_all(&store).await {
            Ok(outcomes) => tracing::info!(?outcomes, "anti-entropy pass"),
            Err(e) => tracing::warn!("anti-entropy pass failed: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_for_its_body_and_secret() {
        let config: super::super::config::ClusterConfig =
            toml::from_str("secret = \"s3cret\"\npeers = [\"http://127.0.0.1:1\"]").unwrap();
        let cluster = Cluster::new(&config, "a".into()).unwrap();
        let signature = cluster.sign(b"[]");
        assert!(cluster.verify(b"[]", &signature));
        assert!(!cluster.verify(b"[ ]", &signature));
        let other: super::super::config::ClusterConfig =
            toml::from_str("secret = \"other\"").unwrap();
        let other = Cluster::new(&other, "b".into()).unwrap();
        assert!(!other.verify(b"[]", &signature));
        assert!(config.profile_sync, "profile sync is on by default");
    }
}
