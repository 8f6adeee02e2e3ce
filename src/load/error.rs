//! What can go wrong in the database: opening it, a query, a run's transaction, the run lock.

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(
        "database URL \"{url}\" is not supported: use sqlite://PATH or postgres://USER@HOST/DATABASE"
    )]
    UnsupportedUrl { url: String },
    #[error("cannot open database {url}: {source}")]
    Open { url: String, source: sqlx::Error },
    #[error(
        "cannot connect to PostgreSQL {target} ({tries} {}): {reason}\n{hint}",
        if *tries == 1 { "attempt" } else { "attempts" }
    )]
    Connect {
        target: String,
        tries: usize,
        reason: String,
        hint: &'static str,
    },
    #[error("cannot migrate database {url}: {source}")]
    Migrate {
        url: String,
        source: sqlx::migrate::MigrateError,
    },
    #[error("database {url}: {source}")]
    Query { url: String, source: sqlx::Error },
    #[error("database {url}: {source}")]
    Run { url: String, source: RunError },
    #[error(
        "skipped: another ucm run {holder}holds the run lock on {url}; waited {waited_secs} s \
         ([database] lock_wait_secs)"
    )]
    Busy {
        url: String,
        holder: String,
        waited_secs: u64,
    },
}

/// What went wrong inside a run's transaction.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Postgres(#[from] sqlx::Error),
}

/// Why a run's transaction did not start.
#[derive(Debug)]
pub enum BeginError {
    /// Another run held the lock for the whole wait; `holder` says who, when the backend can
    /// tell ("" otherwise).
    Busy {
        holder: String,
    },
    Failed(RunError),
}

impl<E: Into<RunError>> From<E> for BeginError {
    fn from(e: E) -> BeginError {
        BeginError::Failed(e.into())
    }
}

pub(crate) fn run_error(url: &str, e: impl Into<RunError>) -> LoadError {
    LoadError::Run {
        url: url.to_owned(),
        source: e.into(),
    }
}
