//! The merged table's contacts as the service shows them, with their live state: each
//! contact's status (registration, call state, presence, a note) and routing profile, stored
//! by the contact's identity (`dir:DIRECTORY_ID`, or `ext:MATCH_KEY` for external-only
//! contacts). Reading only: changes are written with their versions by `crate::cluster`
//! (`live_state`); the search itself is in [`super::search`].

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
    /// Where each value above came from (`directory` or `external`), for the non-NULL ones.
    pub provenance: std::collections::BTreeMap<&'static str, &'static str>,
    /// The run that last changed the row (none before ucm recorded provenance).
    pub changed_by_run: Option<i64>,
    pub state: LiveState,
}

/// The fields a [`Contact`] shows, in the order of [`select_sql_from`]'s columns 2 to 10.
const SHOWN_FIELDS: [&str; 9] = [
    "first_name",
    "last_name",
    "e_mail",
    "extension",
    "mobile_number",
    "home_number",
    "fax_number",
    "site",
    "department",
];

/// The identity of a row: `dir:ID` for directory and merged rows, `ext:KEY` otherwise.
const IDENTITY_SQL: &str = "CASE WHEN c.directory_id IS NOT NULL THEN 'dir:' || c.directory_id ELSE 'ext:' || c.match_key END";

fn select_sql(filter: &str) -> String {
    select_sql_from("contacts AS c", &format!("WHERE {filter}"))
}

/// The columns [`contact_of`] reads, from `from` (which names the merged table `c`) joined
/// with the live state, then `rest` (a filter, an order).
pub(super) fn select_sql_from(from: &str, rest: &str) -> String {
    format!(
        "SELECT {IDENTITY_SQL} AS id, c.origin, c.first_name, c.last_name, c.e_mail, c.extension, \
         c.mobile_number, c.home_number, c.fax_number, c.site, c.department, \
         s.registered, s.call_state, s.presence, s.note, s.status_version, s.profile, s.profile_version, \
         c.sides, c.changed_by_run \
         FROM {from} LEFT JOIN contact_state AS s ON s.contact = {IDENTITY_SQL} {rest}"
    )
}

pub(super) fn contact_of<R: Row>(r: &R) -> Result<Contact, sqlx::Error>
where
    usize: sqlx::ColumnIndex<R>,
    for<'a> Option<String>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<i64>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    contact_from(|i| r.try_get(i), |i| r.try_get(i))
}

/// A contact from the columns of [`select_sql_from`], whichever library reads them: `text`
/// and `int` read column `i`.
pub(super) fn contact_from<E>(
    text: impl Fn(usize) -> Result<Option<String>, E>,
    int: impl Fn(usize) -> Result<Option<i64>, E>,
) -> Result<Contact, E> {
    // The shown values, read once, in the order of SHOWN_FIELDS (columns 2 to 10).
    let mut shown: [Option<String>; 9] = Default::default();
    for (i, value) in shown.iter_mut().enumerate() {
        *value = text(2 + i)?;
    }
    let sides = crate::load::sides_of(int(18)?.unwrap_or(0) as u32);
    let provenance = SHOWN_FIELDS
        .iter()
        .zip(&shown)
        .filter(|(_, value)| value.is_some())
        .map(|(name, _)| {
            let field = crate::fields::Field::from_name(name).expect("a field name");
            (*name, sides[field.index()].as_str())
        })
        .collect();
    let [
        first_name,
        last_name,
        e_mail,
        extension,
        mobile_number,
        home_number,
        fax_number,
        site,
        department,
    ] = shown;
    Ok(Contact {
        provenance,
        changed_by_run: int(19)?,
        id: text(0)?.unwrap_or_default(),
        origin: text(1)?.unwrap_or_default(),
        first_name,
        last_name,
        e_mail,
        extension,
        mobile_number,
        home_number,
        fax_number,
        site,
        department,
        state: LiveState {
            registered: int(11)?.unwrap_or(0) != 0,
            call_state: text(12)?.unwrap_or_else(|| "idle".into()),
            presence: text(13)?.unwrap_or_else(|| "offline".into()),
            note: text(14)?,
            status_version: text(15)?,
            profile: text(16)?,
            profile_version: text(17)?,
        },
    })
}

/// The row filter for identity `id` (one of the two unique indexes) and the value to bind:
/// `dir:ID` is a directory or merged row, `ext:KEY` an external-only one.
pub(crate) fn identity_filter(id: &str) -> Option<(&'static str, &str)> {
    if let Some(directory_id) = id.strip_prefix("dir:") {
        Some(("c.directory_id = $1", directory_id))
    } else {
        id.strip_prefix("ext:")
            .map(|key| ("c.directory_id IS NULL AND c.match_key = $1", key))
    }
}

/// The contact with identity `id`, with its live state: one indexed read.
pub async fn get(store: &Store, id: &str) -> Result<Option<Contact>, LoadError> {
    let Some((filter, value)) = identity_filter(id) else {
        return Ok(None);
    };
    let sql = sqlx::AssertSqlSafe(select_sql(filter));
    on_pool!(store, |pool| {
        let row = sqlx::query(sql)
            .bind(value)
            .fetch_optional(pool)
            .await
            .map_err(|e| store.error(e))?;
        row.as_ref()
            .map(contact_of)
            .transpose()
            .map_err(|e| store.error(e))
    })
}

/// Whether a contact with identity `id` is in the merged table (one indexed read).
/// Whether the merged table holds any row: a node that never loaded it cannot tell a
/// contact it does not know from one it has not loaded yet.
pub async fn table_loaded(store: &Store) -> Result<bool, LoadError> {
    let loaded: bool = on_pool!(store, |pool| sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM contacts)"
    )
    .fetch_one(pool)
    .await
    .map_err(|e| store.error(e)))?;
    Ok(loaded)
}

pub async fn exists(store: &Store, id: &str) -> Result<bool, LoadError> {
    let Some((filter, value)) = identity_filter(id) else {
        return Ok(false);
    };
    let sql = sqlx::AssertSqlSafe(format!("SELECT count(*) FROM contacts AS c WHERE {filter}"));
    let n: i64 = on_pool!(store, |pool| sqlx::query_scalar(sql)
        .bind(value)
        .fetch_one(pool)
        .await
        .map_err(|e| store.error(e)))?;
    Ok(n > 0)
}

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
