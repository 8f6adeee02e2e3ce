//! Writing live-state changes: a contact's status or profile is stored with its version and
//! kept unless a newer version is stored, so changes applied in any order end in the same
//! state; and the newest version stored, from which a restarted node's clock starts.

use crate::load::{LoadError, Store, on_pool};

/// The upsert of a status, kept unless a newer version is stored (any sqlx executor).
/// Versions compare as (clock, node), see `cluster::version`.
macro_rules! status_query {
    ($id:expr, $status:expr, $version:expr) => {{
        let status: &$crate::directory::Status = $status;
        let version: &$crate::cluster::Version = $version;
        sqlx::query(
            "INSERT INTO contact_state (contact, registered, call_state, presence, note, status_version, \
             status_clock, status_node, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (contact) DO UPDATE SET registered = excluded.registered, call_state = excluded.call_state, \
             presence = excluded.presence, note = excluded.note, status_version = excluded.status_version, \
             status_clock = excluded.status_clock, status_node = excluded.status_node, \
             updated_at = excluded.updated_at \
             WHERE contact_state.status_clock IS NULL \
             OR (contact_state.status_clock, contact_state.status_node) < (excluded.status_clock, excluded.status_node)",
        )
        .bind($id.to_owned())
        .bind(i64::from(status.registered))
        .bind(status.call_state.as_str())
        .bind(status.presence.as_str())
        .bind(status.note.clone())
        .bind(version.to_string())
        .bind(version.clock())
        .bind(version.node().to_owned())
        .bind($crate::load::now())
    }};
}

/// The upsert of a profile, kept unless a newer version is stored (any sqlx executor).
macro_rules! profile_query {
    ($id:expr, $profile:expr, $version:expr) => {{
        let version: &$crate::cluster::Version = $version;
        sqlx::query(
            "INSERT INTO contact_state (contact, profile, profile_version, profile_clock, profile_node, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (contact) DO UPDATE SET profile = excluded.profile, profile_version = excluded.profile_version, \
             profile_clock = excluded.profile_clock, profile_node = excluded.profile_node, \
             updated_at = excluded.updated_at \
             WHERE contact_state.profile_clock IS NULL \
             OR (contact_state.profile_clock, contact_state.profile_node) < (excluded.profile_clock, excluded.profile_node)",
        )
        .bind($id.to_owned())
        .bind($profile.to_owned())
        .bind(version.to_string())
        .bind(version.clock())
        .bind(version.node().to_owned())
        .bind($crate::load::now())
    }};
}

/// The newest version stored for any contact's status or profile (the clock starts after
/// it when the service starts).
pub async fn newest_version(store: &Store) -> Result<Option<super::version::Version>, LoadError> {
    let rows: Vec<(Option<i64>, Option<String>)> = on_pool!(store, |pool| {
        sqlx::query_as(
        "SELECT status_clock, status_node FROM contact_state WHERE status_clock IS NOT NULL \
         UNION ALL SELECT profile_clock, profile_node FROM contact_state WHERE profile_clock IS NOT NULL \
         ORDER BY 1 DESC LIMIT 1"
    )
    .fetch_all(pool)
    .await
    .map_err(|e| store.error(e))
    })?;
    Ok(rows.into_iter().find_map(|(clock, node)| {
        super::version::Version::from_parts(clock?, node.as_deref()?).ok()
    }))
}

pub(crate) use profile_query;
pub(crate) use status_query;
