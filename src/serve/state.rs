//! The service's state: its pipelines (each loaded, or with the reason it is not), and
//! [`Service`], everything the scheduler and the HTTP and LDAP handlers share. Built once at
//! start from the service config; the runs it starts are in `super::runs`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;

use super::auth::ResolvedAuth;
use super::config::ServiceConfig;
use super::connections::ConnectionStats;
use super::console::session::BrowserSessions;
use super::limits::Limits;
use super::metrics::RunMetrics;
use super::phones::feeds_config::Feed;
use super::phones::ldap::LdapSettings;
use super::phones::lookup_config::LookupEndpoint;
use super::throttle::{FailureThrottle, LoginThrottle};
use crate::cluster::{Change, Cluster, Versions};
use crate::config::PipelineConfig;
use crate::extract::Contract;
use crate::load::{LoadError, Store};
use crate::report::RunReport;
use crate::schedule::{Clock, Fire, Schedule, host_name, time_zone};

/// The two stages a pipeline's crons fire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Fetch,
    Merge,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Fetch => "fetch",
            Stage::Merge => "merge",
        }
    }
}

/// One stage's schedule and its next fire.
pub struct StageSchedule {
    pub stage: Stage,
    pub schedule: Schedule,
    pub next: Mutex<Option<Fire>>,
    /// A fire of this stage is running or waiting for the pipeline.
    pub pending: std::sync::atomic::AtomicBool,
}

/// A pipeline the service runs, or the reason it cannot.
pub struct Pipeline {
    pub name: String,
    pub path: PathBuf,
    pub loaded: Result<Loaded, String>,
    /// Held while one of the pipeline's runs is going.
    pub busy: Arc<tokio::sync::Mutex<()>>,
}

/// A pipeline whose config, schema and database were all loaded.
pub struct Loaded {
    pub config: PipelineConfig,
    pub contract: Arc<Contract>,
    pub store: Store,
    pub schedules: Vec<StageSchedule>,
}

/// Everything the HTTP handlers and the scheduler share.
pub struct Service {
    pub pipelines: Vec<Arc<Pipeline>>,
    pub clock: Clock,
    pub auth: ResolvedAuth,
    pub sessions: Mutex<BTreeMap<String, Timestamp>>,
    /// The phonebook feeds, their secrets read.
    pub phonebooks: Vec<Feed>,
    /// The caller-ID lookup endpoints, their secrets read.
    pub lookups: Vec<LookupEndpoint>,
    /// The console's browser sessions (cookies with a CSRF token each).
    pub browser_sessions: BrowserSessions,
    /// What the service counted since it started (for `/metrics`).
    pub metrics: RunMetrics,
    pub host: String,
    /// Runs started by the schedules, awaited at shutdown.
    pub(super) in_flight: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Set at SIGTERM/SIGINT: a fire still waiting for its pipeline does not start.
    pub(super) stopping: std::sync::atomic::AtomicBool,
    /// The profiles a contact may select, and the global parameters.
    pub profiles: Vec<String>,
    pub parameters: BTreeMap<String, String>,
    /// Versions of the changes made here.
    pub versions: Versions,
    /// Status and profile changes, for `/api/events`.
    pub events: tokio::sync::broadcast::Sender<Change>,
    /// The pair this node belongs to, if any.
    pub cluster: Option<Arc<Cluster>>,
    /// What clients may cost: timeouts, sizes, counts, rates.
    pub limits: Limits,
    /// Login attempts per client address and per user.
    pub login_throttle: LoginThrottle,
    /// Wrong phone credentials (feeds, caller-ID lookup) per client address.
    pub phone_throttle: FailureThrottle,
    /// Open and shed connections, for `/metrics`.
    pub connections: Arc<ConnectionStats>,
    /// Contact searches that may query the database at once: one fewer than the pool has
    /// connections. On PostgreSQL searches share the pool, so the status, run and live-state
    /// endpoints always find a connection free however many clients search (the others wait
    /// here, not in the pool); on SQLite searches use read connections of their own
    /// (`crate::directory::readers`), and this bounds how many are open and busy.
    pub search_lane: tokio::sync::Semaphore,
    /// Phonebook feeds being streamed (`[limits] max_phonebook_streams`).
    pub phonebook_lane: Arc<tokio::sync::Semaphore>,
    /// Runs started over HTTP, as they go (`s{n}`: the console's run pages, `/api/runs/s{n}`).
    pub started: super::started::StartedRuns,
    /// Cisco pages of the whole feed (they read the table) being written: one fewer than
    /// the phonebook places (at least one), so they never take the last one from feeds.
    pub cisco_page_lane: Arc<tokio::sync::Semaphore>,
    /// The LDAP directory's settings, when it is on.
    pub ldap: Option<LdapSettings>,
}

/// Why [`Service::start_run`] did not start a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartRefused {
    NotLoaded,
    Running,
}

impl StartRefused {
    /// The refusal in words, for `pipeline`.
    pub fn message(self, pipeline: &str) -> String {
        match self {
            StartRefused::NotLoaded => format!("Pipeline {pipeline} is not loaded."),
            StartRefused::Running => {
                format!("Pipeline {pipeline} is running; try again when it has finished.")
            }
        }
    }
}

impl Service {
    /// Loads every pipeline; one that cannot be loaded is kept with its error and reported,
    /// the others run. Refuses a config whose features cannot work (the reason says which).
    pub async fn start(config: &ServiceConfig, clock: Clock) -> Result<Service, String> {
        let host = host_name();
        let node = config
            .cluster
            .as_ref()
            .and_then(|c| c.node.clone())
            .unwrap_or_else(|| host.clone());
        let cluster = match &config.cluster {
            Some(c) => Some(Arc::new(Cluster::new(c, node.clone())?)),
            None => None,
        };
        let pipelines = load_pipelines(config, &host).await?;
        config.limits.check()?;
        let versions = versions_after_stored(&node, &pipelines).await;
        let auth = config.auth.resolve()?;
        let phonebooks = resolve_feeds(config)?;
        let lookups = resolve_lookups(config)?;
        let names: Vec<String> = pipelines.iter().map(|p| p.name.clone()).collect();
        let ldap = crate::serve::phones::ldap::resolve(config.ldap.as_ref(), &names)?;
        let browser_sessions =
            BrowserSessions::new(config.limits.max_browser_sessions, auth.session_minutes);
        let login_throttle = LoginThrottle::new(&config.limits);
        Ok(Service {
            pipelines,
            clock,
            auth,
            limits: config.limits.clone(),
            login_throttle,
            phone_throttle: FailureThrottle::new(config.limits.phone_auth_failures_per_minute),
            connections: Arc::default(),
            sessions: Mutex::new(BTreeMap::new()),
            browser_sessions,
            phonebooks,
            lookups,
            metrics: RunMetrics::default(),
            versions,
            cluster,
            host,
            in_flight: Mutex::new(Vec::new()),
            stopping: std::sync::atomic::AtomicBool::new(false),
            profiles: config.profiles.clone(),
            parameters: config.parameters.clone(),
            events: tokio::sync::broadcast::channel(1024).0,
            search_lane: tokio::sync::Semaphore::new(crate::load::POOL_CONNECTIONS as usize - 1),
            phonebook_lane: Arc::new(tokio::sync::Semaphore::new(
                config.limits.max_phonebook_streams,
            )),
            started: Default::default(),
            cisco_page_lane: Arc::new(tokio::sync::Semaphore::new(
                config.limits.max_phonebook_streams.saturating_sub(1).max(1),
            )),
            ldap,
        })
    }

    /// The database holding the merged directory and the live state: the first loaded
    /// pipeline's.
    pub fn objects_store(&self) -> Option<&Store> {
        self.pipelines
            .iter()
            .find_map(|p| p.loaded.as_ref().ok().map(|l| &l.store))
    }

    /// Stores a change made on this node and tells the event stream; with a cluster, queues it
    /// for the peers in the same transaction (profiles only when profile_sync is on). Returns
    /// whether it was stored: a newer version already stored wins.
    pub async fn record(&self, store: &Store, change: Change) -> Result<bool, LoadError> {
        let send = self
            .cluster
            .as_ref()
            .is_some_and(|c| change.status.is_some() || c.profile_sync);
        let node = self
            .cluster
            .as_ref()
            .map_or(self.host.as_str(), |c| c.node.as_str());
        let applied = crate::cluster::record_local(store, node, &change, send).await?;
        if applied {
            if let (true, Some(cluster)) = (send, &self.cluster) {
                cluster.wake_all();
            }
            let _ = self.events.send(change);
        }
        Ok(applied)
    }

    pub fn pipeline(&self, name: &str) -> Option<&Arc<Pipeline>> {
        self.pipelines.iter().find(|p| p.name == name)
    }

    /// Counts a finished run.
    pub(crate) fn count(&self, report: &RunReport) {
        self.metrics.count(report);
    }
}

/// The service's pipelines, each loaded or with the reason it is not; two pipelines of one
/// name are refused (the name keys their runs, metrics, API routes and staged sources).
async fn load_pipelines(config: &ServiceConfig, host: &str) -> Result<Vec<Arc<Pipeline>>, String> {
    let mut pipelines: Vec<Arc<Pipeline>> = Vec::new();
    for path in config.pipeline_paths()? {
        let loaded = load_pipeline(&path, host).await;
        let name = match &loaded {
            Ok(l) => l.config.name.clone(),
            Err(_) => path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
        };
        if let Err(e) = &loaded {
            tracing::error!(pipeline = %name, "cannot load {}: {e}", path.display());
        }
        if let Some(other) = pipelines.iter().find(|p| p.name == name) {
            // One name, one pipeline: the name keys its runs, metrics, API routes and
            // its staged source in data_dir (two would delete each other's copy).
            return Err(format!(
                "{} and {} are both pipeline \"{name}\": give each pipeline its own name",
                other.path.display(),
                path.display()
            ));
        }
        pipelines.push(Arc::new(Pipeline {
            name,
            path,
            loaded,
            busy: Arc::new(tokio::sync::Mutex::new(())),
        }));
    }
    Ok(pipelines)
}

/// This node's version clock, started after the newest version stored, so a restart never
/// makes versions older than the ones it made before.
async fn versions_after_stored(node: &str, pipelines: &[Arc<Pipeline>]) -> Versions {
    let versions = Versions::new(node);
    if let Some(store) = pipelines
        .iter()
        .find_map(|p| p.loaded.as_ref().ok().map(|l| &l.store))
    {
        match crate::cluster::live_state::newest_version(store).await {
            Ok(Some(newest)) => versions.observe(&newest),
            Ok(None) => {}
            Err(e) => tracing::warn!("cannot read the newest stored version: {e}"),
        }
    }
    versions
}

/// The phonebook feeds with their secrets read; one feed per pipeline and format.
fn resolve_feeds(config: &ServiceConfig) -> Result<Vec<Feed>, String> {
    let mut feeds: Vec<Feed> = Vec::new();
    for config in &config.phonebooks {
        let feed = config.resolve()?;
        if feeds
            .iter()
            .any(|f| f.config.pipeline == config.pipeline && f.config.format == config.format)
        {
            return Err(format!(
                "[[phonebooks]] {}/{} is configured twice: one feed per pipeline and format",
                config.pipeline,
                config.format.name()
            ));
        }
        feeds.push(feed);
    }
    Ok(feeds)
}

/// The caller-ID lookup endpoints with their secrets read; one per pipeline.
fn resolve_lookups(config: &ServiceConfig) -> Result<Vec<LookupEndpoint>, String> {
    let mut lookups: Vec<LookupEndpoint> = Vec::new();
    for config in &config.lookups {
        if lookups.iter().any(|l| l.config.pipeline == config.pipeline) {
            return Err(format!(
                "[[lookups]] {} is configured twice: one lookup per pipeline",
                config.pipeline
            ));
        }
        lookups.push(config.resolve()?);
    }
    Ok(lookups)
}

async fn load_pipeline(path: &std::path::Path, host: &str) -> Result<Loaded, String> {
    let config = PipelineConfig::load(path).map_err(|e| e.to_string())?;
    let contract = match &config.source.schema {
        Some(xsd) => Contract::load(xsd).map_err(|e| e.to_string())?,
        None => Contract::builtin(),
    }
    .with_source(config.source.format()?);
    let zone = time_zone(config.time_zone.as_deref())?;
    let mut schedules = Vec::new();
    for (stage, text) in [
        (Stage::Fetch, &config.source.schedule),
        (Stage::Merge, &config.merge.schedule),
    ] {
        let expr = crate::schedule::CronExpr::parse(text).map_err(|e| e.to_string())?;
        let key = format!("{}/{}", config.name, stage.as_str());
        let schedule = Schedule::new(
            expr,
            zone.clone(),
            Duration::from_secs(config.spread_secs),
            host,
            &key,
        );
        schedules.push(StageSchedule {
            stage,
            schedule,
            next: Mutex::new(None),
            pending: std::sync::atomic::AtomicBool::new(false),
        });
    }
    let store = Store::open(&config.database.url)
        .await
        .map_err(|e| e.to_string())?
        .with_lock_wait(Duration::from_secs(config.database.lock_wait_secs))
        .with_numbers(config.lookup.number_plan()?);
    Ok(Loaded {
        config,
        contract: Arc::new(contract),
        store,
        schedules,
    })
}
