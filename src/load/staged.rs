//! The `staged_sources` table: each pipeline's last known good source and its metadata.

use serde::Serialize;
use sqlx::{FromRow, SqliteExecutor};

/// A validated copy of a pipeline's source, ready for the merge stage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, FromRow)]
pub struct StagedSource {
    pub pipeline: String,
    /// The URL it came from, password masked.
    pub url: String,
    pub path: String,
    pub fetched_at: String,
    pub sha256: String,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub size: i64,
    pub contacts: i64,
}

/// The staged source of `pipeline`, if any.
pub async fn get<'e>(
    db: impl SqliteExecutor<'e>,
    pipeline: &str,
) -> Result<Option<StagedSource>, sqlx::Error> {
    sqlx::query_as("SELECT pipeline, url, path, fetched_at, sha256, etag, last_modified, size, contacts FROM staged_sources WHERE pipeline = ?")
        .bind(pipeline)
        .fetch_optional(db)
        .await
}

/// Records `staged` as the pipeline's staged source, replacing the previous one.
pub async fn put<'e>(
    db: impl SqliteExecutor<'e>,
    staged: &StagedSource,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO staged_sources (pipeline, url, path, fetched_at, sha256, etag, last_modified, size, contacts) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (pipeline) DO UPDATE SET url = excluded.url, path = excluded.path, fetched_at = excluded.fetched_at, \
         sha256 = excluded.sha256, etag = excluded.etag, last_modified = excluded.last_modified, size = excluded.size, \
         contacts = excluded.contacts",
    )
    .bind(&staged.pipeline)
    .bind(&staged.url)
    .bind(&staged.path)
    .bind(&staged.fetched_at)
    .bind(&staged.sha256)
    .bind(&staged.etag)
    .bind(&staged.last_modified)
    .bind(staged.size)
    .bind(staged.contacts)
    .execute(db)
    .await?;
    Ok(())
}
