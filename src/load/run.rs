//! A run's write transaction, whichever the backend: the pipeline reads the directory and the
//! table's index through it, streams its changes into it, records the run in it, and commits
//! or rolls back. Nothing it writes is visible to readers before the commit, and a run that
//! stops half-way (an error, a refusal, a killed process) leaves the tables as they were.
//!
//! Only one run holds a database's run transaction at a time: SQLite's write lock
//! (`BEGIN IMMEDIATE`) or a PostgreSQL advisory lock. A run that waits for it longer than the
//! store's lock wait is not started ([`LoadError::Busy`]); the pipeline records it as skipped.

use std::time::Duration;

use crate::fields::{FIELD_COUNT, FIELD_NAMES, FieldValues, empty_values};
use crate::load::contacts::{ExistingRows, Op, StoredRow};
use crate::load::plans::{ChangeList, PlanRecord, StoredPlanChange};
use crate::load::postgres_run::PgRun;
use crate::load::sqlite_run::SqliteRun;
use crate::load::{Backend, BeginError, LoadError, Store, run_error, side_bits};
use crate::report::{Action, Change, FieldChange, RunReport};
use crate::transform::{Directory, DirectoryEntry, KeyIndex, MergePolicy, Origin, Side};

enum Backed {
    Sqlite(SqliteRun),
    Postgres(PgRun),
}

/// A read of the table's index under way (see [`RunTransaction::start_table_read`]).
pub enum TableRead {
    Reading(std::thread::JoinHandle<rusqlite::Result<(ExistingRows, KeyIndex)>>),
    InTransaction,
}

impl TableRead {
    /// The table's index, once read.
    pub fn finish(self, run: &mut RunTransaction) -> Result<(ExistingRows, KeyIndex), LoadError> {
        match self {
            TableRead::Reading(reader) => match reader.join() {
                Ok(table) => table.map_err(|e| run_error(&run.url, e)),
                Err(panic) => std::panic::resume_unwind(panic),
            },
            TableRead::InTransaction => run.read_index(),
        }
    }
}

/// The search indexes of migration 0006 (src/directory/search.rs), and the number index's
/// `contact_numbers_by_number` (migration 0010). A run (not a dry run) that
/// loads an empty table drops them before its first write and builds them again, by sorting, before it commits:
/// kept up to date row by row, their random-order inserts made a fresh import of 1,000,000
/// contacts 4x slower (6 s -> 26 s); built at the end they cost about 5 s. Both happen inside
/// the run's transaction: a run that fails or is killed leaves the indexes as they were.
/// The three of migration 0006 that migration 0011 kept.
const DROP_SEARCH_INDEXES: &str = "DROP INDEX contacts_search_first_name; \
     DROP INDEX contacts_search_last_name; DROP INDEX contacts_search_e_mail;";
const CREATE_SEARCH_INDEXES_SQLITE: &str = "\
     CREATE INDEX contacts_search_first_name ON contacts (lower(first_name)); \
     CREATE INDEX contacts_search_last_name ON contacts (lower(last_name)); \
     CREATE INDEX contacts_search_e_mail ON contacts (lower(e_mail));";
/// On PostgreSQL as migration 0012 made them: the row id after the key.
const CREATE_SEARCH_INDEXES_POSTGRES: &str = "\
     CREATE INDEX contacts_search_first_name ON contacts ((lower(first_name COLLATE \"C\")), id); \
     CREATE INDEX contacts_search_last_name ON contacts ((lower(last_name COLLATE \"C\")), id); \
     CREATE INDEX contacts_search_e_mail ON contacts ((lower(e_mail COLLATE \"C\")), id);";

/// The unique indexes of the keys (migration 0001, the same on both backends): a run that
/// loads an empty table drops them too and builds them, by sorting, before it commits. Kept
/// up to date row by row, keys in random order (real directories' e-mail addresses) touched a
/// random index page per row. Building them can only fail on a duplicate key, which the merge
/// never lets through; if it did, the run would fail and roll back.
const DROP_KEY_INDEXES: &str =
    "DROP INDEX contacts_by_directory_id; DROP INDEX contacts_by_external_key;";
const CREATE_KEY_INDEXES: &str = "\
     CREATE UNIQUE INDEX contacts_by_directory_id ON contacts (directory_id) \
     WHERE directory_id IS NOT NULL; \
     CREATE UNIQUE INDEX contacts_by_external_key ON contacts (match_key) \
     WHERE directory_id IS NULL;";

/// An open run transaction.
pub struct RunTransaction {
    backed: Backed,
    url: String,
    /// The search indexes were dropped and are built before the commit.
    search_indexes_deferred: bool,
}

/// Calls the same method on whichever backend's run, wrapping its error with the URL.
macro_rules! on_run {
    ($self:expr, |$run:ident| $body:expr) => {{
        let url = &$self.url;
        match &mut $self.backed {
            Backed::Sqlite($run) => $body.map_err(|e| run_error(url, e)),
            Backed::Postgres($run) => $body.map_err(|e| run_error(url, e)),
        }
    }};
}

impl Store {
    /// Starts a run's write transaction, holding the database's run lock (waiting for it up
    /// to the lock wait). Call from a blocking thread: the PostgreSQL run drives its async
    /// connection from there.
    pub fn begin_run(&self, updated_at: String) -> Result<RunTransaction, LoadError> {
        RunTransaction::begin(self, updated_at, self.lock_wait)
    }
}

impl RunTransaction {
    pub(crate) fn begin(
        store: &Store,
        updated_at: String,
        wait: Duration,
    ) -> Result<RunTransaction, LoadError> {
        let begun = match &store.backend {
            Backend::Sqlite { path, .. } => {
                SqliteRun::begin(path, updated_at, wait, store.numbers.clone()).map(Backed::Sqlite)
            }
            Backend::Postgres { pool } => {
                PgRun::begin(pool, updated_at, wait, store.numbers.clone()).map(Backed::Postgres)
            }
        };
        match begun {
            Ok(backed) => {
                let mut run = RunTransaction {
                    backed,
                    url: store.url().to_owned(),
                    search_indexes_deferred: false,
                };
                let clock = std::time::Instant::now();
                if let Some(keys) = on_run!(run, |r| r.ensure_number_index())?
                    && keys > 0
                {
                    tracing::info!(
                        database = %run.url,
                        region = %store.numbers.region(),
                        keys,
                        ms = clock.elapsed().as_millis() as u64,
                        "number index built"
                    );
                }
                Ok(run)
            }
            Err(BeginError::Busy { holder }) => Err(LoadError::Busy {
                url: store.url().to_owned(),
                holder,
                waited_secs: wait.as_secs(),
            }),
            Err(BeginError::Failed(e)) => Err(run_error(store.url(), e)),
        }
    }

    /// Replaces the directory table with `entries`.
    pub fn replace_directory(&mut self, entries: &[DirectoryEntry]) -> Result<(), LoadError> {
        on_run!(self, |run| run.replace_directory(entries))
    }

    /// The directory, read from its table.
    pub fn read_directory(&mut self, policy: &MergePolicy) -> Result<Directory, LoadError> {
        on_run!(self, |run| run.read_directory(policy))
    }

    /// Starts reading what the table holds now (directory rows by id, external rows in a key
    /// index); [`TableRead::finish`] waits for it. On SQLite it is read on a second
    /// connection and thread while this transaction goes on (it must write nothing to
    /// `contacts` before `finish`); on PostgreSQL, by `finish`, in the run's transaction.
    pub fn start_table_read(&self) -> TableRead {
        match &self.backed {
            Backed::Sqlite(run) => TableRead::Reading(run.spawn_index_read()),
            Backed::Postgres(_) => TableRead::InTransaction,
        }
    }

    /// What the table holds now, read in the run's transaction.
    pub fn read_index(&mut self) -> Result<(ExistingRows, KeyIndex), LoadError> {
        on_run!(self, |run| run.read_index())
    }

    /// Applies one change (possibly buffered: call [`RunTransaction::flush`] at the end).
    pub fn apply(&mut self, op: Op) -> Result<(), LoadError> {
        on_run!(self, |run| run.apply(op))
    }

    /// Applies every buffered change to the table.
    pub fn flush(&mut self) -> Result<(), LoadError> {
        on_run!(self, |run| run.flush())
    }

    pub fn delete(&mut self, ids: &[i64]) -> Result<(), LoadError> {
        on_run!(self, |run| run.delete(ids))
    }

    /// A row as stored, read in the run's transaction.
    pub fn stored_row(&mut self, id: i64) -> Result<StoredRow, LoadError> {
        on_run!(self, |run| run.stored_row(id))
    }

    /// Inserts a plan in the run's transaction; returns its id.
    pub fn insert_plan(&mut self, plan: &PlanRecord) -> Result<i64, LoadError> {
        on_run!(self, |run| run.insert_plan(plan))
    }

    /// Inserts changes of `list` (a plan's or this run's) in the run's transaction.
    pub fn insert_changes(
        &mut self,
        list: ChangeList,
        changes: &[StoredPlanChange],
    ) -> Result<(), LoadError> {
        on_run!(self, |run| run.insert_changes(list, changes))
    }

    /// Deletes the change lists of runs that started before `before`, in the run's
    /// transaction.
    pub fn prune_run_changes(&mut self, before: &str) -> Result<(), LoadError> {
        on_run!(self, |run| run.prune_run_changes(before))
    }

    /// Writes what a plan's computation learned last: its counts, report, source sha256 and
    /// run.
    pub fn complete_plan(&mut self, plan: &PlanRecord) -> Result<(), LoadError> {
        on_run!(self, |run| run.complete_plan(plan))
    }

    /// Calls `each` with every row's id and content hash, in the run's transaction.
    pub fn each_row_hash(&mut self, mut each: impl FnMut(i64, i64)) -> Result<(), LoadError> {
        on_run!(self, |run| run.each_row_hash(&mut each))
    }

    /// Marks plan `plan` applied by run `run` in the same transaction, if it is still
    /// pending and not expired at `now`; returns whether it was.
    pub fn mark_plan_applied(&mut self, plan: i64, run: i64, now: &str) -> Result<bool, LoadError> {
        on_run!(self, |run_| run_.mark_plan_applied(plan, run, now))
    }

    /// Reserves the run's id now, in its transaction, so that every row it inserts or
    /// updates records it (`changed_by_run`); `record_run` then fills that run in.
    pub fn reserve_run_id(&mut self) -> Result<i64, LoadError> {
        on_run!(self, |run| run.reserve_run_id())
    }

    /// Records the run in the same transaction; returns its id.
    pub fn record_run(&mut self, report: &RunReport) -> Result<i64, LoadError> {
        on_run!(self, |run| run.record_run(report))
    }

    /// Rows inserted, updated and deleted so far.
    pub fn counts(&self) -> (u64, u64, u64) {
        match &self.backed {
            Backed::Sqlite(run) => (run.inserted, run.updated, run.deleted),
            Backed::Postgres(run) => (run.inserted, run.updated, run.deleted),
        }
    }

    /// Drops the search indexes until [`RunTransaction::commit`] builds them again: for a
    /// run that loads an empty table (see `DROP_SEARCH_INDEXES`).
    pub fn defer_search_indexes(&mut self) -> Result<(), LoadError> {
        on_run!(self, |run| run.execute_batch(DROP_SEARCH_INDEXES))?;
        on_run!(self, |run| run
            .execute_batch(crate::load::numbers::DROP_BY_NUMBER_SQL))?;
        on_run!(self, |run| run.execute_batch(DROP_KEY_INDEXES))?;
        self.search_indexes_deferred = true;
        Ok(())
    }

    pub fn commit(mut self) -> Result<(), LoadError> {
        if self.search_indexes_deferred {
            let create = match self.backed {
                Backed::Sqlite(_) => CREATE_SEARCH_INDEXES_SQLITE,
                Backed::Postgres(_) => CREATE_SEARCH_INDEXES_POSTGRES,
            };
            on_run!(self, |run| run.execute_batch(create))?;
            on_run!(self, |run| run
                .execute_batch(crate::load::numbers::CREATE_BY_NUMBER_SQL))?;
            on_run!(self, |run| run.execute_batch(CREATE_KEY_INDEXES))?;
        }
        let url = self.url;
        match self.backed {
            Backed::Sqlite(run) => run.commit().map_err(|e| run_error(&url, e)),
            Backed::Postgres(run) => run.commit().map_err(|e| run_error(&url, e)),
        }
    }

    /// Rolls back (dropping the transaction without a commit does the same).
    pub fn rollback(self) -> Result<(), LoadError> {
        let url = self.url;
        match self.backed {
            Backed::Sqlite(run) => run.rollback().map_err(|e| run_error(&url, e)),
            Backed::Postgres(run) => run.rollback().map_err(|e| run_error(&url, e)),
        }
    }

    /// The change a dry run reports (or a run records) for `op`, reading the stored row it replaces or deletes.
    pub fn describe(&mut self, op: &Op) -> Result<Change, LoadError> {
        Ok(match op {
            Op::Insert(row) => Change {
                action: Action::Insert,
                origin: row.origin,
                fields: diff(&empty_values(), &row.values, &row.sides),
                sides: side_bits(&row.sides),
                directory_id: row.directory_id.clone(),
                key: row.match_key.clone(),
                old_origin: None,
                row_id: None,
            },
            Op::Update { id, row } => {
                let old = self.stored_row(*id)?;
                Change {
                    action: Action::Update,
                    origin: row.origin,
                    fields: diff(&old.values, &row.values, &row.sides),
                    sides: side_bits(&row.sides),
                    directory_id: row.directory_id.clone(),
                    key: row.match_key.clone(),
                    old_origin: Some(old.origin),
                    row_id: Some(*id),
                }
            }
            Op::Delete { id } => {
                let id = *id;
                let old = self.stored_row(id)?;
                let side = if old.origin == Origin::External {
                    Side::External
                } else {
                    Side::Directory
                };
                Change {
                    action: Action::Delete,
                    origin: old.origin,
                    fields: diff(&old.values, &empty_values(), &[side; FIELD_COUNT]),
                    sides: side_bits(&[side; FIELD_COUNT]),
                    directory_id: old.directory_id,
                    key: old.match_key,
                    old_origin: None,
                    row_id: Some(id),
                }
            }
        })
    }
}

/// The fields that differ between two sets of values.
pub fn diff(old: &FieldValues, new: &FieldValues, sides: &[Side; FIELD_COUNT]) -> Vec<FieldChange> {
    (0..FIELD_COUNT)
        .filter(|&i| old[i] != new[i])
        .map(|i| FieldChange {
            field: FIELD_NAMES[i],
            old: old[i].clone(),
            new: new[i].clone(),
            side: sides[i],
        })
        .collect()
}
