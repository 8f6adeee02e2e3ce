//! `[source.ldap]` of a pipeline whose source is an LDAP directory or Active Directory
//! (`kind = "ldap"`): where to search, as whom, and how the connection is secured. The
//! secrets come from the environment or a file (`password_env`, `password_file`) as
//! everywhere in ucm, and are never written to a report, a log or the console.

use std::path::PathBuf;

use serde::Deserialize;

use super::search::{LdapSearch, Scope};
use crate::extract::mapping::Preset;

/// `[source.ldap]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LdapSourceConfig {
    /// Where the search starts, e.g. `"ou=people,dc=example,dc=com"` (required).
    pub base_dn: String,
    /// The search filter (RFC 4515). Default: the preset's (`inetorgperson`:
    /// `(objectClass=inetOrgPerson)`; `active-directory`: people whose account is not
    /// disabled).
    #[serde(default)]
    pub filter: Option<String>,
    /// `"base"`, `"one"` or `"sub"` (the default: the whole subtree under `base_dn`).
    #[serde(default = "default_scope")]
    pub scope: String,
    /// The DN ucm binds as, e.g. `"cn=ucm,ou=services,dc=example,dc=com"` (Active Directory
    /// also takes `"ucm@example.com"`). Omitted: an anonymous bind.
    #[serde(default)]
    pub bind_dn: Option<String>,
    /// The bind password: inline, or better from an environment variable or a file.
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub password_env: Option<String>,
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Upgrade an `ldap://` connection with StartTLS before binding (for `ldaps://` the
    /// connection is TLS from the start). The server's certificate is always verified.
    #[serde(default)]
    pub start_tls: bool,
    /// The PEM file of the CA that signed the server's certificate (a private CA, e.g. an
    /// Active Directory Certificate Services root). Default: the system's trusted roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Entries asked for per page (simple paged results, RFC 2696): at most the server's
    /// own page limit (Active Directory's MaxPageSize is 1,000).
    #[serde(default = "default_page_size")]
    pub page_size: u32,
}

fn default_scope() -> String {
    "sub".into()
}
fn default_page_size() -> u32 {
    500
}

impl LdapSourceConfig {
    /// The search this section describes, reading the password from the environment or its
    /// file; `preset` gives the default filter, `attributes` are the ones asked for. Err
    /// says which key is wrong.
    pub fn search(&self, preset: Preset, attributes: Vec<String>) -> Result<LdapSearch, String> {
        if self.base_dn.trim().is_empty() {
            return Err("[source.ldap] base_dn is empty: set the DN the search starts at".into());
        }
        let scope = match self.scope.as_str() {
            "base" => Scope::Base,
            "one" => Scope::One,
            "sub" => Scope::Sub,
            other => {
                return Err(format!(
                    "[source.ldap] scope = {other:?}: use \"base\", \"one\" or \"sub\""
                ));
            }
        };
        if !(1..=100_000).contains(&self.page_size) {
            return Err(format!(
                "[source.ldap] page_size = {}: use 1 to 100000 (500 is a good start)",
                self.page_size
            ));
        }
        let filter = match &self.filter {
            Some(filter) => filter.trim().to_owned(),
            None => preset
                .ldap_filter()
                .ok_or_else(|| format!("preset {} has no LDAP filter", preset.name()))?
                .to_owned(),
        };
        ldap3::parse_filter(&filter).map_err(|_| {
            format!(
                "[source.ldap] filter = {filter:?} is not an LDAP filter (RFC 4515), e.g. \
                 \"(objectClass=inetOrgPerson)\""
            )
        })?;
        let password = crate::secrets::read_secret(
            "[source.ldap]",
            "password",
            &self.password,
            &self.password_env,
            &self.password_file,
        )?;
        let bind = match (&self.bind_dn, password) {
            (Some(dn), Some(password)) => Some((dn.clone(), password)),
            (None, None) => None,
            (Some(_), None) => {
                return Err("[source.ldap] has a bind_dn but no password (password, \
                            password_env or password_file)"
                    .into());
            }
            (None, Some(_)) => return Err("[source.ldap] has a password but no bind_dn".into()),
        };
        if let Some(ca) = &self.ca_file
            && !ca.is_file()
        {
            return Err(format!(
                "[source.ldap] ca_file = {:?}: no such file",
                ca.display().to_string()
            ));
        }
        Ok(LdapSearch {
            base_dn: self.base_dn.trim().to_owned(),
            filter,
            scope,
            bind,
            start_tls: self.start_tls,
            ca_file: self.ca_file.clone(),
            page_size: self.page_size as i32,
            attributes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(text: &str) -> LdapSourceConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn the_preset_gives_the_filter_and_the_defaults_are_a_paged_subtree_search() {
        let config = section("base_dn = \"dc=example,dc=com\"");
        let search = config.search(Preset::ActiveDirectory, vec![]).unwrap();
        assert!(
            search
                .filter
                .contains("userAccountControl:1.2.840.113556.1.4.803:=2")
        );
        assert_eq!(search.scope, Scope::Sub);
        assert_eq!(search.page_size, 500);
        assert!(search.bind.is_none());
        let own = section("base_dn = \"dc=x\"\nfilter = \"(uid=a*)\"\nscope = \"one\"");
        let search = own.search(Preset::InetOrgPerson, vec![]).unwrap();
        assert_eq!(
            (search.filter.as_str(), search.scope),
            ("(uid=a*)", Scope::One)
        );
    }

    #[test]
    fn wrong_keys_say_what_they_may_be() {
        let wrong = |text: &str| {
            section(text)
                .search(Preset::InetOrgPerson, vec![])
                .unwrap_err()
        };
        assert!(wrong("base_dn = \"dc=x\"\nscope = \"tree\"").contains("\"base\", \"one\""));
        assert!(wrong("base_dn = \"dc=x\"\nfilter = \"uid=a*)(\"").contains("RFC 4515"));
        assert!(wrong("base_dn = \"dc=x\"\nbind_dn = \"cn=a\"").contains("no password"));
        assert!(wrong("base_dn = \"dc=x\"\npage_size = 0").contains("page_size"));
        assert!(
            wrong("base_dn = \"dc=x\"\nca_file = \"/nonexistent/ca.pem\"").contains("no such file")
        );
        assert!(toml::from_str::<LdapSourceConfig>("base_dn = \"x\"\ntls_verify = false").is_err());
    }
}
