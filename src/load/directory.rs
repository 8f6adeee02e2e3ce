//! The `directory` table: replaced as a whole from a CSV, read back for runs.

use std::sync::LazyLock;

use futures_util::TryStreamExt;
use sqlx::{AssertSqlSafe, Row, SqliteConnection};

use crate::fields::{FIELD_COUNT, empty_values};
use crate::load::contacts::FIELD_COLUMNS;
use crate::transform::DirectoryEntry;

/// Entries per multi-row INSERT (23 parameters each).
const BATCH: usize = 256;

fn insert_sql(rows: usize) -> String {
    let one = format!("({})", vec!["?"; FIELD_COUNT + 1].join(", "));
    format!(
        "INSERT INTO directory (id, {}) VALUES {}",
        *FIELD_COLUMNS,
        vec![one; rows].join(", ")
    )
}

static SELECT_SQL: LazyLock<String> =
    LazyLock::new(|| format!("SELECT id, {} FROM directory ORDER BY id", *FIELD_COLUMNS));

/// Replaces the directory's contents with `entries` (inside the caller's transaction).
pub async fn replace(
    conn: &mut SqliteConnection,
    entries: &[DirectoryEntry],
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM directory")
        .execute(&mut *conn)
        .await?;
    for chunk in entries.chunks(BATCH) {
        let mut q = sqlx::query(AssertSqlSafe(insert_sql(chunk.len())));
        for e in chunk {
            q = q.bind(e.id.as_str());
            for v in &e.values {
                q = q.bind(v.as_deref());
            }
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Reads every directory entry.
pub async fn read_all(conn: &mut SqliteConnection) -> Result<Vec<DirectoryEntry>, sqlx::Error> {
    let mut entries = Vec::new();
    let mut rows = sqlx::query(AssertSqlSafe(SELECT_SQL.as_str())).fetch(conn);
    while let Some(row) = rows.try_next().await? {
        let mut values = empty_values();
        for (i, v) in values.iter_mut().enumerate() {
            *v = row.try_get(1 + i)?;
        }
        entries.push(DirectoryEntry {
            id: row.try_get(0)?,
            values,
        });
    }
    Ok(entries)
}
