//! The merged `contacts` table: the index of what it holds now, the comparison that turns
//! merged rows into inserts, updates and deletes, and the bulk writer that applies them.

use std::collections::HashMap;
use std::sync::LazyLock;

use futures_util::TryStreamExt;
use sqlx::sqlite::SqliteRow;
use sqlx::{AssertSqlSafe, Row, SqliteConnection};

use crate::fields::{FIELD_COUNT, FIELD_NAMES, FieldValues, empty_values};
use crate::report::{Action, Change, FieldChange};
use crate::transform::merge::{Identity, identity};
use crate::transform::{KeyIndex, MergedRow, Origin, RowState, Side};

/// Rows per multi-row INSERT (27 parameters each, far below SQLite's 32766 limit).
const INSERT_BATCH: usize = 256;
/// Ids per DELETE statement.
const DELETE_BATCH: usize = 500;

/// `extension, first_name, ...`: the 22 field columns in order.
pub static FIELD_COLUMNS: LazyLock<String> = LazyLock::new(|| FIELD_NAMES.join(", "));

const ROW_PARAMS: usize = FIELD_COUNT + 5;

fn insert_sql(rows: usize) -> String {
    let one = format!("({})", vec!["?"; ROW_PARAMS].join(", "));
    format!(
        "INSERT INTO contacts (origin, directory_id, match_key, {}, content_hash, updated_at) VALUES {}",
        *FIELD_COLUMNS,
        vec![one; rows].join(", ")
    )
}

static INSERT_FULL_BATCH: LazyLock<String> = LazyLock::new(|| insert_sql(INSERT_BATCH));
static UPDATE_SQL: LazyLock<String> = LazyLock::new(|| {
    let sets: Vec<String> = FIELD_NAMES.iter().map(|f| format!("{f} = ?")).collect();
    format!(
        "UPDATE contacts SET origin = ?, directory_id = ?, match_key = ?, {}, content_hash = ?, updated_at = ? WHERE id = ?",
        sets.join(", ")
    )
});
static SELECT_ROW_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT origin, directory_id, match_key, {} FROM contacts WHERE id = ?",
        *FIELD_COLUMNS
    )
});

/// A change the run makes to the table.
#[derive(Debug)]
pub enum Op {
    Insert(MergedRow),
    Update { id: i64, row: MergedRow },
    Delete { id: i64 },
}

#[derive(Debug, Clone, Copy)]
struct Existing {
    row: RowState,
    produced: bool,
}

/// What the table holds now: its directory and merged rows by directory id (a map as large as
/// the directory), and its external rows in the run's [`KeyIndex`] (one entry a key).
#[derive(Debug, Default)]
pub struct ExistingRows {
    directory_rows: HashMap<Identity, Existing, foldhash::fast::FixedState>,
}

impl ExistingRows {
    /// Reads the current table (inside the run's transaction): the directory rows here, the
    /// external rows into the returned key index.
    pub async fn load(
        conn: &mut SqliteConnection,
    ) -> Result<(ExistingRows, KeyIndex), sqlx::Error> {
        let external: i64 =
            sqlx::query_scalar("SELECT count(*) FROM contacts WHERE directory_id IS NULL")
                .fetch_one(&mut *conn)
                .await?;
        // Sized once: growing by doubling would hold two tables at the peak.
        let mut index = KeyIndex::with_capacity(external as usize);
        let mut existing = ExistingRows::default();
        let mut rows =
            sqlx::query("SELECT id, directory_id, match_key, content_hash FROM contacts")
                .fetch(conn);
        while let Some(row) = rows.try_next().await? {
            let state = RowState {
                id: row.try_get(0)?,
                hash: row.try_get(3)?,
            };
            match row.try_get::<Option<&str>, _>(1)? {
                Some(directory_id) => {
                    let key = identity(Origin::Directory, Some(directory_id), None);
                    existing.directory_rows.insert(
                        key,
                        Existing {
                            row: state,
                            produced: false,
                        },
                    );
                }
                None => index.insert_existing(row.try_get::<&str, _>(2)?, state),
            }
        }
        Ok((existing, index))
    }

    /// Compares a directory or merged row with the table: the change it needs, or `None`
    /// when unchanged.
    pub fn classify(&mut self, row: MergedRow) -> Option<Op> {
        let existing = self.directory_rows.get_mut(&row.identity()).map(|e| {
            e.produced = true;
            e.row
        });
        compare(row, existing)
    }

    /// Directory rows no merged row claimed: they are deleted.
    pub fn leftovers(&self) -> impl Iterator<Item = i64> + '_ {
        self.directory_rows
            .values()
            .filter(|e| !e.produced)
            .map(|e| e.row.id)
    }
}

/// The change a merged row needs given the table's row of the same identity.
pub fn compare(row: MergedRow, existing: Option<RowState>) -> Option<Op> {
    match existing {
        None => Some(Op::Insert(row)),
        Some(e) if e.hash == row.content_hash() => None,
        Some(e) => Some(Op::Update { id: e.id, row }),
    }
}

/// Applies ops to the table in bulk, inside the caller's transaction.
pub struct Writer<'c> {
    conn: &'c mut SqliteConnection,
    updated_at: String,
    inserts: Vec<MergedRow>,
    pub inserted: u64,
    pub updated: u64,
    pub deleted: u64,
}

impl<'c> Writer<'c> {
    pub fn new(conn: &'c mut SqliteConnection, updated_at: String) -> Writer<'c> {
        Writer {
            conn,
            updated_at,
            inserts: Vec::with_capacity(INSERT_BATCH),
            inserted: 0,
            updated: 0,
            deleted: 0,
        }
    }

    pub async fn apply(&mut self, op: Op) -> Result<(), sqlx::Error> {
        match op {
            Op::Insert(row) => {
                self.inserts.push(row);
                if self.inserts.len() == INSERT_BATCH {
                    self.flush().await?;
                }
            }
            Op::Update { id, row } => {
                let hash = row.content_hash();
                let mut q = sqlx::query(AssertSqlSafe(UPDATE_SQL.as_str()))
                    .bind(row.origin.as_str())
                    .bind(row.directory_id)
                    .bind(row.match_key);
                for v in row.values {
                    q = q.bind(v);
                }
                q.bind(hash)
                    .bind(&self.updated_at)
                    .bind(id)
                    .execute(&mut *self.conn)
                    .await?;
                self.updated += 1;
            }
            Op::Delete { id } => self.delete(&[id]).await?,
        }
        Ok(())
    }

    /// Writes the pending inserts.
    pub async fn flush(&mut self) -> Result<(), sqlx::Error> {
        if self.inserts.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.inserts);
        let n = rows.len() as u64;
        let sql = if rows.len() == INSERT_BATCH {
            INSERT_FULL_BATCH.clone()
        } else {
            insert_sql(rows.len())
        };
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for row in rows {
            let hash = row.content_hash();
            q = q
                .bind(row.origin.as_str())
                .bind(row.directory_id)
                .bind(row.match_key);
            for v in row.values {
                q = q.bind(v);
            }
            q = q.bind(hash).bind(self.updated_at.clone());
        }
        q.execute(&mut *self.conn).await?;
        self.inserted += n;
        self.inserts = Vec::with_capacity(INSERT_BATCH);
        Ok(())
    }

    pub async fn delete(&mut self, ids: &[i64]) -> Result<(), sqlx::Error> {
        for chunk in ids.chunks(DELETE_BATCH) {
            let sql = format!(
                "DELETE FROM contacts WHERE id IN ({})",
                vec!["?"; chunk.len()].join(", ")
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for id in chunk {
                q = q.bind(id);
            }
            self.deleted += q.execute(&mut *self.conn).await?.rows_affected();
        }
        Ok(())
    }
}

/// A row as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredRow {
    pub origin: Origin,
    pub directory_id: Option<String>,
    pub match_key: Option<String>,
    pub values: FieldValues,
}

impl StoredRow {
    /// Decodes `origin, directory_id, match_key, <22 fields>` columns.
    pub fn from_row(row: &SqliteRow) -> Result<StoredRow, sqlx::Error> {
        let mut values = empty_values();
        for (i, v) in values.iter_mut().enumerate() {
            *v = row.try_get(3 + i)?;
        }
        Ok(StoredRow {
            origin: Origin::parse(row.try_get::<&str, _>(0)?).unwrap_or(Origin::Directory),
            directory_id: row.try_get(1)?,
            match_key: row.try_get(2)?,
            values,
        })
    }
}

/// Collects the changes a dry run would make, reading old rows to show their values.
pub struct DryRun<'c> {
    conn: &'c mut SqliteConnection,
    pub changes: Vec<Change>,
    pub inserted: u64,
    pub updated: u64,
    pub deleted: u64,
}

impl<'c> DryRun<'c> {
    pub fn new(conn: &'c mut SqliteConnection) -> DryRun<'c> {
        DryRun {
            conn,
            changes: Vec::new(),
            inserted: 0,
            updated: 0,
            deleted: 0,
        }
    }

    async fn old_row(&mut self, id: i64) -> Result<StoredRow, sqlx::Error> {
        let row = sqlx::query(AssertSqlSafe(SELECT_ROW_SQL.as_str()))
            .bind(id)
            .fetch_one(&mut *self.conn)
            .await?;
        StoredRow::from_row(&row)
    }

    pub async fn apply(&mut self, op: Op) -> Result<(), sqlx::Error> {
        let change = match op {
            Op::Insert(row) => {
                self.inserted += 1;
                let fields = diff(&empty_values(), &row.values, &row.sides);
                Change {
                    action: Action::Insert,
                    origin: row.origin,
                    directory_id: row.directory_id,
                    key: row.match_key,
                    old_origin: None,
                    fields,
                }
            }
            Op::Update { id, row } => {
                self.updated += 1;
                let old = self.old_row(id).await?;
                Change {
                    action: Action::Update,
                    origin: row.origin,
                    fields: diff(&old.values, &row.values, &row.sides),
                    directory_id: row.directory_id,
                    key: row.match_key,
                    old_origin: Some(old.origin),
                }
            }
            Op::Delete { id } => {
                self.deleted += 1;
                let old = self.old_row(id).await?;
                let side = if old.origin == Origin::External {
                    Side::External
                } else {
                    Side::Directory
                };
                Change {
                    action: Action::Delete,
                    origin: old.origin,
                    fields: diff(&old.values, &empty_values(), &[side; FIELD_COUNT]),
                    directory_id: old.directory_id,
                    key: old.match_key,
                    old_origin: None,
                }
            }
        };
        self.changes.push(change);
        Ok(())
    }
}

fn diff(old: &FieldValues, new: &FieldValues, sides: &[Side; FIELD_COUNT]) -> Vec<FieldChange> {
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

/// `SELECT` of the whole merged table in export order: directory rows by id, then external
/// rows by key.
pub static EXPORT_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT origin, directory_id, match_key, {} FROM contacts \
         ORDER BY directory_id IS NULL, directory_id, match_key",
        *FIELD_COLUMNS
    )
});
