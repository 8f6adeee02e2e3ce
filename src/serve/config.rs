//! The service's own config (`ucm serve --service FILE`): where it listens, which pipelines
//! it runs, and who may start runs over HTTP.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// `ucm serve`'s settings. Every key has a default, so the file is optional.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// The HTTP address (`127.0.0.1:0` picks a free port). Default: loopback only.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// The pipeline configs to run. Default: every `pipelines/*.toml`.
    #[serde(default)]
    pub pipelines: Vec<PathBuf>,
    /// Who may start runs and read or change contacts' live state.
    #[serde(default)]
    pub auth: ServiceAuth,
    /// The routing profiles a contact may select (`PUT /api/contacts/{id}/profile`).
    #[serde(default = "default_profiles")]
    pub profiles: Vec<String>,
    /// Global parameters for clients (`GET /api/parameters`); `language` is always there.
    #[serde(default = "default_parameters")]
    pub parameters: std::collections::BTreeMap<String, String>,
    /// The active/active pair: this node, its peers, the shared secret, profile sync.
    #[serde(default)]
    pub cluster: Option<ClusterConfig>,
    /// What a client may cost the service: timeouts, sizes, connection counts, login rate.
    #[serde(default)]
    pub limits: super::limits::Limits,
    /// Phonebook feeds for desk phones (`GET /phonebook/{pipeline}/{format}`).
    #[serde(default)]
    pub phonebooks: Vec<super::phonebooks::PhonebookConfig>,
    /// Caller-ID lookup for PBXes (`GET /lookup/{pipeline}?number=...`).
    #[serde(default)]
    pub lookups: Vec<super::lookup::LookupEndpointConfig>,
    /// The LDAP directory for phones (off unless `[ldap] listen` is set).
    #[serde(default)]
    pub ldap: Option<super::ldap::LdapConfig>,
}

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

/// Credentials for the write endpoints: a user name and password for `POST /api/login`,
/// and/or a static bearer token. Each secret inline, from an environment variable (`*_env`)
/// or from a file (`*_file`). Without any, the write endpoints refuse every request.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServiceAuth {
    pub username: Option<String>,
    pub password: Option<String>,
    pub password_env: Option<String>,
    pub password_file: Option<PathBuf>,
    pub token: Option<String>,
    pub token_env: Option<String>,
    pub token_file: Option<PathBuf>,
    /// How long a login token stays valid.
    #[serde(default = "default_session_minutes")]
    pub session_minutes: u64,
}

/// The secrets, read.
#[derive(Clone, Default)]
pub struct ResolvedAuth {
    pub login: Option<(String, String)>,
    pub token: Option<String>,
    pub session_minutes: u64,
}

impl std::fmt::Debug for ResolvedAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ResolvedAuth(login: {}, token: {})",
            self.login.is_some(),
            self.token.is_some()
        )
    }
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}
fn default_profiles() -> Vec<String> {
    ["office", "meeting", "home", "away"]
        .map(String::from)
        .to_vec()
}
fn default_parameters() -> std::collections::BTreeMap<String, String> {
    [("language".to_owned(), "en".to_owned())].into()
}
fn default_session_minutes() -> u64 {
    60
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            listen: default_listen(),
            pipelines: Vec::new(),
            auth: ServiceAuth::default(),
            profiles: default_profiles(),
            parameters: default_parameters(),
            cluster: None,
            limits: super::limits::Limits::default(),
            phonebooks: Vec::new(),
            lookups: Vec::new(),
            ldap: None,
        }
    }
}

impl ServiceConfig {
    pub fn load(path: &Path) -> Result<ServiceConfig, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut config: ServiceConfig = toml::from_str(&text)
            .map_err(|e| format!("{}: {}", path.display(), e.to_string().trim_end()))?;
        if config.profiles.is_empty() {
            return Err(format!(
                "{}: profiles is empty: list at least one",
                path.display()
            ));
        }
        config
            .parameters
            .entry("language".into())
            .or_insert_with(|| "en".into());
        Ok(config)
    }

    /// The pipeline configs: the listed ones, or every `pipelines/*.toml`.
    pub fn pipeline_paths(&self) -> Result<Vec<PathBuf>, String> {
        if !self.pipelines.is_empty() {
            return Ok(self.pipelines.clone());
        }
        let mut paths: Vec<PathBuf> = std::fs::read_dir("pipelines")
            .map_err(|e| {
                format!("cannot list pipelines/: {e} (list the pipelines in the service config)")
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        Ok(paths)
    }
}

impl ServiceAuth {
    pub fn resolve(&self) -> Result<ResolvedAuth, String> {
        let password = crate::config::read_secret(
            "[auth]",
            "password",
            &self.password,
            &self.password_env,
            &self.password_file,
        )?;
        let token = crate::config::read_secret(
            "[auth]",
            "token",
            &self.token,
            &self.token_env,
            &self.token_file,
        )?;
        let login = match (&self.username, password) {
            (Some(user), Some(password)) => Some((user.clone(), password)),
            (None, None) => None,
            _ => return Err("[auth] needs both username and a password (password, password_env or password_file)".into()),
        };
        Ok(ResolvedAuth {
            login,
            token,
            session_minutes: self.session_minutes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_service_config_parses() {
        let path = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/deploy/ucm-service.toml"
        ));
        let config = ServiceConfig::load(path).unwrap();
        assert_eq!(config.listen, "127.0.0.1:8080");
        assert_eq!(config.parameters["language"], "en");
        assert_eq!(config.profiles.len(), 4);
        assert_eq!(
            config.auth.password_env.as_deref(),
            Some("UCM_ADMIN_PASSWORD")
        );
    }

    #[test]
    fn the_two_node_example_configs_parse_and_point_at_each_other() {
        let load = |name: &str| {
            let path = format!("{}/deploy/{name}", env!("CARGO_MANIFEST_DIR"));
            ServiceConfig::load(Path::new(&path))
                .unwrap()
                .cluster
                .unwrap()
        };
        let (a, b) = (load("cluster-node-a.toml"), load("cluster-node-b.toml"));
        assert_eq!(
            (a.node.as_deref(), b.node.as_deref()),
            (Some("a"), Some("b"))
        );
        assert!(a.peers[0].contains("pbx-b") && b.peers[0].contains("pbx-a"));
        assert!(a.profile_sync && b.profile_sync);
        assert_eq!(a.anti_entropy_secs, 600);
    }

    #[test]
    fn an_empty_service_config_listens_on_loopback() {
        let config: ServiceConfig = toml::from_str("").unwrap();
        assert_eq!(config, ServiceConfig::default());
        assert_eq!(config.listen, "127.0.0.1:8080");
    }

    #[test]
    fn login_needs_a_user_and_a_password_and_unknown_keys_are_refused() {
        let config: ServiceConfig = toml::from_str("[auth]\nusername = \"admin\"\n").unwrap();
        assert!(config.auth.resolve().unwrap_err().contains("needs both"));
        assert!(toml::from_str::<ServiceConfig>("listn = \"x\"").is_err());
        let config: ServiceConfig =
            toml::from_str("[auth]\nusername = \"admin\"\npassword = \"p:a@s%s\"\ntoken = \"t\"\n")
                .unwrap();
        let auth = config.auth.resolve().unwrap();
        assert_eq!(auth.login, Some(("admin".into(), "p:a@s%s".into())));
        assert_eq!(auth.token.as_deref(), Some("t"));
    }
}
