//! Plans: what a dry run, or a run a guard refused, would change, stored so that it can be
//! reviewed and then landed exactly as reviewed.
//!
//! A plan holds the full change list (per row: insert, update or delete; per field the old
//! and new value and the side the new one came from) and its **base fingerprint**: what it
//! was computed against (the merged table's rows, the directory, the merge policy, the
//! source's sha256). [`apply`] lands the stored changes in one run transaction without
//! merging again, after checking in that transaction that nothing in the base moved; if
//! something did, it refuses, says what moved, and changes nothing.

pub mod fingerprint;
pub mod render;

use std::path::PathBuf;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::fields::{Field, empty_values};
use crate::load::contacts::Op;
use crate::load::plans::{self, ChangeList, PlanRecord, StoredPlanChange};
use crate::load::{LoadError, Store};
use crate::load::{RunTransaction, sides_of};
use crate::report::{Action, Change, FieldChange, RunReport, RunStatus};
use crate::transform::{Directory, MergePolicy, MergedRow, Origin, directory as csv};

/// Changes read from the database at a time while a plan is applied or shown.
const CHANGES_PER_PAGE: i64 = 2000;

/// What a plan was computed against (see [`fingerprint`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Base {
    pub table: String,
    pub directory: String,
    pub policy: String,
}

/// How long plans are kept, and what a new one is.
#[derive(Clone, Debug)]
pub struct NewPlan {
    /// Hours until it expires (`[merge] plan_ttl_hours`).
    pub ttl_hours: u64,
    /// Why a guard refused the run it was computed for (the plan then awaits approval).
    pub refused_because: Option<String>,
    /// The directory CSV the run reloaded the directory from.
    pub directory_csv: Option<PathBuf>,
}

/// A change as stored in `plan_changes.change`: compact JSON (a fresh plan of 1,000,000
/// contacts is a million of these), short keys, fields as `[index, old, new]` in the order of
/// `crate::fields::FIELD_NAMES`, and the 22 sides as bits.
#[derive(Debug, Serialize, Deserialize)]
struct StoredChange {
    #[serde(rename = "o")]
    origin: String,
    #[serde(rename = "d", default, skip_serializing_if = "Option::is_none")]
    directory_id: Option<String>,
    #[serde(rename = "k", default, skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    #[serde(rename = "w", default, skip_serializing_if = "Option::is_none")]
    old_origin: Option<String>,
    #[serde(rename = "s")]
    sides: u32,
    #[serde(rename = "f")]
    fields: Vec<(u8, Option<String>, Option<String>)>,
}

fn field_index(name: &str) -> Option<u8> {
    Field::from_name(name).map(|f| f.index() as u8)
}

fn stored(seq: i64, change: &Change) -> StoredPlanChange {
    let json = StoredChange {
        origin: change.origin.as_str().to_owned(),
        directory_id: change.directory_id.clone(),
        key: change.key.clone(),
        old_origin: change.old_origin.map(|o| o.as_str().to_owned()),
        sides: change.sides,
        fields: change
            .fields
            .iter()
            .filter_map(|f| Some((field_index(f.field)?, f.old.clone(), f.new.clone())))
            .collect(),
    };
    StoredPlanChange {
        seq,
        row_id: change.row_id,
        action: change.action.as_str().to_owned(),
        change: serde_json::to_string(&json).expect("changes serialise"),
    }
}

/// Why a stored change cannot be read back (a database edited by hand, or a bug).
#[derive(Debug, thiserror::Error)]
#[error("plan change #{seq} is unreadable: {why}")]
pub struct UnreadableChange {
    seq: i64,
    why: String,
}

/// A stored change read back as the report's [`Change`].
pub fn change_of(stored: &StoredPlanChange) -> Result<Change, UnreadableChange> {
    let bad = |why: String| UnreadableChange {
        seq: stored.seq,
        why,
    };
    let json: StoredChange =
        serde_json::from_str(&stored.change).map_err(|e| bad(e.to_string()))?;
    let origin = |s: &str| Origin::parse(s).ok_or_else(|| bad(format!("origin \"{s}\"")));
    let action = Action::parse(&stored.action)
        .ok_or_else(|| bad(format!("action \"{}\"", stored.action)))?;
    let sides = sides_of(json.sides);
    let fields = json
        .fields
        .into_iter()
        .map(|(index, old, new)| {
            let field = (usize::from(index) < crate::fields::FIELD_COUNT)
                .then(|| Field::from_index(index.into()))
                .ok_or_else(|| bad(format!("field #{index}")))?;
            Ok(FieldChange {
                field: field.name(),
                old,
                new,
                side: sides[field.index()],
            })
        })
        .collect::<Result<Vec<_>, UnreadableChange>>()?;
    Ok(Change {
        action,
        origin: origin(&json.origin)?,
        directory_id: json.directory_id,
        key: json.key,
        old_origin: json.old_origin.as_deref().map(origin).transpose()?,
        row_id: stored.row_id,
        fields,
        sides: json.sides,
    })
}

/// Changes a dry run's report lists (the first ones); its plan holds them all.
pub const PREVIEW_CHANGES: usize = 1000;
/// Changes written to the plan per statement.
const CHANGES_PER_BATCH: usize = 500;

/// A change list being written in a run's transaction, a batch at a time: memory holds one
/// batch whatever the length of the list.
struct ChangeWriter {
    list: ChangeList,
    seq: i64,
    batch: Vec<StoredPlanChange>,
}

impl ChangeWriter {
    fn new(list: ChangeList) -> ChangeWriter {
        ChangeWriter {
            list,
            seq: 0,
            batch: Vec::with_capacity(CHANGES_PER_BATCH),
        }
    }

    fn push(&mut self, run: &mut RunTransaction, change: &Change) -> Result<(), LoadError> {
        self.seq += 1;
        self.batch.push(stored(self.seq, change));
        if self.batch.len() >= CHANGES_PER_BATCH {
            self.flush(run)?;
        }
        Ok(())
    }

    fn flush(&mut self, run: &mut RunTransaction) -> Result<(), LoadError> {
        if !self.batch.is_empty() {
            run.insert_changes(self.list, &self.batch)?;
            self.batch.clear();
        }
        Ok(())
    }
}

/// The change list of a run that lands, recorded in its transaction (`run_changes`) up to
/// `[merge] run_changes_kept` changes; the run's counts hold them all.
pub struct RunChangeLog {
    writer: ChangeWriter,
    kept: u64,
    limit: u64,
}

impl RunChangeLog {
    /// Starts run `run`'s list, keeping at most `limit` changes, and prunes the lists of
    /// runs that started more than `ttl_hours` ago.
    pub fn begin(
        run: &mut RunTransaction,
        run_id: i64,
        limit: u64,
        ttl_hours: u64,
    ) -> Result<RunChangeLog, LoadError> {
        let ttl = time::Duration::hours(ttl_hours.min(24 * 365 * 100) as i64);
        run.prune_run_changes(&crate::load::stored_time(
            time::OffsetDateTime::now_utc() - ttl,
        ))?;
        Ok(RunChangeLog {
            writer: ChangeWriter::new(ChangeList::Run(run_id)),
            kept: 0,
            limit,
        })
    }

    /// Whether the next change is still kept (describing a change reads its old row: a run
    /// past the limit does not pay for that).
    pub fn wants_more(&self) -> bool {
        self.kept < self.limit
    }

    /// Records `change` if the list is not full.
    pub fn push(&mut self, run: &mut RunTransaction, change: &Change) -> Result<(), LoadError> {
        if self.wants_more() {
            self.kept += 1;
            self.writer.push(run, change)?;
        }
        Ok(())
    }

    /// Writes the last batch; returns how many changes were kept.
    pub fn finish(mut self, run: &mut RunTransaction) -> Result<u64, LoadError> {
        self.writer.flush(run)?;
        Ok(self.kept)
    }
}

/// A plan being written by a dry run, in the run's transaction, change by change: memory
/// holds one batch and the report's preview, whatever the size of the plan.
pub struct PlanSink {
    record: PlanRecord,
    writer: ChangeWriter,
    preview: Vec<Change>,
    omitted: u64,
}

impl PlanSink {
    /// Starts a plan of `pipeline` computed from `source` against `base`.
    pub fn begin(
        run: &mut RunTransaction,
        pipeline: &str,
        source: &str,
        base: Base,
        new: &NewPlan,
    ) -> Result<PlanSink, LoadError> {
        let now = time::OffsetDateTime::now_utc();
        // A century at most: far beyond any sensible TTL, and no overflow.
        let ttl = time::Duration::hours(new.ttl_hours.min(24 * 365 * 100) as i64);
        let created_at = crate::load::stored_time(now);
        let mut record = PlanRecord {
            id: 0,
            pipeline: pipeline.to_owned(),
            expires_at: crate::load::stored_time(now + ttl),
            created_at,
            status: if new.refused_because.is_some() {
                "awaiting_approval"
            } else {
                "pending"
            }
            .to_owned(),
            reason: new.refused_because.clone(),
            run_id: None,
            applied_run_id: None,
            source: Some(source.to_owned()),
            source_sha256: None,
            directory_csv: new.directory_csv.as_ref().map(|p| p.display().to_string()),
            base_table: base.table,
            base_directory: base.directory,
            base_policy: base.policy,
            inserted: 0,
            updated: 0,
            deleted: 0,
            report: "{}".to_owned(),
        };
        record.id = run.insert_plan(&record)?;
        Ok(PlanSink {
            writer: ChangeWriter::new(ChangeList::Plan(record.id)),
            record,
            preview: Vec::new(),
            omitted: 0,
        })
    }

    /// Adds a change.
    pub fn push(&mut self, run: &mut RunTransaction, change: Change) -> Result<(), LoadError> {
        match change.action {
            Action::Insert => self.record.inserted += 1,
            Action::Update => self.record.updated += 1,
            Action::Delete => self.record.deleted += 1,
        }
        self.writer.push(run, &change)?;
        if self.preview.len() < PREVIEW_CHANGES {
            self.preview.push(change);
        } else {
            self.omitted += 1;
        }
        Ok(())
    }

    /// The plan is that of a run a guard refused (`reason`): it awaits approval.
    pub fn refuse(&mut self, reason: &str) {
        self.record.status = "awaiting_approval".to_owned();
        self.record.reason = Some(reason.to_owned());
    }

    /// Whether the plan is that of a refused run (its run is recorded by whoever ran it).
    pub fn is_refused(&self) -> bool {
        self.record.reason.is_some()
    }

    /// Rows the plan inserts, updates and deletes.
    pub fn counts(&self) -> (u64, u64, u64) {
        (
            self.record.inserted as u64,
            self.record.updated as u64,
            self.record.deleted as u64,
        )
    }

    /// The first changes (at most [`PREVIEW_CHANGES`]) and how many more the plan holds.
    pub fn preview(&mut self) -> (Vec<Change>, u64) {
        (std::mem::take(&mut self.preview), self.omitted)
    }

    /// Writes the last changes and what the computation learned last (`report`, the run
    /// that computed it when it was recorded); returns the plan's id.
    pub fn finish(
        mut self,
        run: &mut RunTransaction,
        report: &RunReport,
        run_id: Option<i64>,
    ) -> Result<i64, LoadError> {
        self.writer.flush(run)?;
        let mut summary = report.clone();
        summary.changes = None;
        self.record.report = summary.to_json();
        self.record.source_sha256 = report.source_sha256.clone();
        self.record.run_id = run_id;
        run.complete_plan(&self.record)?;
        Ok(self.record.id)
    }
}

/// Up to `limit` changes of `list` after position `after` (a page, for showing).
pub async fn changes(
    store: &Store,
    list: ChangeList,
    after: i64,
    limit: i64,
) -> Result<Vec<(i64, Change)>, PlanError> {
    plans::changes(store, list, after, limit)
        .await?
        .iter()
        .map(|s| Ok((s.seq, change_of(s)?)))
        .collect()
}

/// Why a plan could not be shown or applied (a refusal is a report, not an error).
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Unreadable(#[from] UnreadableChange),
}

/// What `ucm apply` needs besides the store: the plan and the pipeline as configured now.
#[derive(Clone, Debug)]
pub struct ApplyRequest {
    pub pipeline: String,
    pub plan_id: i64,
    /// The merge policy configured now: it must be the one the plan was computed with.
    pub policy: MergePolicy,
}

/// Applies plan `request.plan_id`: exactly its changes, in one run transaction, if nothing it
/// was computed against moved; otherwise a refused report saying what moved. Recorded as a run
/// (`command` = `apply`) either way. Never returns an error: failures are reports.
pub async fn apply(store: &Store, request: ApplyRequest) -> RunReport {
    let clock = Instant::now();
    let mut report = RunReport::begin(&request.pipeline, "apply", "-", false);
    report.plan_id = Some(request.plan_id);
    let outcome = match check(store, &request).await {
        Ok(plan) => {
            report.source = plan.source.clone();
            report.source_sha256 = plan.source_sha256.clone();
            let store2 = store.clone();
            let mut inner = report.clone();
            let handle = tokio::runtime::Handle::current();
            let joined = tokio::task::spawn_blocking(move || {
                let landed = apply_in_transaction(&store2, &handle, &request, &plan, &mut inner);
                (landed, inner)
            })
            .await;
            match joined {
                Ok((landed, inner)) => {
                    report = inner;
                    landed
                }
                Err(e) => Err(Outcome::Failed(format!("the apply's thread: {e}"))),
            }
        }
        Err(outcome) => Err(outcome),
    };
    report.duration_ms = clock.elapsed().as_millis() as u64;
    report.finished_at = crate::load::now();
    match outcome {
        Ok(run_id) => report.run_id = Some(run_id),
        Err(outcome) => {
            (report.status, report.error) = match outcome {
                Outcome::Refused(why) => (RunStatus::Refused, Some(why)),
                Outcome::Busy(why) => (RunStatus::Skipped, Some(why)),
                Outcome::Failed(why) => (RunStatus::Failed, Some(why)),
            };
            (report.inserted, report.updated, report.deleted) = (0, 0, 0);
            match crate::load::runs::record(store, &report).await {
                Ok(id) => report.run_id = Some(id),
                Err(e) => tracing::error!("could not record the refused apply: {e}"),
            }
        }
    }
    report
}

/// Why an apply did not land.
enum Outcome {
    Refused(String),
    Busy(String),
    Failed(String),
}

impl From<LoadError> for Outcome {
    fn from(e: LoadError) -> Outcome {
        match e {
            LoadError::Busy { .. } => Outcome::Busy(e.to_string()),
            e => Outcome::Failed(e.to_string()),
        }
    }
}

impl From<PlanError> for Outcome {
    fn from(e: PlanError) -> Outcome {
        match e {
            PlanError::Load(e) => e.into(),
            e => Outcome::Failed(e.to_string()),
        }
    }
}

/// The checks that need no lock: the plan exists, belongs to the pipeline, is neither
/// applied, discarded nor expired, and the policy configured now is the plan's.
async fn check(store: &Store, request: &ApplyRequest) -> Result<PlanRecord, Outcome> {
    let id = request.plan_id;
    let Some(plan) = plans::get(store, id).await? else {
        return Err(Outcome::Refused(format!(
            "there is no plan #{id} in {} (expired plans are pruned; `ucm plans` lists them)",
            store.url()
        )));
    };
    if plan.pipeline != request.pipeline {
        return Err(Outcome::Refused(format!(
            "plan #{id} belongs to pipeline {}, not {}: run ucm with that pipeline's config",
            plan.pipeline, request.pipeline
        )));
    }
    match plan.status.as_str() {
        "applied" => {
            return Err(Outcome::Refused(format!(
                "plan #{id} was already applied{}",
                plan.applied_run_id
                    .map(|r| format!(" by run #{r}"))
                    .unwrap_or_default()
            )));
        }
        "discarded" => return Err(Outcome::Refused(format!("plan #{id} was discarded"))),
        _ => {}
    }
    if plan.expires_at.as_str() <= crate::load::now().as_str() {
        return Err(Outcome::Refused(format!(
            "plan #{id} expired at {}: compute a new one with a dry run",
            plan.expires_at
        )));
    }
    let policy = fingerprint::policy(&request.policy);
    if policy != plan.base_policy {
        return Err(Outcome::Refused(format!(
            "the merge policy changed since plan #{id} was computed (then: {}; now: {policy}): \
             nothing was changed; compute a new plan with a dry run",
            plan.base_policy
        )));
    }
    Ok(plan)
}

/// The apply on a blocking thread, in one run transaction.
fn apply_in_transaction(
    store: &Store,
    handle: &tokio::runtime::Handle,
    request: &ApplyRequest,
    plan: &PlanRecord,
    report: &mut RunReport,
) -> Result<i64, Outcome> {
    let id = plan.id;
    let moved = |what: String| {
        Outcome::Refused(format!(
            "{what} since plan #{id} was computed: nothing was changed; compute a new plan with \
             a dry run"
        ))
    };
    // The directory the plan's changes were computed with, checked before the lock is taken
    // when it comes from a CSV file.
    let csv_entries = match &plan.directory_csv {
        Some(path) => {
            let entries = csv::read_csv(std::path::Path::new(path))
                .map_err(|e| Outcome::Failed(e.to_string()))?;
            let directory = Directory::new(entries.clone(), &request.policy);
            if fingerprint::directory(&directory) != plan.base_directory {
                return Err(moved(format!("the directory CSV {path} changed")));
            }
            Some(entries)
        }
        None => None,
    };
    let mut run = store.begin_run(crate::load::now())?;
    run.reserve_run_id()?;
    if csv_entries.is_none() {
        let directory = run.read_directory(&request.policy)?;
        if fingerprint::directory(&directory) != plan.base_directory {
            return Err(moved(
                "the directory changed (`ucm directory load`, or a run that reloaded it)".into(),
            ));
        }
    }
    if fingerprint::table(&mut run)? != plan.base_table {
        return Err(moved(
            "the merged table changed (a run landed after it: see `ucm runs`)".into(),
        ));
    }
    if let Some(entries) = &csv_entries {
        run.replace_directory(entries)?;
    }
    if plan.base_table.starts_with("0 rows") {
        // Into an empty table: the search indexes are built once at the end, as a run does.
        run.defer_search_indexes()?;
    }
    let deletions = apply_changes(store, handle, &mut run, plan)?;
    run.flush()?;
    run.delete(&deletions)?;
    (report.inserted, report.updated, report.deleted) = run.counts();
    let planned = (plan.inserted, plan.updated, plan.deleted);
    let done = (
        report.inserted as i64,
        report.updated as i64,
        report.deleted as i64,
    );
    if planned != done {
        return Err(Outcome::Failed(format!(
            "plan #{id} would insert, update and delete {planned:?} rows but {done:?} were; \
             nothing was changed"
        )));
    }
    report.status = RunStatus::Succeeded;
    report.finished_at = crate::load::now();
    let run_id = run.record_run(report)?;
    if !run.mark_plan_applied(id, run_id, &crate::load::now())? {
        return Err(Outcome::Refused(format!(
            "plan #{id} was applied, discarded or expired meanwhile: nothing was changed"
        )));
    }
    run.commit()?;
    Ok(run_id)
}

/// Applies the plan's stored changes page by page (inserts and updates as they come);
/// returns the rows it deletes, deleted together at the end as a run does.
fn apply_changes(
    store: &Store,
    handle: &tokio::runtime::Handle,
    run: &mut RunTransaction,
    plan: &PlanRecord,
) -> Result<Vec<i64>, Outcome> {
    let id = plan.id;
    let mut deletions = Vec::new();
    let mut after = 0;
    loop {
        let page = handle.block_on(changes(
            store,
            ChangeList::Plan(id),
            after,
            CHANGES_PER_PAGE,
        ))?;
        let Some((last, _)) = page.last() else {
            break;
        };
        after = *last;
        for (_, change) in page {
            match change.action {
                Action::Insert => {
                    run.apply(Op::Insert(Box::new(row_of(&change, empty_values()))))?
                }
                Action::Update => {
                    let id = change.row_id.ok_or_else(|| {
                        Outcome::Failed(format!("an update of plan #{} names no row", plan.id))
                    })?;
                    let old = run.stored_row(id)?;
                    run.apply(Op::Update {
                        id,
                        row: Box::new(row_of(&change, old.values)),
                    })?;
                }
                Action::Delete => deletions.extend(change.row_id),
            }
        }
    }
    Ok(deletions)
}

/// The row a stored change writes: `values` (the stored row's, or empty for an insert) with
/// the change's new values, the change's identity, origin and sides.
fn row_of(change: &Change, mut values: crate::fields::FieldValues) -> MergedRow {
    for f in &change.fields {
        if let Some(field) = Field::from_name(f.field) {
            values[field.index()] = f.new.clone();
        }
    }
    MergedRow {
        origin: change.origin,
        directory_id: change.directory_id.clone(),
        match_key: change.key.clone(),
        values,
        sides: sides_of(change.sides),
        number_keys: None,
    }
}
