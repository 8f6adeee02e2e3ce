//! The `staged_sources` table: each pipeline's last known good source and its metadata.

use serde::Serialize;
use sqlx::{FromRow, Row};

use crate::load::runs::record_query;
use crate::load::{LoadError, Store, on_pool};
use crate::report::RunReport;

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
/// The staged source of `pipeline`, if one was fetched.
pub async fn get(store: &Store, pipeline: &str) -> Result<Option<StagedSource>, LoadError> {
    on_pool!(store, |pool| sqlx::query_as(
        "SELECT pipeline, url, path, fetched_at, sha256, etag, last_modified, size, contacts \
         FROM staged_sources WHERE pipeline = $1"
    )
    .bind(pipeline)
    .fetch_optional(pool)
    .await
    .map_err(|e| store.error(e)))
}

/// Makes `staged` the pipeline's staged source and records the fetch run that staged it, in
/// one transaction; returns the run's id.
pub async fn stage(
    store: &Store,
    staged: &StagedSource,
    report: &RunReport,
) -> Result<i64, LoadError> {
    on_pool!(store, |pool| {
        async {
        let mut tx = pool.begin().await?;
        sqlx::query(
            "INSERT INTO staged_sources (pipeline, url, path, fetched_at, sha256, etag, last_modified, size, contacts) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
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
        .execute(&mut *tx)
        .await?;
        let id: i64 = record_query!(report).fetch_one(&mut *tx).await?.try_get(0)?;
        tx.commit().await?;
        Ok(id)
    }
    .await
    .map_err(|e: sqlx::Error| store.error(e))
    })
}
