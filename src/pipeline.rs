//! Runs the pipeline once: extract, transform and load in one streaming pass, inside one
//! transaction, so a run lands whole or not at all.
//!
//! The parse-and-merge side runs on its own thread and hands batches of changes to the
//! database side over a bounded channel, so the two cores work at the same time and memory
//! stays bounded by the channel, the directory and the key index.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crate::extract::{Contract, ExtractError, ReadError};
use crate::load::contacts::compare;
use crate::load::{ExistingRows, LoadError, Op, Store, plans, runs};
use crate::numbers::NumberPlan;
use crate::plan::{Base, NewPlan, PlanSink, RunChangeLog};
use crate::report::{RunReport, RunStatus};
use crate::transform::{
    Arriving, Directory, ExternalRow, KeyIndex, MergePolicy, Merger, Rejection,
    directory as directory_csv,
};

/// Changes per message between the parser thread and the writer.
const OPS_PER_BATCH: usize = 1024;
/// After this many contacts, the key index is sized for the whole source.
const ESTIMATE_AFTER: u64 = 16384;
/// Messages in flight: bounds the memory between the two sides.
const BATCHES_IN_FLIGHT: usize = 4;
/// Contacts that have arrived ahead of their merge (see `Merger::arrive`): enough for their
/// key-index cache misses to overlap.
const LOOKAHEAD: usize = 8;

/// Everything one run needs to know.
#[derive(Clone, Debug)]
pub struct RunRequest {
    pub pipeline: String,
    /// `import` or `run`, as recorded.
    pub command: String,
    pub source: PathBuf,
    pub policy: MergePolicy,
    /// Reload the directory from this CSV first (in the run's transaction).
    pub directory_csv: Option<PathBuf>,
    pub max_delete_ratio: f64,
    /// Hours the plan of a dry run or a refused run can be applied.
    pub plan_ttl_hours: u64,
    /// Changes a landed run keeps in its change list, and for how many hours.
    pub run_changes_kept: u64,
    pub run_changes_ttl_hours: u64,
    pub dry_run: bool,
    pub force: bool,
}

/// How a run's transaction ended without a failure.
enum Landed {
    /// The run landed and was recorded with this id.
    Run(i64),
    /// The plan of a refused run was computed and stored (the refused run is recorded by
    /// [`execute`]).
    Plan(i64),
}

/// Receives progress while a run parses its source.
pub trait Progress: Send + Sync {
    /// The source is `total` bytes long.
    fn start(&self, total: u64);
    /// `bytes` of it have been parsed.
    fn advance(&self, bytes: u64);
    fn finish(&self);
}

/// No progress display.
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _: u64) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}

/// Why a run did not land.
#[derive(Debug, thiserror::Error)]
enum RunFailure {
    #[error(transparent)]
    Extract(#[from] ExtractError),
    #[error(transparent)]
    Directory(#[from] crate::transform::DirectoryError),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("{0}")]
    Refused(String),
    #[error("internal error: {0}")]
    Internal(String),
}

/// What the parse-and-merge thread learned.
struct ParseOutcome {
    contacts_read: u64,
    rejected: u64,
    rejections: Vec<Rejection>,
    unchanged: u64,
    deletions: Vec<i64>,
    external_deletions: u64,
    external_rows_before: u64,
    sha256: String,
}

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
    match result {
        Ok(Landed::Run(run_id)) => report.run_id = Some(run_id),
        Ok(Landed::Plan(_)) => unreachable!("only the plan of a refused run is not recorded"),
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
            if report.status == RunStatus::Refused && !request.dry_run {
                report.plan_id = plan_for_refused(store, &contract, &request, &message).await;
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
        Ok((Ok(Landed::Run(_)), _)) => None,
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

/// The run on a blocking thread: the transaction's thread applies the changes that the
/// parser thread sends it, then checks the guards and commits or rolls back.
fn run_in_transaction(
    store: &Store,
    contract: &Contract,
    request: &RunRequest,
    progress: &dyn Progress,
    report: &mut RunReport,
    clock: &Instant,
    plan: Option<&NewPlan>,
) -> Result<Landed, RunFailure> {
    // What can fail without the database fails before the transaction starts: the source
    // must be readable and the CSV valid.
    if let Err(source) = crate::extract::local::open_regular(&request.source) {
        return Err(ExtractError::Open {
            path: request.source.clone(),
            source,
        }
        .into());
    }
    let csv_entries = match &request.directory_csv {
        Some(path) => Some(directory_csv::read_csv(path)?),
        None => None,
    };
    let mut run = store.begin_run(crate::load::now())?;
    tracing::info!(database = store.url(), "run lock held");
    // A run that lands keeps its change list (the first `run_changes_kept` changes).
    let mut change_log = None;
    if !request.dry_run {
        // The rows this run writes name it (provenance); a run that does not land leaves
        // no trace of the reservation.
        let run_id = run.reserve_run_id()?;
        change_log = Some(RunChangeLog::begin(
            &mut run,
            run_id,
            request.run_changes_kept,
            request.run_changes_ttl_hours,
        )?);
    }
    // The table's index is read (on SQLite, on a second connection) while the directory is.
    let table_read = run.start_table_read();
    let directory = match csv_entries {
        Some(entries) => {
            if !request.dry_run {
                run.replace_directory(&entries)?;
            }
            Directory::new(entries, &request.policy)
        }
        None => run.read_directory(&request.policy)?,
    };
    tracing::debug!(
        entries = directory.len(),
        ms = clock.elapsed().as_millis() as u64,
        "directory read"
    );

    // The parser thread starts reading the source (its scanner hashes the file) while the
    // table's index is read; the merge waits for the index.
    let (table_sender, table_receiver) = std::sync::mpsc::sync_channel::<Table>(1);
    let (sender, receiver) = std::sync::mpsc::sync_channel::<Vec<Op>>(BATCHES_IN_FLIGHT);
    // A dry run writes its changes into a plan, in this transaction, as they come.
    let mut sink = match plan.filter(|_| request.dry_run) {
        Some(new) => {
            let base = Base {
                table: crate::plan::fingerprint::table(&mut run)?,
                directory: crate::plan::fingerprint::directory(&directory),
                policy: crate::plan::fingerprint::policy(&request.policy),
            };
            let source = request.source.display().to_string();
            Some(PlanSink::begin(
                &mut run,
                &request.pipeline,
                &source,
                base,
                new,
            )?)
        }
        None => None,
    };
    let numbers = store.numbers().clone();
    let (written, outcome) = std::thread::scope(|scope| {
        let parser = scope.spawn(|| {
            parse_and_merge(
                contract,
                MergeWith {
                    policy: &request.policy,
                    directory: &directory,
                    numbers: (!request.dry_run).then_some(&numbers),
                },
                table_receiver,
                &request.source,
                sender,
                progress,
            )
        });
        let written: Result<(), LoadError> = (|| {
            // Owned here, so a failed read drops it and the waiting parser stops.
            let table_sender = table_sender;
            let table = table_read.finish(&mut run)?;
            // An empty table is loaded without its search indexes, built before the commit.
            // It keeps no change list either: its changes are the whole table, which the
            // console shows as contacts (and the fresh import stays as fast as it was).
            if !request.dry_run && table.0.is_empty() && table.1.existing_rows() == 0 {
                run.defer_search_indexes()?;
                change_log = None;
            }
            tracing::debug!(
                external = table.1.existing_rows(),
                ms = clock.elapsed().as_millis() as u64,
                "table index read"
            );
            // A parser that already stopped (an unreadable source) reports its own error.
            let _ = table_sender.send(table);
            for batch in &receiver {
                for op in batch {
                    match (&mut sink, &mut change_log) {
                        (Some(sink), _) => {
                            let change = run.describe(&op)?;
                            sink.push(&mut run, change)?;
                        }
                        (None, Some(log)) if log.wants_more() => {
                            let change = run.describe(&op)?;
                            log.push(&mut run, &change)?;
                            run.apply(op)?;
                        }
                        _ => run.apply(op)?,
                    }
                }
            }
            run.flush()
        })();
        // Closing the receiver stops the parser if writing failed first.
        drop(receiver);
        (written, parser.join())
    });
    let outcome = outcome.map_err(|_| RunFailure::Internal("the parser thread panicked".into()))?;
    written?;
    let outcome = outcome?;
    tracing::debug!(
        ms = clock.elapsed().as_millis() as u64,
        "parsed, merged and written"
    );

    report.source_sha256 = Some(outcome.sha256.clone());
    report.contacts_read = outcome.contacts_read;
    report.rejected = outcome.rejected;
    report.rejections = outcome.rejections;
    report.unchanged = outcome.unchanged;

    // Guards: refuse, change nothing, say why (--force overrides).
    if !request.force {
        if outcome.contacts_read == 0 {
            return Err(RunFailure::Refused(format!(
                "refused: {} holds no contacts; loading it would delete every external contact \
                 (use --force if that is intended)",
                request.source.display()
            )));
        }
        if outcome.external_rows_before > 0 {
            let ratio = outcome.external_deletions as f64 / outcome.external_rows_before as f64;
            if ratio > request.max_delete_ratio {
                return Err(RunFailure::Refused(format!(
                    "refused: the run would delete {} of {} external contacts ({:.0}%), more than \
                     max_delete_ratio = {} allows (use --force if that is intended)",
                    outcome.external_deletions,
                    outcome.external_rows_before,
                    ratio * 100.0,
                    request.max_delete_ratio
                )));
            }
        }
    }

    match sink {
        Some(mut sink) => {
            for id in outcome.deletions {
                let change = run.describe(&Op::Delete { id })?;
                sink.push(&mut run, change)?;
            }
            (report.inserted, report.updated, report.deleted) = sink.counts();
            let (preview, omitted) = sink.preview();
            report.changes = Some(preview);
            report.changes_omitted = (omitted > 0).then_some(omitted);
            report.status = RunStatus::DryRun;
            report.duration_ms = clock.elapsed().as_millis() as u64;
            report.finished_at = crate::load::now();
            // Nothing but the plan (and the run's record) is written: committed together.
            let refused_run = plan.is_some_and(|p| p.refused_because.is_some());
            let run_id = if refused_run {
                None
            } else {
                Some(run.record_run(report)?)
            };
            let plan_id = sink.finish(&mut run, report, run_id)?;
            report.plan_id = Some(plan_id);
            run.commit()?;
            Ok(match run_id {
                Some(id) => Landed::Run(id),
                None => Landed::Plan(plan_id),
            })
        }
        None => {
            if let Some(mut log) = change_log {
                for &id in &outcome.deletions {
                    if !log.wants_more() {
                        break;
                    }
                    let change = run.describe(&Op::Delete { id })?;
                    log.push(&mut run, &change)?;
                }
                report.changes_kept = Some(log.finish(&mut run)?);
            }
            run.delete(&outcome.deletions)?;
            (report.inserted, report.updated, report.deleted) = run.counts();
            report.status = RunStatus::Succeeded;
            report.duration_ms = clock.elapsed().as_millis() as u64;
            report.finished_at = crate::load::now();
            let id = run.record_run(report)?;
            run.commit()?;
            Ok(Landed::Run(id))
        }
    }
}

/// What the table holds when the run starts: directory rows by id, external rows by key.
type Table = (ExistingRows, KeyIndex);

/// What the parser thread merges with: the rules, the directory, and the number plan that
/// keys the rows' numbers (None for a dry run, which writes no row).
struct MergeWith<'r> {
    policy: &'r MergePolicy,
    directory: &'r Directory,
    numbers: Option<&'r NumberPlan>,
}

/// The parser thread: reads and validates the source, merges each contact, compares each row
/// with the table, and sends the changes.
fn parse_and_merge(
    contract: &Contract,
    with: MergeWith<'_>,
    table: std::sync::mpsc::Receiver<Table>,
    source: &Path,
    sender: std::sync::mpsc::SyncSender<Vec<Op>>,
    progress: &dyn Progress,
) -> Result<ParseOutcome, RunFailure> {
    let MergeWith {
        policy,
        directory,
        numbers,
    } = with;
    let file_len = std::fs::metadata(source).map(|m| m.len()).unwrap_or(0);
    progress.start(file_len);
    let parsed = std::sync::atomic::AtomicU64::new(0);
    let mut accepted = 0u64;
    // The table's rows and the merger, once the transaction's thread has read the table.
    let mut merging: Option<(ExistingRows, Merger)> = None;
    let ready = || -> Result<(ExistingRows, Merger), RunFailure> {
        let (existing, index) = table.recv().map_err(|_| {
            RunFailure::Internal("the database thread stopped before reading the table".into())
        })?;
        Ok((existing, Merger::new(policy, directory, index)))
    };
    let mut batch = Vec::with_capacity(OPS_PER_BATCH);
    let mut unchanged = 0u64;
    let send = |batch: &mut Vec<Op>| -> Result<(), RunFailure> {
        if let Some(plan) = numbers {
            for op in batch.iter_mut() {
                if let Op::Insert(row) | Op::Update { row, .. } = op {
                    crate::load::numbers::attach_keys(plan, row);
                }
            }
        }
        let full = std::mem::replace(batch, Vec::with_capacity(OPS_PER_BATCH));
        sender
            .send(full)
            .map_err(|_| RunFailure::Internal("the database writer stopped".into()))
    };
    let mut push = |op: Option<Op>, batch: &mut Vec<Op>| match op {
        Some(op) => batch.push(op),
        None => unchanged += 1,
    };
    // Contacts arrive (key, fingerprint, key-index slot prefetched) a few ahead of their
    // merge, in order.
    let mut arrived: VecDeque<Arriving> = VecDeque::with_capacity(LOOKAHEAD + 1);
    let mut merge = |merger: &mut Merger, arriving, batch: &mut Vec<Op>| match merger
        .accept_arrived(arriving)
    {
        Some(ExternalRow::Changed(row, stored)) => push(compare(row, stored), batch),
        Some(ExternalRow::Unchanged) => push(None, batch),
        None => {}
    };
    let summary = contract
        .read(
            source,
            1,
            &|bytes| {
                parsed.store(bytes, std::sync::atomic::Ordering::Relaxed);
                progress.advance(bytes)
            },
            |contact| {
                let (_, merger) = match &mut merging {
                    Some(merging) => merging,
                    None => merging.insert(ready()?),
                };
                accepted += 1;
                if accepted == ESTIMATE_AFTER {
                    // Size the key index from the contacts a byte so far, once.
                    let bytes = parsed.load(std::sync::atomic::Ordering::Relaxed);
                    if let Some(total) = file_len.saturating_mul(accepted).checked_div(bytes) {
                        merger.expect_contacts(total);
                    }
                }
                arrived.push_back(merger.arrive(contact));
                if arrived.len() > LOOKAHEAD
                    && let Some(arriving) = arrived.pop_front()
                {
                    merge(merger, arriving, &mut batch);
                }
                if batch.len() >= OPS_PER_BATCH {
                    send(&mut batch)?;
                }
                Ok(())
            },
        )
        .map_err(|e| match e {
            ReadError::Open(error) => ExtractError::Open {
                path: source.to_owned(),
                source: error,
            }
            .into(),
            ReadError::Invalid(invalid) => RunFailure::Extract(ExtractError::Invalid(invalid)),
            ReadError::Sink(failure) => failure,
        })?;
    progress.finish();
    let contacts_read = summary.contacts;
    let sha256 = summary.sha256;
    let (mut existing, mut merger) = match merging {
        Some(merging) => merging,
        None => ready()?,
    };
    for arriving in arrived.drain(..) {
        merge(&mut merger, arriving, &mut batch);
    }
    let (rejected, rejections) = (merger.rejected, std::mem::take(&mut merger.rejections));
    let (directory_rows, mut index) = merger.finish();
    let external_rows_before = index.existing_rows();
    for row in directory_rows {
        push(existing.classify(Box::new(row)), &mut batch);
        if batch.len() >= OPS_PER_BATCH {
            send(&mut batch)?;
        }
    }
    if !batch.is_empty() {
        send(&mut batch)?;
    }
    let external: Vec<i64> = index.leftovers().collect();
    let external_deletions = external.len() as u64;
    let mut deletions: Vec<i64> = existing.leftovers().chain(external).collect();
    deletions.sort_unstable();
    Ok(ParseOutcome {
        contacts_read,
        rejected,
        rejections,
        unchanged,
        deletions,
        external_deletions,
        external_rows_before,
        sha256,
    })
}
