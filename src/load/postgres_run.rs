//! One run's PostgreSQL transaction: the run lock (an advisory lock held for the transaction),
//! the directory, the index of the current table, the new rows streamed with `COPY ... FROM
//! STDIN` straight into the table, the changed rows streamed the same way into a temporary
//! table and applied from it with one `UPDATE ... FROM`, the deletions, the run record, then
//! commit or rollback. (Staging the new rows too and inserting them with one `INSERT ...
//! SELECT` wrote every row twice: 13.4 s instead of 8-9 s for 1M contacts.)
//!
//! The run's thread is a blocking one; it drives the async connection with the runtime's
//! handle, so the pipeline treats both backends alike.

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use sqlx::postgres::{PgPool, Postgres};
use sqlx::{AssertSqlSafe, Row, Transaction};
use tokio::runtime::Handle;

use crate::fields::empty_values;
use crate::load::contacts::Stamp;
use crate::load::contacts::{ExistingRows, FIELD_COLUMNS, Op, StoredRow};
use crate::load::numbers::{self, ContactKey, PageRow};
use crate::load::plans::{ChangeList, PlanRecord, StoredPlanChange};
use crate::load::{BeginError, side_bits};
use crate::numbers::NumberPlan;
use crate::report::RunReport;
use crate::transform::{Directory, DirectoryEntry, KeyIndex, MergePolicy, MergedRow, RowState};

/// The advisory lock every ucm run holds for its transaction: one run at a time writes the
/// merged table, whichever node or process started it ("ucm run" in ASCII).
pub const RUN_LOCK: i64 = 0x0075_636d_2072_756e;
/// Bytes of COPY data gathered before they are sent.
const COPY_CHUNK: usize = 4 << 20;
/// How often a waiting run tries the lock again.
const LOCK_POLL: Duration = Duration::from_millis(200);

static STAGING_SQL: LazyLock<String> = LazyLock::new(|| {
    let fields: Vec<String> = FIELD_COLUMNS
        .split(", ")
        .map(|f| format!("{f} TEXT"))
        .collect();
    format!(
        "CREATE TEMPORARY TABLE ucm_incoming (id BIGINT, origin TEXT NOT NULL, directory_id TEXT, \
         match_key TEXT, {}, content_hash BIGINT NOT NULL, updated_at TEXT NOT NULL, \
         sides BIGINT NOT NULL, changed_by_run BIGINT) ON COMMIT DROP",
        fields.join(", ")
    )
});
static COPY_INCOMING_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "COPY ucm_incoming (id, origin, directory_id, match_key, {}, content_hash, updated_at, \
         sides, changed_by_run) FROM STDIN",
        *FIELD_COLUMNS
    )
});
static UPDATE_FROM_SQL: LazyLock<String> = LazyLock::new(|| {
    let sets: Vec<String> = FIELD_COLUMNS
        .split(", ")
        .map(|f| format!("{f} = i.{f}"))
        .collect();
    format!(
        "UPDATE contacts AS c SET origin = i.origin, directory_id = i.directory_id, \
         match_key = i.match_key, {}, content_hash = i.content_hash, updated_at = i.updated_at, \
         sides = i.sides, changed_by_run = i.changed_by_run FROM ucm_incoming AS i WHERE c.id = i.id",
        sets.join(", ")
    )
});
static COPY_CONTACTS_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "COPY contacts (id, origin, directory_id, match_key, {}, content_hash, updated_at, sides, \
         changed_by_run) FROM STDIN",
        *FIELD_COLUMNS
    )
});
/// The number index keys of changed rows, staged like the rows (`ucm_incoming`).
const STAGING_KEYS_SQL: &str = "CREATE TEMPORARY TABLE ucm_incoming_numbers \
     (contact_id BIGINT NOT NULL, number TEXT NOT NULL, rank INTEGER NOT NULL) ON COMMIT DROP";
const COPY_KEYS_SQL: &str = "COPY contact_numbers (contact_id, number, rank) FROM STDIN";
const COPY_INCOMING_KEYS_SQL: &str =
    "COPY ucm_incoming_numbers (contact_id, number, rank) FROM STDIN";
/// Replaces the keys of the changed rows with their staged ones.
const APPLY_INCOMING_KEYS_SQL: &str = "DELETE FROM contact_numbers AS n USING ucm_incoming AS i \
     WHERE n.contact_id = i.id; \
     INSERT INTO contact_numbers (contact_id, number, rank) \
     SELECT contact_id, number, rank FROM ucm_incoming_numbers; \
     TRUNCATE ucm_incoming; TRUNCATE ucm_incoming_numbers;";
/// Reserves ids for new rows from the table's identity sequence (parameter: how many).
const RESERVE_IDS_SQL: &str = "SELECT nextval(pg_get_serial_sequence('contacts', 'id')) \
     FROM generate_series(1, $1)";
/// The most ids reserved at once (the first reservation is smaller; each doubles).
const MAX_ID_BLOCK: i64 = 65_536;
static COPY_DIRECTORY_SQL: LazyLock<String> =
    LazyLock::new(|| format!("COPY directory (id, {}) FROM STDIN", *FIELD_COLUMNS));
static DIRECTORY_SELECT_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT id, {} FROM directory ORDER BY id COLLATE \"C\"",
        *FIELD_COLUMNS
    )
});
static SELECT_ROW_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT origin, directory_id, match_key, {} FROM contacts WHERE id = $1",
        *FIELD_COLUMNS
    )
});

/// An open write transaction on the PostgreSQL database of a run.
pub struct PgRun {
    tx: Transaction<'static, Postgres>,
    handle: Handle,
    stamp: Stamp,
    /// COPY text-format lines of new rows for `contacts`, not sent yet.
    inserts: Vec<u8>,
    /// COPY text-format lines of changed rows (with their ids) for `ucm_incoming`.
    updates: Vec<u8>,
    /// Rows in `inserts`.
    pending_inserts: u64,
    /// How the rows' numbers are keyed in the number index.
    numbers: NumberPlan,
    /// COPY lines of the number index keys of new rows, for `contact_numbers`.
    insert_keys: Vec<u8>,
    /// COPY lines of the keys of changed rows, for `ucm_incoming_numbers`.
    update_keys: Vec<u8>,
    /// Ids reserved for new rows, not used yet (used from the back).
    ids: Vec<i64>,
    /// How many ids the next reservation takes.
    id_block: i64,
    keys: Vec<ContactKey>,
    pub inserted: u64,
    pub updated: u64,
    pub deleted: u64,
}

impl PgRun {
    /// Starts the transaction and takes the run lock, trying again for up to `wait` while
    /// another run holds it.
    pub fn begin(
        pool: &PgPool,
        updated_at: String,
        wait: Duration,
        numbers: NumberPlan,
    ) -> Result<PgRun, BeginError> {
        let handle = Handle::current();
        handle.clone().block_on(async {
            let mut tx = pool.begin().await?;
            let started = Instant::now();
            loop {
                let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
                    .bind(RUN_LOCK)
                    .fetch_one(&mut *tx)
                    .await?;
                if locked {
                    break;
                }
                let waited = started.elapsed();
                if waited >= wait {
                    let holder = lock_holder(&mut tx).await;
                    return Err(BeginError::Busy { holder });
                }
                tokio::time::sleep(LOCK_POLL.min(wait - waited)).await;
            }
            sqlx::query(AssertSqlSafe(STAGING_SQL.as_str()))
                .execute(&mut *tx)
                .await?;
            sqlx::query(STAGING_KEYS_SQL).execute(&mut *tx).await?;
            Ok(PgRun {
                tx,
                handle,
                stamp: Stamp {
                    updated_at,
                    run_id: None,
                },
                inserts: Vec::with_capacity(COPY_CHUNK + (64 << 10)),
                updates: Vec::new(),
                pending_inserts: 0,
                numbers,
                insert_keys: Vec::new(),
                update_keys: Vec::new(),
                ids: Vec::new(),
                id_block: 1024,
                keys: Vec::new(),
                inserted: 0,
                updated: 0,
                deleted: 0,
            })
        })
    }

    /// Replaces the directory table with `entries`.
    pub fn replace_directory(&mut self, entries: &[DirectoryEntry]) -> sqlx::Result<()> {
        self.handle.clone().block_on(async {
            sqlx::query("DELETE FROM directory")
                .execute(&mut *self.tx)
                .await?;
            let mut lines = Vec::with_capacity(COPY_CHUNK + (64 << 10));
            for chunk in entries.chunks(8192) {
                lines.clear();
                for e in chunk {
                    put_text(&mut lines, Some(&e.id));
                    for v in &e.values {
                        lines.push(b'\t');
                        put_text(&mut lines, v.as_deref());
                    }
                    lines.push(b'\n');
                }
                copy_in(&mut self.tx, &COPY_DIRECTORY_SQL, &lines).await?;
            }
            Ok(())
        })
    }

    /// The directory, read from its table.
    pub fn read_directory(&mut self, policy: &MergePolicy) -> sqlx::Result<Directory> {
        self.handle.clone().block_on(async {
            let mut rows =
                sqlx::query(AssertSqlSafe(DIRECTORY_SELECT_SQL.as_str())).fetch(&mut *self.tx);
            let mut directory = Directory::default();
            while let Some(row) = rows.try_next().await? {
                let mut values = empty_values();
                for (i, v) in values.iter_mut().enumerate() {
                    *v = row.try_get(i + 1)?;
                }
                directory.push(row.try_get(0)?, &values, policy);
            }
            Ok(directory)
        })
    }

    /// What the table holds now: directory rows by id, external rows in a key index.
    pub fn read_index(&mut self) -> sqlx::Result<(ExistingRows, KeyIndex)> {
        self.handle.clone().block_on(async {
            let (external, directory): (i64, i64) =
                sqlx::query_as(crate::load::contacts::COUNT_ROWS_SQL)
                    .fetch_one(&mut *self.tx)
                    .await?;
            let mut index = KeyIndex::with_capacity(external as usize);
            let mut existing = ExistingRows::with_capacity(directory as usize);
            let mut rows =
                sqlx::query("SELECT id, directory_id, match_key, content_hash FROM contacts")
                    .fetch(&mut *self.tx);
            while let Some(row) = rows.try_next().await? {
                let state = RowState {
                    id: row.try_get(0)?,
                    hash: row.try_get(3)?,
                };
                match row.try_get::<Option<&str>, _>(1)? {
                    Some(directory_id) => existing.insert(directory_id, state),
                    None => index.insert_existing(row.try_get::<&str, _>(2)?, state),
                }
            }
            Ok((existing, index))
        })
    }

    /// Applies one change: new rows are streamed into the table, changed rows into the
    /// staging table (applied by [`PgRun::flush`]), deletions run at once.
    pub fn apply(&mut self, op: Op) -> sqlx::Result<()> {
        match op {
            Op::Insert(mut row) => {
                let id = self.next_id()?;
                put_row(&mut self.inserts, Some(id), &row, &self.stamp);
                self.pending_inserts += 1;
                numbers::row_keys(&self.numbers, id, &mut row, &mut self.keys);
                put_keys(&mut self.insert_keys, self.keys.drain(..));
            }
            Op::Update { id, mut row } => {
                put_row(&mut self.updates, Some(id), &row, &self.stamp);
                numbers::row_keys(&self.numbers, id, &mut row, &mut self.keys);
                put_keys(&mut self.update_keys, self.keys.drain(..));
            }
            Op::Delete { id } => return self.delete(&[id]),
        }
        if self.inserts.len() >= COPY_CHUNK {
            self.send_inserts()?;
        }
        if self.updates.len() >= COPY_CHUNK {
            self.send_updates()?;
        }
        Ok(())
    }

    /// The id of the next new row, from the ids reserved (reserving more when none is left).
    fn next_id(&mut self) -> sqlx::Result<i64> {
        if self.ids.is_empty() {
            let block = self.id_block;
            self.id_block = (block * 2).min(MAX_ID_BLOCK);
            let mut reserved: Vec<i64> = self.handle.clone().block_on(async {
                sqlx::query_scalar(RESERVE_IDS_SQL)
                    .bind(block)
                    .fetch_all(&mut *self.tx)
                    .await
            })?;
            reserved.sort_unstable_by(|a, b| b.cmp(a));
            self.ids = reserved;
        }
        Ok(self.ids.pop().expect("a reservation returns ids"))
    }

    fn send_inserts(&mut self) -> sqlx::Result<()> {
        if !self.inserts.is_empty() {
            self.handle.clone().block_on(async {
                copy_in(&mut self.tx, &COPY_CONTACTS_SQL, &self.inserts).await?;
                if !self.insert_keys.is_empty() {
                    copy_in(&mut self.tx, COPY_KEYS_SQL, &self.insert_keys).await?;
                }
                Ok::<(), sqlx::Error>(())
            })?;
            self.inserts.clear();
            self.insert_keys.clear();
            self.inserted += std::mem::take(&mut self.pending_inserts);
        }
        Ok(())
    }

    fn send_updates(&mut self) -> sqlx::Result<()> {
        if !self.updates.is_empty() {
            self.handle.clone().block_on(async {
                copy_in(&mut self.tx, &COPY_INCOMING_SQL, &self.updates).await?;
                if !self.update_keys.is_empty() {
                    copy_in(&mut self.tx, COPY_INCOMING_KEYS_SQL, &self.update_keys).await?;
                }
                Ok::<(), sqlx::Error>(())
            })?;
            self.updates.clear();
            self.update_keys.clear();
        }
        Ok(())
    }

    /// Writes the buffered new rows and applies the staged changes to the table.
    pub fn flush(&mut self) -> sqlx::Result<()> {
        self.send_inserts()?;
        self.send_updates()?;
        self.handle.clone().block_on(async {
            let updated = sqlx::query(AssertSqlSafe(UPDATE_FROM_SQL.as_str()))
                .execute(&mut *self.tx)
                .await?;
            sqlx::raw_sql(APPLY_INCOMING_KEYS_SQL)
                .execute(&mut *self.tx)
                .await?;
            self.updated += updated.rows_affected();
            Ok(())
        })
    }

    pub fn delete(&mut self, ids: &[i64]) -> sqlx::Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.handle.clone().block_on(async {
            let done = sqlx::query("DELETE FROM contacts WHERE id = ANY($1)")
                .bind(ids)
                .execute(&mut *self.tx)
                .await?;
            sqlx::query("DELETE FROM contact_numbers WHERE contact_id = ANY($1)")
                .bind(ids)
                .execute(&mut *self.tx)
                .await?;
            self.deleted += done.rows_affected();
            Ok(())
        })
    }

    /// Builds the number index again if it was built with another region than this run's
    /// (or not at all); returns the keys written, None when it was up to date.
    pub fn ensure_number_index(&mut self) -> sqlx::Result<Option<u64>> {
        let numbers = self.numbers.clone();
        self.handle.clone().block_on(async {
            let built_with: Option<String> = sqlx::query_scalar(numbers::SELECT_REGION_SQL)
                .fetch_optional(&mut *self.tx)
                .await?;
            if !numbers::needs_rebuild(&numbers, built_with.as_deref()) {
                return Ok(None);
            }
            sqlx::raw_sql(numbers::CLEAR_SQL)
                .execute(&mut *self.tx)
                .await?;
            let mut written = 0;
            let mut after = 0_i64;
            let mut keys = Vec::new();
            let mut lines = Vec::new();
            loop {
                let rows = sqlx::query(numbers::SELECT_PAGE_SQL)
                    .bind(after)
                    .fetch_all(&mut *self.tx)
                    .await?;
                let Some(last) = rows.last() else { break };
                after = last.try_get(0)?;
                for row in &rows {
                    let page_row = PageRow {
                        id: row.try_get(0)?,
                        origin: row.try_get(1)?,
                        numbers: [
                            row.try_get(2)?,
                            row.try_get(3)?,
                            row.try_get(4)?,
                            row.try_get(5)?,
                        ],
                    };
                    numbers::page_row_keys(&numbers, &page_row, &mut keys);
                }
                written += keys.len() as u64;
                lines.clear();
                put_keys(&mut lines, keys.drain(..));
                if !lines.is_empty() {
                    copy_in(&mut self.tx, COPY_KEYS_SQL, &lines).await?;
                }
            }
            sqlx::query(numbers::RECORD_REGION_SQL)
                .bind(numbers.region())
                .execute(&mut *self.tx)
                .await?;
            Ok(Some(written))
        })
    }

    /// A row as stored, for a dry run's change list.
    pub fn stored_row(&mut self, id: i64) -> sqlx::Result<StoredRow> {
        self.handle.clone().block_on(async {
            let row = sqlx::query(AssertSqlSafe(SELECT_ROW_SQL.as_str()))
                .bind(id)
                .fetch_one(&mut *self.tx)
                .await?;
            StoredRow::from_row(&row)
        })
    }

    /// Reserves the run's id (see `RESERVE_RUN_SQL`): the rows written from now on name it.
    pub fn reserve_run_id(&mut self) -> sqlx::Result<i64> {
        let id: i64 = self.handle.clone().block_on(async {
            sqlx::query_scalar(crate::load::runs::RESERVE_RUN_SQL)
                .bind(&self.stamp.updated_at)
                .fetch_one(&mut *self.tx)
                .await
        })?;
        self.stamp.run_id = Some(id);
        Ok(id)
    }

    /// Records the run in the same transaction (in the row reserved for it, if any); returns
    /// its id.
    pub fn record_run(&mut self, report: &RunReport) -> sqlx::Result<i64> {
        let reserved = self.stamp.run_id;
        self.handle.clone().block_on(async {
            let row = match reserved {
                Some(id) => {
                    crate::load::runs::record_query!(report, crate::load::runs::UPDATE_RUN_SQL)
                        .bind(id)
                        .fetch_one(&mut *self.tx)
                        .await?
                }
                None => {
                    crate::load::runs::record_query!(report)
                        .fetch_one(&mut *self.tx)
                        .await?
                }
            };
            row.try_get(0)
        })
    }

    /// Calls `each` with every row's id and content hash (see `crate::plan::fingerprint`).
    pub fn each_row_hash(&mut self, each: &mut dyn FnMut(i64, i64)) -> sqlx::Result<()> {
        self.handle.clone().block_on(async {
            let mut rows =
                sqlx::query("SELECT id, content_hash FROM contacts").fetch(&mut *self.tx);
            while let Some(row) = rows.try_next().await? {
                each(row.try_get(0)?, row.try_get(1)?);
            }
            Ok(())
        })
    }

    /// Inserts a plan in the run's transaction; returns its id.
    pub fn insert_plan(&mut self, p: &PlanRecord) -> sqlx::Result<i64> {
        self.handle.clone().block_on(async {
            sqlx::query_scalar(crate::load::plans::INSERT_PLAN_SQL)
                .bind(&p.pipeline)
                .bind(&p.created_at)
                .bind(&p.expires_at)
                .bind(&p.status)
                .bind(&p.reason)
                .bind(p.run_id)
                .bind(p.applied_run_id)
                .bind(&p.source)
                .bind(&p.source_sha256)
                .bind(&p.directory_csv)
                .bind(&p.base_table)
                .bind(&p.base_directory)
                .bind(&p.base_policy)
                .bind(p.inserted)
                .bind(p.updated)
                .bind(p.deleted)
                .bind(&p.report)
                .fetch_one(&mut *self.tx)
                .await
        })
    }

    /// Inserts changes of `list` in the run's transaction, in one statement.
    pub fn insert_changes(
        &mut self,
        list: ChangeList,
        changes: &[StoredPlanChange],
    ) -> sqlx::Result<()> {
        let seqs: Vec<i64> = changes.iter().map(|c| c.seq).collect();
        let rows: Vec<Option<i64>> = changes.iter().map(|c| c.row_id).collect();
        let actions: Vec<&str> = changes.iter().map(|c| c.action.as_str()).collect();
        let texts: Vec<&str> = changes.iter().map(|c| c.change.as_str()).collect();
        self.handle.clone().block_on(async {
            sqlx::query(list.insert_batch_pg_sql())
                .bind(list.id())
                .bind(seqs)
                .bind(rows)
                .bind(actions)
                .bind(texts)
                .execute(&mut *self.tx)
                .await
                .map(drop)
        })
    }

    /// Deletes the change lists of runs that started before `before`.
    pub fn prune_run_changes(&mut self, before: &str) -> sqlx::Result<()> {
        self.handle.clone().block_on(async {
            sqlx::query(crate::load::plans::PRUNE_RUN_CHANGES_SQL)
                .bind(before)
                .execute(&mut *self.tx)
                .await
                .map(drop)
        })
    }

    /// Writes what a plan's computation learned last (see `COMPLETE_PLAN_SQL`).
    pub fn complete_plan(&mut self, p: &PlanRecord) -> sqlx::Result<()> {
        self.handle.clone().block_on(async {
            sqlx::query(crate::load::plans::COMPLETE_PLAN_SQL)
                .bind(&p.source_sha256)
                .bind(p.inserted)
                .bind(p.updated)
                .bind(p.deleted)
                .bind(&p.report)
                .bind(p.run_id)
                .bind(&p.status)
                .bind(&p.reason)
                .bind(p.id)
                .execute(&mut *self.tx)
                .await
                .map(drop)
        })
    }

    /// Marks plan `plan` applied by run `run` if it is still pending and not expired at
    /// `now`; returns whether it was.
    pub fn mark_plan_applied(&mut self, plan: i64, run: i64, now: &str) -> sqlx::Result<bool> {
        self.handle.clone().block_on(async {
            let done = sqlx::query(crate::load::plans::MARK_PLAN_APPLIED_SQL)
                .bind(run)
                .bind(plan)
                .bind(now)
                .execute(&mut *self.tx)
                .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// Runs `sql` (statements without results) in the run's transaction.
    pub fn execute_batch(&mut self, sql: &'static str) -> sqlx::Result<()> {
        self.handle
            .clone()
            .block_on(async { sqlx::raw_sql(sql).execute(&mut *self.tx).await.map(drop) })
    }

    pub fn commit(self) -> sqlx::Result<()> {
        self.handle.block_on(self.tx.commit())
    }

    pub fn rollback(self) -> sqlx::Result<()> {
        self.handle.block_on(self.tx.rollback())
    }
}

/// One `COPY ... FROM STDIN` of `lines`.
async fn copy_in(
    tx: &mut Transaction<'static, Postgres>,
    statement: &str,
    lines: &[u8],
) -> sqlx::Result<()> {
    let mut copy = tx.copy_in_raw(statement).await?;
    copy.send(lines).await?;
    copy.finish().await?;
    Ok(())
}

/// Who holds the run lock, as "NAME (pid N, HOST, since HH:MM:SS) ", or "" when it cannot
/// be told.
async fn lock_holder(tx: &mut Transaction<'static, Postgres>) -> String {
    let holder: sqlx::Result<Option<String>> = sqlx::query_scalar(
        "SELECT a.application_name || ' (backend pid ' || a.pid \
         || coalesce(', ' || host(a.client_addr), '') \
         || ', since ' || to_char(a.xact_start, 'HH24:MI:SS') || ') ' \
         FROM pg_locks AS l JOIN pg_stat_activity AS a ON a.pid = l.pid \
         WHERE l.locktype = 'advisory' AND l.granted \
         AND l.classid::bigint = $1 AND l.objid::bigint = $2 AND l.objsubid = 1",
    )
    .bind(RUN_LOCK >> 32)
    .bind(RUN_LOCK & 0xffff_ffff)
    .fetch_optional(&mut **tx)
    .await;
    holder.ok().flatten().unwrap_or_default()
}

/// Appends a row as a COPY text-format line: its id (for the staging table), the columns of
/// `contacts` in order, and `updated_at`.
fn put_row(line: &mut Vec<u8>, id: Option<i64>, row: &MergedRow, stamp: &Stamp) {
    if let Some(id) = id {
        line.extend_from_slice(id.to_string().as_bytes());
        line.push(b'\t');
    }
    line.extend_from_slice(row.origin.as_str().as_bytes());
    line.push(b'\t');
    put_text(line, row.directory_id.as_deref());
    line.push(b'\t');
    put_text(line, row.match_key.as_deref());
    for v in &row.values {
        line.push(b'\t');
        put_text(line, v.as_deref());
    }
    line.push(b'\t');
    line.extend_from_slice(row.content_hash().to_string().as_bytes());
    line.push(b'\t');
    put_text(line, Some(&stamp.updated_at));
    line.push(b'\t');
    line.extend_from_slice(side_bits(&row.sides).to_string().as_bytes());
    line.push(b'\t');
    match stamp.run_id {
        Some(id) => line.extend_from_slice(id.to_string().as_bytes()),
        None => line.extend_from_slice(b"\\N"),
    }
    line.push(b'\n');
}

/// Appends number index keys as COPY text-format lines: contact id, number, rank.
fn put_keys(lines: &mut Vec<u8>, keys: impl Iterator<Item = ContactKey>) {
    for (id, key) in keys {
        lines.extend_from_slice(id.to_string().as_bytes());
        lines.push(b'\t');
        put_text(lines, Some(&key.number));
        lines.push(b'\t');
        lines.extend_from_slice(key.rank.to_string().as_bytes());
        lines.push(b'\n');
    }
}

/// Appends a value in COPY text format: `\N` for NULL, backslash, tab, newline and carriage
/// return escaped.
fn put_text(out: &mut Vec<u8>, value: Option<&str>) {
    let Some(value) = value else {
        out.extend_from_slice(b"\\N");
        return;
    };
    let bytes = value.as_bytes();
    let mut from = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escaped: &[u8] = match b {
            b'\\' => b"\\\\",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            _ => continue,
        };
        out.extend_from_slice(&bytes[from..i]);
        out.extend_from_slice(escaped);
        from = i + 1;
    }
    out.extend_from_slice(&bytes[from..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_text_escapes_what_would_end_a_field_or_a_line() {
        let mut out = Vec::new();
        put_text(&mut out, Some("a\\b\tc\nd\re \"é\""));
        out.push(b'|');
        put_text(&mut out, None);
        out.push(b'|');
        put_text(&mut out, Some(""));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a\\\\b\\tc\\nd\\re \"é\"|\\N|"
        );
    }
}
