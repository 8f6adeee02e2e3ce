//! One node of the active/active pair: its peers and their health, the shared secret, and
//! the checks of a peer's push (signature over node, timestamp, nonce and body; freshness
//! within `max_clock_skew_secs`; nonces seen once).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

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
pub(super) const BATCH: i64 = 200;

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
    pub(super) secret: Vec<u8>,
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
    pub(super) nonces: Mutex<std::collections::HashMap<String, i64>>,
    pub(super) client: reqwest::Client,
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
        if !crate::secrets::constant_time_eq(expected.as_bytes(), push.signature.as_bytes()) {
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
