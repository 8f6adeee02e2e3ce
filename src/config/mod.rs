//! Pipeline configuration (`pipelines/*.toml`): the documented keys, their defaults (all in
//! this file), and the checks that turn a config into a [`MergePolicy`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::fields::{FIELD_COUNT, Field};
use crate::transform::{MergePolicy, Priority};

mod source;
pub use source::{AuthConfig, SourceConfig, read_password, read_secret};

/// The default config path, relative to the working directory.
pub const DEFAULT_CONFIG: &str = "pipelines/default.toml";

/// One pipeline: where contacts come from, how they merge, where they land.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// The pipeline's name, recorded with each run.
    #[serde(default = "default_name")]
    pub name: String,
    /// The external contacts source.
    #[serde(default)]
    pub source: SourceConfig,
    /// The internal directory.
    #[serde(default)]
    pub directory: DirectoryConfig,
    /// Matching and per-field priorities.
    #[serde(default)]
    pub merge: MergeConfig,
    /// Where the merged table lives.
    #[serde(default)]
    pub database: DatabaseConfig,
    /// Caller-ID lookup: how the table's numbers are indexed.
    #[serde(default)]
    pub lookup: LookupConfig,
    /// Where staged sources and downloads in progress are kept (relative to the working
    /// directory).
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// The time zone the schedules are read in (an IANA name such as `Europe/Brussels`).
    /// Default: the system's local zone.
    #[serde(default)]
    pub time_zone: Option<String>,
    /// `ucm serve` delays each scheduled run by a fixed offset within this many seconds,
    /// derived from the host and pipeline names, so installations sharing a cron do not hit
    /// the source in the same second. Never more than half the schedule's shortest interval.
    #[serde(default = "default_spread_secs")]
    pub spread_secs: u64,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DirectoryConfig {
    /// When set, the directory is reloaded from this CSV before each run, in the run's
    /// transaction.
    #[serde(default)]
    pub csv: Option<PathBuf>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MergeConfig {
    /// The field that links external contacts to directory entries.
    #[serde(default = "default_matching_field")]
    pub matching_field: String,
    /// The merge directory cron (Quartz-style, five fields).
    #[serde(default = "default_merge_schedule")]
    pub schedule: String,
    /// A run that would delete more than this share of the current external rows is refused
    /// (`--force` overrides).
    #[serde(default = "default_max_delete_ratio")]
    pub max_delete_ratio: f64,
    /// Hours a plan (the changes of a dry run, or of a run a guard refused, stored for review)
    /// can still be applied with `ucm apply`; older plans are pruned.
    #[serde(default = "default_plan_ttl_hours")]
    pub plan_ttl_hours: u64,
    /// Changes a landed run keeps in its change list (the console's run page shows them):
    /// the first ones, up to this many; its counts hold them all. A nightly sync changes far
    /// fewer. A first load into an empty table keeps none (its changes are the whole
    /// table). 0 keeps none.
    #[serde(default = "default_run_changes_kept")]
    pub run_changes_kept: u64,
    /// Hours a landed run's change list is kept; older lists are pruned (the run's record
    /// and counts stay).
    #[serde(default = "default_run_changes_ttl_hours")]
    pub run_changes_ttl_hours: u64,
    /// Per field: 0 or "directory" (the directory wins), 1 or "external" (the external value
    /// wins). Omitted fields default to 0.
    #[serde(default)]
    pub priority: BTreeMap<String, PriorityValue>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` (created when missing) or `postgres://USER:PASSWORD@HOST:PORT/DATABASE`
    /// (the database must exist; ucm creates its tables).
    #[serde(default = "default_database_url")]
    pub url: String,
    /// How long a run waits while another run (another process or node on the same database)
    /// holds the run lock, before it gives up and is recorded as skipped.
    #[serde(default = "default_lock_wait_secs")]
    pub lock_wait_secs: u64,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LookupConfig {
    /// The region (ISO 3166 code, e.g. "BE") numbers written without a country code are
    /// read in, for caller-ID lookup: with "BE", `0475 11 11 11` is `+32475111111`. Every
    /// run keeps the number index with it; changing it makes the next run build the index
    /// again. Default: none (only numbers with a country code are normalised; others are
    /// found by their digits).
    #[serde(default)]
    pub default_region: Option<String>,
}

impl LookupConfig {
    /// The number plan this section describes.
    pub fn number_plan(&self) -> Result<crate::numbers::NumberPlan, String> {
        crate::numbers::NumberPlan::new(self.default_region.as_deref())
            .map_err(|e| format!("lookup.{e}"))
    }
}

/// A priority as written in config: `0`, `1`, `"directory"` or `"external"`.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum PriorityValue {
    Number(i64),
    Word(Priority),
}

fn default_spread_secs() -> u64 {
    60
}
fn default_lock_wait_secs() -> u64 {
    crate::load::DEFAULT_LOCK_WAIT.as_secs()
}
fn default_name() -> String {
    "default".into()
}
fn default_merge_schedule() -> String {
    "30 23 ? * *".into()
}
fn default_matching_field() -> String {
    "e_mail".into()
}
fn default_plan_ttl_hours() -> u64 {
    168
}
fn default_run_changes_kept() -> u64 {
    100_000
}
fn default_run_changes_ttl_hours() -> u64 {
    24 * 90
}
fn default_max_delete_ratio() -> f64 {
    0.5
}
fn default_data_dir() -> PathBuf {
    "ucm-data".into()
}
fn default_database_url() -> String {
    "sqlite://ucm.db".into()
}

impl Default for MergeConfig {
    fn default() -> Self {
        MergeConfig {
            matching_field: default_matching_field(),
            schedule: default_merge_schedule(),
            max_delete_ratio: default_max_delete_ratio(),
            plan_ttl_hours: default_plan_ttl_hours(),
            run_changes_kept: default_run_changes_kept(),
            run_changes_ttl_hours: default_run_changes_ttl_hours(),
            priority: BTreeMap::new(),
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: default_database_url(),
            lock_wait_secs: default_lock_wait_secs(),
        }
    }
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            name: default_name(),
            source: SourceConfig::default(),
            directory: DirectoryConfig::default(),
            merge: MergeConfig::default(),
            database: DatabaseConfig::default(),
            lookup: LookupConfig::default(),
            data_dir: default_data_dir(),
            time_zone: None,
            spread_secs: default_spread_secs(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl PipelineConfig {
    /// Reads and checks the config at `path`.
    pub fn load(path: &Path) -> Result<PipelineConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses config text; `path` names it in messages.
    pub fn parse(path: &Path, text: &str) -> Result<PipelineConfig, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        };
        let config: PipelineConfig =
            toml::from_str(text).map_err(|e| invalid(e.to_string().trim_end().to_owned()))?;
        config.merge_policy().map_err(invalid)?;
        config.lookup.number_plan().map_err(invalid)?;
        if config.name.is_empty()
            || !config
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(invalid(format!(
                "name = \"{}\": use letters, digits, '-', '_' and '.' (it names the pipeline's folder in data_dir)",
                config.name
            )));
        }
        for (key, schedule) in [
            ("source.schedule", &config.source.schedule),
            ("merge.schedule", &config.merge.schedule),
        ] {
            let expr = crate::schedule::CronExpr::parse(schedule)
                .map_err(|e| invalid(format!("{key}: {e}")))?;
            for warning in expr.warnings() {
                tracing::warn!(config = %path.display(), "{key}: {warning}");
            }
        }
        crate::schedule::time_zone(config.time_zone.as_deref())
            .map_err(|e| invalid(format!("time_zone: {e}")))?;
        if config.source.tries == 0 {
            return Err(invalid(
                "source.tries = 0: at least one try is needed".into(),
            ));
        }
        if !(0.0..=1.0).contains(&config.merge.max_delete_ratio) {
            return Err(invalid(format!(
                "merge.max_delete_ratio = {} is outside 0.0..=1.0",
                config.merge.max_delete_ratio
            )));
        }
        Ok(config)
    }

    /// The merge rules this config describes.
    pub fn merge_policy(&self) -> Result<MergePolicy, String> {
        let matching_field = Field::from_name(&self.merge.matching_field).ok_or_else(|| {
            format!(
                "merge.matching_field = \"{}\" is not a contact field; use one of: {}",
                self.merge.matching_field,
                Field::list()
            )
        })?;
        let mut priority = [Priority::Directory; FIELD_COUNT];
        for (name, value) in &self.merge.priority {
            let field = Field::from_name(name).ok_or_else(|| {
                format!(
                    "unknown field `{name}` in [merge.priority]; use one of: {}",
                    Field::list()
                )
            })?;
            priority[field.index()] = match value {
                PriorityValue::Number(0) => Priority::Directory,
                PriorityValue::Number(1) => Priority::External,
                PriorityValue::Word(p) => *p,
                PriorityValue::Number(n) => {
                    return Err(format!(
                        "merge.priority.{name} = {n}: use 0 (or \"directory\") or 1 (or \"external\")"
                    ));
                }
            };
        }
        Ok(MergePolicy {
            matching_field,
            priority,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::Side;

    fn parse(text: &str) -> Result<PipelineConfig, ConfigError> {
        PipelineConfig::parse(Path::new("pipelines/test.toml"), text)
    }

    #[test]
    fn the_shipped_default_config_parses() {
        let path = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/pipelines/default.toml"
        ));
        let config = PipelineConfig::load(path).unwrap();
        assert_eq!(config.name, "default");
        assert!(config.source.url.is_some());
    }

    #[test]
    fn an_empty_config_gets_every_default() {
        let config = parse("").unwrap();
        assert_eq!(config, PipelineConfig::default());
        assert_eq!(config.merge.max_delete_ratio, 0.5);
        assert_eq!(config.merge.plan_ttl_hours, 168);
        assert_eq!(config.database.url, "sqlite://ucm.db");
        assert_eq!(config.database.lock_wait_secs, 60);
        assert_eq!(config.merge_policy().unwrap(), MergePolicy::default());
    }

    #[test]
    fn schedules_and_the_time_zone_are_checked_at_load() {
        let error = parse("[source]\nschedule = \"0 23 * * *\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("source.schedule: cron expression \"0 23 * * *\"")
                && error.contains("exactly one of them must be \"?\""),
            "{error}"
        );
        let error = parse("[merge]\nschedule = \"0 23 ? * 9\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("merge.schedule") && error.contains("Day-of-week has \"9\""),
            "{error}"
        );
        let error = parse("time_zone = \"Mars/Olympus\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("time_zone: unknown time zone \"Mars/Olympus\""),
            "{error}"
        );
        let config = parse("time_zone = \"Europe/Brussels\"\nspread_secs = 10\n").unwrap();
        assert_eq!(config.time_zone.as_deref(), Some("Europe/Brussels"));
        assert_eq!(config.spread_secs, 10);
    }

    #[test]
    fn the_lookup_region_is_an_iso_code_checked_at_load() {
        assert_eq!(
            parse("").unwrap().lookup.number_plan().unwrap().region(),
            ""
        );
        let config = parse("[lookup]\ndefault_region = \"BE\"\n").unwrap();
        assert_eq!(config.lookup.number_plan().unwrap().region(), "BE");
        let error = parse("[lookup]\ndefault_region = \"Belgium\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("pipelines/test.toml")
                && error.contains("lookup.default_region = \"Belgium\""),
            "{error}"
        );
        let error = parse("[lookup]\nregion = \"BE\"\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("unknown field `region`"), "{error}");
    }

    #[test]
    fn a_postgresql_database_and_its_lock_wait_are_configured_together() {
        let config =
            parse("[database]\nurl = \"postgres://ucm:pw@db:5432/ucm\"\nlock_wait_secs = 5\n")
                .unwrap();
        assert_eq!(config.database.url, "postgres://ucm:pw@db:5432/ucm");
        assert_eq!(config.database.lock_wait_secs, 5);
    }

    #[test]
    fn priorities_accept_numbers_and_words_and_omitted_fields_default_to_directory() {
        let config = parse("[merge.priority]\nfirst_name = 1\nsite = \"external\"\nlast_name = \"directory\"\nmobile_number = 0\n").unwrap();
        let policy = config.merge_policy().unwrap();
        let p = |name: &str| policy.priority[Field::from_name(name).unwrap().index()];
        assert_eq!(p("first_name"), Side::External);
        assert_eq!(p("site"), Side::External);
        assert_eq!(p("last_name"), Side::Directory);
        assert_eq!(p("mobile_number"), Side::Directory);
        assert_eq!(p("user_10"), Side::Directory);
    }

    /// The original product broke when `site` was added: a config written before a field
    /// existed must keep working.
    #[test]
    fn a_config_written_before_site_existed_still_loads() {
        let config =
            parse("[merge]\nmatching_field = \"extension\"\n[merge.priority]\nfirst_name = 1\n")
                .unwrap();
        assert_eq!(config.merge_policy().unwrap().priority[7], Side::Directory);
    }

    #[test]
    fn unknown_keys_are_errors_naming_the_key_and_the_file() {
        let err = parse("[source]\nurll = \"x\"\n").unwrap_err().to_string();
        assert!(
            err.contains("pipelines/test.toml") && err.contains("urll"),
            "{err}"
        );
        let err = parse("[merge.priority]\nnickname = 1\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("pipelines/test.toml") && err.contains("nickname"),
            "{err}"
        );
    }

    #[test]
    fn auth_secrets_come_inline_from_the_environment_or_from_a_file() {
        use crate::extract::fetch::Auth;
        let config =
            parse("[source.auth]\nusername = \"bob\"\npassword = \"p:@%&\\\" é\"\n").unwrap();
        match config.source.auth.resolve().unwrap() {
            Some(Auth::Basic { username, password }) => {
                assert_eq!((username.as_str(), password.as_str()), ("bob", "p:@%&\" é"))
            }
            other => panic!("{other:?}"),
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "t0k3n\n").unwrap();
        let config = parse(&format!(
            "[source.auth]\ntoken_file = \"{}\"\n",
            file.display()
        ))
        .unwrap();
        assert!(
            matches!(config.source.auth.resolve().unwrap(), Some(Auth::Bearer { token }) if token == "t0k3n")
        );
        let config = parse("[source.auth]\ntoken_env = \"UCM_TEST_SURELY_UNSET\"\n").unwrap();
        assert!(
            config
                .source
                .auth
                .resolve()
                .unwrap_err()
                .contains("UCM_TEST_SURELY_UNSET")
        );
        let config = parse("[source.auth]\nusername = \"bob\"\n").unwrap();
        assert!(
            config
                .source
                .auth
                .resolve()
                .unwrap_err()
                .contains("no password")
        );
    }

    #[test]
    fn bad_values_are_explained() {
        assert!(
            parse("name = \"a/b\"\n")
                .unwrap_err()
                .to_string()
                .contains("name = \"a/b\"")
        );
        assert!(
            parse("[source]\ntries = 0\n")
                .unwrap_err()
                .to_string()
                .contains("tries = 0")
        );
        assert!(
            parse("[merge.priority]\nsite = 2\n")
                .unwrap_err()
                .to_string()
                .contains("merge.priority.site = 2")
        );
        assert!(
            parse("[merge]\nmatching_field = \"phone\"\n")
                .unwrap_err()
                .to_string()
                .contains("\"phone\" is not a contact field")
        );
        assert!(
            parse("[merge]\nmax_delete_ratio = 1.5\n")
                .unwrap_err()
                .to_string()
                .contains("outside")
        );
    }
}
