//! Caller-ID: the contacts a calling number belongs to, read from the number index
//! (`contact_numbers`, at most [`MAX_MATCHES`] entries per key) and ranked by field, origin and
//! id (`crate::numbers::RANK_RULE`), whatever the table's size.

use rusqlite::OptionalExtension;
use sqlx::Row;

use super::plans::{Bind, explain};
use super::readers::on_sqlite_reader;
use crate::load::{Backend, LoadError, Store};
use crate::phonebook::Entry;

/// Contacts read per key at most: a number shared by more (a switchboard number on every
/// card) still costs one bounded read; the JSON answer counts up to this many.
pub const MAX_MATCHES: i64 = 100;

/// A contact that has the number.
pub struct Match {
    pub number: String,
    pub rank: i64,
    pub contact_id: i64,
    pub origin: String,
    pub entry: Entry,
}

/// What the index holds for a number's keys.
pub struct Found {
    /// Best first, each contact once.
    pub matches: Vec<Match>,
    /// The region the index was built with; None when it is not built.
    pub built_with: Option<String>,
}

/// Each key's entries in index order (at most [`MAX_MATCHES`] per key), with their contacts;
/// the region the index was built with comes along (one statement).
pub const LOOKUP_SQL: &str = "SELECT k.number, CAST(k.rank AS BIGINT), c.id, c.origin, c.first_name, c.last_name, \
     c.e_mail, (SELECT region FROM number_index) AS built_with FROM (\
     SELECT * FROM (SELECT number, rank, contact_id FROM contact_numbers WHERE number = $1 \
     ORDER BY rank, contact_id LIMIT 100) AS first_key UNION ALL \
     SELECT * FROM (SELECT number, rank, contact_id FROM contact_numbers WHERE number = $2 \
     ORDER BY rank, contact_id LIMIT 100) AS second_key) AS k \
     JOIN contacts AS c ON c.id = k.contact_id ORDER BY k.rank, k.contact_id";

/// The region the index was built with, when no key matched.
const BUILT_WITH_SQL: &str = "SELECT region FROM number_index";

/// A row of [`LOOKUP_SQL`] as a match and the region the index was built with, read through
/// the backend's getters (text, optional text, integer), whichever the driver.
fn match_of<E>(
    text: impl Fn(usize) -> Result<String, E>,
    optional: impl Fn(usize) -> Result<Option<String>, E>,
    integer: impl Fn(usize) -> Result<i64, E>,
) -> Result<(Match, Option<String>), E> {
    Ok((
        Match {
            number: text(0)?,
            rank: integer(1)?,
            contact_id: integer(2)?,
            origin: text(3)?,
            entry: Entry {
                first_name: optional(4)?,
                last_name: optional(5)?,
                e_mail: optional(6)?,
                ..Entry::default()
            },
        },
        optional(7)?,
    ))
}

/// Reads the index for `keys` (one or two: the number as written and normalised). On SQLite
/// through the search's read connections (rusqlite, a cached statement, one hand-off from the
/// runtime); on PostgreSQL through the pool.
pub async fn find(store: &Store, keys: &[String]) -> Result<Found, LoadError> {
    let first = keys[0].clone();
    let second = keys.get(1).unwrap_or(&keys[0]).clone();
    let (rows, built_with): (Vec<Match>, Option<String>) = match store.backend() {
        Backend::Sqlite { path, .. } => {
            on_sqlite_reader(store, path, move |conn| {
                let mut lookup = conn.prepare_cached(LOOKUP_SQL)?;
                let rows = lookup
                    .query_map([&first, &second], |row| {
                        match_of(|i| row.get(i), |i| row.get(i), |i| row.get(i))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                let built_with = match rows.first() {
                    Some((_, built_with)) => built_with.clone(),
                    None => conn
                        .prepare_cached(BUILT_WITH_SQL)?
                        .query_row([], |r| r.get(0))
                        .optional()?,
                };
                Ok((rows.into_iter().map(|(m, _)| m).collect(), built_with))
            })
            .await?
        }
        Backend::Postgres { pool } => {
            let found = sqlx::query(LOOKUP_SQL)
                .bind(&first)
                .bind(&second)
                .fetch_all(pool)
                .await
                .and_then(|rows| {
                    rows.iter()
                        .map(|row| {
                            match_of(|i| row.try_get(i), |i| row.try_get(i), |i| row.try_get(i))
                        })
                        .collect::<Result<Vec<_>, sqlx::Error>>()
                })
                .map_err(|e| store.error(e))?;
            let built_with = match found.first() {
                Some((_, built_with)) => built_with.clone(),
                None => sqlx::query_scalar(BUILT_WITH_SQL)
                    .fetch_optional(pool)
                    .await
                    .map_err(|e| store.error(e))?,
            };
            (found.into_iter().map(|(m, _)| m).collect(), built_with)
        }
    };
    // A contact found by both keys (its extension and its mobile written alike) once.
    let mut matches: Vec<Match> = Vec::new();
    for m in rows {
        if !matches.iter().any(|known| known.contact_id == m.contact_id) {
            matches.push(m);
        }
    }
    Ok(Found {
        matches,
        built_with,
    })
}

/// The database's plan for a lookup, one line a step: what a test (or an operator who
/// doubts the index) reads to see that no step scans a table. On PostgreSQL with sequential
/// scans disabled, so that it uses an index whenever one applies, even on a small table.
pub async fn lookup_plan(store: &Store) -> Result<String, LoadError> {
    let keys = ["0475111111", "+32475111111"].map(|k| Bind::Text(k.to_owned()));
    explain(store, LOOKUP_SQL, keys.into()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_key_reads_at_most_max_matches_entries() {
        assert_eq!(
            LOOKUP_SQL.matches(&format!("LIMIT {MAX_MATCHES})")).count(),
            2
        );
    }
}
