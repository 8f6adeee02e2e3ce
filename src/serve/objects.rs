//! The UC model's live objects: each merged contact's status (registration, call state,
//! presence, a note) and routing profile, stored in the database by the contact's identity
//! (`dir:DIRECTORY_ID`, or `ext:MATCH_KEY` for external-only contacts), and the search over
//! the merged directory that returns every result with its live state.
//!
//! Every change carries a version from a hybrid logical clock ([`Versions`]); the store keeps
//! the newest, so changes applied in any order end in the same state.

use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::load::{LoadError, Store, on_pool};

/// A phone's call state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CallState {
    Idle,
    Ringing,
    Busy,
}

/// A user's presence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Presence {
    Available,
    Away,
    Dnd,
    Offline,
}

/// `PUT /api/contacts/{id}/status`'s body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Status {
    pub registered: bool,
    pub call_state: CallState,
    pub presence: Presence,
    /// Up to 255 characters.
    #[serde(default)]
    pub note: Option<String>,
}

/// The longest status note.
pub const MAX_NOTE_CHARS: usize = 255;

impl Status {
    /// Why this status cannot be stored, if it cannot.
    pub fn problem(&self) -> Option<String> {
        let chars = self.note.as_deref().map_or(0, |n| n.chars().count());
        (chars > MAX_NOTE_CHARS)
            .then(|| format!("note has {chars} characters; at most {MAX_NOTE_CHARS} are allowed"))
    }
}

/// A contact's live state as served.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LiveState {
    pub registered: bool,
    pub call_state: String,
    pub presence: String,
    pub note: Option<String>,
    pub status_version: Option<String>,
    pub profile: Option<String>,
    pub profile_version: Option<String>,
}

/// A merged contact with its live state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Contact {
    pub id: String,
    pub origin: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub e_mail: Option<String>,
    pub extension: Option<String>,
    pub mobile_number: Option<String>,
    pub home_number: Option<String>,
    pub fax_number: Option<String>,
    pub site: Option<String>,
    pub department: Option<String>,
    pub state: LiveState,
}

/// Versions for changes made on this node: a hybrid logical clock, rendered as
/// `MILLISECONDS.COUNTER.NODE` (zero-padded, so versions sort as text).
pub struct Versions {
    node: String,
    last: Mutex<(u64, u32)>,
}

impl Versions {
    pub fn new(node: &str) -> Versions {
        Versions {
            node: node.to_owned(),
            last: Mutex::new((0, 0)),
        }
    }

    /// Takes a version made elsewhere into account: later versions made here sort after it.
    pub fn observe(&self, version: &str) {
        let mut parts = version.splitn(3, '.');
        let (Some(Ok(millis)), Some(Ok(counter))) = (
            parts.next().map(str::parse::<u64>),
            parts.next().map(str::parse::<u32>),
        ) else {
            return;
        };
        let mut last = self.last.lock().expect("no poisoning");
        if (millis, counter) > *last {
            *last = (millis, counter);
        }
    }

    /// A version newer than every one this node made or saw.
    pub fn next(&self) -> String {
        let now = jiff::Timestamp::now().as_millisecond().max(0) as u64;
        let mut last = self.last.lock().expect("no poisoning");
        *last = if now > last.0 {
            (now, 0)
        } else {
            (last.0, last.1 + 1)
        };
        format!("{:013}.{:05}.{}", last.0, last.1, self.node)
    }
}

/// The identity of a row: `dir:ID` for directory and merged rows, `ext:KEY` otherwise.
const IDENTITY_SQL: &str = "CASE WHEN c.directory_id IS NOT NULL THEN 'dir:' || c.directory_id ELSE 'ext:' || c.match_key END";

fn select_sql(filter: &str) -> String {
    format!(
        "SELECT {IDENTITY_SQL} AS id, c.origin, c.first_name, c.last_name, c.e_mail, c.extension, \
         c.mobile_number, c.home_number, c.fax_number, c.site, c.department, \
         s.registered, s.call_state, s.presence, s.note, s.status_version, s.profile, s.profile_version \
         FROM contacts AS c LEFT JOIN contact_state AS s ON s.contact = {IDENTITY_SQL} \
         WHERE {filter}"
    )
}

/// SQL for `column` with the usual separators of phone numbers removed.
fn digits_of(column: &str) -> String {
    let mut sql = column.to_owned();
    for sep in [" ", "-", "+", "/", "(", ")", "."] {
        sql = format!("replace({sql}, '{sep}', '')");
    }
    sql
}

fn contact_of<R: Row>(r: &R) -> Result<Contact, sqlx::Error>
where
    usize: sqlx::ColumnIndex<R>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<String>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<i64>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    Ok(Contact {
        id: r.try_get(0)?,
        origin: r.try_get(1)?,
        first_name: r.try_get(2)?,
        last_name: r.try_get(3)?,
        e_mail: r.try_get(4)?,
        extension: r.try_get(5)?,
        mobile_number: r.try_get(6)?,
        home_number: r.try_get(7)?,
        fax_number: r.try_get(8)?,
        site: r.try_get(9)?,
        department: r.try_get(10)?,
        state: LiveState {
            registered: r.try_get::<Option<i64>, _>(11)?.unwrap_or(0) != 0,
            call_state: r
                .try_get::<Option<String>, _>(12)?
                .unwrap_or_else(|| "idle".into()),
            presence: r
                .try_get::<Option<String>, _>(13)?
                .unwrap_or_else(|| "offline".into()),
            note: r.try_get(14)?,
            status_version: r.try_get(15)?,
            profile: r.try_get(16)?,
            profile_version: r.try_get(17)?,
        },
    })
}

/// Contacts whose name or e-mail contains `query` (case-insensitive), or one of whose numbers
/// contains its digits, each with its live state; at most `limit`, by identity.
pub async fn search(store: &Store, query: &str, limit: i64) -> Result<Vec<Contact>, LoadError> {
    let text = format!("%{}%", query.trim().to_lowercase());
    let digits: String = query.chars().filter(char::is_ascii_digit).collect();
    let mut filter = String::from(
        "(lower(c.first_name) LIKE $1 OR lower(c.last_name) LIKE $1 OR lower(c.e_mail) LIKE $1 \
         OR lower(coalesce(c.first_name, '') || ' ' || coalesce(c.last_name, '')) LIKE $1",
    );
    // A query without digits matches no number ($2 is then "%%").
    for column in [
        "c.extension",
        "c.mobile_number",
        "c.home_number",
        "c.fax_number",
    ] {
        filter.push_str(&format!(
            " OR ($2 <> '%%' AND {} LIKE $2)",
            digits_of(column)
        ));
    }
    filter.push_str(") ORDER BY id LIMIT $3");
    let sql = sqlx::AssertSqlSafe(select_sql(&filter));
    on_pool!(store, |pool| {
        let rows = sqlx::query(sql)
            .bind(&text)
            .bind(format!("%{digits}%"))
            .bind(limit)
            .fetch_all(pool)
            .await
            .map_err(|e| store.error(e))?;
        rows.iter()
            .map(contact_of)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| store.error(e))
    })
}

/// The contact with identity `id`, with its live state.
pub async fn get(store: &Store, id: &str) -> Result<Option<Contact>, LoadError> {
    let sql = sqlx::AssertSqlSafe(select_sql(&format!("{IDENTITY_SQL} = $1")));
    on_pool!(store, |pool| {
        let row = sqlx::query(sql)
            .bind(id)
            .fetch_optional(pool)
            .await
            .map_err(|e| store.error(e))?;
        row.as_ref()
            .map(contact_of)
            .transpose()
            .map_err(|e| store.error(e))
    })
}

/// The upsert of a status, kept unless a newer version is stored (any sqlx executor).
macro_rules! status_query {
    ($id:expr, $status:expr, $version:expr) => {{
        let status: &$crate::serve::objects::Status = $status;
        sqlx::query(
            "INSERT INTO contact_state (contact, registered, call_state, presence, note, status_version, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (contact) DO UPDATE SET registered = excluded.registered, call_state = excluded.call_state, \
             presence = excluded.presence, note = excluded.note, status_version = excluded.status_version, \
             updated_at = excluded.updated_at \
             WHERE contact_state.status_version IS NULL OR contact_state.status_version < excluded.status_version",
        )
        .bind($id.to_owned())
        .bind(i64::from(status.registered))
        .bind(status.call_state.as_str())
        .bind(status.presence.as_str())
        .bind(status.note.clone())
        .bind($version.to_owned())
        .bind($crate::load::now())
    }};
}
pub(crate) use status_query;

/// The upsert of a profile, kept unless a newer version is stored (any sqlx executor).
macro_rules! profile_query {
    ($id:expr, $profile:expr, $version:expr) => {
        sqlx::query(
            "INSERT INTO contact_state (contact, profile, profile_version, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (contact) DO UPDATE SET profile = excluded.profile, profile_version = excluded.profile_version, \
             updated_at = excluded.updated_at \
             WHERE contact_state.profile_version IS NULL OR contact_state.profile_version < excluded.profile_version",
        )
        .bind($id.to_owned())
        .bind($profile.to_owned())
        .bind($version.to_owned())
        .bind($crate::load::now())
    };
}
pub(crate) use profile_query;

impl CallState {
    pub fn as_str(self) -> &'static str {
        match self {
            CallState::Idle => "idle",
            CallState::Ringing => "ringing",
            CallState::Busy => "busy",
        }
    }
}

impl Presence {
    pub fn as_str(self) -> &'static str {
        match self {
            Presence::Available => "available",
            Presence::Away => "away",
            Presence::Dnd => "dnd",
            Presence::Offline => "offline",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_sort_as_text_in_the_order_they_were_made() {
        let versions = Versions::new("a");
        let made: Vec<String> = (0..1000).map(|_| versions.next()).collect();
        let mut sorted = made.clone();
        sorted.sort();
        assert_eq!(made, sorted);
        assert!(made.windows(2).all(|w| w[0] != w[1]));
        assert!(made[0].ends_with(".a"));
    }

    #[test]
    fn a_status_is_read_strictly_and_its_note_is_bounded() {
        let ok: Status = serde_json::from_str(
            r#"{"registered": true, "call_state": "ringing", "presence": "dnd", "note": "in a meeting"}"#,
        )
        .unwrap();
        assert_eq!(ok.problem(), None);
        assert!(
            serde_json::from_str::<Status>(
                r#"{"registered": true, "call_state": "talking", "presence": "away"}"#
            )
            .is_err()
        );
        assert!(
            serde_json::from_str::<Status>(
                r#"{"registered": true, "call_state": "idle", "presence": "away", "colour": 1}"#
            )
            .is_err()
        );
        let long = Status {
            note: Some("é".repeat(256)),
            ..ok
        };
        assert_eq!(
            long.problem().unwrap(),
            "note has 256 characters; at most 255 are allowed"
        );
    }
}
