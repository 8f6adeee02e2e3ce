//! The `runs` table: one row per run with its outcome, counts and report.

use serde::Serialize;
use sqlx::Row;

use crate::load::{LoadError, Store, on_pool};
use crate::report::RunReport;

/// A run as `ucm runs` lists it.
#[derive(Clone, Debug, Serialize)]
pub struct RunRecord {
    pub id: i64,
    pub pipeline: String,
    pub command: String,
    pub started_at: String,
    pub finished_at: String,
    pub status: String,
    pub source: Option<String>,
    pub source_sha256: Option<String>,
    pub contacts_read: i64,
    pub rejected: i64,
    pub inserted: i64,
    pub updated: i64,
    pub deleted: i64,
    pub unchanged: i64,
    pub duration_ms: i64,
    pub error: Option<String>,
}

/// The statement that records a run (16 parameters in this order: pipeline, command,
/// started_at, finished_at, status, source, source_sha256, contacts_read, rejected, inserted,
/// updated, deleted, unchanged, duration_ms, error, report); it returns the run's id.
/// The insert of a run record, for both backends (`$N` placeholders; SQLite numbers them the
/// same way).
pub const RECORD_SQL: &str = "INSERT INTO runs (pipeline, command, started_at, finished_at, status, source, \
     source_sha256, contacts_read, rejected, inserted, updated, deleted, unchanged, duration_ms, error, report) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) RETURNING id";

/// Reserves a run's id at its start, in its transaction (placeholder values, one parameter:
/// the start time), so the rows it writes can name it; [`UPDATE_RUN_SQL`] fills it in.
pub const RESERVE_RUN_SQL: &str = "INSERT INTO runs (pipeline, command, started_at, finished_at, \
     status, report) VALUES ('', '', $1, $1, 'failed', '{}') RETURNING id";

/// Records a run whose id was reserved: [`RECORD_SQL`]'s 16 parameters, then the id.
pub const UPDATE_RUN_SQL: &str = "UPDATE runs SET pipeline = $1, command = $2, started_at = $3, \
     finished_at = $4, status = $5, source = $6, source_sha256 = $7, contacts_read = $8, \
     rejected = $9, inserted = $10, updated = $11, deleted = $12, unchanged = $13, \
     duration_ms = $14, error = $15, report = $16 WHERE id = $17 RETURNING id";

/// The query that records `report` (without a dry run's change list), for any sqlx executor.
macro_rules! record_query {
    ($report:expr) => {
        $crate::load::runs::record_query!($report, $crate::load::runs::RECORD_SQL)
    };
    ($report:expr, $sql:expr) => {{
        let report: &$crate::report::RunReport = $report;
        let mut stored = report.clone();
        stored.changes = None;
        sqlx::query($sql)
            .bind(report.pipeline.clone())
            .bind(report.command.clone())
            .bind(report.started_at.clone())
            .bind(report.finished_at.clone())
            .bind(report.status.as_str())
            .bind(report.source.clone())
            .bind(report.source_sha256.clone())
            .bind(report.contacts_read as i64)
            .bind(report.rejected as i64)
            .bind(report.inserted as i64)
            .bind(report.updated as i64)
            .bind(report.deleted as i64)
            .bind(report.unchanged as i64)
            .bind(report.duration_ms as i64)
            .bind(report.error.clone())
            .bind(stored.to_json())
    }};
}
pub(crate) use record_query;

/// Records a run on its own; returns its id.
pub async fn record(store: &Store, report: &RunReport) -> Result<i64, LoadError> {
    on_pool!(store, |pool| {
        let row = record_query!(report)
            .fetch_one(pool)
            .await
            .map_err(|e| store.error(e))?;
        row.try_get(0).map_err(|e| store.error(e))
    })
}

/// The latest `limit` runs, newest first.
pub async fn latest(store: &Store, limit: i64) -> Result<Vec<RunRecord>, LoadError> {
    latest_of(store, None, limit).await
}

/// The latest `limit` runs of `pipeline` (of every pipeline: `None`), newest first.
pub async fn latest_of(
    store: &Store,
    pipeline: Option<&str>,
    limit: i64,
) -> Result<Vec<RunRecord>, LoadError> {
    older_than(store, pipeline, None, limit).await
}

/// A page of the history: up to `limit` runs of `pipeline` (every pipeline: `None`) older
/// than run `before` (the latest: `None`), newest first.
pub async fn older_than(
    store: &Store,
    pipeline: Option<&str>,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<RunRecord>, LoadError> {
    let rows = on_pool!(store, |pool| sqlx::query(
        "SELECT id, pipeline, command, started_at, finished_at, status, source, source_sha256, contacts_read, \
         rejected, inserted, updated, deleted, unchanged, duration_ms, error FROM runs \
         WHERE ($1 IS NULL OR pipeline = $1) AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
    )
    .bind(pipeline)
    .bind(before)
    .bind(limit)
    .fetch_all(pool)
    .await
    .map_err(|e| store.error(e))?
    .iter()
    .map(record_of)
    .collect::<Result<Vec<_>, _>>())
    .map_err(|e| store.error(e))?;
    Ok(rows)
}

/// The report of run `id` as recorded (the JSON `--format json` prints), if there is one.
pub async fn report(store: &Store, id: i64) -> Result<Option<String>, LoadError> {
    on_pool!(store, |pool| sqlx::query_scalar(
        "SELECT report FROM runs WHERE id = $1"
    )
    .bind(id)
    .fetch_optional(pool)
    .await
    .map_err(|e| store.error(e)))
}

/// The latest `limit` recorded reports of `pipeline` (every pipeline: `None`), newest first:
/// (id, started_at, report), in one query.
pub async fn reports_of(
    store: &Store,
    pipeline: Option<&str>,
    limit: i64,
) -> Result<Vec<(i64, String, String)>, LoadError> {
    on_pool!(store, |pool| sqlx::query_as(
        "SELECT id, started_at, report FROM runs WHERE $1 IS NULL OR pipeline = $1 \
         ORDER BY id DESC LIMIT $2"
    )
    .bind(pipeline)
    .bind(limit)
    .fetch_all(pool)
    .await
    .map_err(|e| store.error(e)))
}

/// When the latest run of `pipeline`'s `command` started.
pub async fn last_started(
    store: &Store,
    pipeline: &str,
    command: &str,
) -> Result<Option<String>, LoadError> {
    on_pool!(store, |pool| sqlx::query_scalar(
        "SELECT started_at FROM runs WHERE pipeline = $1 AND command = $2 ORDER BY id DESC LIMIT 1"
    )
    .bind(pipeline)
    .bind(command)
    .fetch_optional(pool)
    .await
    .map_err(|e| store.error(e)))
}

/// Rows of the merged table by origin.
pub async fn contacts_by_origin(store: &Store) -> Result<Vec<(String, i64)>, LoadError> {
    on_pool!(store, |pool| sqlx::query_as(
        "SELECT origin, count(*) FROM contacts GROUP BY origin ORDER BY origin"
    )
    .fetch_all(pool)
    .await
    .map_err(|e| store.error(e)))
}

/// Whether the database answers.
pub async fn ping(store: &Store) -> Result<(), LoadError> {
    on_pool!(store, |pool| sqlx::query("SELECT 1")
        .execute(pool)
        .await
        .map(drop)
        .map_err(|e| store.error(e)))
}

/// A listed run from its columns.
fn record_of<R: Row>(r: &R) -> Result<RunRecord, sqlx::Error>
where
    usize: sqlx::ColumnIndex<R>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<String>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    Ok(RunRecord {
        id: r.try_get(0)?,
        pipeline: r.try_get(1)?,
        command: r.try_get(2)?,
        started_at: r.try_get(3)?,
        finished_at: r.try_get(4)?,
        status: r.try_get(5)?,
        source: r.try_get(6)?,
        source_sha256: r.try_get(7)?,
        contacts_read: r.try_get(8)?,
        rejected: r.try_get(9)?,
        inserted: r.try_get(10)?,
        updated: r.try_get(11)?,
        deleted: r.try_get(12)?,
        unchanged: r.try_get(13)?,
        duration_ms: r.try_get(14)?,
        error: r.try_get(15)?,
    })
}
