//! What a run is asked to do ([`RunRequest`]), where its progress goes, and why it did not
//! land ([`RunFailure`]).

use std::path::PathBuf;

use crate::extract::ExtractError;
use crate::load::{ExistingRows, LoadError};
use crate::transform::{KeyIndex, MergePolicy};

/// What the table holds when the run starts: directory rows by id, external rows by key.
pub(super) type Table = (ExistingRows, KeyIndex);

/// Everything one run needs to know.
#[derive(Clone, Debug)]
pub struct RunRequest {
    pub pipeline: String,
    /// `import` or `run`, as recorded.
    pub command: String,
    pub source: PathBuf,
    pub policy: MergePolicy,
    /// Reload the directory from this CSV first (in the run's transaction).
    pub directory_csv: Option<PathBuf>,
    pub max_delete_ratio: f64,
    /// Hours the plan of a dry run or a refused run can be applied.
    pub plan_ttl_hours: u64,
    /// Changes a landed run keeps in its change list, and for how many hours.
    pub run_changes_kept: u64,
    pub run_changes_ttl_hours: u64,
    pub dry_run: bool,
    pub force: bool,
}

/// Receives progress while a run parses its source.
pub trait Progress: Send + Sync {
    /// The source is `total` bytes long.
    fn start(&self, total: u64);
    /// `bytes` of it have been parsed.
    fn advance(&self, bytes: u64);
    /// `read` contacts have been read and validated so far (told every 1,024, and at the
    /// end).
    fn contacts(&self, _read: u64) {}
    fn finish(&self);
}

/// No progress display.
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _: u64) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}

/// Why a run did not land.
#[derive(Debug, thiserror::Error)]
pub(super) enum RunFailure {
    #[error(transparent)]
    Extract(#[from] ExtractError),
    #[error(transparent)]
    Directory(#[from] crate::transform::DirectoryError),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("{0}")]
    Refused(String),
    #[error("internal error: {0}")]
    Internal(String),
}
