//! How a search of the LDAP directory reads the merged table: which index ranges can hold
//! the entries a filter matches ([`plan`]), and reading them in order a batch at a time,
//! each row checked against the whole filter in Rust ([`find`]).
//!
//! A filter a phone sends while its user types (`(|(cn=ann*)(sn=ann*))`,
//! `(telephoneNumber=0475*)`) names a prefix of a name, an e-mail address or a number: it is
//! read from the indexes the contact search uses (migration 0006's name and e-mail
//! expressions, the number index `contact_numbers`), in index order, so a search reads about
//! as many index entries as it returns, at any table size. A filter with no such prefix
//! (`(cn=*ann*)`, `(!(ou=sales))`, `(objectClass=*)`) reads the table in id order; it is
//! bounded by the size and time limits.
//!
//! The ranges are read one after the other ("arms"); a row found again in a later arm (Anna
//! Anders is in both `givenName=an*` and `sn=an*`) is answered only in the first, and a row
//! with two numbers in one range only at the smaller, so every entry is answered once. The
//! position after the last row answered (arm, key, rank, id) is the paged results cookie.

use std::time::Instant;

use ldap3_proto::proto::LdapFilter;

use super::entry::{Attr, CONTACT_COLUMNS, ContactRow, EntryStyle, typed_number_keys};
use crate::directory::key_spellings;
use crate::directory::plans::{Bind, explain};
use crate::load::{Backend, LoadError, Store};

/// The index an arm reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Index {
    FirstName,
    LastName,
    EMail,
    /// `contact_numbers_by_number`.
    Number,
    /// One contact of the directory, by its id (`uid=dir-...`).
    DirectoryId,
    /// One external-only contact, by its match key (`uid=ext-...`).
    MatchKey,
}

/// A range of an index: the keys from `low` (included) to `high` (excluded); for
/// [`Index::DirectoryId`] and [`Index::MatchKey`], the key `low` exactly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arm {
    pub index: Index,
    pub low: String,
    pub high: String,
}

impl Arm {
    /// The ranges of `index` holding the keys that start with `prefix`: one for each way the
    /// name and e-mail indexes can spell it ([`key_spellings`]), one for the others.
    fn prefixes(index: Index, prefix: &str) -> Vec<Arm> {
        let range = |low: String| Arm {
            index,
            high: format!("{low}\u{10FFFF}"),
            low,
        };
        match index {
            Index::FirstName | Index::LastName | Index::EMail => {
                key_spellings(prefix).into_iter().map(range).collect()
            }
            Index::DirectoryId | Index::MatchKey | Index::Number => vec![range(prefix.to_owned())],
        }
    }

    /// The row's smallest key in this arm's range, if it has one.
    fn key_of(&self, row: &ContactRow, style: &EntryStyle<'_>) -> Option<String> {
        let in_range = |k: &str| k >= self.low.as_str() && k < self.high.as_str();
        let lower = |v: &Option<String>| {
            v.as_deref()
                .map(str::to_ascii_lowercase)
                .filter(|k| in_range(k))
        };
        match self.index {
            Index::FirstName => lower(&row.first_name),
            Index::LastName => lower(&row.last_name),
            Index::EMail => lower(&row.e_mail),
            Index::Number => [
                Attr::TelephoneNumber,
                Attr::Mobile,
                Attr::HomePhone,
                Attr::Fax,
            ]
            .into_iter()
            .flat_map(|a| row.keys_of(a, style.numbers))
            .filter(|k| in_range(k))
            .min()
            .cloned(),
            Index::DirectoryId => row.directory_id.clone().filter(|k| *k == self.low),
            Index::MatchKey => row
                .match_key
                .clone()
                .filter(|k| row.directory_id.is_none() && *k == self.low),
        }
    }
}

/// Where the entries a filter matches can be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Nowhere: the filter is never true (an attribute the directory does not have).
    Nothing,
    /// Anywhere: the table is read in id order.
    Scan,
    /// In these ranges.
    Arms(Vec<Arm>),
}

impl Plan {
    /// What is read, in order: each range, or the table (None); None when nothing is.
    fn arms(&self) -> Option<Vec<Option<&Arm>>> {
        match self {
            Plan::Nothing => None,
            Plan::Scan => Some(vec![None]),
            Plan::Arms(arms) => Some(arms.iter().map(Some).collect()),
        }
    }
}

/// The plan of `filter`: ranges when every entry it can match is in one of them.
pub fn plan(filter: &LdapFilter, style: &EntryStyle<'_>) -> Plan {
    match filter {
        LdapFilter::And(all) => {
            let mut best: Option<Vec<Arm>> = None;
            for f in all {
                match plan(f, style) {
                    Plan::Nothing => return Plan::Nothing,
                    Plan::Scan => {}
                    Plan::Arms(arms) => {
                        if best.as_ref().is_none_or(|b| arms.len() < b.len()) {
                            best = Some(arms);
                        }
                    }
                }
            }
            best.map_or(Plan::Scan, Plan::Arms)
        }
        LdapFilter::Or(any) => {
            let mut arms: Vec<Arm> = Vec::new();
            for f in any {
                match plan(f, style) {
                    Plan::Nothing => {}
                    Plan::Scan => return Plan::Scan,
                    Plan::Arms(more) => {
                        for arm in more {
                            if !arms.contains(&arm) {
                                arms.push(arm);
                            }
                        }
                    }
                }
            }
            if arms.is_empty() {
                Plan::Nothing
            } else {
                Plan::Arms(arms)
            }
        }
        LdapFilter::Equality(name, value) | LdapFilter::Approx(name, value) => {
            match Attr::parse(name) {
                None => Plan::Nothing,
                Some(attr) => prefix_plan(attr, value, true, style),
            }
        }
        LdapFilter::Substring(name, parts) => match (Attr::parse(name), &parts.initial) {
            (None, _) => Plan::Nothing,
            (Some(attr), Some(initial)) => prefix_plan(attr, initial, false, style),
            (Some(_), None) => Plan::Scan,
        },
        LdapFilter::Present(name)
        | LdapFilter::GreaterOrEqual(name, _)
        | LdapFilter::LessOrEqual(name, _) => match Attr::parse(name) {
            None => Plan::Nothing,
            Some(_) => Plan::Scan,
        },
        LdapFilter::Not(_) => Plan::Scan,
        LdapFilter::Extensible(_) => Plan::Nothing,
    }
}

/// The ranges holding every entry whose `attr` starts with (or, when `exact`, is) `value`.
fn prefix_plan(attr: Attr, value: &str, exact: bool, style: &EntryStyle<'_>) -> Plan {
    match attr {
        Attr::GivenName => Plan::Arms(Arm::prefixes(Index::FirstName, value)),
        Attr::Mail => Plan::Arms(Arm::prefixes(Index::EMail, value)),
        Attr::Cn | Attr::DisplayName | Attr::Sn => {
            // The name shown is "first last", "last, first", one of them, the e-mail address
            // or "?" (then only a scan finds it). Its start is the start of a first or last
            // name up to the first space or comma, or of the e-mail address.
            if "?".starts_with(&value.to_ascii_lowercase()) {
                return Plan::Scan;
            }
            let cut = value.split([' ', ',']).next().unwrap_or(value);
            let mut arms = Arm::prefixes(Index::FirstName, cut);
            arms.extend(Arm::prefixes(Index::LastName, cut));
            arms.extend(Arm::prefixes(Index::EMail, value));
            Plan::Arms(arms)
        }
        a if a.is_number() => {
            let keys = typed_number_keys(style.numbers, value);
            if keys.is_empty() {
                return Plan::Scan;
            }
            Plan::Arms(
                keys.iter()
                    .flat_map(|k| Arm::prefixes(Index::Number, k))
                    .collect(),
            )
        }
        Attr::Uid if exact => match (value.strip_prefix("dir-"), value.strip_prefix("ext-")) {
            (Some(id), _) => Plan::Arms(Arm::prefixes(Index::DirectoryId, id)),
            (_, Some(key)) => Plan::Arms(Arm::prefixes(Index::MatchKey, key)),
            _ => Plan::Nothing,
        },
        _ => Plan::Scan,
    }
}

/// A position in a plan: after the row (`key`, `rank`, `id`) of arm `arm`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub arm: usize,
    pub key: String,
    pub rank: i64,
    pub id: i64,
}

impl Cursor {
    /// Before the first row of arm `arm` of `plan`.
    pub fn start(plan: &Plan, arm: usize) -> Cursor {
        let key = match plan {
            Plan::Arms(arms) => arms.get(arm).map(|a| a.low.clone()).unwrap_or_default(),
            _ => String::new(),
        };
        Cursor {
            arm,
            key,
            rank: i64::MIN,
            id: i64::MIN,
        }
    }

    /// As a paged results cookie, bound to the search it belongs to by `fingerprint`.
    pub fn cookie(&self, fingerprint: u64) -> Vec<u8> {
        format!(
            "{fingerprint:016x}|{}|{}|{}|{}",
            self.arm, self.rank, self.id, self.key
        )
        .into_bytes()
    }

    /// The cursor of a cookie this search (`fingerprint`) gave; None for another's or junk.
    pub fn of_cookie(cookie: &[u8], fingerprint: u64) -> Option<Cursor> {
        let text = std::str::from_utf8(cookie).ok()?;
        let mut parts = text.splitn(5, '|');
        if parts.next()? != format!("{fingerprint:016x}") {
            return None;
        }
        Some(Cursor {
            arm: parts.next()?.parse().ok()?,
            rank: parts.next()?.parse().ok()?,
            id: parts.next()?.parse().ok()?,
            key: parts.next()?.to_owned(),
        })
    }
}

/// What [`find`] found.
#[derive(Debug, Default)]
pub struct Found {
    pub rows: Vec<ContactRow>,
    /// After the last row found, when more rows match.
    pub more: Option<Cursor>,
    /// The deadline came before the search was done.
    pub timed_out: bool,
    /// The scan read its rows in the lane without finding its entries: `more` is where it
    /// goes on, as unindexed work ([`Bounds::scan_rows`]).
    pub unindexed: bool,
}

impl Found {
    /// These rows, then what a search going on from where these stopped found.
    pub fn followed_by(mut self, more: Found) -> Found {
        self.rows.extend(more.rows);
        Found {
            rows: self.rows,
            more: more.more,
            timed_out: more.timed_out,
            unindexed: more.unindexed,
        }
    }
}

/// How far [`find`] goes: `want` rows, until `deadline`; a scan of the table reads at most
/// `scan_rows` rows (when given) before it stops as [`Found::unindexed`].
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    pub want: usize,
    pub deadline: Instant,
    pub scan_rows: Option<usize>,
}

/// Rows read at once from an arm.
const BATCH: usize = 256;

/// The first `bounds.want` rows after `from` that `keep` keeps, read along `plan`.
pub async fn find(
    store: &Store,
    plan: &Plan,
    from: Cursor,
    bounds: Bounds,
    style: &EntryStyle<'_>,
    keep: impl Fn(&ContactRow) -> bool,
) -> Result<Found, LoadError> {
    let Bounds {
        want,
        deadline,
        scan_rows,
    } = bounds;
    let Some(arms) = plan.arms() else {
        return Ok(Found::default());
    };
    let mut found = Found::default();
    let mut scanned = 0;
    let mut cursor = from;
    while cursor.arm < arms.len() {
        if Instant::now() >= deadline {
            found.timed_out = true;
            return Ok(found);
        }
        let arm = arms[cursor.arm];
        // A first batch about as large as the answer; whole batches after.
        let size = if found.rows.is_empty() {
            (want + 1).clamp(16, BATCH)
        } else {
            BATCH
        };
        let batch = read_batch(store, arm, &cursor, size).await?;
        let exhausted = batch.len() < size;
        let kept = if arm.is_none() {
            // A scan checks every row of the table against the filter (number keys parsed,
            // substrings searched): on a blocking thread, not the runtime's workers that
            // answer everyone else.
            crate::blocking::off_the_runtime(|| batch.iter().map(|(row, ..)| keep(row)).collect())
        } else {
            batch
                .iter()
                .map(|(row, ..)| keep(row))
                .collect::<Vec<bool>>()
        };
        for ((row, key, rank), kept) in batch.into_iter().zip(kept) {
            let here = Cursor {
                arm: cursor.arm,
                key,
                rank,
                id: row.id,
            };
            let first_sight = match arm {
                None => true,
                Some(arm) => {
                    arms[..cursor.arm]
                        .iter()
                        .all(|earlier| earlier.is_some_and(|e| e.key_of(&row, style).is_none()))
                        && arm.key_of(&row, style).as_deref() == Some(here.key.as_str())
                }
            };
            if first_sight && kept {
                if found.rows.len() == want {
                    // One more matches: the next page starts after the row before it.
                    found.more = Some(cursor);
                    return Ok(found);
                }
                found.rows.push(row);
            }
            cursor = here;
        }
        if exhausted {
            cursor = Cursor::start(plan, cursor.arm + 1);
        } else if arm.is_none() {
            scanned += size;
            if scan_rows.is_some_and(|most| scanned >= most) {
                found.more = Some(cursor);
                found.unindexed = true;
                return Ok(found);
            }
        }
    }
    Ok(found)
}

/// The statement reading `size` rows of `arm` (the table, when None) after `cursor`: each
/// row's contact columns, its key in the arm and its rank (numbers).
fn batch_sql(
    backend: &Backend,
    arm: Option<&Arm>,
    cursor: &Cursor,
    size: usize,
) -> (String, Vec<Bind>) {
    let mut binds = Vec::new();
    let mut param = |value: Bind| {
        binds.push(value);
        match backend {
            Backend::Sqlite { .. } => format!("?{}", binds.len()),
            Backend::Postgres { .. } => format!("${}", binds.len()),
        }
    };
    let sql = match arm {
        None => {
            let id = param(Bind::Int(cursor.id));
            format!(
                "SELECT {CONTACT_COLUMNS}, '' AS k, CAST(0 AS BIGINT) AS r FROM contacts AS c WHERE c.id > {id} \
                 ORDER BY c.id LIMIT {size}"
            )
        }
        Some(arm) => match arm.index {
            Index::FirstName | Index::LastName | Index::EMail => {
                let expr = crate::directory::search::name_key_sql(
                    backend,
                    match arm.index {
                        Index::FirstName => "first_name",
                        Index::LastName => "last_name",
                        _ => "e_mail",
                    },
                );
                let key = param(Bind::Text(cursor.key.clone()));
                let high = param(Bind::Text(arm.high.clone()));
                let id = param(Bind::Int(cursor.id));
                format!(
                    "SELECT {CONTACT_COLUMNS}, {expr} AS k, CAST(0 AS BIGINT) AS r FROM contacts AS c \
                     WHERE {expr} >= {key} AND {expr} < {high} AND ({expr} > {key} OR c.id > {id}) \
                     ORDER BY {expr}, c.id LIMIT {size}"
                )
            }
            Index::Number => {
                let key = param(Bind::Text(cursor.key.clone()));
                let high = param(Bind::Text(arm.high.clone()));
                let rank = param(Bind::Int(cursor.rank));
                let id = param(Bind::Int(cursor.id));
                format!(
                    "SELECT {CONTACT_COLUMNS}, n.number AS k, CAST(n.rank AS BIGINT) AS r \
                     FROM contact_numbers AS n JOIN contacts AS c ON c.id = n.contact_id \
                     WHERE n.number >= {key} AND n.number < {high} AND (n.number > {key} \
                     OR n.rank > {rank} OR (n.rank = {rank} AND n.contact_id > {id})) \
                     ORDER BY n.number, n.rank, n.contact_id LIMIT {size}"
                )
            }
            // A unique key (migration 0001's partial unique indexes): one row at most, no
            // order to keep.
            Index::DirectoryId | Index::MatchKey => {
                let key = param(Bind::Text(arm.low.clone()));
                let id = param(Bind::Int(cursor.id));
                let (column, external) = match arm.index {
                    Index::DirectoryId => ("directory_id", "c.directory_id IS NOT NULL"),
                    _ => ("match_key", "c.directory_id IS NULL"),
                };
                format!(
                    "SELECT {CONTACT_COLUMNS}, c.{column} AS k, CAST(0 AS BIGINT) AS r FROM contacts AS c \
                     WHERE {external} AND c.{column} = {key} AND c.id > {id} LIMIT {size}"
                )
            }
        },
    };
    (sql, binds)
}

/// Reads one batch: rows with their key and rank, in the arm's order.
async fn read_batch(
    store: &Store,
    arm: Option<&Arm>,
    cursor: &Cursor,
    size: usize,
) -> Result<Vec<(ContactRow, String, i64)>, LoadError> {
    let (sql, binds) = batch_sql(&store.backend, arm, cursor, size);
    match &store.backend {
        Backend::Sqlite { path, .. } => {
            crate::directory::readers::on_sqlite_reader(store, path, move |conn| {
                let mut statement = conn.prepare_cached(&sql)?;
                for (i, bind) in binds.iter().enumerate() {
                    match bind {
                        Bind::Text(t) => statement.raw_bind_parameter(i + 1, t)?,
                        Bind::Int(n) => statement.raw_bind_parameter(i + 1, n)?,
                    }
                }
                let mut rows = statement.raw_query();
                let mut batch = Vec::new();
                while let Some(row) = rows.next()? {
                    let read = row_of(|i| row.get(i), |i| row.get(i), |i| row.get(i))?;
                    batch.push(read);
                }
                Ok(batch)
            })
            .await
        }
        Backend::Postgres { pool } => {
            use sqlx::Row as _;
            let mut statement = sqlx::query(sqlx::AssertSqlSafe(sql));
            for bind in binds {
                statement = match bind {
                    Bind::Text(t) => statement.bind(t),
                    Bind::Int(n) => statement.bind(n),
                };
            }
            let rows = statement
                .fetch_all(pool)
                .await
                .map_err(|e| store.error(e))?;
            rows.iter()
                .map(|r| row_of(|i| r.try_get(i), |i| r.try_get(i), |i| r.try_get(i)))
                .collect::<Result<_, _>>()
                .map_err(|e| store.error(e))
        }
    }
}

/// A row of [`batch_sql`]'s statements, read through the driver's getters.
fn row_of<E>(
    integer: impl Fn(usize) -> Result<i64, E>,
    text: impl Fn(usize) -> Result<String, E>,
    optional: impl Fn(usize) -> Result<Option<String>, E>,
) -> Result<(ContactRow, String, i64), E> {
    let row = ContactRow {
        id: integer(0)?,
        origin: text(1)?,
        directory_id: optional(2)?,
        match_key: optional(3)?,
        extension: optional(4)?,
        first_name: optional(5)?,
        last_name: optional(6)?,
        mobile_number: optional(7)?,
        fax_number: optional(8)?,
        home_number: optional(9)?,
        e_mail: optional(10)?,
        site: optional(11)?,
        department: optional(12)?,
        number_keys: Default::default(),
    };
    Ok((row, optional(13)?.unwrap_or_default(), integer(14)?))
}

/// The database's plan for reading the first batch of `filter`, one line a step, each arm's
/// after the other's: what a test reads to see that a typed-ahead search scans no table.
pub async fn read_plan(
    store: &Store,
    filter: &LdapFilter,
    style: &EntryStyle<'_>,
) -> Result<String, LoadError> {
    let plan = plan(filter, style);
    let Some(arms) = plan.arms() else {
        return Ok(String::new());
    };
    let mut lines = Vec::new();
    for (i, arm) in arms.into_iter().enumerate() {
        let (sql, binds) = batch_sql(&store.backend, arm, &Cursor::start(&plan, i), 50);
        lines.push(explain(store, &sql, binds).await?);
    }
    Ok(lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::numbers::NumberPlan;

    fn style(plan: &NumberPlan) -> EntryStyle<'_> {
        EntryStyle {
            name_style: Default::default(),
            organization: None,
            numbers: plan,
        }
    }

    fn filter(text: &str) -> LdapFilter {
        ldap3_proto::parse_ldap_filter_str(text).unwrap()
    }

    #[test]
    fn typed_prefixes_plan_index_ranges_and_the_rest_a_scan() {
        let plan = NumberPlan::new(Some("BE")).unwrap();
        let style = style(&plan);
        let Plan::Arms(arms) = super::plan(&filter("(|(cn=ann*)(sn=ann*))"), &style) else {
            panic!("a name prefix is read from the indexes");
        };
        // cn and sn need the same three ranges: read once each.
        let indexes: Vec<Index> = arms.iter().map(|a| a.index).collect();
        assert_eq!(indexes, [Index::FirstName, Index::LastName, Index::EMail]);
        let Plan::Arms(arms) = super::plan(&filter("(mobile=0475*)"), &style) else {
            panic!("a number prefix is read from the number index");
        };
        assert!(arms.iter().any(|a| a.low == "+32475"), "{arms:?}");
        assert_eq!(super::plan(&filter("(cn=*ann*)"), &style), Plan::Scan);
        assert_eq!(super::plan(&filter("(!(cn=ann*))"), &style), Plan::Scan);
        assert_eq!(super::plan(&filter("(shoeSize=42)"), &style), Plan::Nothing);
        // An and reads its narrowest indexed part.
        let Plan::Arms(arms) = super::plan(&filter("(&(objectClass=*)(givenName=ann*))"), &style)
        else {
            panic!("and");
        };
        assert_eq!(arms.len(), 1);
        assert_eq!(
            super::plan(&filter("(|(givenName=a*)(l=gent))"), &style),
            Plan::Scan
        );
    }

    #[test]
    fn a_name_beyond_ascii_is_read_in_each_case_the_indexes_can_hold() {
        let plan = NumberPlan::new(None).unwrap();
        let style = style(&plan);
        let Plan::Arms(arms) = super::plan(&filter("(givenName=ÉLO*)"), &style) else {
            panic!("a name prefix is read from the indexes");
        };
        let lows: Vec<&str> = arms.iter().map(|a| a.low.as_str()).collect();
        assert_eq!(lows, ["élo", "Élo"]);
        // Élodie is in the second range, by the key the index holds for her.
        let elodie = ContactRow {
            first_name: Some("Élodie".into()),
            ..Default::default()
        };
        assert_eq!(arms[0].key_of(&elodie, &style), None);
        assert_eq!(arms[1].key_of(&elodie, &style).as_deref(), Some("Élodie"));
        assert!(elodie.matches(&filter("(givenName=ÉLO*)"), &style));
    }

    #[test]
    fn a_cookie_is_only_good_for_its_own_search() {
        let cursor = Cursor {
            arm: 2,
            key: "ann|a".into(),
            rank: 3,
            id: 42,
        };
        let cookie = cursor.cookie(7);
        assert_eq!(Cursor::of_cookie(&cookie, 7), Some(cursor));
        assert_eq!(Cursor::of_cookie(&cookie, 8), None);
        assert_eq!(Cursor::of_cookie(b"junk", 7), None);
    }

    #[tokio::test]
    async fn a_search_past_its_deadline_stops_with_what_it_found() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = Store::open(&url).await.unwrap();
        let plan = NumberPlan::new(None).unwrap();
        let style = style(&plan);
        let bounds = Bounds {
            want: 10,
            deadline: Instant::now(),
            scan_rows: None,
        };
        let found = find(
            &store,
            &Plan::Scan,
            Cursor::start(&Plan::Scan, 0),
            bounds,
            &style,
            |_| true,
        )
        .await
        .unwrap();
        assert!(found.timed_out && found.rows.is_empty() && found.more.is_none());
        store.close().await;
    }
}
