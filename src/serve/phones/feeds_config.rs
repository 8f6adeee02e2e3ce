//! `[[phonebooks]]` of the service config: one feed of a pipeline's merged table in one
//! phone format, what it shows, its order and who may read it.

use std::path::PathBuf;

use serde::Deserialize;

use super::access::{AccessSettings, PhoneAccess};
use crate::phonebook::{Format, NameStyle, NumberKind};

/// `[[phonebooks]]`: one feed of a pipeline's merged table in one format.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PhonebookConfig {
    /// The pipeline whose merged table is listed.
    pub pipeline: String,
    /// yealink, cisco, snom, grandstream, fanvil, polycom, vcard or csv.
    pub format: Format,
    /// The numbers listed, in this order: work (the extension), mobile, home, fax.
    #[serde(default = "default_numbers")]
    pub numbers: Vec<NumberKind>,
    /// "first_last" ("Anna Peeters", the default) or "last_first" ("Peeters, Anna").
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
    /// The order: "last_name" (the default: by last name, then first name) or "first_name".
    /// Letters compare without case (ASCII on SQLite, the database's rules on PostgreSQL).
    #[serde(default)]
    pub sort: FeedSort,
    /// The title phones show (Cisco).
    #[serde(default = "default_title")]
    pub title: String,
    /// HTTP basic auth for the phones (password inline, from the environment or a file).
    pub username: Option<String>,
    pub password: Option<String>,
    pub password_env: Option<String>,
    pub password_file: Option<PathBuf>,
    /// The password as an Argon2 hash (PHC string, `ucm hash-password`), instead of in clear.
    #[serde(default)]
    pub password_hash: Option<String>,
    /// A token phones put in the URL: `/phonebook/{pipeline}/{format}/{token}`.
    pub token: Option<String>,
    pub token_env: Option<String>,
    pub token_file: Option<PathBuf>,
    /// Client networks allowed (CIDR, e.g. "10.20.0.0/16"); empty: any network.
    #[serde(default)]
    pub allow: Vec<String>,
}

/// The order of a feed's entries.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FeedSort {
    #[default]
    LastName,
    FirstName,
}

fn default_numbers() -> Vec<NumberKind> {
    vec![NumberKind::Work, NumberKind::Mobile]
}

fn default_title() -> String {
    "Directory".into()
}

/// A feed with its secrets read and networks parsed.
#[derive(Clone)]
pub struct Feed {
    pub config: PhonebookConfig,
    pub access: PhoneAccess,
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Feed({}/{})",
            self.config.pipeline,
            self.config.format.name()
        )
    }
}

impl PhonebookConfig {
    /// Reads the secrets and parses the networks; refuses a feed nobody could be kept out of
    /// and two feeds at one URL.
    pub fn resolve(&self) -> Result<Feed, String> {
        let at = format!("[[phonebooks]] {}/{}", self.pipeline, self.format.name());
        let access = PhoneAccess::resolve(
            &at,
            "a feed",
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
        for origin in &self.origins {
            if crate::transform::Origin::parse(origin).is_none() {
                return Err(format!(
                    "{at}: origins: {origin:?} is not directory, merged or external"
                ));
            }
        }
        if self.numbers.is_empty() {
            return Err(format!(
                "{at}: numbers is empty: list at least one of work, mobile, home, fax"
            ));
        }
        Ok(Feed {
            config: self.clone(),
            access,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml_text: &str) -> Result<PhonebookConfig, String> {
        toml::from_str(toml_text).map_err(|e| e.to_string())
    }

    #[test]
    fn a_feed_has_documented_defaults_and_refuses_unknown_keys() {
        let c = config("pipeline = \"p\"\nformat = \"yealink\"\nallow = [\"10.0.0.0/8\"]").unwrap();
        assert_eq!(c.numbers, [NumberKind::Work, NumberKind::Mobile]);
        assert_eq!(c.name_style, NameStyle::FirstLast);
        assert_eq!(c.title, "Directory");
        assert!(c.resolve().is_ok());
        assert!(config("pipeline = \"p\"\nformat = \"aastra\"").is_err());
        assert!(config("pipeline = \"p\"\nformat = \"csv\"\nlimit = 3").is_err());
    }

    #[test]
    fn feeds_without_protection_or_with_weak_settings_are_refused_with_the_key_to_fix() {
        let refused = |extra: &str| {
            config(&format!("pipeline = \"p\"\nformat = \"snom\"\n{extra}"))
                .unwrap()
                .resolve()
                .unwrap_err()
        };
        assert!(refused("").contains("needs basic auth"));
        assert!(refused("username = \"x\"").contains("both username and a password"));
        assert!(refused("token = \"short\"").contains("at least 16 characters"));
        assert!(refused("allow = [\"10.0.0/8x\"]").contains("is not a network"));
        assert!(refused("allow = [\"10.0.0.0/8\"]\norigins = [\"phone\"]").contains("origins"));
        assert!(refused("allow = [\"10.0.0.0/8\"]\nnumbers = []").contains("numbers is empty"));
    }
}
