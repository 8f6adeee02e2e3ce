//! The service's own config (`ucm serve --service FILE`): where it listens and which
//! pipelines it runs; it assembles the config of each feature, which lives with its feature
//! (`[auth]` in `auth`, `[cluster]` in `crate::cluster`, `[limits]` in `limits`,
//! `[[phonebooks]]`, `[[lookups]]` and `[ldap]` in `phones`).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::auth::ServiceAuth;
use super::phones::feeds_config::PhonebookConfig;
use super::phones::ldap::LdapConfig;
use super::phones::lookup_config::LookupEndpointConfig;
use crate::cluster::ClusterConfig;

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
    pub limits: crate::serve::limits::Limits,
    /// Phonebook feeds for desk phones (`GET /phonebook/{pipeline}/{format}`).
    #[serde(default)]
    pub phonebooks: Vec<PhonebookConfig>,
    /// Caller-ID lookup for PBXes (`GET /lookup/{pipeline}?number=...`).
    #[serde(default)]
    pub lookups: Vec<LookupEndpointConfig>,
    /// The LDAP directory for phones (off unless `[ldap] listen` is set).
    #[serde(default)]
    pub ldap: Option<LdapConfig>,
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

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            listen: default_listen(),
            pipelines: Vec::new(),
            auth: ServiceAuth::default(),
            profiles: default_profiles(),
            parameters: default_parameters(),
            cluster: None,
            limits: crate::serve::limits::Limits::default(),
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
        let (user, password) = auth.login.unwrap();
        assert_eq!(user, "admin");
        assert!(password.matches("p:a@s%s") && !password.matches("p:a@s%"));
        assert_eq!(auth.token.as_deref(), Some("t"));
    }
}
