//! `[[lookups]]` of the service config: one caller-ID lookup endpoint of a pipeline, its
//! names' style and who may call it (the phonebooks' access rules).

use std::path::PathBuf;

use serde::Deserialize;

use super::access::{AccessSettings, PhoneAccess};
use crate::phonebook::NameStyle;

/// `[[lookups]]`: caller-ID lookup in one pipeline's merged table.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LookupEndpointConfig {
    /// The pipeline whose merged table is searched (its `[lookup] default_region` reads the
    /// numbers).
    pub pipeline: String,
    /// "first_last" ("Anna Peeters", the default) or "last_first" ("Peeters, Anna").
    #[serde(default)]
    pub name_style: NameStyle,
    /// HTTP basic auth for the PBX (password inline, from the environment or a file).
    pub username: Option<String>,
    pub password: Option<String>,
    pub password_env: Option<String>,
    pub password_file: Option<PathBuf>,
    /// The password as an Argon2 hash (PHC string, `ucm hash-password`), instead of in clear.
    #[serde(default)]
    pub password_hash: Option<String>,
    /// A token the PBX puts in the URL: `/lookup/{pipeline}/{token}?number=...`.
    pub token: Option<String>,
    pub token_env: Option<String>,
    pub token_file: Option<PathBuf>,
    /// Client networks allowed (CIDR, e.g. "10.20.0.5/32" for the PBX); empty: any network.
    #[serde(default)]
    pub allow: Vec<String>,
}

/// A lookup endpoint with its secrets read.
#[derive(Clone)]
pub struct LookupEndpoint {
    pub config: LookupEndpointConfig,
    pub access: PhoneAccess,
}

impl std::fmt::Debug for LookupEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LookupEndpoint({})", self.config.pipeline)
    }
}

impl LookupEndpointConfig {
    /// Reads the secrets and parses the networks; refuses an endpoint nobody could be kept
    /// out of.
    pub fn resolve(&self) -> Result<LookupEndpoint, String> {
        let at = format!("[[lookups]] {}", self.pipeline);
        let access = PhoneAccess::resolve(
            &at,
            "a lookup",
            AccessSettings {
                username: &self.username,
                password: &self.password,
                password_env: &self.password_env,
                password_file: &self.password_file,
                password_hash: &self.password_hash,
                token: &self.token,
                token_env: &self.token_env,
                token_file: &self.token_file,
                allow: &self.allow,
            },
        )?;
        Ok(LookupEndpoint {
            config: self.clone(),
            access,
        })
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderMap;

    use super::*;
    use crate::serve::phones::access::Refusal;

    fn config(toml_text: &str) -> Result<LookupEndpointConfig, String> {
        toml::from_str(toml_text).map_err(|e| e.to_string())
    }

    #[test]
    fn a_lookup_endpoint_needs_protection_and_refuses_unknown_keys() {
        let c = config("pipeline = \"p\"\nallow = [\"10.0.0.5/32\"]").unwrap();
        assert_eq!(c.name_style, NameStyle::FirstLast);
        assert!(c.resolve().is_ok());
        let error = config("pipeline = \"p\"").unwrap().resolve().unwrap_err();
        assert!(
            error.contains("[[lookups]] p") && error.contains("needs basic auth"),
            "{error}"
        );
        assert!(config("pipeline = \"p\"\nregion = \"BE\"").is_err());
    }

    #[test]
    fn only_the_whole_configured_token_lets_a_lookup_in() {
        let endpoint = config("pipeline = \"p\"\ntoken = \"0123456789abcdef0\"")
            .unwrap()
            .resolve()
            .unwrap();
        let headers = HeaderMap::new();
        assert_eq!(
            endpoint.access.check(None, &headers, Some("guess")),
            Err(Refusal::Unauthorized)
        );
        for near in ["0123456789abcdef", "0123456789abcdef01", ""] {
            assert_eq!(
                endpoint.access.check(None, &headers, Some(near)),
                Err(Refusal::Unauthorized),
                "{near:?}"
            );
        }
        assert!(
            endpoint
                .access
                .check(None, &headers, Some("0123456789abcdef0"))
                .is_ok()
        );
    }
}
