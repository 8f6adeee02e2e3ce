//! `[cluster]` of the service config: this node, its peers, the shared secret, profile sync,
//! anti-entropy and the allowed clock skew.

use std::path::PathBuf;

use serde::Deserialize;

/// `[cluster]`: status changes always reach the peers, profile changes when `profile_sync`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// This node's name (default: the host name). Each node of a pair needs its own.
    #[serde(default)]
    pub node: Option<String>,
    /// The peers' base URLs, e.g. "http://10.0.0.2:8080".
    #[serde(default)]
    pub peers: Vec<String>,
    /// The secret both nodes share: requests between them carry an HMAC-SHA256 of their body.
    pub secret: Option<String>,
    pub secret_env: Option<String>,
    pub secret_file: Option<PathBuf>,
    /// `false` switches profile synchronisation off completely: no profile change is queued
    /// or sent, and the peers' profile changes are refused. Status keeps propagating.
    #[serde(default = "default_true")]
    pub profile_sync: bool,
    /// How often this node sends its whole state to its peers (anti-entropy), in seconds.
    #[serde(default = "default_anti_entropy_secs")]
    pub anti_entropy_secs: u64,
    /// How far a peer's clock may differ from this node's, in seconds: a push signed further
    /// in the past or future is refused (so a captured push cannot be replayed later), and so
    /// is a change whose version is further ahead (so a peer with a wrong clock cannot win
    /// every conflict). Keep the nodes' clocks synchronised (NTP).
    #[serde(default = "default_max_clock_skew_secs")]
    pub max_clock_skew_secs: u64,
}

fn default_max_clock_skew_secs() -> u64 {
    300
}

fn default_true() -> bool {
    true
}

fn default_anti_entropy_secs() -> u64 {
    600
}

impl ClusterConfig {
    /// Checks the settings that can be checked without the network.
    pub fn check(&self, node: &str) -> Result<(), String> {
        super::version::check_node(node).map_err(|e| format!("[cluster] node: {e}"))?;
        if self.max_clock_skew_secs == 0 {
            return Err("[cluster] max_clock_skew_secs = 0: it must be at least 1".into());
        }
        Ok(())
    }

    /// The shared secret, read; required.
    pub fn secret(&self) -> Result<String, String> {
        crate::config::read_secret(
            "[cluster]",
            "secret",
            &self.secret,
            &self.secret_env,
            &self.secret_file,
        )?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| "[cluster] needs a shared secret (secret, secret_env or secret_file)".into())
    }
}
