//! Contact search over the merged directory, answered from indexes at any size.
//!
//! A query finds the contacts whose first name, last name or e-mail address starts with it
//! (letters compared without regard to case: [`fold_case`]), whose "first last" name starts
//! with it when it holds a space, or, when it is a number (digits with the usual separators),
//! one of whose numbers starts with its digits: read in the number index of caller-ID lookup
//! (`contact_numbers`, migration 0010), where an extension is kept as written and as its
//! digits and mobile, home and fax numbers in E.164, so `2001`, `+32 475`, `32475`, `0032475`
//! and, in the pipeline's `[lookup] default_region` BE, `0475` all find `+32 475 11 11 11`
//! ([`crate::numbers::NumberPlan::search_prefixes`]). `%`, `_` and every other character are
//! literal.
//!
//! The name and e-mail keys have expression indexes (migration 0006, the same expressions on
//! both backends), numbers the number index's `contact_numbers_by_number`; each key is
//! searched as a range (`key >= query AND key < query + U+10FFFF`), once for each way the
//! indexes can spell the query ([`key_spellings`]: they lowercase ASCII only), in index order
//! with its own limit: however large the table and however short the query, a search reads
//! at most `limit` index entries per key and spelling and never sorts the table. The results
//! are the `limit` contacts with the smallest matching key (then by row), each once. Why
//! prefixes on expression indexes rather than substring search, FTS5 or trigrams:
//! docs/decisions/0008-indexed-contact-search.md.

use crate::load::{Backend, LoadError, Store};

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use super::objects::{Contact, contact_from, contact_of, select_sql_from};

/// The longest query searched, in characters (a longer one is cut there).
pub const MAX_QUERY_CHARS: usize = 100;

/// What a query is searched as.
#[derive(Debug, PartialEq, Eq)]
pub struct SearchTerms {
    /// The query, trimmed and lowercased ([`fold_case`]); searched as a prefix of names and
    /// e-mail addresses, in each of its [`key_spellings`]. None when the query is a number.
    pub text: Option<String>,
    /// The query's digits when it is a number (digits and separators only).
    pub digits: Option<String>,
    /// The number index key prefixes the digits are searched as.
    pub number_prefixes: Vec<String>,
}

impl SearchTerms {
    /// The terms of `query`, numbers read without a default region.
    pub fn of(query: &str) -> SearchTerms {
        SearchTerms::in_plan(query, &crate::numbers::NumberPlan::default())
    }

    /// The terms of `query`, numbers read as the number index keys them.
    pub fn in_plan(query: &str, numbers: &crate::numbers::NumberPlan) -> SearchTerms {
        let query: String = query.trim().chars().take(MAX_QUERY_CHARS).collect();
        let is_number = query.chars().any(|c| c.is_ascii_digit())
            && query
                .chars()
                .all(|c| c.is_ascii_digit() || NUMBER_SEPARATORS.contains(&c));
        if is_number {
            let digits: String = query.chars().filter(char::is_ascii_digit).collect();
            SearchTerms {
                text: None,
                number_prefixes: numbers.search_prefixes(&digits),
                digits: Some(digits),
            }
        } else {
            SearchTerms {
                text: Some(fold_case(&query)),
                digits: None,
                number_prefixes: Vec::new(),
            }
        }
    }
}

/// What phone numbers are written with besides digits: a query of digits and these is a
/// number.
const NUMBER_SEPARATORS: [char; 7] = [' ', '-', '+', '/', '(', ')', '.'];

/// How many letters of a query, beyond ASCII, are searched in both cases (see
/// [`key_spellings`]): at most 2^3 = 8 spellings of a query, each a range of each index.
pub const MAX_CASED_LETTERS: usize = 3;

/// `text` as names compare: without regard to case. ASCII letters are lowercased, and so is
/// every other letter that has a one-letter lowercase whose uppercase is that letter again
/// (`É`→`é`, `Ø`→`ø`, `Ж`→`ж`, `Σ`→`σ`); anything else compares as written (`İ`, whose
/// lowercase is two characters, the Kelvin sign, `ß`). This is the rule [`key_spellings`]
/// can find in the indexes, which lowercase ASCII only.
pub fn fold_case(text: &str) -> String {
    if text.is_ascii() {
        return text.to_ascii_lowercase();
    }
    text.chars().map(fold_char).collect()
}

/// Whether `a` and `b` are the same text without regard to case ([`fold_case`]), without
/// copying either.
pub fn same_folded(a: &str, b: &str) -> bool {
    a.chars().map(fold_char).eq(b.chars().map(fold_char))
}

fn fold_char(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_lowercase();
    }
    match one_char(c.to_lowercase()) {
        Some(lower) if lower != c && one_char(lower.to_uppercase()) == Some(c) => lower,
        _ => c,
    }
}

fn one_char(mut chars: impl Iterator<Item = char>) -> Option<char> {
    match (chars.next(), chars.next()) {
        (Some(c), None) => Some(c),
        _ => None,
    }
}

/// The index keys a name starting with `prefix` (in any case, by [`fold_case`]) can start
/// with. The name and e-mail indexes hold the values with ASCII letters lowercased and every
/// other letter as written, so `élo` is searched as `élo` and `Élo`; each of the first
/// [`MAX_CASED_LETTERS`] letters beyond ASCII that have two cases doubles the spellings, and
/// later ones are searched in lowercase only (`ÉLODIE DUPRÉ` typed finds `Élodie Dupré`, and
/// `ÉÉÉÉ` finds `éééé` but not `ÉÉÉÉ`).
pub fn key_spellings(prefix: &str) -> Vec<String> {
    let mut spellings = vec![String::with_capacity(prefix.len())];
    let mut cased = 0;
    for c in prefix.chars().map(fold_char) {
        let upper = one_char(c.to_uppercase()).filter(|&u| u != c && fold_char(u) == c);
        match upper {
            Some(upper) if !c.is_ascii() && cased < MAX_CASED_LETTERS => {
                cased += 1;
                let mut both = Vec::with_capacity(spellings.len() * 2);
                for spelling in spellings {
                    let mut other = spelling.clone();
                    other.push(upper);
                    let mut spelling = spelling;
                    spelling.push(c);
                    both.push(spelling);
                    both.push(other);
                }
                spellings = both;
            }
            _ => spellings.iter_mut().for_each(|s| s.push(c)),
        }
    }
    spellings
}

/// The indexed key expressions, as migration 0006 creates them on `backend`. PostgreSQL's
/// keys are in the "C" collation, so that they lowercase ASCII only and compare byte by byte
/// as SQLite's do.
fn key_sql(backend: &Backend, key: Key) -> String {
    name_key_sql(
        backend,
        match key {
            Key::FirstName => "first_name",
            Key::LastName => "last_name",
            Key::EMail => "e_mail",
        },
    )
}

/// The indexed key of `column` (first_name, last_name or e_mail) on `backend`: what the
/// expression indexes of migration 0006 hold, so that a range of it reads the index.
pub(crate) fn name_key_sql(backend: &Backend, column: &str) -> String {
    match backend {
        Backend::Postgres { .. } => format!("lower({column} COLLATE \"C\")"),
        Backend::Sqlite { .. } => format!("lower({column})"),
    }
}

#[derive(Clone, Copy, Debug)]
enum Key {
    FirstName,
    LastName,
    EMail,
}

/// The search's SQL on `backend` for `terms` and at most `limit` results, and the text values
/// to bind, in order. None when there is nothing to search for.
///
/// The limit is written into the SQL as a number, not bound: SQLite (since 3.47) reads a
/// bound LIMIT while planning and marks the statement for re-preparation whenever that
/// parameter is bound again, which made every search parse and plan its statement anew
/// (38% of the service's CPU under 50 searching clients).
pub fn search_sql(
    backend: &Backend,
    terms: &SearchTerms,
    limit: i64,
) -> Option<(String, Vec<String>)> {
    let placeholder = |n: usize| match backend {
        Backend::Sqlite { .. } => format!("?{n}"),
        Backend::Postgres { .. } => format!("${n}"),
    };
    let mut binds: Vec<String> = Vec::new();
    let mut arms = Vec::new();
    // One arm: the contacts whose `key` lies in [prefix, prefix + U+10FFFF), in index order.
    let mut range = |key: Key, prefix: &str, extra: Option<(&str, &str)>| {
        let expr = key_sql(backend, key);
        let mut bounds = |value: &str| {
            binds.push(value.to_owned());
            let low = placeholder(binds.len());
            binds.push(format!("{value}\u{10FFFF}"));
            (low, placeholder(binds.len()))
        };
        let (low, high) = bounds(prefix);
        let mut filter = format!("{expr} >= {low} AND {expr} < {high}");
        if let Some((other, other_prefix)) = extra {
            let (low, high) = bounds(other_prefix);
            filter.push_str(&format!(" AND {other} >= {low} AND {other} < {high}"));
        }
        arms.push(format!(
            "SELECT * FROM (SELECT id, {expr} AS search_key FROM contacts WHERE {filter} \
             ORDER BY {expr}, id LIMIT {limit}) AS {key:?}"
        ));
    };
    if let Some(text) = terms.text.as_deref().filter(|t| !t.is_empty()) {
        let spellings = key_spellings(text);
        for key in [Key::FirstName, Key::LastName, Key::EMail] {
            for spelling in &spellings {
                range(key, spelling, None);
            }
        }
        // "ann pee": the Anns (from the first-name index) whose "first last" starts so.
        let full = format!(
            "{} || ' ' || {}",
            key_sql(backend, Key::FirstName),
            key_sql(backend, Key::LastName)
        );
        for spelling in &spellings {
            if let Some((first, _)) = spelling.split_once(' ') {
                range(Key::FirstName, first, Some((&full, spelling)));
            }
        }
    }
    // Numbers: each prefix a range of the number index, in its order.
    for prefix in &terms.number_prefixes {
        binds.push(prefix.clone());
        let low = placeholder(binds.len());
        binds.push(format!("{prefix}\u{10FFFF}"));
        let high = placeholder(binds.len());
        arms.push(format!(
            "SELECT * FROM (SELECT contact_id AS id, number AS search_key FROM contact_numbers \
             WHERE number >= {low} AND number < {high} ORDER BY number, rank, contact_id \
             LIMIT {limit}) AS numbers"
        ));
    }
    if arms.is_empty() {
        return None;
    }
    let best = format!(
        "SELECT id, min(search_key) AS search_key FROM ({}) AS candidates \
         GROUP BY id ORDER BY min(search_key), id LIMIT {limit}",
        arms.join(" UNION ALL ")
    );
    Some((
        select_sql_from(
            &format!("({best}) AS b JOIN contacts AS c ON c.id = b.id"),
            "ORDER BY b.search_key, c.id",
        ),
        binds,
    ))
}

/// The contacts `query` finds (see the module's documentation), each with its live state:
/// at most `limit`, those with the smallest matching key first.
pub async fn search(store: &Store, query: &str, limit: i64) -> Result<Vec<Contact>, LoadError> {
    let Some((sql, binds)) = search_sql(
        &store.backend,
        &SearchTerms::in_plan(query, store.numbers()),
        limit,
    ) else {
        return Ok(Vec::new());
    };
    match &store.backend {
        Backend::Sqlite { path, .. } => {
            on_sqlite_reader(store, path, move |conn| {
                let mut statement = conn.prepare_cached(&sql)?;
                bind_sqlite(&mut statement, &binds)?;
                let mut rows = statement.raw_query();
                let mut found = Vec::new();
                while let Some(row) = rows.next()? {
                    found.push(contact_from(|i| row.get(i), |i| row.get(i))?);
                }
                Ok(found)
            })
            .await
        }
        Backend::Postgres { pool } => {
            let rows = bind_postgres(&sql, &binds)
                .fetch_all(pool)
                .await
                .map_err(|e| store.error(e))?;
            rows.iter()
                .map(contact_of)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| store.error(e))
        }
    }
}

/// `sql` with the search's values bound.
fn bind_postgres<'q>(
    sql: &str,
    binds: &'q [String],
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    let mut statement = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()));
    for value in binds {
        statement = statement.bind(value);
    }
    statement
}

fn bind_sqlite(
    statement: &mut rusqlite::CachedStatement<'_>,
    binds: &[String],
) -> rusqlite::Result<()> {
    for (i, value) in binds.iter().enumerate() {
        statement.raw_bind_parameter(i + 1, value)?;
    }
    Ok(())
}

/// Read connections to SQLite databases for searches, each used by one blocking thread at a
/// time (at most as many as searches run at once: the service's search lane).
static SQLITE_READERS: Mutex<Vec<(PathBuf, rusqlite::Connection)>> = Mutex::new(Vec::new());

/// Runs `work` on a blocking thread with a read connection to the SQLite database at `path`
/// (an idle one, or a new one), then keeps the connection for the next search. Searches use
/// rusqlite on a thread of their own rather than sqlx: one hand-off from the async runtime
/// instead of sqlx's per-connection worker thread and a channel message per row (a search
/// under 50 clients spent about 30% of its time switching threads).
pub(crate) async fn on_sqlite_reader<T: Send + 'static>(
    store: &Store,
    path: &Path,
    work: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T> + Send + 'static,
) -> Result<T, LoadError> {
    let path = path.to_owned();
    let done = tokio::task::spawn_blocking(move || {
        let idle = {
            let mut idle = SQLITE_READERS.lock().expect("no poisoning");
            idle.iter()
                .position(|(p, _)| *p == path)
                .map(|i| idle.swap_remove(i).1)
        };
        let conn = match idle {
            Some(conn) => conn,
            None => {
                let conn = rusqlite::Connection::open_with_flags(
                    &path,
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                        | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                conn.busy_timeout(Duration::from_secs(30))?;
                conn.pragma_update(None, "cache_size", -8192)?;
                conn
            }
        };
        let done = work(&conn);
        SQLITE_READERS
            .lock()
            .expect("no poisoning")
            .push((path, conn));
        done
    })
    .await
    .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    done.map_err(|e| crate::load::run::run_error(store.url(), e))
}

/// The database's plan for searching `query`, one line a step: what a test (or an operator
/// who doubts the indexes) reads to see that no step scans the table.
pub async fn search_plan(store: &Store, query: &str) -> Result<String, LoadError> {
    let Some((sql, binds)) = search_sql(
        &store.backend,
        &SearchTerms::in_plan(query, store.numbers()),
        20,
    ) else {
        return Ok(String::new());
    };
    explain(store, &sql, binds.into_iter().map(Bind::Text).collect()).await
}

/// A value bound to a statement [`explain`] plans.
pub(crate) enum Bind {
    Text(String),
    Int(i64),
}

/// The database's plan for `sql` with `binds`, one line a step. On SQLite it is planned on
/// the connection kind searches use; on PostgreSQL with sequential scans, bitmap scans and
/// sorts disabled, so that it reads an index in order whenever one applies, even on a table
/// small enough to scan.
pub(crate) async fn explain(
    store: &Store,
    sql: &str,
    binds: Vec<Bind>,
) -> Result<String, LoadError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_with_letters_is_a_name_prefix_and_a_number_is_its_digits() {
        assert_eq!(
            SearchTerms::of("  Ann Pee "),
            SearchTerms {
                text: Some("ann pee".into()),
                digits: None,
                number_prefixes: Vec::new(),
            }
        );
        assert_eq!(
            SearchTerms::of("+32 (475) 11-11.11"),
            SearchTerms {
                text: None,
                digits: Some("32475111111".into()),
                number_prefixes: vec!["32475111111".into(), "+32475111111".into()],
            }
        );
        // Letters and digits together are text (an e-mail address, a street name).
        assert_eq!(SearchTerms::of("ann2@x").text.as_deref(), Some("ann2@x"));
        // % and _ are searched as themselves.
        assert_eq!(SearchTerms::of("100%_").text.as_deref(), Some("100%_"));
        assert_eq!(
            SearchTerms::of(&"x".repeat(500)).text.unwrap().len(),
            MAX_QUERY_CHARS
        );
    }

    #[test]
    fn letters_beyond_ascii_compare_without_case_and_are_searched_in_both() {
        assert_eq!(
            fold_case("ÉLODIE Dupré ØRSTED Жанна ΣΟΦΙΑ"),
            "élodie dupré ørsted жанна σοφια"
        );
        // Letters without a one-letter lowercase that maps back compare as written.
        assert_eq!(fold_case("İ\u{212A}ß"), "İ\u{212A}ß");
        assert_eq!(SearchTerms::of("ÉLO").text.as_deref(), Some("élo"));
        assert!(same_folded("Élodie DUPRÉ", "élodie dupré"));
        assert!(!same_folded("Élodie", "elodie") && !same_folded("Élodie", "Élodi"));
        assert_eq!(key_spellings("Ann"), vec!["ann"]);
        assert_eq!(key_spellings("ÉLO"), vec!["élo", "Élo"]);
        assert_eq!(
            key_spellings("élodie dupré"),
            vec![
                "élodie dupré",
                "élodie duprÉ",
                "Élodie dupré",
                "Élodie duprÉ"
            ]
        );
        // Only the first MAX_CASED_LETTERS such letters double the spellings.
        let many = key_spellings("ééééé");
        assert_eq!(many.len(), 1 << MAX_CASED_LETTERS);
        assert!(many.contains(&"ÉÉÉéé".to_owned()));
        assert!(many.iter().all(|s| s.ends_with("éé")));
        // Every spelling folds back to the query.
        for query in ["Ærø straße", "ΣΟΦΙΑ", "ǅemal"] {
            for spelling in key_spellings(query) {
                assert_eq!(fold_case(&spelling), fold_case(query), "{spelling}");
            }
        }
    }
}
