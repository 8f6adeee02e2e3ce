//! The store: the database holding the directory, the merged contacts and the run history,
//! opened on SQLite or PostgreSQL with its migrations applied.

use std::str::FromStr;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::error::LoadError;

/// Runs `$body` with `$pool` bound to the store's sqlx pool, whichever the backend: the SQL
/// inside must read the same on both (`$1` placeholders, standard SQL).
macro_rules! on_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.backend {
            $crate::load::Backend::Sqlite { pool: $pool, .. } => $body,
            $crate::load::Backend::Postgres { pool: $pool, .. } => $body,
        }
    };
}
pub(crate) use on_pool;

/// How long a run waits for another run's lock on the database by default.
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(60);
/// Attempts to reach a PostgreSQL server when opening the store.
const CONNECT_TRIES: usize = 3;

/// The backend and its connection pool.
#[derive(Clone, Debug)]
pub enum Backend {
    Sqlite {
        pool: SqlitePool,
        path: std::path::PathBuf,
    },
    Postgres {
        pool: PgPool,
    },
}

/// Connections each store's pool opens at most (one pool per pipeline database).
pub const POOL_CONNECTIONS: u32 = 4;

/// The database holding the directory, the merged contacts and the run history.
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) backend: Backend,
    /// The URL as given, password masked.
    url: String,
    pub(super) lock_wait: Duration,
    /// How runs key the rows' numbers in the number index (the pipeline's
    /// `[lookup] default_region`).
    pub(crate) numbers: crate::numbers::NumberPlan,
}

impl Store {
    /// Opens the database at `url` (`sqlite://PATH`, created when missing, or
    /// `postgres://USER:PASSWORD@HOST:PORT/DATABASE`) and brings its schema up to date.
    pub async fn open(url: &str) -> Result<Store, LoadError> {
        let masked = mask_database_url(url);
        let backend = if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            open_sqlite(path, &masked).await?
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            open_postgres(url, &masked).await?
        } else {
            return Err(LoadError::UnsupportedUrl { url: masked });
        };
        let store = Store {
            backend,
            url: masked,
            lock_wait: DEFAULT_LOCK_WAIT,
            numbers: crate::numbers::NumberPlan::default(),
        };
        let migrated = match &store.backend {
            Backend::Sqlite { pool, .. } => sqlx::migrate!("./migrations/sqlite").run(pool).await,
            Backend::Postgres { pool } => sqlx::migrate!("./migrations/postgres").run(pool).await,
        };
        migrated.map_err(|source| LoadError::Migrate {
            url: store.url.clone(),
            source,
        })?;
        Ok(store)
    }

    /// How long a run waits for another run holding the database's run lock before it is
    /// recorded as skipped.
    pub fn with_lock_wait(mut self, wait: Duration) -> Store {
        self.lock_wait = wait;
        self
    }

    /// How numbers are keyed in the number index of caller-ID lookup; runs build the index
    /// again when it was built with another plan.
    pub fn with_numbers(mut self, numbers: crate::numbers::NumberPlan) -> Store {
        self.numbers = numbers;
        self
    }

    /// How numbers are keyed in the number index.
    pub fn numbers(&self) -> &crate::numbers::NumberPlan {
        &self.numbers
    }

    /// The database URL, password masked.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `sqlite` or `postgres`.
    /// The backend and its pool.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite { .. } => "sqlite",
            Backend::Postgres { .. } => "postgres",
        }
    }

    /// Wraps a database error with the database's URL.
    pub fn error(&self, source: sqlx::Error) -> LoadError {
        LoadError::Query {
            url: self.url.clone(),
            source,
        }
    }

    /// Rows of text columns for a query written for both backends (diagnostics and tests).
    pub async fn select_text(&self, sql: &str) -> Result<Vec<Vec<Option<String>>>, LoadError> {
        use sqlx::Row;
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        on_pool!(self, |pool| {
            let rows = sqlx::query(sql)
                .fetch_all(pool)
                .await
                .map_err(|e| self.error(e))?;
            rows.iter()
                .map(|row| {
                    (0..row.len())
                        .map(|i| row.try_get::<Option<String>, _>(i))
                        .collect::<Result<Vec<_>, _>>()
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| self.error(e))
        })
    }

    pub async fn close(&self) {
        on_pool!(self, |pool| pool.close().await)
    }
}

async fn open_sqlite(path: &str, masked: &str) -> Result<Backend, LoadError> {
    let open_error = |source| LoadError::Open {
        url: masked.to_owned(),
        source,
    };
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))
        .map_err(open_error)?
        .create_if_missing(true)
        // WAL: readers keep seeing the old table until a run commits.
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(30))
        .pragma("cache_size", "-8192");
    let pool = SqlitePoolOptions::new()
        .max_connections(POOL_CONNECTIONS)
        .connect_with(options)
        .await
        .map_err(open_error)?;
    Ok(Backend::Sqlite {
        pool,
        path: path.into(),
    })
}

async fn open_postgres(url: &str, masked: &str) -> Result<Backend, LoadError> {
    let options = PgConnectOptions::from_str(url)
        .map_err(|source| LoadError::Open {
            url: masked.to_owned(),
            source,
        })?
        .application_name(&format!("ucm (pid {})", std::process::id()));
    let target = format!(
        "server {}:{}, database \"{}\", user \"{}\" ({masked})",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or(options.get_username()),
        options.get_username(),
    );
    // A server still starting or briefly unreachable gets a few tries; a refused login or a
    // missing database does not get better by trying again. (One plain connection first: the
    // pool itself would keep retrying a refused connection until its acquire timeout.)
    let probe = || async { PgConnection::connect_with(&options).await };
    let connection = probe
        .retry(
            ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(500))
                .with_max_times(CONNECT_TRIES - 1)
                .with_jitter(),
        )
        .when(|e| matches!(e, sqlx::Error::Io(_) | sqlx::Error::Tls(_)))
        .await
        .map_err(|e| {
            let (reason, hint) = connect_failure(&e);
            LoadError::Connect {
                tries: if matches!(e, sqlx::Error::Io(_) | sqlx::Error::Tls(_)) {
                    CONNECT_TRIES
                } else {
                    1
                },
                target,
                reason,
                hint,
            }
        })?;
    let _ = connection.close().await;
    let pool = PgPoolOptions::new()
        .max_connections(POOL_CONNECTIONS)
        .acquire_timeout(Duration::from_secs(30))
        .connect_lazy_with(options);
    Ok(Backend::Postgres { pool })
}

/// Why a connection failed, in the server's words, and what to do about it.
fn connect_failure(e: &sqlx::Error) -> (String, &'static str) {
    let Some(db) = e.as_database_error() else {
        return (
            e.to_string(),
            "check that the server is running and reachable, and the database url ([database] url or --db)",
        );
    };
    let hint = match db.code().as_deref() {
        Some("3D000") => "create the database (createdb NAME) or correct the database url",
        Some("28000" | "28P01") => "check the user name and password in the database url",
        _ => "check the database url ([database] url or --db) and the server's log",
    };
    (db.message().to_owned(), hint)
}

/// `url` as it may be shown: see [`crate::redact::mask_url`].
pub fn mask_database_url(url: &str) -> String {
    crate::redact::mask_url(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_passwords_are_masked_wherever_they_are_written() {
        assert_eq!(
            mask_database_url("postgres://ucm:s%40cret@db.example:5432/ucm"),
            "postgres://***@db.example:5432/ucm"
        );
        assert_eq!(mask_database_url("sqlite://ucm.db"), "sqlite://ucm.db");
    }
}
