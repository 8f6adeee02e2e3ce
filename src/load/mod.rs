//! Load: the SQLite database (schema from `migrations/`, applied automatically), the atomic
//! application of a run's change set, the directory table, exports and the run history.

pub mod contacts;
pub mod runs;
pub mod sqlite_run;
pub mod staged;

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};

pub use contacts::{ExistingRows, Op};

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("database URL \"{url}\" is not supported: use sqlite://PATH")]
    UnsupportedUrl { url: String },
    #[error("cannot open database {url}: {source}")]
    Open { url: String, source: sqlx::Error },
    #[error("cannot migrate database {url}: {source}")]
    Migrate {
        url: String,
        source: sqlx::migrate::MigrateError,
    },
    #[error("database {url}: {source}")]
    Query { url: String, source: sqlx::Error },
    #[error("database {url}: {source}")]
    Run {
        url: String,
        source: rusqlite::Error,
    },
}

/// The database holding the directory, the merged contacts and the run history.
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
    url: String,
    path: std::path::PathBuf,
}

impl Store {
    /// Opens (creating when missing) the database at `url` and brings its schema up to date.
    pub async fn open(url: &str) -> Result<Store, LoadError> {
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .ok_or_else(|| LoadError::UnsupportedUrl {
                url: url.to_owned(),
            })?;
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))
            .map_err(|source| LoadError::Open {
                url: url.to_owned(),
                source,
            })?
            .create_if_missing(true)
            // WAL: readers keep seeing the old table until a run commits.
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(30))
            .pragma("cache_size", "-8192");
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|source| LoadError::Open {
                url: url.to_owned(),
                source,
            })?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .map_err(|source| LoadError::Migrate {
                url: url.to_owned(),
                source,
            })?;
        Ok(Store {
            pool,
            url: url.to_owned(),
            path: path.into(),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database file.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Starts a run's write transaction (see [`sqlite_run`]).
    pub fn begin_run(&self, updated_at: String) -> Result<sqlite_run::SqliteRun, LoadError> {
        sqlite_run::SqliteRun::begin(&self.path, updated_at).map_err(|e| self.run_error(e))
    }

    /// Wraps an error of a run's transaction with the database's URL.
    pub fn run_error(&self, source: rusqlite::Error) -> LoadError {
        LoadError::Run {
            url: self.url.clone(),
            source,
        }
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Starts a write transaction that holds the write lock from its first statement, so a
    /// run never finds the database taken half-way through.
    pub async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, LoadError> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| self.error(e))
    }

    /// Wraps a database error with the database's URL.
    pub fn error(&self, source: sqlx::Error) -> LoadError {
        LoadError::Query {
            url: self.url.clone(),
            source,
        }
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The current time as stored (RFC 3339, UTC, milliseconds).
pub fn now() -> String {
    let now = time::OffsetDateTime::now_utc();
    let now = now
        .replace_nanosecond(now.millisecond() as u32 * 1_000_000)
        .unwrap_or(now);
    now.format(&time::format_description::well_known::Rfc3339)
        .expect("RFC 3339 formats any UTC time")
}
