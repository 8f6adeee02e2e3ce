//! One run's SQLite transaction, on one thread, through rusqlite: the directory, the index of
//! the current table, the bulk writes, the run record, then commit or rollback.
//!
//! The run's reads and writes go through prepared statements on the connection's own thread
//! instead of sqlx's worker thread and per-row channel, which cost more than SQLite itself
//! (see docs/performance.md). Everything else (migrations, listings, exports) uses sqlx.
//! [`crate::load::run`] puts this and the PostgreSQL run behind one interface.

use std::path::Path;
use std::sync::LazyLock;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, Statement};

use crate::fields::{FIELD_COUNT, FIELD_NAMES, empty_values};
use crate::load::contacts::{ExistingRows, FIELD_COLUMNS, Op, Stamp, StoredRow};
use crate::load::numbers::{self, ContactKey, PageRow};
use crate::load::plans::{ChangeList, PlanRecord, StoredPlanChange};
use crate::load::{BeginError, side_bits};
use crate::numbers::NumberPlan;
use crate::report::RunReport;
use crate::transform::{
    Directory, DirectoryEntry, KeyIndex, MergePolicy, MergedRow, Origin, RowState,
};

// The writes are `OR ROLLBACK`: a statement that breaks a constraint ends the whole
// transaction (which the run does anyway on any error), so SQLite keeps no statement journal
// to undo a single statement. With the default (ABORT) every multi-row INSERT journalled each
// page it touched to a temporary file: 11% of a fresh import's time (measured A/B, 7 pairs).

/// Rows per INSERT statement: enough to amortise the statement, few enough to stay in cache.
const INSERT_ROWS: usize = 32;
/// The parameters of a row (its id apart).
const ROW_PARAMS: usize = FIELD_COUNT + 7;
/// Number index keys per INSERT statement.
const INSERT_KEYS: usize = 64;

fn insert_sql(rows: usize) -> String {
    let one = format!("({})", vec!["?"; ROW_PARAMS + 1].join(", "));
    format!(
        "INSERT OR ROLLBACK INTO contacts (id, origin, directory_id, match_key, {}, content_hash, updated_at, sides, changed_by_run) VALUES {}",
        *FIELD_COLUMNS,
        vec![one; rows].join(", ")
    )
}

static INSERT_BATCH_SQL: LazyLock<String> = LazyLock::new(|| insert_sql(INSERT_ROWS));
static INSERT_ONE_SQL: LazyLock<String> = LazyLock::new(|| insert_sql(1));

fn insert_keys_sql(keys: usize) -> String {
    format!(
        "INSERT OR ROLLBACK INTO contact_numbers (contact_id, number, rank) VALUES {}",
        vec!["(?, ?, ?)"; keys].join(", ")
    )
}

static INSERT_KEYS_BATCH_SQL: LazyLock<String> = LazyLock::new(|| insert_keys_sql(INSERT_KEYS));
static INSERT_KEYS_ONE_SQL: LazyLock<String> = LazyLock::new(|| insert_keys_sql(1));
static UPDATE_SQL: LazyLock<String> = LazyLock::new(|| {
    let sets: Vec<String> = FIELD_NAMES.iter().map(|f| format!("{f} = ?")).collect();
    format!(
        "UPDATE OR ROLLBACK contacts SET origin = ?, directory_id = ?, match_key = ?, {}, content_hash = ?, updated_at = ?, sides = ?, changed_by_run = ? WHERE id = ?",
        sets.join(", ")
    )
});
static SELECT_ROW_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT origin, directory_id, match_key, {} FROM contacts WHERE id = ?",
        *FIELD_COLUMNS
    )
});
static DIRECTORY_INSERT_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO directory (id, {}) VALUES ({})",
        *FIELD_COLUMNS,
        vec!["?"; FIELD_COUNT + 1].join(", ")
    )
});
static DIRECTORY_SELECT_SQL: LazyLock<String> =
    LazyLock::new(|| format!("SELECT id, {} FROM directory ORDER BY id", *FIELD_COLUMNS));

/// What the table holds, read on `conn`: directory rows by id, external rows in a key index.
fn read_index(conn: &Connection) -> rusqlite::Result<(ExistingRows, KeyIndex)> {
    let (external, directory): (i64, i64) =
        conn.query_row(crate::load::contacts::COUNT_ROWS_SQL, [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    // Sized once: growing would hold two tables at the peak.
    let mut index = KeyIndex::with_capacity(external as usize);
    let mut existing = ExistingRows::with_capacity(directory as usize);
    let mut select =
        conn.prepare_cached("SELECT id, directory_id, match_key, content_hash FROM contacts")?;
    let mut rows = select.query([])?;
    while let Some(row) = rows.next()? {
        let state = RowState {
            id: row.get(0)?,
            hash: row.get(3)?,
        };
        match row.get_ref(1)?.as_str_or_null()? {
            Some(directory_id) => existing.insert(directory_id, state),
            // The key's bytes as stored: no need to check they are UTF-8 to hash them.
            None => index.insert_existing(row.get_ref(2)?.as_bytes()?, state),
        }
    }
    Ok((existing, index))
}

/// An open write transaction on the SQLite database of a run.
pub struct SqliteRun {
    conn: Connection,
    path: std::path::PathBuf,
    stamp: Stamp,
    #[allow(clippy::vec_box)] // the rows arrive boxed: unboxing would copy ~600 bytes each
    pending: Vec<Box<MergedRow>>,
    /// How the rows' numbers are keyed in the number index.
    numbers: NumberPlan,
    /// Number index keys not written yet.
    pending_keys: Vec<ContactKey>,
    /// The id the next inserted row gets.
    next_id: i64,
    pub inserted: u64,
    pub updated: u64,
    pub deleted: u64,
}

impl SqliteRun {
    /// Opens the database and starts a write transaction that holds the write lock from the
    /// start (`BEGIN IMMEDIATE`, waiting up to `wait` for another writer).
    pub fn begin(
        path: &Path,
        updated_at: String,
        wait: Duration,
        numbers: NumberPlan,
    ) -> Result<SqliteRun, BeginError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "cache_size", -8192)?;
        // The sorter of the index builds that end a fresh import may use a second thread: by
        // then the parser thread is done and its core idle.
        conn.pragma_update(None, "threads", 1)?;
        conn.busy_timeout(wait)?;
        match conn.execute_batch("BEGIN IMMEDIATE") {
            Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => {
                return Err(BeginError::Busy {
                    holder: String::new(),
                });
            }
            other => other?,
        }
        // Holding the lock, the run waits only for checkpoints.
        conn.busy_timeout(Duration::from_secs(30))?;
        // Rows get their ids from the run (the number index names them before they are
        // written), as SQLite would number them: after the largest.
        let next_id: i64 =
            conn.query_row("SELECT coalesce(max(id), 0) + 1 FROM contacts", [], |r| {
                r.get(0)
            })?;
        Ok(SqliteRun {
            conn,
            path: path.to_owned(),
            stamp: Stamp {
                updated_at,
                run_id: None,
            },
            pending: Vec::with_capacity(INSERT_ROWS),
            numbers,
            pending_keys: Vec::with_capacity(INSERT_KEYS * 2),
            next_id,
            inserted: 0,
            updated: 0,
            deleted: 0,
        })
    }

    /// Replaces the directory table with `entries`.
    pub fn replace_directory(&mut self, entries: &[DirectoryEntry]) -> rusqlite::Result<()> {
        self.conn.execute("DELETE FROM directory", [])?;
        let mut insert = self.conn.prepare_cached(&DIRECTORY_INSERT_SQL)?;
        for e in entries {
            insert.raw_bind_parameter(1, &e.id)?;
            for (i, v) in e.values.iter().enumerate() {
                insert.raw_bind_parameter(i + 2, v)?;
            }
            insert.raw_execute()?;
        }
        Ok(())
    }

    /// The directory, read from its table.
    pub fn read_directory(&mut self, policy: &MergePolicy) -> rusqlite::Result<Directory> {
        let mut select = self.conn.prepare_cached(&DIRECTORY_SELECT_SQL)?;
        let mut rows = select.query([])?;
        let mut directory = Directory::default();
        while let Some(row) = rows.next()? {
            let mut values: [Option<&str>; FIELD_COUNT] = [None; FIELD_COUNT];
            for (i, v) in values.iter_mut().enumerate() {
                *v = row.get_ref(i + 1)?.as_str_or_null()?;
            }
            directory.push(row.get(0)?, &values, policy);
        }
        Ok(directory)
    }

    /// Reads the table's index on a thread of its own, through a second connection, while
    /// this one goes on (reading the directory). Called holding the write lock and before
    /// writing anything to `contacts`, so both connections see the same table.
    pub fn spawn_index_read(
        &self,
    ) -> std::thread::JoinHandle<rusqlite::Result<(ExistingRows, KeyIndex)>> {
        let path = self.path.clone();
        std::thread::spawn(move || {
            let conn = Connection::open_with_flags(
                &path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            conn.pragma_update(None, "cache_size", -8192)?;
            conn.busy_timeout(Duration::from_secs(30))?;
            conn.execute_batch("BEGIN")?;
            let index = read_index(&conn)?;
            conn.execute_batch("COMMIT")?;
            Ok(index)
        })
    }

    /// What the table holds now: directory rows by id, external rows in a key index.
    pub fn read_index(&mut self) -> rusqlite::Result<(ExistingRows, KeyIndex)> {
        read_index(&self.conn)
    }

    fn bind_row(
        statement: &mut Statement<'_>,
        first: usize,
        row: &MergedRow,
        stamp: &Stamp,
    ) -> rusqlite::Result<()> {
        statement.raw_bind_parameter(first, row.origin.as_str())?;
        statement.raw_bind_parameter(first + 1, &row.directory_id)?;
        statement.raw_bind_parameter(first + 2, &row.match_key)?;
        for (i, v) in row.values.iter().enumerate() {
            statement.raw_bind_parameter(first + 3 + i, v)?;
        }
        statement.raw_bind_parameter(first + 3 + FIELD_COUNT, row.content_hash())?;
        statement.raw_bind_parameter(first + 4 + FIELD_COUNT, &stamp.updated_at)?;
        statement.raw_bind_parameter(first + 5 + FIELD_COUNT, side_bits(&row.sides))?;
        statement.raw_bind_parameter(first + 6 + FIELD_COUNT, stamp.run_id)?;
        Ok(())
    }

    /// Applies one change (inserts are batched; call [`SqliteRun::flush`] at the end).
    pub fn apply(&mut self, op: Op) -> rusqlite::Result<()> {
        match op {
            Op::Insert(row) => {
                self.pending.push(row);
                if self.pending.len() == INSERT_ROWS {
                    self.flush()?;
                }
            }
            Op::Update { id, mut row } => {
                let mut update = self.conn.prepare_cached(&UPDATE_SQL)?;
                Self::bind_row(&mut update, 1, &row, &self.stamp)?;
                update.raw_bind_parameter(ROW_PARAMS + 1, id)?;
                update.raw_execute()?;
                self.updated += 1;
                delete_keys(&self.conn, id)?;
                numbers::row_keys(&self.numbers, id, &mut row, &mut self.pending_keys);
                write_keys(&self.conn, &mut self.pending_keys, false)?;
            }
            Op::Delete { id } => self.delete(&[id])?,
        }
        Ok(())
    }

    /// Writes the pending inserts, and every pending number index key.
    pub fn flush(&mut self) -> rusqlite::Result<()> {
        self.write_rows()?;
        self.write_keys(true)
    }

    /// Writes the pending inserts, each with the next id, and queues their numbers' keys.
    fn write_rows(&mut self) -> rusqlite::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let first_id = self.next_id;
        let full = self.pending.len() == INSERT_ROWS;
        let mut insert = self.conn.prepare_cached(if full {
            &INSERT_BATCH_SQL
        } else {
            &INSERT_ONE_SQL
        })?;
        for (r, row) in self.pending.iter_mut().enumerate() {
            let id = first_id + r as i64;
            let first = if full { 1 + r * (ROW_PARAMS + 1) } else { 1 };
            insert.raw_bind_parameter(first, id)?;
            Self::bind_row(&mut insert, first + 1, row, &self.stamp)?;
            if !full {
                insert.raw_execute()?;
            }
            numbers::row_keys(&self.numbers, id, row, &mut self.pending_keys);
        }
        if full {
            insert.raw_execute()?;
        }
        self.next_id += self.pending.len() as i64;
        self.inserted += self.pending.len() as u64;
        self.pending.clear();
        write_keys(&self.conn, &mut self.pending_keys, false)
    }

    /// Writes the pending number index keys in full batches, and the rest too when `all`.
    fn write_keys(&mut self, all: bool) -> rusqlite::Result<()> {
        write_keys(&self.conn, &mut self.pending_keys, all)
    }

    pub fn delete(&mut self, ids: &[i64]) -> rusqlite::Result<()> {
        for &id in ids {
            let mut delete = self
                .conn
                .prepare_cached("DELETE FROM contacts WHERE id = ?")?;
            delete.raw_bind_parameter(1, id)?;
            self.deleted += delete.raw_execute()? as u64;
            delete_keys(&self.conn, id)?;
        }
        Ok(())
    }

    /// Builds the number index again if it was built with another region than this run's
    /// (or not at all); returns the keys written, None when it was up to date.
    pub fn ensure_number_index(&mut self) -> rusqlite::Result<Option<u64>> {
        let built_with: Option<String> = self
            .conn
            .query_row(numbers::SELECT_REGION_SQL, [], |r| r.get(0))
            .optional()?;
        if !numbers::needs_rebuild(&self.numbers, built_with.as_deref()) {
            return Ok(None);
        }
        self.conn.execute_batch(numbers::CLEAR_SQL)?;
        let mut written = 0;
        let mut after = 0_i64;
        loop {
            let mut keys = Vec::new();
            let mut last = None;
            {
                let mut page = self.conn.prepare_cached(numbers::SELECT_PAGE_SQL)?;
                let mut rows = page.query([after])?;
                while let Some(row) = rows.next()? {
                    let numbers: [Option<&str>; 4] = [
                        row.get_ref(2)?.as_str_or_null()?,
                        row.get_ref(3)?.as_str_or_null()?,
                        row.get_ref(4)?.as_str_or_null()?,
                        row.get_ref(5)?.as_str_or_null()?,
                    ];
                    let page_row = PageRow {
                        id: row.get(0)?,
                        origin: row.get_ref(1)?.as_str()?,
                        numbers,
                    };
                    numbers::page_row_keys(&self.numbers, &page_row, &mut keys);
                    last = Some(page_row.id);
                }
            }
            let Some(last) = last else { break };
            after = last;
            written += keys.len() as u64;
            self.pending_keys.extend(keys);
            self.write_keys(false)?;
        }
        self.write_keys(true)?;
        self.conn
            .execute(numbers::RECORD_REGION_SQL, [self.numbers.region()])?;
        Ok(Some(written))
    }

    /// A row as stored, for a dry run's change list.
    pub fn stored_row(&mut self, id: i64) -> rusqlite::Result<StoredRow> {
        let mut select = self.conn.prepare_cached(&SELECT_ROW_SQL)?;
        select.query_row([id], |row| {
            let mut values = empty_values();
            for (i, v) in values.iter_mut().enumerate() {
                *v = row.get(3 + i)?;
            }
            Ok(StoredRow {
                origin: Origin::parse(row.get_ref(0)?.as_str()?).unwrap_or(Origin::Directory),
                directory_id: row.get(1)?,
                match_key: row.get(2)?,
                values,
            })
        })
    }

    /// Reserves the run's id (see `RESERVE_RUN_SQL`): the rows written from now on name it.
    pub fn reserve_run_id(&mut self) -> rusqlite::Result<i64> {
        let id = self.conn.query_row(
            crate::load::runs::RESERVE_RUN_SQL,
            [&self.stamp.updated_at],
            |r| r.get(0),
        )?;
        self.stamp.run_id = Some(id);
        Ok(id)
    }

    /// Records the run in the same transaction (in the row reserved for it, if any); returns
    /// its id.
    pub fn record_run(&mut self, report: &RunReport) -> rusqlite::Result<i64> {
        let mut stored = report.clone();
        stored.changes = None;
        let report_json = stored.to_json();
        let sql = match self.stamp.run_id {
            Some(_) => crate::load::runs::UPDATE_RUN_SQL,
            None => crate::load::runs::RECORD_SQL,
        };
        let mut statement = self.conn.prepare_cached(sql)?;
        let values: [&dyn rusqlite::ToSql; 16] = [
            &report.pipeline,
            &report.command,
            &report.started_at,
            &report.finished_at,
            &report.status.as_str(),
            &report.source,
            &report.source_sha256,
            &(report.contacts_read as i64),
            &(report.rejected as i64),
            &(report.inserted as i64),
            &(report.updated as i64),
            &(report.deleted as i64),
            &(report.unchanged as i64),
            &(report.duration_ms as i64),
            &report.error,
            &report_json,
        ];
        for (i, value) in values.iter().enumerate() {
            statement.raw_bind_parameter(i + 1, value)?;
        }
        if let Some(id) = self.stamp.run_id {
            statement.raw_bind_parameter(17, id)?;
        }
        let mut rows = statement.raw_query();
        match rows.next()? {
            Some(row) => row.get(0),
            None => Err(rusqlite::Error::QueryReturnedNoRows),
        }
    }

    /// Calls `each` with every row's id and content hash (see `crate::plan::fingerprint`).
    pub fn each_row_hash(&mut self, each: &mut dyn FnMut(i64, i64)) -> rusqlite::Result<()> {
        let mut select = self
            .conn
            .prepare_cached("SELECT id, content_hash FROM contacts")?;
        let mut rows = select.raw_query();
        while let Some(row) = rows.next()? {
            each(row.get(0)?, row.get(1)?);
        }
        Ok(())
    }

    /// Inserts a plan in the run's transaction; returns its id.
    pub fn insert_plan(&mut self, p: &PlanRecord) -> rusqlite::Result<i64> {
        self.conn.query_row(
            crate::load::plans::INSERT_PLAN_SQL,
            rusqlite::params![
                p.pipeline,
                p.created_at,
                p.expires_at,
                p.status,
                p.reason,
                p.run_id,
                p.applied_run_id,
                p.source,
                p.source_sha256,
                p.directory_csv,
                p.base_table,
                p.base_directory,
                p.base_policy,
                p.inserted,
                p.updated,
                p.deleted,
                p.report,
            ],
            |r| r.get(0),
        )
    }

    /// Inserts changes of `list` in the run's transaction.
    pub fn insert_changes(
        &mut self,
        list: ChangeList,
        changes: &[StoredPlanChange],
    ) -> rusqlite::Result<()> {
        let mut insert = self.conn.prepare_cached(list.insert_sql())?;
        for c in changes {
            insert.execute(rusqlite::params![
                list.id(),
                c.seq,
                c.row_id,
                c.action,
                c.change
            ])?;
        }
        Ok(())
    }

    /// Deletes the change lists of runs that started before `before`.
    pub fn prune_run_changes(&mut self, before: &str) -> rusqlite::Result<()> {
        self.conn
            .execute(crate::load::plans::PRUNE_RUN_CHANGES_SQL, [before])
            .map(drop)
    }

    /// Writes what a plan's computation learned last (see `COMPLETE_PLAN_SQL`).
    pub fn complete_plan(&mut self, p: &PlanRecord) -> rusqlite::Result<()> {
        self.conn.execute(
            crate::load::plans::COMPLETE_PLAN_SQL,
            rusqlite::params![
                p.source_sha256,
                p.inserted,
                p.updated,
                p.deleted,
                p.report,
                p.run_id,
                p.status,
                p.reason,
                p.id
            ],
        )?;
        Ok(())
    }

    /// Marks plan `plan` applied by run `run` if it is still pending and not expired at
    /// `now`; returns whether it was.
    pub fn mark_plan_applied(&mut self, plan: i64, run: i64, now: &str) -> rusqlite::Result<bool> {
        let changed = self.conn.execute(
            crate::load::plans::MARK_PLAN_APPLIED_SQL,
            rusqlite::params![run, plan, now],
        )?;
        Ok(changed == 1)
    }

    /// Runs `sql` (statements without results) in the run's transaction.
    pub fn execute_batch(&mut self, sql: &str) -> rusqlite::Result<()> {
        self.conn.execute_batch(sql)
    }

    pub fn commit(self) -> rusqlite::Result<()> {
        self.conn.execute_batch("COMMIT")
    }

    /// Rolls back (dropping the connection without a commit does the same).
    pub fn rollback(self) -> rusqlite::Result<()> {
        self.conn.execute_batch("ROLLBACK")
    }
}

/// Writes `pending` number index keys in full batches, and the rest too when `all`.
fn write_keys(conn: &Connection, pending: &mut Vec<ContactKey>, all: bool) -> rusqlite::Result<()> {
    let full_batches = pending.len() / INSERT_KEYS;
    if full_batches > 0 {
        let mut insert = conn.prepare_cached(&INSERT_KEYS_BATCH_SQL)?;
        for batch in pending.chunks_exact(INSERT_KEYS) {
            for (k, (id, key)) in batch.iter().enumerate() {
                insert.raw_bind_parameter(1 + k * 3, id)?;
                insert.raw_bind_parameter(2 + k * 3, &key.number)?;
                insert.raw_bind_parameter(3 + k * 3, key.rank)?;
            }
            insert.raw_execute()?;
        }
        pending.drain(..full_batches * INSERT_KEYS);
    }
    if all && !pending.is_empty() {
        let mut insert = conn.prepare_cached(&INSERT_KEYS_ONE_SQL)?;
        for (id, key) in pending.drain(..) {
            insert.raw_bind_parameter(1, id)?;
            insert.raw_bind_parameter(2, &key.number)?;
            insert.raw_bind_parameter(3, key.rank)?;
            insert.raw_execute()?;
        }
    }
    Ok(())
}

/// Deletes the number index keys of contact `id`.
fn delete_keys(conn: &Connection, id: i64) -> rusqlite::Result<()> {
    let mut delete = conn.prepare_cached(numbers::DELETE_CONTACT_SQL)?;
    delete.raw_bind_parameter(1, id)?;
    delete.raw_execute()?;
    Ok(())
}
