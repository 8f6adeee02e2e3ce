//! Query plans: what the database does for a statement, one line a step, so a test (or an
//! operator who doubts the indexes) can see that no step scans a table.

use super::readers::on_sqlite_reader;
use crate::load::{Backend, LoadError, Store};

/// A value bound to a statement [`explain`] plans.
pub enum Bind {
    Text(String),
    Int(i64),
}

/// The database's plan for `sql` with `binds`, one line a step. On SQLite it is planned on
/// the connection kind searches use; on PostgreSQL with sequential scans, bitmap scans and
/// sorts disabled, so that it reads an index in order whenever one applies, even on a table
/// small enough to scan.
pub async fn explain(store: &Store, sql: &str, binds: Vec<Bind>) -> Result<String, LoadError> {
    let lines: Vec<String> = match &store.backend {
        Backend::Sqlite { path, .. } => {
            let sql = format!("EXPLAIN QUERY PLAN {sql}");
            on_sqlite_reader(store, path, move |conn| {
                let mut statement = conn.prepare(&sql)?;
                for (i, bind) in binds.iter().enumerate() {
                    match bind {
                        Bind::Text(t) => statement.raw_bind_parameter(i + 1, t)?,
                        Bind::Int(n) => statement.raw_bind_parameter(i + 1, n)?,
                    }
                }
                let mut rows = statement.raw_query();
                let mut lines = Vec::new();
                while let Some(row) = rows.next()? {
                    lines.push(row.get(3)?);
                }
                Ok(lines)
            })
            .await?
        }
        Backend::Postgres { pool } => {
            let mut tx = pool.begin().await.map_err(|e| store.error(e))?;
            // What a table of millions makes the planner choose: index paths, in order.
            for setting in ["enable_seqscan", "enable_bitmapscan", "enable_sort"] {
                sqlx::query(sqlx::AssertSqlSafe(format!("SET LOCAL {setting} = off")))
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| store.error(e))?;
            }
            let mut statement = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("EXPLAIN {sql}")));
            for bind in binds {
                statement = match bind {
                    Bind::Text(t) => statement.bind(t),
                    Bind::Int(n) => statement.bind(n),
                };
            }
            statement
                .fetch_all(&mut *tx)
                .await
                .map_err(|e| store.error(e))?
        }
    };
    Ok(lines.join("\n"))
}
