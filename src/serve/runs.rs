//! The runs the service starts: a scheduled fire of one stage (never overlapping the same
//! stage, waiting for the pipeline's other one), and runs, applies and sample dry runs asked
//! for over HTTP, each on a task of its own, recorded and counted whatever its client does;
//! shutdown waits for them.

use std::sync::Arc;

use tokio::sync::oneshot::Receiver;

use super::started::{Phase, StartedRun};
use super::state::{Loaded, Pipeline, Service, Stage, StartRefused};
use crate::extract::fetch::{DownloadProgress, Silent};
use crate::load::runs;
use crate::pipeline::{NoProgress, Progress};
use crate::report::{RunReport, RunStatus};
use crate::stage::{self, MergeOptions};

impl Service {
    /// Starts a run of `pipeline` (fetch, then merge) now, on a task of its own: it is
    /// recorded and counted whatever happens to whoever asked for it (an HTTP client that
    /// disconnects does not cancel it), and shutdown waits for it. The receiver gets its
    /// report. Refused while the pipeline runs or when it is not loaded.
    pub fn start_run(
        self: &Arc<Self>,
        pipeline: &Arc<Pipeline>,
        dry_run: bool,
        watch: Arc<StartedRun>,
    ) -> Result<Receiver<RunReport>, StartRefused> {
        let progress = Arc::clone(&watch);
        self.start_task(
            pipeline,
            "run started over HTTP finished",
            watch,
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
                    Arc::clone(&progress) as Arc<dyn DownloadProgress>,
                    progress as Arc<dyn Progress>,
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
        watch: Arc<StartedRun>,
    ) -> Result<Receiver<RunReport>, StartRefused> {
        let progress = Arc::clone(&watch);
        self.start_task(
            pipeline,
            "plan applied over HTTP",
            watch,
            move |pipeline| async move {
                let Ok(loaded) = &pipeline.loaded else {
                    return None;
                };
                progress.set_phase(Phase::Applying);
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
        watch: Arc<StartedRun>,
    ) -> Result<Receiver<RunReport>, StartRefused> {
        let progress = Arc::clone(&watch);
        self.start_task(
            pipeline,
            "sample dry run finished",
            watch,
            move |pipeline| async move {
                let Ok(loaded) = &pipeline.loaded else {
                    return None;
                };
                let outcome = stage::sample_dry_run(
                    &loaded.store,
                    Arc::clone(&loaded.contract),
                    &loaded.config,
                    &sample,
                    progress,
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
    /// guard; its report is counted, logged as `what`, sent to the receiver returned and kept
    /// as `watch`'s outcome (as is a refusal to start).
    fn start_task<Work, Done>(
        self: &Arc<Self>,
        pipeline: &Arc<Pipeline>,
        what: &'static str,
        watch: Arc<StartedRun>,
        work: Work,
    ) -> Result<Receiver<RunReport>, StartRefused>
    where
        Work: FnOnce(Arc<Pipeline>) -> Done + Send + 'static,
        Done: std::future::Future<Output = Option<RunReport>> + Send,
    {
        let refused = |refused: StartRefused| {
            watch.end(Err(refused.message(&watch.pipeline)));
            refused
        };
        if pipeline.loaded.is_err() {
            return Err(refused(StartRefused::NotLoaded));
        }
        let running = Arc::clone(&pipeline.busy)
            .try_lock_owned()
            .map_err(|_| refused(StartRefused::Running))?;
        let (report_tx, report_rx) = tokio::sync::oneshot::channel();
        let (service, pipeline) = (Arc::clone(self), Arc::clone(pipeline));
        let handle = tokio::spawn(async move {
            let _running = running;
            let name = pipeline.name.clone();
            let Some(report) = work(pipeline).await else {
                watch.end(Err(format!("pipeline {name} is not loaded")));
                return;
            };
            service.count(&report);
            watch.end(Ok(report.clone()));
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
