//! The active/active pair: status changes (and profile changes, when `profile_sync` is on)
//! made on one node reach its peers. A local change is written with its outbox row in one
//! transaction ([`record_local`]); one pusher task per peer sends the outbox in order, signed
//! with an HMAC-SHA256 of the body, and remembers how far the peer got, so a peer that was
//! down gets the rest once it is back. The receiver applies what is newer (versions from a
//! hybrid logical clock, `cluster::version`), so concurrent changes converge. `ucm cluster sync
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
use std::sync::Arc;
use std::time::Duration;

use super::change::Change;
use super::live_state::{profile_query, status_query};
use super::node::{
    BATCH, Cluster, Delivery, NODE_HEADER, NONCE_HEADER, RefusedChange, SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
};
use super::version::Version;
use crate::load::{LoadError, Store, on_pool};

impl Cluster {
    /// Sends `changes` to `peer`, signed; the peer's account of what it applied and refused.
    async fn post(&self, peer: &str, changes: &[Change]) -> Result<Delivery, String> {
        let body = serde_json::to_vec(changes).map_err(|e| e.to_string())?;
        let timestamp = jiff::Timestamp::now().as_millisecond();
        let nonce =
            crate::secrets::random_hex(16).map_err(|e| format!("cannot make a nonce: {e}"))?;
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
                status_query!(&change.contact, status, &change.version)
                    .execute(&mut *tx)
                    .await?
            }
            (None, Some(profile)) => {
                profile_query!(&change.contact, profile, &change.version)
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
