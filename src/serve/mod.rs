//! `ucm serve`: the resident service. It fires each pipeline's import cron (the fetch stage)
//! and merge cron (the merge stage) in the pipeline's time zone, delayed by its spread
//! offset; never runs a pipeline's stages on top of each other (a fire that finds its
//! pipeline busy is recorded as skipped); does not replay fires missed while it was down (it
//! logs them); and serves the status API, Prometheus metrics and a status page ([`http`]).
//! SIGTERM or SIGINT stops the firing, lets a running load finish (or roll back), and exits 0.

pub mod cluster;
pub mod config;
pub mod connections;
pub mod console;
pub mod http;
pub mod ldap;
pub mod limits;
mod live;
pub mod lookup;
pub mod metrics;
pub mod objects;
pub mod phone_access;
pub mod phonebooks;
mod plans;
pub mod search;
pub mod throttle;
pub mod version;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::watch;

use crate::config::PipelineConfig;
use crate::extract::Contract;
use crate::extract::fetch::Silent;
use crate::load::{Store, runs};
use crate::pipeline::NoProgress;
use crate::report::{RunReport, RunStatus};
use crate::schedule::{Clock, Fire, Schedule, host_name, time_zone};
use crate::stage::{self, MergeOptions};

pub use config::ServiceConfig;

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
    pub auth: config::ResolvedAuth,
    pub sessions: Mutex<BTreeMap<String, Timestamp>>,
    /// The phonebook feeds, their secrets read.
    pub phonebooks: Vec<phonebooks::Feed>,
    /// The caller-ID lookup endpoints, their secrets read.
    pub lookups: Vec<lookup::LookupEndpoint>,
    /// The console's browser sessions (cookies with a CSRF token each).
    pub browser_sessions: console::session::BrowserSessions,
    /// What the service counted since it started (for `/metrics`).
    pub metrics: metrics::RunMetrics,
    pub host: String,
    /// Runs started by the schedules, awaited at shutdown.
    in_flight: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Set at SIGTERM/SIGINT: a fire still waiting for its pipeline does not start.
    stopping: std::sync::atomic::AtomicBool,
    /// The profiles a contact may select, and the global parameters.
    pub profiles: Vec<String>,
    pub parameters: BTreeMap<String, String>,
    /// Versions of the changes made here.
    pub versions: version::Versions,
    /// Status and profile changes, for `/api/events`.
    pub events: tokio::sync::broadcast::Sender<live::Change>,
    /// The pair this node belongs to, if any.
    pub cluster: Option<Arc<cluster::Cluster>>,
    /// What clients may cost: timeouts, sizes, counts, rates.
    pub limits: limits::Limits,
    /// Login attempts per client address and per user.
    pub login_throttle: throttle::LoginThrottle,
    /// Wrong phone credentials (feeds, caller-ID lookup) per client address.
    pub phone_throttle: throttle::FailureThrottle,
    /// Open and shed connections, for `/metrics`.
    pub connections: Arc<connections::ConnectionStats>,
    /// Contact searches that may query the database at once: one fewer than the pool has
    /// connections. On PostgreSQL searches share the pool, so the status, run and live-state
    /// endpoints always find a connection free however many clients search (the others wait
    /// here, not in the pool); on SQLite searches use read connections of their own
    /// (`search::on_sqlite_reader`), and this bounds how many are open and busy.
    pub search_lane: tokio::sync::Semaphore,
    /// Phonebook feeds being streamed (`[limits] max_phonebook_streams`).
    pub phonebook_lane: Arc<tokio::sync::Semaphore>,
    /// The LDAP directory's settings, when it is on.
    pub ldap: Option<ldap::LdapSettings>,
}

impl Service {
    /// Loads every pipeline; one that cannot be loaded is kept with its error and reported,
    /// the others run.
    pub async fn start(config: &ServiceConfig, clock: Clock) -> Result<Service, String> {
        let host = host_name();
        let node = config
            .cluster
            .as_ref()
            .and_then(|c| c.node.clone())
            .unwrap_or_else(|| host.clone());
        let cluster = match &config.cluster {
            Some(c) => Some(Arc::new(cluster::Cluster::new(c, node.clone())?)),
            None => None,
        };
        let mut pipelines = Vec::new();
        for path in config.pipeline_paths()? {
            let loaded = load_pipeline(&path, &host).await;
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
            if let Some(other) = pipelines.iter().find(|p: &&Arc<Pipeline>| p.name == name) {
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
        config.limits.check()?;
        // The clock starts after the newest version stored, so a restart never makes
        // versions older than the ones it made before.
        let versions = version::Versions::new(&node);
        if let Some(store) = pipelines
            .iter()
            .find_map(|p: &Arc<Pipeline>| p.loaded.as_ref().ok().map(|l| &l.store))
        {
            match objects::newest_version(store).await {
                Ok(Some(newest)) => versions.observe(&newest),
                Ok(None) => {}
                Err(e) => tracing::warn!("cannot read the newest stored version: {e}"),
            }
        }
        let auth = config.auth.resolve()?;
        let mut feeds: Vec<phonebooks::Feed> = Vec::new();
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
        let mut lookups: Vec<lookup::LookupEndpoint> = Vec::new();
        for config in &config.lookups {
            if lookups.iter().any(|l| l.config.pipeline == config.pipeline) {
                return Err(format!(
                    "[[lookups]] {} is configured twice: one lookup per pipeline",
                    config.pipeline
                ));
            }
            lookups.push(config.resolve()?);
        }
        let names: Vec<String> = pipelines.iter().map(|p| p.name.clone()).collect();
        let ldap = ldap::resolve(config.ldap.as_ref(), &names)?;
        let browser_sessions = console::session::BrowserSessions::new(
            config.limits.max_browser_sessions,
            auth.session_minutes,
        );
        let login_throttle = throttle::LoginThrottle::new(
            &config.limits,
            auth.login.as_ref().map(|(user, _)| user.as_str()),
        );
        Ok(Service {
            pipelines,
            clock,
            auth,
            limits: config.limits.clone(),
            login_throttle,
            phone_throttle: throttle::FailureThrottle::new(
                config.limits.phone_auth_failures_per_minute,
            ),
            connections: Arc::default(),
            sessions: Mutex::new(BTreeMap::new()),
            browser_sessions,
            phonebooks: feeds,
            lookups,
            metrics: metrics::RunMetrics::default(),
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
    pub async fn record(
        &self,
        store: &Store,
        change: live::Change,
    ) -> Result<bool, live::ApiError> {
        let send = self
            .cluster
            .as_ref()
            .is_some_and(|c| change.status.is_some() || c.profile_sync);
        let node = self
            .cluster
            .as_ref()
            .map_or(self.host.as_str(), |c| c.node.as_str());
        let applied = cluster::record_local(store, node, &change, send)
            .await
            .map_err(live::unavailable)?;
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

    /// Starts a run of `pipeline` (fetch, then merge) now, on a task of its own: it is
    /// recorded and counted whatever happens to whoever asked for it (an HTTP client that
    /// disconnects does not cancel it), and shutdown waits for it. The receiver gets its
    /// report. Refused while the pipeline runs or when it is not loaded.
    pub fn start_run(
        self: &Arc<Self>,
        pipeline: &Arc<Pipeline>,
        dry_run: bool,
    ) -> Result<tokio::sync::oneshot::Receiver<RunReport>, StartRefused> {
        self.start_task(
            pipeline,
            "run started over HTTP finished",
            move |pipeline| async move {
                let Ok(loaded) = &pipeline.loaded else {
                    return None;
                };
                let options = MergeOptions {
                    dry_run,
                    force: false,
                };
                let outcome = stage::fetch_and_merge(
                    &loaded.store,
                    Arc::clone(&loaded.contract),
                    &loaded.config,
                    options,
                    Arc::new(Silent),
                    Arc::new(NoProgress),
                )
                .await;
                Some(match outcome {
                    Ok(report) => report,
                    Err(e) => record_failure(loaded, "run", dry_run, e.to_string()).await,
                })
            },
        )
    }

    /// Applies plan `plan` of `pipeline` on a task of its own, as [`Service::start_run`]
    /// starts a run: the pipeline runs nothing else meanwhile, and the apply is recorded and
    /// counted whatever its client does.
    pub fn start_apply(
        self: &Arc<Self>,
        pipeline: &Arc<Pipeline>,
        plan: i64,
    ) -> Result<tokio::sync::oneshot::Receiver<RunReport>, StartRefused> {
        self.start_task(
            pipeline,
            "plan applied over HTTP",
            move |pipeline| async move {
                let Ok(loaded) = &pipeline.loaded else {
                    return None;
                };
                let policy = loaded.config.merge_policy().ok()?;
                let request = crate::plan::ApplyRequest {
                    pipeline: pipeline.name.clone(),
                    plan_id: plan,
                    policy,
                };
                Some(crate::plan::apply(&loaded.store, request).await)
            },
        )
    }

    /// Dry-runs `sample` (an uploaded file, deleted when the dry run ends) against `pipeline`
    /// on a task of its own, as [`Service::start_run`] starts a run: its plan is stored.
    pub fn start_sample_dry_run(
        self: &Arc<Self>,
        pipeline: &Arc<Pipeline>,
        sample: tempfile::TempPath,
    ) -> Result<tokio::sync::oneshot::Receiver<RunReport>, StartRefused> {
        self.start_task(
            pipeline,
            "sample dry run finished",
            move |pipeline| async move {
                let Ok(loaded) = &pipeline.loaded else {
                    return None;
                };
                let outcome = stage::sample_dry_run(
                    &loaded.store,
                    Arc::clone(&loaded.contract),
                    &loaded.config,
                    &sample,
                )
                .await;
                drop(sample);
                Some(match outcome {
                    Ok(report) => report,
                    Err(e) => record_failure(loaded, "import", true, e.to_string()).await,
                })
            },
        )
    }

    /// Runs `work` for a loaded `pipeline` on a task of its own, holding the pipeline's run
    /// guard; its report is counted, logged as `what` and sent to the receiver returned.
    fn start_task<Work, Done>(
        self: &Arc<Self>,
        pipeline: &Arc<Pipeline>,
        what: &'static str,
        work: Work,
    ) -> Result<tokio::sync::oneshot::Receiver<RunReport>, StartRefused>
    where
        Work: FnOnce(Arc<Pipeline>) -> Done + Send + 'static,
        Done: std::future::Future<Output = Option<RunReport>> + Send,
    {
        if pipeline.loaded.is_err() {
            return Err(StartRefused::NotLoaded);
        }
        let running = Arc::clone(&pipeline.busy)
            .try_lock_owned()
            .map_err(|_| StartRefused::Running)?;
        let (report_tx, report_rx) = tokio::sync::oneshot::channel();
        let (service, pipeline) = (Arc::clone(self), Arc::clone(pipeline));
        let handle = tokio::spawn(async move {
            let _running = running;
            let name = pipeline.name.clone();
            let Some(report) = work(pipeline).await else {
                return;
            };
            service.count(&report);
            tracing::info!(
                pipeline = %name,
                status = report.status.as_str(),
                run = report.run_id,
                plan = report.plan_id,
                "{what}"
            );
            let _ = report_tx.send(report);
        });
        let mut in_flight = self.in_flight.lock().expect("no poisoning");
        in_flight.retain(|h| !h.is_finished());
        in_flight.push(handle);
        Ok(report_rx)
    }

    /// Counts a finished run.
    pub(crate) fn count(&self, report: &RunReport) {
        self.metrics.count(report);
    }

    /// Runs `stage` of `pipeline`. A fire never overlaps the same stage's previous run (it is
    /// recorded as skipped); it waits for the pipeline's other stage (or a run started over
    /// HTTP) to finish, so fetch and merge never run at the same time.
    pub async fn fire(&self, pipeline: &Pipeline, stage: Stage) -> Option<RunReport> {
        use std::sync::atomic::Ordering;
        let Ok(loaded) = &pipeline.loaded else {
            return None;
        };
        let entry = loaded.schedules.iter().find(|s| s.stage == stage)?;
        let report = if entry.pending.swap(true, Ordering::AcqRel) {
            let mut report = RunReport::begin(
                &pipeline.name,
                stage.as_str(),
                loaded.config.source.url.as_deref().unwrap_or_default(),
                false,
            );
            report.status = RunStatus::Skipped;
            report.error = Some(format!(
                "skipped: the previous {} run of pipeline {} is still going",
                stage.as_str(),
                pipeline.name
            ));
            report.finished_at = crate::load::now();
            match runs::record(&loaded.store, &report).await {
                Ok(id) => report.run_id = Some(id),
                Err(e) => {
                    tracing::error!(pipeline = %pipeline.name, "cannot record a skipped run: {e}")
                }
            }
            report
        } else {
            let running = pipeline.busy.lock().await;
            if self.stopping.load(Ordering::Acquire) {
                entry.pending.store(false, Ordering::Release);
                tracing::info!(pipeline = %pipeline.name, stage = stage.as_str(), "not started: the service is stopping");
                return None;
            }
            let report = run_stage(loaded, stage).await;
            drop(running);
            entry.pending.store(false, Ordering::Release);
            report
        };
        tracing::info!(
            pipeline = %pipeline.name,
            stage = stage.as_str(),
            status = report.status.as_str(),
            run = report.run_id,
            "run finished"
        );
        self.count(&report);
        Some(report)
    }
}

async fn load_pipeline(path: &std::path::Path, host: &str) -> Result<Loaded, String> {
    let config = PipelineConfig::load(path).map_err(|e| e.to_string())?;
    let contract = match &config.source.schema {
        Some(xsd) => Contract::load(xsd).map_err(|e| e.to_string())?,
        None => Contract::builtin(),
    };
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

/// Runs one stage; a stage that cannot start (no staged source yet, a config problem) is
/// recorded as a failed run, so it shows on the status page.
async fn run_stage(loaded: &Loaded, stage: Stage) -> RunReport {
    let config = &loaded.config;
    let contract = Arc::clone(&loaded.contract);
    let outcome = match stage {
        Stage::Fetch => stage::fetch_stage(&loaded.store, contract, config, Arc::new(Silent)).await,
        Stage::Merge => {
            let options = MergeOptions {
                dry_run: false,
                force: false,
            };
            stage::merge_stage(
                &loaded.store,
                contract,
                config,
                options,
                Arc::new(NoProgress),
            )
            .await
        }
    };
    match outcome {
        Ok(report) => report,
        Err(e) => record_failure(loaded, stage.as_str(), false, e.to_string()).await,
    }
}

/// Why [`Service::start_run`] did not start a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartRefused {
    NotLoaded,
    Running,
}

/// Records a run of `command` that could not start or failed before it had a report.
async fn record_failure(loaded: &Loaded, command: &str, dry_run: bool, error: String) -> RunReport {
    let config = &loaded.config;
    let mut report = RunReport::begin(
        &config.name,
        command,
        &crate::extract::fetch::mask_url(config.source.url.as_deref().unwrap_or_default()),
        dry_run,
    );
    report.error = Some(error);
    report.finished_at = crate::load::now();
    match runs::record(&loaded.store, &report).await {
        Ok(id) => report.run_id = Some(id),
        Err(e) => tracing::error!(pipeline = %config.name, "cannot record a failed run: {e}"),
    }
    report
}

/// Fires one stage's schedule until `stop` says so. Computes each next fire from the clock,
/// so fires missed while the service was down are not replayed.
async fn schedule_loop(
    service: Arc<Service>,
    pipeline: Arc<Pipeline>,
    index: usize,
    mut stop: watch::Receiver<bool>,
) {
    let Ok(loaded) = &pipeline.loaded else { return };
    let entry = &loaded.schedules[index];
    loop {
        let Some(fire) = entry.schedule.next_fire(service.clock.now()) else {
            tracing::warn!(pipeline = %pipeline.name, stage = entry.stage.as_str(), "the schedule has no further fire time");
            return;
        };
        tracing::info!(
            pipeline = %pipeline.name,
            stage = entry.stage.as_str(),
            cron = entry.schedule.expr.as_str(),
            cron_time = %fire.cron_time,
            spread_offset_ms = entry.schedule.offset.as_millis() as u64,
            fires_at = %fire.at,
            "next fire"
        );
        *entry.next.lock().expect("no poisoning") = Some(fire.clone());
        tokio::select! {
            _ = service.clock.sleep_until(fire.at) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
        // Each fire runs on its own task, so the next one is computed (and, if the run is
        // still going then, recorded as skipped) on time.
        let (run_service, run_pipeline) = (Arc::clone(&service), Arc::clone(&pipeline));
        let stage = entry.stage;
        let handle = tokio::spawn(async move {
            run_service.fire(&run_pipeline, stage).await;
        });
        let mut in_flight = service.in_flight.lock().expect("no poisoning");
        in_flight.retain(|h| !h.is_finished());
        in_flight.push(handle);
    }
}

/// Logs the fires of each schedule that fell between the pipeline's last recorded run of
/// that stage and now: they are not replayed.
async fn log_missed(service: &Service) {
    let now = service.clock.now();
    for pipeline in &service.pipelines {
        let Ok(loaded) = &pipeline.loaded else {
            continue;
        };
        for entry in &loaded.schedules {
            let Ok(Some(last)) =
                runs::last_started(&loaded.store, &pipeline.name, entry.stage.as_str()).await
            else {
                continue;
            };
            let Ok(since) = last.parse::<Timestamp>() else {
                continue;
            };
            let mut missed = 0u32;
            let mut first = None;
            let mut at = since.to_zoned(entry.schedule.zone.clone());
            while let Some(next) = entry.schedule.expr.next_after(&at) {
                if next.timestamp() >= now || missed >= 10_000 {
                    break;
                }
                first.get_or_insert_with(|| next.clone());
                missed += 1;
                at = next;
            }
            if let Some(first) = first {
                tracing::warn!(
                    pipeline = %pipeline.name,
                    stage = entry.stage.as_str(),
                    missed,
                    first = %first,
                    "fires missed while the service was down; not replayed"
                );
            }
        }
    }
}

/// Runs the service until SIGTERM or SIGINT: schedules and HTTP. Prints the address it
/// listens on (with the port the system chose, for `:0`) on stdout.
pub async fn serve(config: ServiceConfig) -> anyhow::Result<()> {
    let clock = Clock::from_env();
    if clock.speed() != 1.0 {
        tracing::warn!(
            speed = clock.speed(),
            "UCM_CLOCK_SPEED is set: the schedule clock runs fast (tests only)"
        );
    }
    let service = Arc::new(
        Service::start(&config, clock)
            .await
            .map_err(anyhow::Error::msg)?,
    );
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
    let address = listener.local_addr()?;
    println!("ucm serve: listening on http://{address}");
    use std::io::Write as _;
    let _ = std::io::stdout().flush();

    log_missed(&service).await;
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut loops = Vec::new();
    for pipeline in &service.pipelines {
        if let Ok(loaded) = &pipeline.loaded {
            for index in 0..loaded.schedules.len() {
                loops.push(tokio::spawn(schedule_loop(
                    Arc::clone(&service),
                    Arc::clone(pipeline),
                    index,
                    stop_rx.clone(),
                )));
            }
        }
    }

    // Caller-ID lookup and the LDAP directory's number searches read the number index:
    // built now when a table predates it or its region changed, rather than at the next
    // scheduled run.
    let mut indexed: Vec<&str> = service
        .lookups
        .iter()
        .map(|l| l.config.pipeline.as_str())
        .collect();
    indexed.extend(service.ldap.iter().map(|l| l.config.pipeline.as_str()));
    indexed.sort_unstable();
    indexed.dedup();
    for name in indexed {
        let Some(pipeline) = service.pipeline(name).cloned() else {
            continue;
        };
        tokio::spawn(async move {
            let Ok(loaded) = &pipeline.loaded else { return };
            // Not under the pipeline's busy lock: a run asked for meanwhile waits for the
            // database's run lock instead of being refused.
            match crate::load::numbers::ensure(&loaded.store).await {
                Ok(true) => tracing::info!(pipeline = %pipeline.name, "number index built"),
                Ok(false) => {}
                Err(e) => tracing::warn!(
                    pipeline = %pipeline.name,
                    "cannot build the number index now (the next run will): {e}"
                ),
            }
        });
    }

    if let (Some(cluster), Some(store)) = (&service.cluster, service.objects_store()) {
        for peer in &cluster.peers {
            loops.push(tokio::spawn(cluster::push_loop(
                Arc::clone(cluster),
                store.clone(),
                peer.clone(),
                stop_rx.clone(),
            )));
        }
        loops.push(tokio::spawn(cluster::anti_entropy_loop(
            Arc::clone(cluster),
            store.clone(),
            stop_rx.clone(),
        )));
        tracing::info!(
            node = %cluster.node,
            peers = ?cluster.peers,
            profile_sync = cluster.profile_sync,
            "cluster"
        );
    }
    let max_connections = connections::effective_max_connections(
        &service.limits,
        connections::raise_open_file_limit(),
    );
    tracing::info!(
        max_connections,
        max_connections_per_client = service.limits.max_connections_per_client,
        header_read_timeout_secs = service.limits.header_read_timeout_secs,
        "HTTP limits"
    );
    loops.extend(ldap::listen(Arc::clone(&service), stop_rx.clone()).await?);
    let app = http::app(Arc::clone(&service));
    let (drained_tx, drained) = watch::channel(false);
    let server = tokio::spawn({
        let (service, stop) = (Arc::clone(&service), stop_rx.clone());
        async move {
            let limits = service.limits.clone();
            let stats = Arc::clone(&service.connections);
            connections::serve(
                listener,
                app,
                &limits,
                max_connections,
                stats,
                stop,
                drained,
            )
            .await
        }
    });

    shutdown_signal().await;
    tracing::info!("stopping: no new runs; waiting for running ones to finish");
    service
        .stopping
        .store(true, std::sync::atomic::Ordering::Release);
    let _ = stop_tx.send(true);
    for handle in loops {
        let _ = handle.await;
    }
    // A running load finishes (or rolls back) before the process exits.
    let in_flight = std::mem::take(&mut *service.in_flight.lock().expect("no poisoning"));
    for handle in in_flight {
        let _ = handle.await;
    }
    for pipeline in &service.pipelines {
        let _idle = pipeline.busy.lock().await;
    }
    // The runs are done: their HTTP clients get their reports within the grace period.
    let _ = drained_tx.send(true);
    let _ = server.await;
    for pipeline in &service.pipelines {
        if let Ok(loaded) = &pipeline.loaded {
            loaded.store.close().await;
        }
    }
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
