//! `[source]` of a pipeline: where the external contacts come from and what they are (the
//! kind, the mapping, the CSV options), how they are fetched (timeouts, size, retries), and
//! the credentials: secrets inline, from the environment, from a file, or as a hash.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use crate::extract::SourceFormat;
use crate::extract::csv_source::CsvConfig;
use crate::extract::ldap::config::LdapSourceConfig;
use crate::extract::ldap::search::LdapSearch;
use crate::extract::mapping::{Mapping, SourceKind};
pub use crate::secrets::read_secret;

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// What the source is: `"xml"` (ucm's contacts XML, the default), `"csv"` (a CSV
    /// export), `"vcard"` (a file of vCards), `"ldap"` (an LDAP directory or Active
    /// Directory, `[source.ldap]`) or `"carddav"` (a CardDAV address book, `url` its
    /// collection's URL); all but XML read through `preset` and `[source.mapping]`.
    #[serde(default)]
    pub kind: SourceKind,
    /// Location of the external contacts: a path (relative to the working directory), a
    /// `file://` or an `http(s)://` URL; for an LDAP source `ldap://host` or
    /// `ldaps://host`; for CardDAV the address book's `http(s)://` URL. Required by `ucm run`.
    #[serde(default)]
    pub url: Option<String>,
    /// The mapping preset: for CSV `"ucm-csv"` (the header `ucm export` writes, the
    /// default), `"outlook-csv"`, `"google-csv"`; for vCard and CardDAV `"vcard"`; for LDAP
    /// `"inetorgperson"` (the default) or `"active-directory"` (README, "Sources", has each
    /// one's table).
    #[serde(default)]
    pub preset: Option<String>,
    /// `field = "column"`: where a field comes from, overriding the preset's column for it
    /// (`field = ""`: the field is not read).
    #[serde(default)]
    pub mapping: BTreeMap<String, String>,
    /// How a CSV source is written: `delimiter`, `encoding`.
    #[serde(default)]
    pub csv: CsvConfig,
    /// Where and how an LDAP source (`kind = "ldap"`) is searched: `base_dn`, `filter`,
    /// `scope`, `bind_dn` and its password, `start_tls`, `ca_file`, `page_size`.
    #[serde(default)]
    pub ldap: Option<LdapSourceConfig>,
    /// The import cron (Quartz-style, five fields).
    #[serde(default = "default_import_schedule")]
    pub schedule: String,
    /// The XSD the source must satisfy. Default: the `schemas/contacts.xsd` built into ucm.
    #[serde(default)]
    pub schema: Option<PathBuf>,
    /// Seconds to wait for a connection to the source.
    #[serde(default = "default_connect_timeout_secs")]
    pub connect_timeout_secs: u64,
    /// Seconds a download may go without receiving a byte before the try fails.
    #[serde(default = "default_read_timeout_secs")]
    pub read_timeout_secs: u64,
    /// Largest source accepted, in bytes after decompression.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
    /// Attempts in all: connection errors, timeouts and 5xx are retried with exponential
    /// backoff and jitter; 4xx are not.
    #[serde(default = "default_tries")]
    pub tries: u32,
    /// First delay between tries, in milliseconds (it doubles each try).
    #[serde(default = "default_backoff_ms")]
    pub backoff_ms: u64,
    /// Credentials for the source.
    #[serde(default)]
    pub auth: AuthConfig,
}

impl SourceConfig {
    /// The source's kind and mapping, checked: Err says which key is wrong and what it may be.
    pub fn format(&self) -> Result<SourceFormat, String> {
        let mapping = Mapping::resolve(self.kind, self.preset.as_deref(), &self.mapping)?;
        if let (SourceKind::Vcard | SourceKind::Carddav, Some(mapping)) = (self.kind, &mapping) {
            crate::extract::vcard_source::check_mapping(mapping)?;
        }
        match (self.kind, &self.ldap) {
            (SourceKind::Ldap, None) => {
                return Err("kind = \"ldap\" needs [source.ldap] with at least base_dn".into());
            }
            (SourceKind::Ldap, Some(_)) if self.auth != AuthConfig::default() => {
                return Err(
                    "[source.auth] is for http(s) sources; an LDAP source binds with \
                            [source.ldap] bind_dn and its password"
                        .into(),
                );
            }
            (SourceKind::Ldap, Some(section)) => {
                let ldaps = self
                    .url
                    .as_deref()
                    .is_some_and(|u| u.starts_with("ldaps://"));
                if section.start_tls && ldaps {
                    return Err("[source.ldap] start_tls is for ldap:// URLs; an ldaps:// \
                                connection is TLS from the start"
                        .into());
                }
                if section.ca_file.is_some() && !ldaps && !section.start_tls {
                    return Err(
                        "[source.ldap] ca_file is used by ldaps:// or start_tls = true; \
                                this connection is not TLS"
                            .into(),
                    );
                }
            }
            (_, None) => {}
            (other, Some(_)) => {
                return Err(format!(
                    "[source.ldap] is for kind = \"ldap\"; this source is kind = \"{}\"",
                    other.name()
                ));
            }
        }
        if let Some(url) = &self.url {
            check_url_scheme(self.kind, url)?;
        }
        if self.kind != SourceKind::Csv && self.csv != CsvConfig::default() {
            return Err(format!(
                "[source.csv] is for kind = \"csv\"; this source is kind = \"{}\"",
                self.kind.name()
            ));
        }
        Ok(SourceFormat {
            kind: self.kind,
            mapping,
            csv: self.csv.options()?,
        })
    }
}

/// Whether `url` can be a source of `kind`: Err says which scheme the kind takes.
fn check_url_scheme(kind: SourceKind, url: &str) -> Result<(), String> {
    let ldap = url.starts_with("ldap://") || url.starts_with("ldaps://");
    let http = url.starts_with("http://") || url.starts_with("https://");
    let wrong = match kind {
        SourceKind::Ldap => (!ldap).then_some("ldap:// or ldaps://"),
        SourceKind::Carddav => (!http).then_some("http:// or https:// (the address book's URL)"),
        _ => ldap.then_some("a path, file:// or http(s):// (kind = \"ldap\" reads ldap:// URLs)"),
    };
    match wrong {
        Some(expected) => Err(format!(
            "[source] url = {:?}: a {} source's url is {expected}",
            crate::redact::mask_url(url),
            kind.name()
        )),
        None => Ok(()),
    }
}

impl SourceConfig {
    /// The LDAP search of an LDAP source (None for other kinds), asking for the attributes
    /// the mapping reads, or for all of them (`all_attributes`, for a preview).
    pub fn ldap_search(&self, all_attributes: bool) -> Result<Option<LdapSearch>, String> {
        let (Some(section), SourceKind::Ldap) = (&self.ldap, self.kind) else {
            return Ok(None);
        };
        let format = self.format()?;
        let mapping = format.mapping.expect("an LDAP source has a mapping");
        let attributes = if all_attributes {
            vec!["*".to_owned()]
        } else {
            let mut names: Vec<String> = mapping.names.iter().flatten().cloned().collect();
            names.sort_by_key(|n| n.to_ascii_lowercase());
            names.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
            names
        };
        section.search(mapping.preset, attributes).map(Some)
    }
}

/// HTTP credentials: basic (`username` and a password) or a bearer token. Each secret can be
/// given inline, read from an environment variable (`*_env`) or from a file (`*_file`, its
/// content without the final newline), so it need not sit in the TOML.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    pub username: Option<String>,
    pub password: Option<String>,
    pub password_env: Option<String>,
    pub password_file: Option<PathBuf>,
    pub token: Option<String>,
    pub token_env: Option<String>,
    pub token_file: Option<PathBuf>,
}

/// A password of `section`: in clear (`password`, `password_env`, `password_file`) or as a
/// hash (`password_hash`, a PHC string of Argon2); at most one of them.
pub fn read_password(
    section: &str,
    inline: &Option<String>,
    env: &Option<String>,
    file: &Option<PathBuf>,
    hash: &Option<String>,
) -> Result<Option<crate::secrets::Password>, String> {
    let clear = read_secret(section, "password", inline, env, file)?;
    match (clear, hash) {
        (Some(_), Some(_)) => Err(format!(
            "{section} sets both a password and password_hash: keep one"
        )),
        (Some(clear), None) => Ok(Some(crate::secrets::Password::Clear(clear))),
        (None, Some(hash)) => crate::secrets::Password::hashed(hash)
            .map(Some)
            .map_err(|why| format!("{section} password_hash {why}")),
        (None, None) => Ok(None),
    }
}

impl AuthConfig {
    /// The credentials this section describes, reading secrets from the environment or files.
    pub fn resolve(&self) -> Result<Option<crate::extract::fetch::Auth>, String> {
        use crate::extract::fetch::Auth;
        let password = read_secret(
            "[source.auth]",
            "password",
            &self.password,
            &self.password_env,
            &self.password_file,
        )?;
        let token = read_secret(
            "[source.auth]",
            "token",
            &self.token,
            &self.token_env,
            &self.token_file,
        )?;
        match (&self.username, password, token) {
            (None, None, None) => Ok(None),
            (Some(username), Some(password), None) => Ok(Some(Auth::Basic { username: username.clone(), password })),
            (None, None, Some(token)) => Ok(Some(Auth::Bearer { token })),
            (Some(_), None, None) => Err("[source.auth] has a username but no password (password, password_env or password_file)".into()),
            (None, Some(_), None) => Err("[source.auth] has a password but no username".into()),
            _ => Err("[source.auth] sets both basic credentials and a token: use one".into()),
        }
    }
}

fn default_import_schedule() -> String {
    "0 23 ? * *".into()
}
fn default_connect_timeout_secs() -> u64 {
    10
}
fn default_read_timeout_secs() -> u64 {
    30
}
fn default_max_bytes() -> u64 {
    2 << 30
}
fn default_tries() -> u32 {
    3
}
fn default_backoff_ms() -> u64 {
    500
}

impl Default for SourceConfig {
    fn default() -> Self {
        SourceConfig {
            kind: SourceKind::default(),
            url: None,
            preset: None,
            mapping: BTreeMap::new(),
            csv: CsvConfig::default(),
            ldap: None,
            schedule: default_import_schedule(),
            schema: None,
            connect_timeout_secs: default_connect_timeout_secs(),
            read_timeout_secs: default_read_timeout_secs(),
            max_bytes: default_max_bytes(),
            tries: default_tries(),
            backoff_ms: default_backoff_ms(),
            auth: AuthConfig::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::PipelineConfig;
    use crate::extract::mapping::{Preset, SourceKind};

    #[test]
    fn every_example_pipeline_loads_with_its_source_format() {
        let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines");
        let mut kinds = Vec::new();
        for entry in std::fs::read_dir(folder).unwrap() {
            let path = entry.unwrap().path();
            let config = PipelineConfig::load(&path).unwrap_or_else(|e| panic!("{e}"));
            let format = config
                .source
                .format()
                .unwrap_or_else(|e| panic!("{path:?}: {e}"));
            kinds.push((format.kind, format.mapping.map(|m| m.preset)));
        }
        for example in [
            (SourceKind::Xml, None),
            (SourceKind::Csv, Some(Preset::OutlookCsv)),
            (SourceKind::Csv, Some(Preset::GoogleCsv)),
            (SourceKind::Csv, Some(Preset::UcmCsv)),
            (SourceKind::Vcard, Some(Preset::Vcard)),
            (SourceKind::Ldap, Some(Preset::InetOrgPerson)),
            (SourceKind::Ldap, Some(Preset::ActiveDirectory)),
            (SourceKind::Carddav, Some(Preset::Vcard)),
        ] {
            assert!(
                kinds.contains(&example),
                "no example of {example:?}: {kinds:?}"
            );
        }
    }

    #[test]
    fn csv_settings_on_another_kind_and_unknown_keys_are_refused() {
        let source = |text: &str| toml::from_str::<super::SourceConfig>(text);
        let vcard_with_csv = source("kind = \"vcard\"\n[csv]\ndelimiter = \";\"").unwrap();
        let refused = vcard_with_csv.format().unwrap_err();
        assert!(
            refused.contains("[source.csv] is for kind = \"csv\""),
            "{refused}"
        );
        assert!(source("kind = \"ldif\"").is_err());
        let carddav_on_a_file = source("kind = \"carddav\"\nurl = \"book.vcf\"").unwrap();
        assert!(
            carddav_on_a_file
                .format()
                .unwrap_err()
                .contains("http:// or https://")
        );
        let ldap_without_section = source("kind = \"ldap\"\nurl = \"ldap://dc1\"").unwrap();
        assert!(
            ldap_without_section
                .format()
                .unwrap_err()
                .contains("[source.ldap]")
        );
        let ldap_with_auth = source(
            "kind = \"ldap\"\n[ldap]\nbase_dn = \"dc=x\"\n[auth]\nusername = \"u\"\npassword = \"p\"",
        )
        .unwrap();
        assert!(ldap_with_auth.format().unwrap_err().contains("bind_dn"));
        let ldap = |url: &str, section: &str| {
            source(&format!(
                "kind = \"ldap\"\nurl = \"{url}\"\n[ldap]\nbase_dn = \"dc=x\"\n{section}"
            ))
            .unwrap()
            .format()
        };
        assert!(
            ldap("ldaps://dc1", "start_tls = true")
                .unwrap_err()
                .contains("ldap:// URLs")
        );
        assert!(
            ldap("ldap://dc1", "ca_file = \"ca.pem\"")
                .unwrap_err()
                .contains("not TLS")
        );
        assert!(ldap("ldap://dc1", "ca_file = \"ca.pem\"\nstart_tls = true").is_ok());
        let xml_at_ldap = source("url = \"ldaps://dc1\"").unwrap();
        assert!(
            xml_at_ldap
                .format()
                .unwrap_err()
                .contains("kind = \"ldap\"")
        );
        assert!(source("kind = \"csv\"\n[csv]\nquote = \"'\"").is_err());
        let bad_property = source("kind = \"vcard\"\n[mapping]\nextension = \"TEL;WORK\"").unwrap();
        assert!(
            bad_property
                .format()
                .unwrap_err()
                .contains("is not a vCard property")
        );
    }
}
