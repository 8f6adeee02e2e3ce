//! The `plans` and `plan_changes` tables (migration 0007): what a dry run or a refused run
//! would change, stored so that `ucm apply` can land exactly that later (see `crate::plan`).

use serde::Serialize;
use sqlx::Row;

use crate::load::{LoadError, Store, on_pool};

/// Marks a plan applied (parameters: the applying run, the plan, now) if it is still pending
/// or awaiting approval and not expired; both backends.
pub const MARK_PLAN_APPLIED_SQL: &str = "UPDATE plans SET status = 'applied', applied_run_id = $1 \
     WHERE id = $2 AND status IN ('pending', 'awaiting_approval') AND expires_at > $3";

/// A plan as listed and shown: everything but its changes.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct PlanRecord {
    pub id: i64,
    pub pipeline: String,
    pub created_at: String,
    pub expires_at: String,
    /// `pending`, `awaiting_approval` (a guard refused the run), `applied` or `discarded`.
    pub status: String,
    /// Why a guard refused the run that computed it.
    pub reason: Option<String>,
    /// The dry run that computed it, or the refused run it was computed for.
    pub run_id: Option<i64>,
    /// The run that applied it.
    pub applied_run_id: Option<i64>,
    pub source: Option<String>,
    pub source_sha256: Option<String>,
    pub directory_csv: Option<String>,
    pub base_table: String,
    pub base_directory: String,
    pub base_policy: String,
    pub inserted: i64,
    pub updated: i64,
    pub deleted: i64,
    /// The computing run's report (JSON, without its change list).
    #[serde(skip)]
    pub report: String,
}

/// One stored change: its position, the row it updates or deletes, its action and the change
/// itself as JSON (`crate::plan::StoredChange`).
#[derive(Clone, Debug)]
pub struct StoredPlanChange {
    pub seq: i64,
    pub row_id: Option<i64>,
    pub action: String,
    pub change: String,
}

const PLAN_COLUMNS: &str = "id, pipeline, created_at, expires_at, status, reason, run_id, \
     applied_run_id, source, source_sha256, directory_csv, base_table, base_directory, \
     base_policy, inserted, updated, deleted, report";

fn plan_of<R: Row>(row: &R) -> Result<PlanRecord, sqlx::Error>
where
    usize: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(PlanRecord {
        id: row.try_get(0)?,
        pipeline: row.try_get(1)?,
        created_at: row.try_get(2)?,
        expires_at: row.try_get(3)?,
        status: row.try_get(4)?,
        reason: row.try_get(5)?,
        run_id: row.try_get(6)?,
        applied_run_id: row.try_get(7)?,
        source: row.try_get(8)?,
        source_sha256: row.try_get(9)?,
        directory_csv: row.try_get(10)?,
        base_table: row.try_get(11)?,
        base_directory: row.try_get(12)?,
        base_policy: row.try_get(13)?,
        inserted: row.try_get(14)?,
        updated: row.try_get(15)?,
        deleted: row.try_get(16)?,
        report: row.try_get(17)?,
    })
}

/// Inserts a plan (17 parameters: pipeline, created_at, expires_at, status, reason, run_id,
/// applied_run_id, source, source_sha256, directory_csv, base_table, base_directory,
/// base_policy, inserted, updated, deleted, report); returns its id. Both backends.
pub const INSERT_PLAN_SQL: &str = "INSERT INTO plans (pipeline, created_at, expires_at, status, \
     reason, run_id, applied_run_id, source, source_sha256, directory_csv, base_table, \
     base_directory, base_policy, inserted, updated, deleted, report) VALUES ($1, $2, $3, $4, \
     $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) RETURNING id";

/// Where a list of changes is stored: a plan's (`plan_changes`, migration 0007) or a landed
/// run's (`run_changes`, migration 0009). Both tables have the same columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeList {
    Plan(i64),
    Run(i64),
}

impl ChangeList {
    /// The plan's or the run's id.
    pub fn id(self) -> i64 {
        match self {
            ChangeList::Plan(id) | ChangeList::Run(id) => id,
        }
    }

    /// Inserts one change (id, seq, row_id, action, change). Both backends.
    pub fn insert_sql(self) -> &'static str {
        match self {
            ChangeList::Plan(_) => {
                "INSERT INTO plan_changes (plan_id, seq, row_id, action, change) \
                 VALUES ($1, $2, $3, $4, $5)"
            }
            ChangeList::Run(_) => {
                "INSERT INTO run_changes (run_id, seq, row_id, action, change) \
                 VALUES ($1, $2, $3, $4, $5)"
            }
        }
    }

    /// Inserts a batch of changes on PostgreSQL from arrays (id, seqs, row_ids, actions,
    /// changes).
    pub fn insert_batch_pg_sql(self) -> &'static str {
        match self {
            ChangeList::Plan(_) => {
                "INSERT INTO plan_changes (plan_id, seq, row_id, action, change) SELECT $1, * \
                 FROM UNNEST($2::bigint[], $3::bigint[], $4::text[], $5::text[])"
            }
            ChangeList::Run(_) => {
                "INSERT INTO run_changes (run_id, seq, row_id, action, change) SELECT $1, * \
                 FROM UNNEST($2::bigint[], $3::bigint[], $4::text[], $5::text[])"
            }
        }
    }

    /// A page of changes (id, after, limit): read by the primary key.
    pub fn page_sql(self) -> &'static str {
        match self {
            ChangeList::Plan(_) => {
                "SELECT seq, row_id, action, change FROM plan_changes WHERE plan_id = $1 \
                 AND seq > $2 ORDER BY seq LIMIT $3"
            }
            ChangeList::Run(_) => {
                "SELECT seq, row_id, action, change FROM run_changes WHERE run_id = $1 \
                 AND seq > $2 ORDER BY seq LIMIT $3"
            }
        }
    }
}

/// What a plan's computation learns last (source_sha256, inserted, updated, deleted, report,
/// run_id, status, reason, then the plan's id): a dry run a guard would refuse learns only at
/// the end that its plan awaits approval. Both backends.
pub const COMPLETE_PLAN_SQL: &str = "UPDATE plans SET source_sha256 = $1, inserted = $2, \
     updated = $3, deleted = $4, report = $5, run_id = $6, status = $7, reason = $8 \
     WHERE id = $9";

/// The plans of `pipeline`, newest first (expired ones are pruned first).
pub async fn list(store: &Store, pipeline: &str, now: &str) -> Result<Vec<PlanRecord>, LoadError> {
    prune(store, now).await?;
    on_pool!(store, |pool| {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {PLAN_COLUMNS} FROM plans WHERE pipeline = $1 ORDER BY id DESC"
        )))
        .bind(pipeline)
        .fetch_all(pool)
        .await
        .map_err(|e| store.error(e))?;
        rows.iter()
            .map(plan_of)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| store.error(e))
    })
}

/// Plan `id`, if it is stored.
pub async fn get(store: &Store, id: i64) -> Result<Option<PlanRecord>, LoadError> {
    one_where(store, "id = $1", id).await
}

/// The newest plan matching `filter` (one `$1`, bound to `value`), if any.
async fn one_where(
    store: &Store,
    filter: &str,
    value: i64,
) -> Result<Option<PlanRecord>, LoadError> {
    on_pool!(store, |pool| {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {PLAN_COLUMNS} FROM plans WHERE {filter} ORDER BY id DESC LIMIT 1"
        )))
        .bind(value)
        .fetch_optional(pool)
        .await
        .map_err(|e| store.error(e))?;
        row.as_ref()
            .map(plan_of)
            .transpose()
            .map_err(|e| store.error(e))
    })
}

/// Up to `limit` changes of `list` after position `after`, in order: a page, read by the
/// primary key (no scan of other lists' changes, nor of the contacts).
pub async fn changes(
    store: &Store,
    list: ChangeList,
    after: i64,
    limit: i64,
) -> Result<Vec<StoredPlanChange>, LoadError> {
    on_pool!(store, |pool| {
        let rows = sqlx::query(list.page_sql())
            .bind(list.id())
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await
            .map_err(|e| store.error(e))?;
        rows.iter()
            .map(|r| {
                Ok(StoredPlanChange {
                    seq: r.try_get(0)?,
                    row_id: r.try_get(1)?,
                    action: r.try_get(2)?,
                    change: r.try_get(3)?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(|e| store.error(e))
    })
}

/// Marks plan `id` discarded unless it was applied; returns whether it was pending.
pub async fn discard(store: &Store, id: i64) -> Result<bool, LoadError> {
    on_pool!(store, |pool| {
        let done = sqlx::query(
            "UPDATE plans SET status = 'discarded' \
             WHERE id = $1 AND status IN ('pending', 'awaiting_approval')",
        )
        .bind(id)
        .execute(pool)
        .await
        .map_err(|e| store.error(e))?;
        Ok(done.rows_affected() == 1)
    })
}

/// Records the run that computed plan `id` (a refused run is recorded after its plan).
pub async fn set_run(store: &Store, id: i64, run_id: i64) -> Result<(), LoadError> {
    on_pool!(store, |pool| {
        sqlx::query("UPDATE plans SET run_id = $1 WHERE id = $2")
            .bind(run_id)
            .bind(id)
            .execute(pool)
            .await
            .map_err(|e| store.error(e))?;
        Ok(())
    })
}

/// How many of `pipeline`'s plans await approval and have not expired at `now` (for
/// `/metrics` and the page).
pub async fn awaiting(store: &Store, pipeline: &str, now: &str) -> Result<i64, LoadError> {
    on_pool!(store, |pool| sqlx::query_scalar(
        "SELECT count(*) FROM plans WHERE pipeline = $1 AND status = 'awaiting_approval' \
         AND expires_at > $2"
    )
    .bind(pipeline)
    .bind(now)
    .fetch_one(pool)
    .await
    .map_err(|e| store.error(e)))
}

/// Deletes the plans that expired before `now`, with their changes.
pub async fn prune(store: &Store, now: &str) -> Result<u64, LoadError> {
    on_pool!(store, |pool| async {
        let mut tx = pool.begin().await?;
        sqlx::query(
            "DELETE FROM plan_changes WHERE plan_id IN (SELECT id FROM plans WHERE expires_at <= $1)",
        )
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let done = sqlx::query("DELETE FROM plans WHERE expires_at <= $1")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok::<u64, sqlx::Error>(done.rows_affected())
    }
    .await)
    .map_err(|e| store.error(e))
}

/// How many changes run `run` recorded (its list may hold fewer than it made: see
/// `[merge] run_changes_kept`).
pub async fn run_changes_kept(store: &Store, run: i64) -> Result<i64, LoadError> {
    on_pool!(store, |pool| sqlx::query_scalar::<_, Option<i64>>(
        "SELECT max(seq) FROM run_changes WHERE run_id = $1"
    )
    .bind(run)
    .fetch_one(pool)
    .await
    .map(Option::unwrap_or_default)
    .map_err(|e| store.error(e)))
}

/// The plan run `run` computed (a dry run, a refused run) or applied, if it is still stored.
pub async fn of_run(store: &Store, run: i64) -> Result<Option<PlanRecord>, LoadError> {
    one_where(store, "run_id = $1 OR applied_run_id = $1", run).await
}

/// Deletes the change lists of the runs that started before `before`. Run in the transaction
/// of the run that records a new list.
pub const PRUNE_RUN_CHANGES_SQL: &str = "DELETE FROM run_changes WHERE run_id IN \
     (SELECT id FROM runs WHERE started_at < $1)";
