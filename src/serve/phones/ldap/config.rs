//! `[ldap]` of the service config: where the LDAP directory listens, what it serves (one
//! pipeline's merged table under one base DN, with a phonebook feed's filters and name
//! format), who may bind, TLS, and what a client may cost it. Checked when the service
//! starts: a directory that would serve passwords in clear text over the network, or that
//! nobody could be kept out of, is refused with the reason.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;

use super::entry::{Dn, parse_dn};
use crate::phonebook::NameStyle;

/// `[ldap]`: a read-only LDAPv3 directory of one pipeline's merged contacts, for desk phones
/// and softphones. Off unless `listen` (or `listen_tls`) is set.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LdapConfig {
    /// Plain LDAP (StartTLS offered when a certificate is configured), e.g. "0.0.0.0:389" or
    /// "127.0.0.1:3389" (port 0 picks a free one). Without a certificate only a loopback
    /// address, unless `allow_plain_on_network`.
    #[serde(default)]
    pub listen: Option<String>,
    /// LDAPS: TLS from the first byte (usually port 636); needs the certificate.
    #[serde(default)]
    pub listen_tls: Option<String>,
    /// The DN entries are under, e.g. "ou=contacts,dc=example,dc=com".
    pub base_dn: String,
    /// The pipeline whose merged table is served.
    pub pipeline: String,
    /// `cn` and `displayName`: "first_last" ("Anna Peeters", the default) or "last_first".
    #[serde(default)]
    pub name_style: NameStyle,
    /// Only contacts of these origins (directory, merged, external); default: all.
    #[serde(default)]
    pub origins: Vec<String>,
    /// Only contacts of these sites / departments (exact values); default: all.
    #[serde(default)]
    pub sites: Vec<String>,
    #[serde(default)]
    pub departments: Vec<String>,
    /// The `o` (organisation) of every entry, e.g. the company's name; none when unset.
    #[serde(default)]
    pub organization: Option<String>,
    /// The most entries one search answers (a page, with the paged results control); a
    /// client asking for fewer gets fewer. Beyond: result code 4, sizeLimitExceeded.
    #[serde(default = "default_size_limit")]
    pub size_limit: u32,
    /// The longest a search may run, in seconds; a client asking for less gets less.
    /// Beyond: the entries found so far and result code 3, timeLimitExceeded.
    #[serde(default = "default_time_limit_secs")]
    pub time_limit_secs: u32,
    /// Whether clients may search without binding (or with an anonymous bind).
    #[serde(default)]
    pub anonymous: bool,
    /// The DN phones bind with, e.g. "cn=phones,ou=contacts,dc=example,dc=com", and its
    /// password (inline, from the environment or a file).
    #[serde(default)]
    pub bind_dn: Option<String>,
    pub password: Option<String>,
    pub password_env: Option<String>,
    pub password_file: Option<PathBuf>,
    /// The bind password as an Argon2 hash (PHC string, `ucm hash-password`), instead of in
    /// clear.
    #[serde(default)]
    pub password_hash: Option<String>,
    /// The server certificate chain and private key (PEM): StartTLS on `listen`, LDAPS on
    /// `listen_tls`.
    #[serde(default)]
    pub tls_certificate: Option<PathBuf>,
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// Serve plain LDAP on a network address without a certificate (binds' passwords and
    /// the directory cross the network readable): only on a network you trust.
    #[serde(default)]
    pub allow_plain_on_network: bool,
    /// Client networks allowed (CIDR, e.g. "10.20.0.0/16"); empty: any network. Others are
    /// disconnected before they send anything.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Open LDAP connections at most; one more is told "busy" and closed.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Open LDAP connections one client address may hold (IPv6 counted by its /64); one more
    /// is told "busy" and closed, so one address cannot take every place. Phones behind one
    /// NAT share an address: raise it for large sites behind one.
    #[serde(default = "default_max_connections_per_client")]
    pub max_connections_per_client: usize,
    /// Unindexed searches running at once: a filter no index answers (`(cn=*ann*)`,
    /// `(!(ou=sales))`, a number's middle digits) that has not found its entries in the
    /// table's first 1,024 rows reads on in one of these places; one more waits for a place
    /// until its time limit, then is answered busy (51). Typed-ahead searches, lookups and
    /// the API's search never wait for them.
    #[serde(default = "default_max_unindexed_searches")]
    pub max_unindexed_searches: usize,
    /// Unindexed searches one client address may run at once (IPv6 by its /64); one more
    /// is answered busy (51) at once.
    #[serde(default = "default_max_unindexed_searches_per_client")]
    pub max_unindexed_searches_per_client: usize,
    /// With a certificate: refuse simple binds (confidentialityRequired, 13) and searches of
    /// contacts on a connection that has not started TLS (StartTLS, or the LDAPS listener),
    /// so passwords and the directory never cross the network in clear. Default: true when
    /// a certificate is configured; `false` allows them in clear (a trusted network only).
    #[serde(default)]
    pub require_tls: Option<bool>,
    /// A connection that sends nothing (or reads nothing we send) for this long, in seconds,
    /// is closed.
    #[serde(default = "default_idle_timeout_secs")]
    pub idle_timeout_secs: u64,
    /// The largest LDAP message a client may send, in bytes; a larger one closes its
    /// connection.
    #[serde(default = "default_max_request_bytes")]
    pub max_request_bytes: usize,
}

fn default_size_limit() -> u32 {
    500
}
fn default_time_limit_secs() -> u32 {
    10
}
fn default_max_connections() -> usize {
    256
}
fn default_max_connections_per_client() -> usize {
    64
}
fn default_max_unindexed_searches() -> usize {
    1
}
fn default_max_unindexed_searches_per_client() -> usize {
    1
}
fn default_idle_timeout_secs() -> u64 {
    120
}
fn default_max_request_bytes() -> usize {
    16 * 1024
}

/// The directory's settings, checked, with the secret read and the TLS config built.
#[derive(Clone)]
pub struct LdapSettings {
    pub config: LdapConfig,
    /// `base_dn`, parsed.
    pub base: Dn,
    /// The bind DN (parsed) and its password.
    pub bind: Option<(Dn, crate::secrets::Password)>,
    pub allow: Vec<ipnet::IpNet>,
    pub tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    /// Simple binds and contact searches only over TLS (`require_tls`, resolved).
    pub require_tls: bool,
    /// The places of unindexed searches (`max_unindexed_searches`, `..._per_client`).
    pub scans: super::places::ScanBudget,
}

impl std::fmt::Debug for LdapSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LdapSettings({})", self.config.base_dn)
    }
}

impl LdapConfig {
    /// Checks the settings, reads the password and the certificate.
    pub fn resolve(&self) -> Result<LdapSettings, String> {
        let at = "[ldap]";
        let base = parse_dn(&self.base_dn)
            .filter(|dn| !dn.is_empty())
            .ok_or_else(|| {
                format!(
                    "{at} base_dn = {:?} is not a DN (e.g. \"ou=contacts,dc=example,dc=com\")",
                    self.base_dn
                )
            })?;
        let password = crate::config::read_password(
            at,
            &self.password,
            &self.password_env,
            &self.password_file,
            &self.password_hash,
        )?;
        let bind = match (&self.bind_dn, password) {
            (Some(dn), Some(password)) if !matches!(&password, crate::secrets::Password::Clear(p) if p.is_empty()) =>
            {
                let parsed = parse_dn(dn)
                    .filter(|d| !d.is_empty())
                    .ok_or_else(|| format!("{at} bind_dn = {dn:?} is not a DN"))?;
                Some((parsed, password))
            }
            (None, None) => None,
            _ => {
                return Err(format!(
                    "{at} a bind needs both bind_dn and a password that is not empty \
                     (password, password_env, password_file or password_hash)"
                ));
            }
        };
        if bind.is_none() && !self.anonymous {
            return Err(format!(
                "{at} nobody could search: set anonymous = true, or bind_dn and a password"
            ));
        }
        for origin in &self.origins {
            if crate::transform::Origin::parse(origin).is_none() {
                return Err(format!(
                    "{at} origins: {origin:?} is not directory, merged or external"
                ));
            }
        }
        let allow = crate::serve::phones::access::parse_networks(at, &self.allow)?;
        self.check_limits(at)?;
        let tls = match (&self.tls_certificate, &self.tls_key) {
            (Some(cert), Some(key)) => Some(server_tls(cert, key)?),
            (None, None) => None,
            _ => {
                return Err(format!(
                    "{at} TLS needs both tls_certificate and tls_key (PEM files)"
                ));
            }
        };
        if self.listen_tls.is_some() && tls.is_none() {
            return Err(format!("{at} listen_tls needs tls_certificate and tls_key"));
        }
        if self.require_tls == Some(true) && tls.is_none() {
            return Err(format!(
                "{at} require_tls = true needs tls_certificate and tls_key"
            ));
        }
        if let Some(listen) = &self.listen
            && tls.is_none()
            && !self.allow_plain_on_network
            && !is_loopback(listen)
        {
            return Err(format!(
                "{at} listen = {listen:?} without a certificate would send passwords and the \
                 directory unencrypted over the network: configure tls_certificate and \
                 tls_key, listen on 127.0.0.1, or set allow_plain_on_network = true"
            ));
        }
        let require_tls = self.require_tls.unwrap_or(tls.is_some());
        Ok(LdapSettings {
            config: self.clone(),
            base,
            bind,
            allow,
            tls,
            require_tls,
            scans: super::places::ScanBudget::new(
                self.max_unindexed_searches,
                self.max_unindexed_searches_per_client,
            ),
        })
    }

    /// Refuses limits that would switch a protection off.
    fn check_limits(&self, at: &str) -> Result<(), String> {
        if self.size_limit == 0 || self.time_limit_secs == 0 {
            return Err(format!(
                "{at} size_limit and time_limit_secs must be at least 1"
            ));
        }
        if self.max_connections == 0
            || self.max_connections_per_client == 0
            || self.max_unindexed_searches == 0
            || self.max_unindexed_searches_per_client == 0
            || self.idle_timeout_secs == 0
        {
            return Err(format!(
                "{at} max_connections, max_connections_per_client, max_unindexed_searches, \
                 max_unindexed_searches_per_client and idle_timeout_secs must be at least 1"
            ));
        }
        if self.max_request_bytes < 512 {
            return Err(format!(
                "{at} max_request_bytes = {}: at least 512 (a bind or a search is a few hundred bytes)",
                self.max_request_bytes
            ));
        }
        Ok(())
    }
}

/// Whether `listen` is a loopback address (`127.0.0.1:389`, `[::1]:389`, `localhost:389`).
fn is_loopback(listen: &str) -> bool {
    if let Ok(address) = listen.parse::<SocketAddr>() {
        return address.ip().is_loopback();
    }
    let host = listen.rsplit_once(':').map_or(listen, |(h, _)| h);
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// rustls's server config from a PEM certificate chain and key.
fn server_tls(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<Arc<tokio_rustls::rustls::ServerConfig>, String> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
    use tokio_rustls::rustls;
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("[ldap] tls_certificate {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!(
            "[ldap] tls_certificate {}: no certificate in it (PEM \"BEGIN CERTIFICATE\")",
            cert.display()
        ));
    }
    let private = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("[ldap] tls_key {}: {e}", key.display()))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("[ldap] TLS: {e}"))?
    .with_no_client_auth()
    .with_single_cert(chain, private)
    .map_err(|e| {
        format!(
            "[ldap] tls_certificate {} and tls_key {}: {e}",
            cert.display(),
            key.display()
        )
    })?;
    Ok(Arc::new(config))
}

/// The settings of `config`'s `[ldap]`, checked; None when LDAP is off (no listen address).
pub fn resolve(
    config: Option<&LdapConfig>,
    pipelines: &[String],
) -> Result<Option<LdapSettings>, String> {
    let Some(config) = config else {
        return Ok(None);
    };
    if config.listen.is_none() && config.listen_tls.is_none() {
        return Ok(None);
    }
    if !pipelines.contains(&config.pipeline) {
        return Err(format!(
            "[ldap] pipeline = {:?} is not one of the service's pipelines ({})",
            config.pipeline,
            pipelines.join(", ")
        ));
    }
    config.resolve().map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Result<LdapSettings, String> {
        let text =
            format!("base_dn = \"ou=contacts,dc=example,dc=com\"\npipeline = \"demo\"\n{extra}");
        let config: LdapConfig = toml::from_str(&text).map_err(|e| e.to_string())?;
        config.resolve()
    }

    #[test]
    fn an_anonymous_directory_on_loopback_needs_nothing_else() {
        let settings = config("listen = \"127.0.0.1:3389\"\nanonymous = true").unwrap();
        assert_eq!(settings.config.size_limit, 500);
        assert_eq!(settings.config.time_limit_secs, 10);
        assert_eq!(settings.config.max_connections, 256);
        assert_eq!(settings.base.len(), 3);
        assert!(settings.bind.is_none() && settings.tls.is_none());
    }

    #[test]
    fn a_directory_nobody_could_be_kept_out_of_or_into_is_refused() {
        let e = config("listen = \"127.0.0.1:3389\"").unwrap_err();
        assert!(e.contains("nobody could search"), "{e}");
        let e = config("listen = \"127.0.0.1:3389\"\nbind_dn = \"cn=phones\"").unwrap_err();
        assert!(e.contains("bind_dn and a password"), "{e}");
        let e = config(
            "listen = \"127.0.0.1:3389\"\nanonymous = true\nbind_dn = \"cn=x\"\npassword = \"\"",
        )
        .unwrap_err();
        assert!(e.contains("not empty"), "{e}");
    }

    #[test]
    fn plain_ldap_on_the_network_needs_a_certificate_or_an_explicit_yes() {
        let e = config("listen = \"0.0.0.0:389\"\nanonymous = true").unwrap_err();
        assert!(
            e.contains("unencrypted") && e.contains("allow_plain_on_network"),
            "{e}"
        );
        config("listen = \"0.0.0.0:389\"\nanonymous = true\nallow_plain_on_network = true")
            .unwrap();
        config("listen = \"[::1]:389\"\nanonymous = true").unwrap();
        config("listen = \"localhost:389\"\nanonymous = true").unwrap();
        let e = config("listen_tls = \"0.0.0.0:636\"\nanonymous = true").unwrap_err();
        assert!(e.contains("listen_tls needs"), "{e}");
    }

    #[test]
    fn the_readme_example_parses() {
        let readme = include_str!("../../../../README.md");
        let section = &readme[readme.find("### LDAP directory").unwrap()..];
        let start = section.find("```toml\n").unwrap() + 8;
        let block = &section[start..start + section[start..].find("```").unwrap()];
        let config: LdapConfig = toml::from_str(block.trim_start_matches("[ldap]\n")).unwrap();
        assert_eq!(config.base_dn, "ou=contacts,dc=example,dc=com");
        assert_eq!(config.max_request_bytes, 16384);
        assert!(config.tls_certificate.is_some() && !config.anonymous);
    }

    #[test]
    fn bad_values_are_named() {
        let e = config("listen = \"127.0.0.1:1\"\nanonymous = true\nbase_dn2 = \"x\"").unwrap_err();
        assert!(e.contains("base_dn2"), "{e}");
        let e = config("listen = \"127.0.0.1:1\"\nanonymous = true\norigins = [\"phone\"]")
            .unwrap_err();
        assert!(e.contains("\"phone\""), "{e}");
        let e = config("listen = \"127.0.0.1:1\"\nanonymous = true\nallow = [\"10.0.0.0/33\"]")
            .unwrap_err();
        assert!(e.contains("10.0.0.0/33"), "{e}");
        let e = config("listen = \"127.0.0.1:1\"\nanonymous = true\nsize_limit = 0").unwrap_err();
        assert!(e.contains("size_limit"), "{e}");
        let e = config("listen = \"127.0.0.1:1\"\nanonymous = true\ntls_certificate = \"/nonexistent.pem\"\ntls_key = \"/nonexistent.key\"").unwrap_err();
        assert!(e.contains("/nonexistent.pem"), "{e}");
        let text = "listen = \"127.0.0.1:1\"\nanonymous = true\nbase_dn = \"not a dn\"\npipeline = \"demo\"";
        let e = toml::from_str::<LdapConfig>(text)
            .unwrap()
            .resolve()
            .unwrap_err();
        assert!(e.contains("not a dn"), "{e}");
    }
}
