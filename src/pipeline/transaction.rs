//! One run's transaction, on a blocking thread: the inputs checked, the run lock taken, the
//! directory and the table's index read, the parser thread's changes applied (or, for a dry
//! run, written into its plan) as they come, the guards checked, and the run committed whole
//! or rolled back.

use std::sync::mpsc::{Receiver, sync_channel};
use std::time::Instant;

use super::parse::{MergeWith, ParseOutcome, parse_and_merge};
use super::request::{Progress, RunFailure, RunRequest, Table};
use crate::extract::{Contract, ExtractError};
use crate::load::run::TableRead;
use crate::load::{LoadError, Op, RunTransaction, Store};
use crate::plan::{Base, NewPlan, PlanSink, RunChangeLog};
use crate::report::{RunReport, RunStatus};
use crate::transform::{Directory, DirectoryEntry, directory as directory_csv};

/// Messages in flight between the parser thread and the writer: bounds the memory between
/// the two sides.
const BATCHES_IN_FLIGHT: usize = 4;

/// How a run's transaction ended without a failure.
pub(super) enum Landed {
    /// The run landed and was recorded with this id.
    Run(i64),
    /// The plan of a refused run was computed and stored (the refused run is recorded by
    /// [`super::execute`]).
    Plan(i64),
    /// A dry run a guard would refuse: the plan it computed is stored as the refused run's,
    /// awaiting approval (the refused run is recorded by [`super::execute`]).
    Refused { plan: i64, reason: String },
}

/// Where the changes go while the source streams: into a dry run's plan, or applied (the
/// first ones also into the run's change list).
struct Destination {
    plan: Option<PlanSink>,
    change_log: Option<RunChangeLog>,
}

/// What the parser thread is given: the contract, what it merges with, the run's request
/// (its source) and where its progress goes.
struct ParseJob<'r> {
    contract: &'r Contract,
    with: MergeWith<'r>,
    request: &'r RunRequest,
    progress: &'r dyn Progress,
}

/// The run on a blocking thread: the transaction's thread applies the changes that the
/// parser thread sends it, then checks the guards and commits or rolls back.
pub(super) fn run_in_transaction(
    store: &Store,
    contract: &Contract,
    request: &RunRequest,
    progress: &dyn Progress,
    report: &mut RunReport,
    clock: &Instant,
    plan: Option<&NewPlan>,
) -> Result<Landed, RunFailure> {
    let csv_entries = check_inputs(request)?;
    let mut run = store.begin_run(crate::load::now())?;
    tracing::info!(database = store.url(), "run lock held");
    let change_log = begin_change_log(&mut run, request)?;
    // The table's index is read (on SQLite, on a second connection) while the directory is.
    let table_read = run.start_table_read();
    let directory = read_directory(&mut run, csv_entries, request)?;
    tracing::debug!(
        entries = directory.len(),
        ms = clock.elapsed().as_millis() as u64,
        "directory read"
    );
    let plan_sink = match plan.filter(|_| request.dry_run) {
        Some(new) => Some(begin_plan(&mut run, request, &directory, new)?),
        None => None,
    };
    let mut to = Destination {
        plan: plan_sink,
        change_log,
    };
    let numbers = store.numbers().clone();
    let with = MergeWith {
        policy: &request.policy,
        directory: &directory,
        numbers: (!request.dry_run).then_some(&numbers),
    };
    let job = ParseJob {
        contract,
        with,
        request,
        progress,
    };
    let mut outcome = stream(&mut run, &mut to, table_read, job, clock)?;
    report.source_sha256 = Some(outcome.sha256.clone());
    report.contacts_read = outcome.contacts_read;
    report.rejected = outcome.rejected;
    report.rejections = std::mem::take(&mut outcome.rejections);
    report.unchanged = outcome.unchanged;
    let refusal = if request.force {
        Ok(())
    } else {
        check_guards(request, &outcome)
    };
    match (to.plan, refusal) {
        // A dry run a guard would refuse has computed the refused run's plan already.
        (Some(mut sink), Err(RunFailure::Refused(reason))) => {
            sink.refuse(&reason);
            match land_plan(run, sink, &outcome, report, clock)? {
                Landed::Plan(plan) => Ok(Landed::Refused { plan, reason }),
                landed => Ok(landed),
            }
        }
        (_, Err(failure)) => Err(failure),
        (Some(sink), Ok(())) => land_plan(run, sink, &outcome, report, clock),
        (None, Ok(())) => land_run(run, to.change_log, &outcome, report, clock),
    }
}

/// What can fail without the database fails before the transaction starts: the source must
/// be readable and the directory CSV, when there is one, valid.
fn check_inputs(request: &RunRequest) -> Result<Option<Vec<DirectoryEntry>>, RunFailure> {
    if let Err(source) = crate::extract::local::open_regular(&request.source) {
        return Err(ExtractError::Open {
            path: request.source.clone(),
            source,
        }
        .into());
    }
    Ok(match &request.directory_csv {
        Some(path) => Some(directory_csv::read_csv(path)?),
        None => None,
    })
}

/// A run that lands keeps its change list (the first `run_changes_kept` changes); the rows
/// it writes name it (provenance), and a run that does not land leaves no trace of the
/// reservation. A dry run has neither.
fn begin_change_log(
    run: &mut RunTransaction,
    request: &RunRequest,
) -> Result<Option<RunChangeLog>, LoadError> {
    if request.dry_run {
        return Ok(None);
    }
    let run_id = run.reserve_run_id()?;
    Ok(Some(RunChangeLog::begin(
        run,
        run_id,
        request.run_changes_kept,
        request.run_changes_ttl_hours,
    )?))
}

/// The directory: from the CSV given with the run (loaded in this transaction unless it is a
/// dry run), or as the database holds it.
fn read_directory(
    run: &mut RunTransaction,
    csv_entries: Option<Vec<DirectoryEntry>>,
    request: &RunRequest,
) -> Result<Directory, LoadError> {
    Ok(match csv_entries {
        Some(entries) => {
            if !request.dry_run {
                run.replace_directory(&entries)?;
            }
            Directory::new(entries, &request.policy)
        }
        None => run.read_directory(&request.policy)?,
    })
}

/// A dry run writes its changes into a plan, in this transaction, as they come; the plan
/// records what it was computed against.
fn begin_plan(
    run: &mut RunTransaction,
    request: &RunRequest,
    directory: &Directory,
    new: &NewPlan,
) -> Result<PlanSink, LoadError> {
    let base = Base {
        table: crate::plan::fingerprint::table(run)?,
        directory: crate::plan::fingerprint::directory(directory),
        policy: crate::plan::fingerprint::policy(&request.policy),
    };
    let source = request.source.display().to_string();
    PlanSink::begin(run, &request.pipeline, &source, base, new)
}

/// The parser thread reads the source (its scanner hashes the file) while this thread reads
/// the table's index, then writes each batch of changes the parser sends.
fn stream(
    run: &mut RunTransaction,
    to: &mut Destination,
    table_read: TableRead,
    job: ParseJob<'_>,
    clock: &Instant,
) -> Result<ParseOutcome, RunFailure> {
    let ParseJob {
        contract,
        with,
        request,
        progress,
    } = job;
    let (table_sender, table_receiver) = sync_channel::<Table>(1);
    let (sender, receiver) = sync_channel::<Vec<Op>>(BATCHES_IN_FLIGHT);
    let (written, outcome) = std::thread::scope(|scope| {
        let parser = scope.spawn(|| {
            parse_and_merge(
                contract,
                with,
                table_receiver,
                &request.source,
                sender,
                progress,
            )
        });
        let written: Result<(), LoadError> = (|| {
            // Owned here, so a failed read drops it and the waiting parser stops.
            let table_sender = table_sender;
            let table = table_read.finish(run)?;
            // An empty table is loaded without its search indexes, built before the commit.
            // It keeps no change list either: its changes are the whole table, which the
            // console shows as contacts (and the fresh import stays as fast as it was).
            if !request.dry_run && table.0.is_empty() && table.1.existing_rows() == 0 {
                run.defer_search_indexes()?;
                to.change_log = None;
            }
            tracing::debug!(
                external = table.1.existing_rows(),
                ms = clock.elapsed().as_millis() as u64,
                "table index read"
            );
            // A parser that already stopped (an unreadable source) reports its own error.
            let _ = table_sender.send(table);
            write_changes(run, to, &receiver)?;
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
    Ok(outcome)
}

/// Each change the parser sends: into the plan, or applied (and kept in the change list
/// while it wants more).
fn write_changes(
    run: &mut RunTransaction,
    to: &mut Destination,
    receiver: &Receiver<Vec<Op>>,
) -> Result<(), LoadError> {
    for batch in receiver {
        for op in batch {
            match (&mut to.plan, &mut to.change_log) {
                (Some(sink), _) => {
                    let change = run.describe(&op)?;
                    sink.push(run, change)?;
                }
                (None, Some(log)) if log.wants_more() => {
                    let change = run.describe(&op)?;
                    log.push(run, &change)?;
                    run.apply(op)?;
                }
                _ => run.apply(op)?,
            }
        }
    }
    Ok(())
}

/// The guards: refuse, change nothing, say why (`--force` overrides).
fn check_guards(request: &RunRequest, outcome: &ParseOutcome) -> Result<(), RunFailure> {
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
    Ok(())
}

/// A dry run (or a refused run's plan) lands its plan and nothing else (with the run's
/// record, unless it is a refused run's plan): committed together.
fn land_plan(
    mut run: RunTransaction,
    mut sink: PlanSink,
    outcome: &ParseOutcome,
    report: &mut RunReport,
    clock: &Instant,
) -> Result<Landed, RunFailure> {
    for &id in &outcome.deletions {
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
    let run_id = if sink.is_refused() {
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

/// A run lands: its deletions (the first ones kept in its change list), its counts and its
/// record, committed.
fn land_run(
    mut run: RunTransaction,
    change_log: Option<RunChangeLog>,
    outcome: &ParseOutcome,
    report: &mut RunReport,
    clock: &Instant,
) -> Result<Landed, RunFailure> {
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
