//! The `runs` table: one row per run with its outcome, counts and report.

use serde::Serialize;
use sqlx::{Row, SqliteExecutor};

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
pub const RECORD_SQL: &str = "INSERT INTO runs (pipeline, command, started_at, finished_at, status, source, \
     source_sha256, contacts_read, rejected, inserted, updated, deleted, unchanged, duration_ms, error, report) \
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id";

/// Records a finished run and returns its id.
pub async fn record<'e>(
    db: impl SqliteExecutor<'e>,
    report: &RunReport,
) -> Result<i64, sqlx::Error> {
    let mut stored = report.clone();
    stored.changes = None;
    let row = sqlx::query(RECORD_SQL)
        .bind(&report.pipeline)
        .bind(&report.command)
        .bind(&report.started_at)
        .bind(&report.finished_at)
        .bind(report.status.as_str())
        .bind(&report.source)
        .bind(&report.source_sha256)
        .bind(report.contacts_read as i64)
        .bind(report.rejected as i64)
        .bind(report.inserted as i64)
        .bind(report.updated as i64)
        .bind(report.deleted as i64)
        .bind(report.unchanged as i64)
        .bind(report.duration_ms as i64)
        .bind(&report.error)
        .bind(stored.to_json())
        .fetch_one(db)
        .await?;
    row.try_get(0)
}

/// The newest `limit` runs, newest first.
pub async fn latest<'e>(
    db: impl SqliteExecutor<'e>,
    limit: i64,
) -> Result<Vec<RunRecord>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, pipeline, command, started_at, finished_at, status, source, source_sha256, contacts_read, \
         rejected, inserted, updated, deleted, unchanged, duration_ms, error FROM runs ORDER BY id DESC LIMIT ?",
    )
    .bind(limit)
    .fetch_all(db)
    .await?;
    rows.iter()
        .map(|r| {
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
        })
        .collect()
}
