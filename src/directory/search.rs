//! Contact search over the merged directory, answered from indexes at any size.
//!
//! A query finds the contacts whose first name, last name or e-mail address starts with it
//! (letters compared without regard to case: [`super::folding::fold_case`]), whose "first last" name starts
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

use super::contacts::{Contact, contact_from, contact_of, select_sql_from};
use super::folding::{fold_case, key_spellings};
use super::plans::{Bind, explain};
use super::readers::on_sqlite_reader;
use crate::load::{Backend, LoadError, Store};

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_with_letters_is_a_name_prefix_and_a_number_is_its_digits() {
        assert_eq!(SearchTerms::of("ÉLO").text.as_deref(), Some("élo"));
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
}
