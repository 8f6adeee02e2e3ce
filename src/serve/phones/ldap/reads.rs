//! Reading contacts for an answer: the directory's store, the entries' style, one contact by
//! uid, and compare.

use std::time::{Duration, Instant};

use ldap3_proto::proto::{LdapFilter, LdapResultCode, LdapSearchScope};

use super::config::{LdapConfig, LdapSettings};
use super::entry::{self, ContactRow, EntryStyle};
use super::search::{self, Cursor};
use super::session::{Session, may_read, needs_tls};
use super::tree::{Reach, listed, reach};
use crate::serve::state::Service;

/// The store of the directory's pipeline; Err is the result to answer when it is not loaded.
pub(super) fn directory_store(
    service: &Service,
    settings: &LdapSettings,
) -> Result<crate::load::Store, (LdapResultCode, String)> {
    service
        .pipeline(&settings.config.pipeline)
        .and_then(|p| p.loaded.as_ref().ok())
        .map(|l| l.store.clone())
        .ok_or_else(|| {
            (
                LdapResultCode::Unavailable,
                "the directory's pipeline is not loaded (see the service's log)".into(),
            )
        })
}

pub(super) fn style_of<'s>(
    config: &'s LdapConfig,
    store: &'s crate::load::Store,
) -> EntryStyle<'s> {
    EntryStyle {
        name_style: config.name_style,
        organization: config.organization.as_deref(),
        numbers: store.numbers(),
    }
}

/// The listed contact whose uid is `uid` (one read of an identity index), if any.
pub(super) async fn contact_by_uid(
    store: &crate::load::Store,
    settings: &LdapSettings,
    uid: &str,
    style: &EntryStyle<'_>,
    deadline: Instant,
) -> Result<Option<ContactRow>, crate::load::LoadError> {
    let plan = search::plan(&LdapFilter::Equality("uid".into(), uid.to_owned()), style);
    let keep = |row: &ContactRow| listed(&settings.config, row) && row.uid() == uid;
    let bounds = search::Bounds {
        want: 1,
        deadline,
        scan_rows: None,
    };
    let found = search::find(store, &plan, Cursor::start(&plan, 0), bounds, style, keep).await?;
    Ok(found.rows.into_iter().next())
}

/// A compare: whether the contact `dn` names has `value` in `attribute` (compared as a
/// filter's equality is); Err for the result code and message of a refusal.
pub(super) async fn compare(
    service: &Service,
    settings: &LdapSettings,
    session: &Session,
    dn: &str,
    attribute: &str,
    value: String,
) -> Result<bool, (LdapResultCode, String)> {
    if let Some(refusal) = needs_tls(settings, session) {
        return Err(refusal);
    }
    if !may_read(settings, session) {
        return Err((
            LdapResultCode::InsufficentAccessRights,
            "bind first: this directory does not answer anonymous requests".into(),
        ));
    }
    let Reach::Contact(uid) = reach(settings, dn, &LdapSearchScope::Base)? else {
        return Err((
            LdapResultCode::UnwillingToPerform,
            "compare works on contact entries (uid=...)".into(),
        ));
    };
    if entry::Attr::parse(attribute).is_none() {
        return Err((
            LdapResultCode::UndefinedAttributeType,
            format!("contacts have no attribute {attribute}"),
        ));
    }
    let store = directory_store(service, settings)?;
    let style = style_of(&settings.config, &store);
    let deadline = Instant::now() + Duration::from_secs(u64::from(settings.config.time_limit_secs));
    let row = contact_by_uid(&store, settings, &uid, &style, deadline)
        .await
        .map_err(|e| {
            tracing::warn!("LDAP compare: {e}");
            (
                LdapResultCode::Unavailable,
                "the directory cannot be read now: try again".into(),
            )
        })?
        .ok_or_else(|| (LdapResultCode::NoSuchObject, format!("no entry {dn}")))?;
    Ok(row.matches(&LdapFilter::Equality(attribute.to_owned(), value), &style))
}
