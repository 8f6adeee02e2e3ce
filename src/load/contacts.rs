//! The merged `contacts` table: the index of what it holds now, the comparison that turns
//! merged rows into inserts, updates and deletes, and its rows as stored (for exports).

use std::collections::HashMap;
use std::sync::LazyLock;

use futures_util::TryStreamExt;
use sqlx::Row;

use crate::load::{LoadError, Store, on_pool};

use crate::fields::{FIELD_COUNT, FIELD_NAMES, FieldValues, empty_values};
use crate::transform::{KeyIndex, MergedRow, Origin, RowState};

/// `extension, first_name, ...`: the 22 field columns in order.
pub static FIELD_COLUMNS: LazyLock<String> = LazyLock::new(|| FIELD_NAMES.join(", "));

/// A change the run makes to the table.
#[derive(Debug)]
pub enum Op {
    /// Rows are boxed: they are large (22 values) and pass through several hands.
    Insert(Box<MergedRow>),
    Update {
        id: i64,
        row: Box<MergedRow>,
    },
    Delete {
        id: i64,
    },
}

#[derive(Debug, Clone, Copy)]
struct Existing {
    row: RowState,
    produced: bool,
}

/// The table's external rows and its directory (and merged) rows: what [`ExistingRows`] and
/// the run's [`KeyIndex`] are sized for.
pub const COUNT_ROWS_SQL: &str =
    "SELECT count(*) - count(directory_id), count(directory_id) FROM contacts";

/// What the table holds now: its directory and merged rows by directory id (a map as large as
/// the directory), and its external rows in the run's [`KeyIndex`] (one entry a key).
#[derive(Debug, Default)]
pub struct ExistingRows {
    directory_rows: HashMap<[u64; 2], Existing, foldhash::fast::FixedState>,
}

impl ExistingRows {
    /// Room for `rows` directory and merged rows.
    pub fn with_capacity(rows: usize) -> ExistingRows {
        ExistingRows {
            directory_rows: HashMap::with_capacity_and_hasher(rows, Default::default()),
        }
    }

    /// True when the table holds no directory or merged row.
    pub fn is_empty(&self) -> bool {
        self.directory_rows.is_empty()
    }

    /// Records a directory or merged row of the table.
    pub fn insert(&mut self, directory_id: &str, row: RowState) {
        self.directory_rows.insert(
            KeyIndex::fingerprint(directory_id),
            Existing {
                row,
                produced: false,
            },
        );
    }

    /// Compares a directory or merged row with the table: the change it needs, or `None`
    /// when unchanged.
    pub fn classify(&mut self, row: Box<MergedRow>) -> Option<Op> {
        let id = KeyIndex::fingerprint(row.directory_id.as_deref().unwrap_or_default());
        let existing = self.directory_rows.get_mut(&id).map(|e| {
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
pub fn compare(row: Box<MergedRow>, existing: Option<RowState>) -> Option<Op> {
    match existing {
        None => Some(Op::Insert(row)),
        Some(e) if e.hash == row.content_hash() => None,
        Some(e) => Some(Op::Update { id: e.id, row }),
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
    pub fn from_row<R: Row>(row: &R) -> Result<StoredRow, sqlx::Error>
    where
        usize: sqlx::ColumnIndex<R>,
        for<'a> &'a str: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
        for<'a> Option<String>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    {
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

/// `SELECT` of the whole merged table in export order: directory rows by id, then external
/// rows by key, both compared byte by byte (`COLLATE "C"` on PostgreSQL, SQLite's default),
/// so both backends export the same bytes.
fn export_sql(store: &Store) -> String {
    let collate = match store.backend_name() {
        "postgres" => " COLLATE \"C\"",
        _ => "",
    };
    format!(
        "SELECT origin, directory_id, match_key, {}, sides, changed_by_run FROM contacts \
         ORDER BY directory_id IS NULL, directory_id{collate}, match_key{collate}",
        *FIELD_COLUMNS
    )
}

/// Where a stored row's values came from: the side of each (bit i set: field i's value is
/// the external one) and the run that last changed the row (none for rows written before
/// ucm recorded it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Provenance {
    pub sides: u32,
    pub changed_by_run: Option<i64>,
}

/// Calls `each` with every row of the merged table, in export order.
pub async fn for_each_row<E: From<LoadError>>(
    store: &Store,
    mut each: impl FnMut(StoredRow, Provenance) -> Result<(), E>,
) -> Result<(), E> {
    let sql = sqlx::AssertSqlSafe(export_sql(store));
    on_pool!(store, |pool| {
        let mut rows = sqlx::query(sql).fetch(pool);
        while let Some(row) = rows.try_next().await.map_err(|e| store.error(e))? {
            let stored = StoredRow::from_row(&row).map_err(|e| store.error(e))?;
            let provenance = (|| {
                Ok::<_, sqlx::Error>(Provenance {
                    sides: row.try_get::<i64, _>(3 + FIELD_COUNT)? as u32,
                    changed_by_run: row.try_get(4 + FIELD_COUNT)?,
                })
            })()
            .map_err(|e| store.error(e))?;
            each(stored, provenance)?;
        }
        Ok(())
    })
}

/// What a run writes on every row it inserts or updates besides the row itself.
pub struct Stamp {
    /// The run's start (RFC 3339): the rows' `updated_at`.
    pub updated_at: String,
    /// The run's id once reserved: the rows' `changed_by_run`.
    pub run_id: Option<i64>,
}
