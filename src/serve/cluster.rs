//! The active/active pair: status changes (and profile changes, when `profile_sync` is on)
//! made on one node reach its peers. A local change is written with its outbox row in one
//! transaction ([`record_local`]); one pusher task per peer sends the outbox in order, signed
//! with an HMAC-SHA256 of the body, and remembers how far the peer got, so a peer that was
//! down gets the rest once it is back. The receiver applies what is newer (versions from a
//! hybrid logical clock, `serve::version`), so concurrent changes converge. `ucm cluster sync
//! --force` and the periodic anti-entropy pass send the whole state.
//!
//! A push is signed over the sending node's name, a timestamp, a nonce and the body: a push
//! older or newer than `max_clock_skew_secs`, or one whose nonce was seen, is refused, so a
//! captured push cannot be replayed. The receiver judges each change on its own: a malformed
//! version, a version further ahead than the allowed skew, an unknown contact or profile,
//! or a profile change while profile sync is off here is refused with its reason and counted,
//! and the others are applied. The sender drops refused changes from its outbox (counted and
//! logged), so one refusal never holds back the changes behind it.
//!
//! `profile_sync = false` is off completely: no profile change is queued, sent or accepted,
//! and the anti-entropy pass leaves profiles out.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::load::{LoadError, Store, on_pool};
use crate::serve::live::Change;
use crate::serve::objects;
use crate::serve::version::Version;

/// The header carrying the HMAC-SHA256 of node, timestamp, nonce and body, hex.
pub const SIGNATURE_HEADER: &str = "x-ucm-signature";
/// The header naming the sending node.
pub const NODE_HEADER: &str = "x-ucm-node";
/// The sending node's clock when it signed (Unix milliseconds).
pub const TIMESTAMP_HEADER: &str = "x-ucm-timestamp";
/// 32 hex digits, new for every push.
pub const NONCE_HEADER: &str = "x-ucm-nonce";
/// What the signature covers before the body; a new layout gets a new tag.
const SIGNED_TAG: &str = "ucm-cluster-push-v2";
/// Why a peer's request or change is refused (`ucm_cluster_refused_total{reason}`), each
/// shown in `/metrics` from 0.
pub const REFUSAL_REASONS: [&str; 9] = [
    "signature",
    "stale",
    "replay",
    "malformed",
    "malformed_version",
    "clock_skew",
    "unknown_contact",
    "unknown_profile",
    "profile_sync_off",
];
/// Nonces remembered at most (each for twice the allowed skew).
const MAX_NONCES: usize = 200_000;
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
    /// reason → peer requests or changes refused here.
    pub refused: Mutex<BTreeMap<&'static str, u64>>,
    /// (peer, reason) → changes a peer refused, dropped from the outbox.
    pub dropped: Mutex<BTreeMap<(String, String), u64>>,
    /// How far a peer's clock (and the versions it sends) may be ahead of or behind ours.
    pub max_clock_skew: Duration,
    /// Nonces of accepted pushes → when they may be forgotten (Unix ms).
    nonces: Mutex<std::collections::HashMap<String, i64>>,
    client: reqwest::Client,
}

/// A push's signature headers, read before its body.
pub struct PushHeaders {
    pub node: String,
    pub timestamp: i64,
    pub nonce: String,
    pub signature: String,
}

/// What a peer answers to a push.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Delivery {
    pub applied: u64,
    #[serde(default)]
    pub refused: Vec<RefusedChange>,
}

/// A change the receiver did not apply, and why.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RefusedChange {
    pub contact: String,
    pub version: String,
    pub reason: String,
    pub detail: String,
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
        config.check(&node)?;
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
            dropped: Mutex::new(BTreeMap::new()),
            max_clock_skew: Duration::from_secs(config.max_clock_skew_secs),
            nonces: Mutex::new(std::collections::HashMap::new()),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .map_err(|e| e.to_string())?,
        })
    }

    /// The HMAC-SHA256 of what a push signs: tag, node, timestamp, nonce and body; hex.
    pub fn sign(&self, node: &str, timestamp: i64, nonce: &str, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).expect("any key length");
        mac.update(format!("{SIGNED_TAG}\n{node}\n{timestamp}\n{nonce}\n").as_bytes());
        mac.update(body);
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Reads a push's signature headers and checks they can be genuine and fresh, before
    /// its body is read. The reason (for `ucm_cluster_refused_total`) when not.
    pub fn check_headers(
        &self,
        headers: &axum::http::HeaderMap,
    ) -> Result<PushHeaders, &'static str> {
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
        let (Some(node), Some(timestamp), Some(nonce), Some(signature)) = (
            text(NODE_HEADER),
            text(TIMESTAMP_HEADER).and_then(|t| t.parse::<i64>().ok()),
            text(NONCE_HEADER).filter(|n| hex(n, 32)),
            text(SIGNATURE_HEADER).filter(|s| hex(s, 64)),
        ) else {
            return Err("signature");
        };
        if super::version::check_node(node).is_err() {
            return Err("signature");
        }
        let now = jiff::Timestamp::now().as_millisecond();
        if (now - timestamp).unsigned_abs() > self.max_clock_skew.as_millis() as u64 {
            return Err("stale");
        }
        Ok(PushHeaders {
            node: node.to_owned(),
            timestamp,
            nonce: nonce.to_ascii_lowercase(),
            signature: signature.to_ascii_lowercase(),
        })
    }

    /// Whether `body` is what `push` signed (compared in constant time) and its nonce new;
    /// the nonce is remembered for twice the allowed skew.
    pub fn verify(&self, push: &PushHeaders, body: &[u8]) -> Result<(), &'static str> {
        let expected = self.sign(&push.node, push.timestamp, &push.nonce, body);
        if !super::http::constant_time_eq(expected.as_bytes(), push.signature.as_bytes()) {
            return Err("signature");
        }
        let now = jiff::Timestamp::now().as_millisecond();
        let keep = 2 * self.max_clock_skew.as_millis() as i64;
        let mut nonces = self.nonces.lock().expect("no poisoning");
        if nonces.len() >= MAX_NONCES {
            nonces.retain(|_, until| *until > now);
        }
        if nonces.contains_key(&push.nonce) {
            return Err("replay");
        }
        if nonces.len() >= MAX_NONCES {
            // More signed pushes within the window than a pair ever sends: refuse rather
            // than forget nonces that could then be replayed.
            return Err("replay");
        }
        nonces.insert(push.nonce.clone(), push.timestamp.max(now) + keep);
        Ok(())
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

    /// Sends `changes` to `peer`, signed; the peer's account of what it applied and refused.
    async fn post(&self, peer: &str, changes: &[Change]) -> Result<Delivery, String> {
        let body = serde_json::to_vec(changes).map_err(|e| e.to_string())?;
        let timestamp = jiff::Timestamp::now().as_millisecond();
        let nonce = super::http::random_hex(16).map_err(|e| format!("cannot make a nonce: {e}"))?;
        let response = self
            .client
            .post(format!(
                "{}/api/cluster/changes",
                peer.trim_end_matches('/')
            ))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(NODE_HEADER, &self.node)
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(NONCE_HEADER, &nonce)
            .header(
                SIGNATURE_HEADER,
                self.sign(&self.node, timestamp, &nonce, &body),
            )
            .body(body)
            .send()
            .await
            .map_err(|e| format!("cannot reach {peer}: {e}"))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if status.is_success() {
            serde_json::from_str(&text)
                .map_err(|e| format!("{peer} answered {status} with an unreadable body: {e}"))
        } else {
            Err(format!("{peer} answered {status}: {text}"))
        }
    }

    /// Counts and logs the changes `peer` refused (they are dropped from the outbox).
    fn note_refused(&self, peer: &str, refused: &[RefusedChange]) {
        if refused.is_empty() {
            return;
        }
        let mut dropped = self.dropped.lock().expect("no poisoning");
        for r in refused {
            *dropped
                .entry((peer.to_owned(), r.reason.clone()))
                .or_default() += 1;
        }
        drop(dropped);
        let first = &refused[0];
        tracing::warn!(
            peer = %peer,
            refused = refused.len(),
            reason = %first.reason,
            contact = %first.contact,
            "the peer refused changes; they are dropped from the outbox: {}",
            first.detail
        );
    }

    fn note_attempt<T>(&self, peer: &str, outcome: &Result<T, String>) {
        let mut states = self.peer_states.lock().expect("no poisoning");
        let state = states.entry(peer.to_owned()).or_default();
        match outcome {
            Ok(_) => {
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
            let mut outcome = Ok(0usize);
            for chunk in changes.chunks(BATCH as usize) {
                match self.post(peer, chunk).await {
                    Ok(delivery) => {
                        self.note_refused(peer, &delivery.refused);
                        outcome = outcome.map(|n| n + delivery.refused.len());
                    }
                    Err(e) => {
                        outcome = Err(e);
                        break;
                    }
                }
            }
            self.note_attempt(peer, &outcome);
            outcomes.insert(
                peer.clone(),
                match outcome {
                    Ok(0) => format!("sent {} changes", changes.len()),
                    Ok(refused) => format!(
                        "sent {} changes, {refused} refused by the peer (see the log)",
                        changes.len()
                    ),
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
/// Outbox rows of `node` after `after`, in order: the changes, and the last seq read (an
/// unreadable row, written by an older release, is skipped with a warning rather than
/// blocking the rows behind it).
async fn pending(
    store: &Store,
    node: &str,
    after: i64,
) -> Result<(Vec<Change>, Option<i64>), LoadError> {
    let rows: Vec<(i64, String)> = on_pool!(store, |pool| sqlx::query_as(
        "SELECT seq, change FROM outbox WHERE node = $1 AND seq > $2 ORDER BY seq LIMIT $3"
    )
    .bind(node)
    .bind(after)
    .bind(BATCH)
    .fetch_all(pool)
    .await
    .map_err(|e| store.error(e)))?;
    let last = rows.last().map(|(seq, _)| *seq);
    let changes = rows
        .into_iter()
        .filter_map(|(seq, text)| match serde_json::from_str::<Change>(&text) {
            Ok(change) => Some(change),
            Err(e) => {
                tracing::warn!(seq, "an unreadable outbox row is skipped: {e}");
                None
            }
        })
        .collect();
    Ok((changes, last))
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
    type Row = (
        String,
        i64,
        String,
        String,
        Option<String>,
        Option<i64>,
        Option<String>,
        Option<String>,
        Option<i64>,
        Option<String>,
    );
    let rows: Vec<Row> = on_pool!(store, |pool| {
        sqlx::query_as(
            "SELECT contact, registered, call_state, presence, note, status_clock, status_node, \
             profile, profile_clock, profile_node FROM contact_state ORDER BY contact",
        )
        .fetch_all(pool)
        .await
        .map_err(|e| store.error(e))
    })?;
    let version = |clock: Option<i64>, node: Option<String>| {
        Version::from_parts(clock?, node.as_deref()?).ok()
    };
    let mut changes = Vec::new();
    for (
        contact,
        registered,
        call_state,
        presence,
        note,
        s_clock,
        s_node,
        profile,
        p_clock,
        p_node,
    ) in rows
    {
        if let Some(version) = version(s_clock, s_node) {
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
        if let (true, Some(profile), Some(version)) = (profiles, profile, version(p_clock, p_node))
        {
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
        let (changes, last_seq) = pending(&store, &cluster.node, after)
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
        let Some(last_seq) = last_seq else {
            let wake = &cluster.wake[&peer];
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stop.changed() => return,
            }
            continue;
        };
        let outcome = cluster.post(&peer, &changes).await;
        cluster.note_attempt(&peer, &outcome);
        match outcome {
            Ok(delivery) => {
                // Refused changes are not sent again: the peer said why it will not take
                // them, and the ones behind them must not wait.
                cluster.note_refused(&peer, &delivery.refused);
                after = last_seq;
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
    fn a_push_verifies_once_for_its_node_timestamp_nonce_body_and_secret() {
        let config: super::super::config::ClusterConfig =
            toml::from_str("secret = \"s3cret\"\npeers = [\"http://127.0.0.1:1\"]").unwrap();
        let cluster = Cluster::new(&config, "a".into()).unwrap();
        let now = jiff::Timestamp::now().as_millisecond();
        let nonce = "0123456789abcdef0123456789abcdef";
        let signed = PushHeaders {
            node: "a".into(),
            timestamp: now,
            nonce: nonce.into(),
            signature: cluster.sign("a", now, nonce, b"[]"),
        };
        // Another body, node, time or nonce under the same signature: refused.
        assert_eq!(cluster.verify(&signed, b"[ ]"), Err("signature"));
        for (node, timestamp, other_nonce) in [
            ("b", now, nonce),
            ("a", now + 1, nonce),
            ("a", now, "ffffffffffffffffffffffffffffffff"),
        ] {
            let forged = PushHeaders {
                node: node.into(),
                timestamp,
                nonce: other_nonce.into(),
                signature: signed.signature.clone(),
            };
            assert_eq!(cluster.verify(&forged, b"[]"), Err("signature"));
        }
        assert_eq!(cluster.verify(&signed, b"[]"), Ok(()));
        // The same push again: a replay.
        assert_eq!(cluster.verify(&signed, b"[]"), Err("replay"));
        let other: super::super::config::ClusterConfig =
            toml::from_str("secret = \"other\"").unwrap();
        let other = Cluster::new(&other, "b".into()).unwrap();
        assert_eq!(other.verify(&signed, b"[]"), Err("signature"));
        assert!(config.profile_sync, "profile sync is on by default");
        assert_eq!(config.max_clock_skew_secs, 300);
    }

    #[test]
    fn push_headers_must_be_complete_well_formed_and_fresh() {
        let config: super::super::config::ClusterConfig =
            toml::from_str("secret = \"s3cret\"").unwrap();
        let cluster = Cluster::new(&config, "a".into()).unwrap();
        let now = jiff::Timestamp::now().as_millisecond();
        let headers = |node: &str, timestamp: i64, nonce: &str, signature: &str| {
            let mut h = axum::http::HeaderMap::new();
            h.insert(NODE_HEADER, node.parse().unwrap());
            h.insert(TIMESTAMP_HEADER, timestamp.to_string().parse().unwrap());
            h.insert(NONCE_HEADER, nonce.parse().unwrap());
            h.insert(SIGNATURE_HEADER, signature.parse().unwrap());
            h
        };
        let (nonce, signature) = ("a".repeat(32), "b".repeat(64));
        assert!(
            cluster
                .check_headers(&headers("b", now, &nonce, &signature))
                .is_ok()
        );
        assert_eq!(
            cluster
                .check_headers(&headers("b", now - 301_000, &nonce, &signature))
                .err(),
            Some("stale")
        );
        assert_eq!(
            cluster
                .check_headers(&headers("b", now + 301_000, &nonce, &signature))
                .err(),
            Some("stale")
        );
        assert_eq!(
            cluster
                .check_headers(&headers("b", now, "short", &signature))
                .err(),
            Some("signature")
        );
        assert_eq!(
            cluster
                .check_headers(&headers("b c", now, &nonce, &signature))
                .err(),
            Some("signature")
        );
        assert_eq!(
            cluster.check_headers(&axum::http::HeaderMap::new()).err(),
            Some("signature")
        );
    }
}
