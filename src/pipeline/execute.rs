//! A run from start to record: its transaction on a blocking thread, then the report (a
//! failed or refused run is a report with that status, and the table as it was), the plan of
//! a refused run computed for review, and the run recorded.

use std::sync::Arc;
use std::time::Instant;

use super::request::{NoProgress, Progress, RunFailure, RunRequest};
use super::transaction::{Landed, run_in_transaction};
use crate::extract::{Contract, ExtractError};
use crate::load::{LoadError, Store, plans, runs};
use crate::plan::NewPlan;
use crate::report::{RunReport, RunStatus};

/// Runs the pipeline once and records the run. Never returns an error: a failed or refused
/// run is a report with that status (and the table as it was).
pub async fn execute(
    store: &Store,
    contract: Arc<Contract>,
    request: RunRequest,
    progress: Arc<dyn Progress>,
) -> RunReport {
    let clock = Instant::now();
    let source = request.source.display().to_string();
    let mut report = RunReport::begin(
        &request.pipeline,
        &request.command,
        &source,
        request.dry_run,
    );
    let result = {
        let store = store.clone();
        let contract = Arc::clone(&contract);
        let request = request.clone();
        let mut report = report.clone();
        tokio::task::spawn_blocking(move || {
            let new = new_plan(&request, None);
            let result = run_in_transaction(
                &store,
                &contract,
                &request,
                &*progress,
                &mut report,
                &clock,
                Some(&new),
            );
            (result, report)
        })
        .await
    };
    let result = match result {
        Ok((result, run_report)) => {
            report = run_report;
            result
        }
        Err(e) => Err(RunFailure::Internal(format!("the run's thread: {e}"))),
    };
    report.duration_ms = clock.elapsed().as_millis() as u64;
    report.finished_at = crate::load::now();
    if request.dry_run
        && let Err(e) = plans::prune(store, &report.finished_at).await
    {
        tracing::warn!("could not prune expired plans: {e}");
    }
    // A dry run a guard would refuse has its plan stored already; other refused runs get
    // theirs computed below.
    let (result, stored_plan) = match result {
        Ok(Landed::Refused { plan, reason }) => (Err(RunFailure::Refused(reason)), Some(plan)),
        other => (other, None),
    };
    match result {
        Ok(Landed::Run(run_id)) => report.run_id = Some(run_id),
        Ok(Landed::Plan(_) | Landed::Refused { .. }) => {
            unreachable!("only the plan of a refused run is not recorded")
        }
        Err(failure) => {
            report.status = match failure {
                RunFailure::Refused(_) => RunStatus::Refused,
                RunFailure::Load(LoadError::Busy { .. }) => RunStatus::Skipped,
                _ => RunStatus::Failed,
            };
            report.inserted = 0;
            report.updated = 0;
            report.deleted = 0;
            report.changes = None;
            let mut message = failure.to_string();
            if matches!(failure, RunFailure::Extract(ExtractError::Invalid(_))) {
                message.push_str(&format!(
                    "\nthe directory is unchanged; run `ucm validate {}` to list every error",
                    request.source.display()
                ));
            }
            report.error = Some(message.clone());
            // A refused run, dry or not, leaves its plan for review (ucm apply, the console's
            // Approve): a dry run's own, otherwise the same run computed with the guards aside.
            if report.status == RunStatus::Refused {
                report.plan_id = match stored_plan {
                    Some(plan) => Some(plan),
                    None => plan_for_refused(store, &contract, &request, &message).await,
                };
            }
            match runs::record(store, &report).await {
                Ok(id) => report.run_id = Some(id),
                Err(e) => tracing::error!("could not record the failed run: {e}"),
            }
            if let (Some(plan), Some(run)) = (report.plan_id, report.run_id) {
                let _ = plans::set_run(store, plan, run).await;
            }
        }
    }
    report
}

fn new_plan(request: &RunRequest, refused_because: Option<String>) -> NewPlan {
    NewPlan {
        ttl_hours: request.plan_ttl_hours,
        refused_because,
        directory_csv: request.directory_csv.clone(),
    }
}

/// The plan of a run a guard refused: the same run computed again as a dry run (the guards
/// aside), stored as awaiting approval. `ucm apply` of it is the reviewed override.
async fn plan_for_refused(
    store: &Store,
    contract: &Arc<Contract>,
    request: &RunRequest,
    refusal: &str,
) -> Option<i64> {
    let mut dry = request.clone();
    dry.dry_run = true;
    dry.force = true;
    let clock = Instant::now();
    let mut report = RunReport::begin(
        &dry.pipeline,
        &dry.command,
        &dry.source.display().to_string(),
        true,
    );
    let new = new_plan(&dry, Some(refusal.to_owned()));
    let computed = {
        let (store, contract) = (store.clone(), Arc::clone(contract));
        tokio::task::spawn_blocking(move || {
            let landed = run_in_transaction(
                &store,
                &contract,
                &dry,
                &NoProgress,
                &mut report,
                &clock,
                Some(&new),
            );
            (landed, report)
        })
        .await
    };
    match computed {
        Ok((Ok(Landed::Plan(id)), _)) => {
            tracing::warn!(
                pipeline = request.pipeline,
                plan = id,
                "a guard refused the run; its plan #{id} awaits approval (ucm plan show {id}, ucm apply {id})"
            );
            Some(id)
        }
        // Computed with the guards aside (force): neither can happen.
        Ok((Ok(Landed::Run(_) | Landed::Refused { .. }), _)) => None,
        Ok((Err(e), _)) => {
            tracing::error!("could not compute the plan of the refused run: {e}");
            None
        }
        Err(e) => {
            tracing::error!("could not compute the plan of the refused run: {e}");
            None
        }
    }
}
