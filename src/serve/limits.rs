//! `[limits]` of the service config: every bound the HTTP side puts on its clients (time,
//! size, count, rate), with the defaults operators get when they set nothing. Each one is
//! enforced by `serve::connections` (connections and their timeouts), `serve::router`
//! (requests, bodies) or `serve::throttle` (logins).

use std::time::Duration;

use serde::Deserialize;

/// `[limits]`: what a client may cost the service.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Seconds a client has to send a request's headers, counted from when the connection
    /// opens or its previous answer was sent. This is also the idle keep-alive timeout: a
    /// connection that sends nothing for this long is closed (a slowloris, or a client that
    /// opens connections and never speaks, costs a descriptor for at most this long).
    #[serde(default = "default_header_read_timeout_secs")]
    pub header_read_timeout_secs: u64,
    /// Seconds a request body may pause between two chunks before the request is answered
    /// 408 and the connection closed.
    #[serde(default = "default_body_idle_timeout_secs")]
    pub body_idle_timeout_secs: u64,
    /// Seconds a request may take from its headers to its answer (408 after that), except a
    /// run started over HTTP, which lasts as long as the run.
    #[serde(default = "default_request_timeout_secs")]
    pub request_timeout_secs: u64,
    /// Connections open at once. Beyond it new connections are answered 503 and closed at
    /// once (load shedding). Never more than the process's open-file limit allows (the
    /// service raises its soft limit to the hard one at start and keeps 64 descriptors for
    /// databases and files).
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Connections one client address may hold at once (503 beyond it), so one client
    /// cannot take every connection. Count a NAT or a reverse proxy as one client.
    #[serde(default = "default_max_connections_per_client")]
    pub max_connections_per_client: usize,
    /// Requests handled at once (503 beyond it, with Retry-After). `/health` is not counted.
    #[serde(default = "default_max_requests_in_flight")]
    pub max_requests_in_flight: usize,
    /// The largest request body, in bytes (413 beyond it). Bodies are small JSON documents.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// The largest request head (request line and headers), in bytes (431 beyond it).
    #[serde(default = "default_max_header_bytes")]
    pub max_header_bytes: usize,
    /// Login attempts one client address may make per minute (429 with Retry-After beyond
    /// it), right or wrong.
    #[serde(default = "default_login_attempts_per_minute")]
    pub login_attempts_per_minute: u32,
    /// Wrong passwords one user name may get per minute from one client address (429 with
    /// Retry-After beyond it, for that name at that address only). Every name has its own,
    /// configured or not, so the answers do not tell which names exist.
    #[serde(default = "default_login_attempts_per_minute_per_user")]
    pub login_attempts_per_minute_per_user: u32,
    /// Wrong passwords one user name may get per minute from all addresses together before
    /// every answer for that name waits 1 s: guessing from many addresses is slowed, and the
    /// owner, with the right password, still gets in.
    #[serde(default = "default_login_slowdown_after_failures_per_minute")]
    pub login_slowdown_after_failures_per_minute: u32,
    /// The largest sample XML the console accepts for an ad-hoc dry run, in bytes (413
    /// beyond it; the upload is refused as it arrives, never stored whole first).
    #[serde(default = "default_max_upload_bytes")]
    pub max_upload_bytes: usize,
    /// Browser sessions of the console open at once; a login beyond it ends the session
    /// closest to expiry.
    #[serde(default = "default_max_browser_sessions")]
    pub max_browser_sessions: usize,
    /// Phonebook feeds streamed at once (each holds a database connection while it is
    /// written); beyond it a phone is answered 503 with Retry-After and polls again. A phone
    /// that stops reading for `body_idle_timeout_secs` has its feed cut, freeing its place.
    #[serde(default = "default_max_phonebook_streams")]
    pub max_phonebook_streams: usize,
    /// Wrong credentials (a basic-auth password or a token in the path) one client address
    /// may present to the phonebook feeds and caller-ID lookup per minute; beyond it the
    /// address is answered 429 with Retry-After, its credentials not looked at, until its
    /// allowance refills. Right credentials never count (a PBX may look up hundreds of
    /// numbers a second), nor requests without any (a phone's first try before the 401).
    #[serde(default = "default_phone_auth_failures_per_minute")]
    pub phone_auth_failures_per_minute: u32,
}

fn default_phone_auth_failures_per_minute() -> u32 {
    10
}
fn default_header_read_timeout_secs() -> u64 {
    10
}
fn default_body_idle_timeout_secs() -> u64 {
    10
}
fn default_request_timeout_secs() -> u64 {
    60
}
fn default_max_connections() -> usize {
    4096
}
fn default_max_connections_per_client() -> usize {
    64
}
fn default_max_requests_in_flight() -> usize {
    256
}
fn default_max_body_bytes() -> usize {
    1024 * 1024
}
fn default_max_header_bytes() -> usize {
    16 * 1024
}
fn default_login_attempts_per_minute() -> u32 {
    10
}
fn default_login_attempts_per_minute_per_user() -> u32 {
    5
}
fn default_login_slowdown_after_failures_per_minute() -> u32 {
    30
}
fn default_max_upload_bytes() -> usize {
    64 * 1024 * 1024
}
fn default_max_browser_sessions() -> usize {
    256
}
fn default_max_phonebook_streams() -> usize {
    2
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout_secs: default_header_read_timeout_secs(),
            body_idle_timeout_secs: default_body_idle_timeout_secs(),
            request_timeout_secs: default_request_timeout_secs(),
            max_connections: default_max_connections(),
            max_connections_per_client: default_max_connections_per_client(),
            max_requests_in_flight: default_max_requests_in_flight(),
            max_body_bytes: default_max_body_bytes(),
            max_header_bytes: default_max_header_bytes(),
            login_attempts_per_minute: default_login_attempts_per_minute(),
            login_attempts_per_minute_per_user: default_login_attempts_per_minute_per_user(),
            login_slowdown_after_failures_per_minute:
                default_login_slowdown_after_failures_per_minute(),
            max_upload_bytes: default_max_upload_bytes(),
            max_browser_sessions: default_max_browser_sessions(),
            max_phonebook_streams: default_max_phonebook_streams(),
            phone_auth_failures_per_minute: default_phone_auth_failures_per_minute(),
        }
    }
}

impl Limits {
    /// Refuses limits that would switch a protection off or cannot work.
    pub fn check(&self) -> Result<(), String> {
        let positive = [
            ("header_read_timeout_secs", self.header_read_timeout_secs),
            ("body_idle_timeout_secs", self.body_idle_timeout_secs),
            ("request_timeout_secs", self.request_timeout_secs),
            ("max_connections", self.max_connections as u64),
            (
                "max_connections_per_client",
                self.max_connections_per_client as u64,
            ),
            ("max_requests_in_flight", self.max_requests_in_flight as u64),
            ("max_body_bytes", self.max_body_bytes as u64),
            ("max_upload_bytes", self.max_upload_bytes as u64),
            ("max_browser_sessions", self.max_browser_sessions as u64),
            ("max_phonebook_streams", self.max_phonebook_streams as u64),
            (
                "login_attempts_per_minute",
                u64::from(self.login_attempts_per_minute),
            ),
            (
                "login_attempts_per_minute_per_user",
                u64::from(self.login_attempts_per_minute_per_user),
            ),
            (
                "login_slowdown_after_failures_per_minute",
                u64::from(self.login_slowdown_after_failures_per_minute),
            ),
            (
                "phone_auth_failures_per_minute",
                u64::from(self.phone_auth_failures_per_minute),
            ),
        ];
        if let Some((key, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(format!("[limits] {key} = 0: it must be at least 1"));
        }
        for (key, value) in [
            (
                "login_attempts_per_minute_per_user",
                self.login_attempts_per_minute_per_user,
            ),
            (
                "login_slowdown_after_failures_per_minute",
                self.login_slowdown_after_failures_per_minute,
            ),
        ] {
            if value < 2 {
                return Err(format!(
                    "[limits] {key} = {value}: it must be at least 2 (the attempt after that many \
                     wrong passwords is the one refused or slowed)"
                ));
            }
        }
        if self.max_header_bytes < 1024 {
            return Err(format!(
                "[limits] max_header_bytes = {}: it must be at least 1024",
                self.max_header_bytes
            ));
        }
        Ok(())
    }

    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_secs(self.header_read_timeout_secs)
    }
    pub fn body_idle_timeout(&self) -> Duration {
        Duration::from_secs(self.body_idle_timeout_secs)
    }
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_limit_has_a_default_and_zero_is_refused() {
        let limits: Limits = toml::from_str("").unwrap();
        assert_eq!(limits, Limits::default());
        assert_eq!(limits.header_read_timeout(), Duration::from_secs(10));
        limits.check().unwrap();
        let zero: Limits = toml::from_str("max_connections_per_client = 0").unwrap();
        assert_eq!(
            zero.check().unwrap_err(),
            "[limits] max_connections_per_client = 0: it must be at least 1"
        );
        assert!(toml::from_str::<Limits>("max_conections = 5").is_err());
    }
}
