//! The directory's tree: what a search's base and scope reach (the root DSE, the base entry,
//! the contacts under it, one contact by uid), the fixed entries' attributes, which contacts
//! are listed, and the paged results control of a request.

use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::{LdapFilter, LdapPartialAttribute, LdapResultCode, LdapSearchScope};

use super::config::{LdapConfig, LdapSettings};
use super::entry::{self, ContactRow, parse_dn};
use super::session::{PAGED_RESULTS, START_TLS, WHO_AM_I};
use crate::directory::{fold_case, same_folded};

/// What a search's base and scope reach.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Reach {
    /// The root DSE.
    RootDse,
    /// The base entry (the container) and/or the contacts under it.
    Tree { container: bool, contacts: bool },
    /// One contact, by its uid.
    Contact(String),
    /// Nothing, but the base exists.
    Empty,
}

/// What `base` with `scope` reaches in this directory; Err is the result to answer.
pub(super) fn reach(
    settings: &LdapSettings,
    base: &str,
    scope: &LdapSearchScope,
) -> Result<Reach, (LdapResultCode, String)> {
    let dn = parse_dn(base).ok_or_else(|| {
        (
            LdapResultCode::InvalidDNSyntax,
            format!("{base:?} is not a DN"),
        )
    })?;
    let ours = &settings.base;
    let subtree = matches!(scope, LdapSearchScope::Subtree);
    let below = matches!(scope, LdapSearchScope::OneLevel | LdapSearchScope::Children);
    if dn.is_empty() {
        return Ok(match scope {
            LdapSearchScope::Base => Reach::RootDse,
            // No base: the whole directory, as a default search base does.
            _ => Reach::Tree {
                container: subtree,
                contacts: true,
            },
        });
    }
    if dn == *ours {
        return Ok(match scope {
            LdapSearchScope::Base => Reach::Tree {
                container: true,
                contacts: false,
            },
            _ => Reach::Tree {
                container: subtree,
                contacts: true,
            },
        });
    }
    if dn.len() == ours.len() + 1 && dn[1..] == ours[..] {
        let (attribute, value) = &dn[0];
        if attribute == "uid" && !below {
            // The uid as written (parse_dn lowercases values; identities keep their case).
            let written = entry::parse_dn_as_written(base)
                .and_then(|rdns| rdns.into_iter().next())
                .map_or_else(|| value.clone(), |(_, v)| v);
            return Ok(Reach::Contact(written));
        }
        if attribute == "uid" {
            return Ok(Reach::Empty);
        }
    } else if dn.len() < ours.len() && ours[ours.len() - dn.len()..] == dn[..] {
        // Above the base DN: entries there are not ours, but the subtree holds ours.
        return Ok(match scope {
            LdapSearchScope::Subtree => Reach::Tree {
                container: true,
                contacts: true,
            },
            LdapSearchScope::OneLevel | LdapSearchScope::Children if ours.len() == dn.len() + 1 => {
                Reach::Tree {
                    container: true,
                    contacts: false,
                }
            }
            _ => return Err((LdapResultCode::NoSuchObject, String::new())),
        });
    }
    Err((LdapResultCode::NoSuchObject, format!("no entry {base}")))
}

/// Whether a contact row is one the directory lists (the feed filters of `[ldap]`).
pub(super) fn listed(config: &LdapConfig, row: &ContactRow) -> bool {
    let wanted = |list: &[String], value: &Option<String>| {
        list.is_empty() || value.as_ref().is_some_and(|v| list.contains(v))
    };
    (config.origins.is_empty() || config.origins.contains(&row.origin))
        && wanted(&config.sites, &row.site)
        && wanted(&config.departments, &row.department)
}

/// The entry for the base DN itself.
pub(super) fn container_attributes(settings: &LdapSettings) -> Vec<(String, Vec<String>)> {
    let (attribute, value) = entry::parse_dn_as_written(&settings.config.base_dn)
        .and_then(|rdns| rdns.into_iter().next())
        .unwrap_or_else(|| ("ou".into(), String::new()));
    let class = match attribute.as_str() {
        "ou" => "organizationalUnit",
        "o" => "organization",
        "dc" => "dcObject",
        _ => "extensibleObject",
    };
    vec![
        ("objectClass".into(), vec!["top".into(), class.into()]),
        (attribute, vec![value]),
    ]
}

/// The root DSE: what a client probing the server learns.
pub(super) fn root_dse(settings: &LdapSettings) -> Vec<(String, Vec<String>)> {
    let mut extensions = vec![WHO_AM_I.to_owned()];
    if settings.tls.is_some() {
        extensions.push(START_TLS.to_owned());
    }
    vec![
        ("objectClass".into(), vec!["top".into()]),
        (
            "namingContexts".into(),
            vec![settings.config.base_dn.clone()],
        ),
        ("supportedLDAPVersion".into(), vec!["3".into()]),
        ("supportedControl".into(), vec![PAGED_RESULTS.into()]),
        ("supportedExtension".into(), extensions),
        ("vendorName".into(), vec!["ucm".into()]),
        (
            "vendorVersion".into(),
            vec![format!("ucm {}", env!("CARGO_PKG_VERSION"))],
        ),
    ]
}

/// A fixed entry's attributes as a search asked for them.
pub(super) fn selected(
    attributes: Vec<(String, Vec<String>)>,
    list: &[String],
    types_only: bool,
) -> Vec<LdapPartialAttribute> {
    let all = list.is_empty() || list.iter().any(|a| a == "*" || a == "+");
    attributes
        .into_iter()
        .filter(|(name, _)| all || list.iter().any(|a| a.eq_ignore_ascii_case(name)))
        .map(|(name, values)| LdapPartialAttribute {
            atype: name,
            vals: if types_only {
                Vec::new()
            } else {
                values.into_iter().map(String::into_bytes).collect()
            },
        })
        .collect()
}

/// Whether `filter` is true of a fixed entry (values compared without regard to case; an
/// attribute it does not have is false).
pub(super) fn fixed_matches(filter: &LdapFilter, attributes: &[(String, Vec<String>)]) -> bool {
    let values = |name: &str| {
        attributes
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
            .unwrap_or_default()
    };
    match filter {
        LdapFilter::And(all) => all.iter().all(|f| fixed_matches(f, attributes)),
        LdapFilter::Or(any) => any.iter().any(|f| fixed_matches(f, attributes)),
        LdapFilter::Not(inner) => !fixed_matches(inner, attributes),
        LdapFilter::Present(name) => !values(name).is_empty(),
        LdapFilter::Equality(name, v) | LdapFilter::Approx(name, v) => {
            values(name).iter().any(|x| same_folded(x, v))
        }
        LdapFilter::Substring(name, parts) => values(name)
            .iter()
            .any(|x| entry::substrings(&fold_case(x), &entry::fold_parts(parts))),
        _ => false,
    }
}

/// The paged results control of a request, if any; Err for a critical control this
/// directory does not know.
pub(super) fn paging(controls: &[LdapControl]) -> Result<Option<(i64, Vec<u8>)>, String> {
    let mut paged = None;
    for control in controls {
        match control {
            LdapControl::SimplePagedResults { size, cookie } => {
                paged = Some((*size, cookie.clone()))
            }
            LdapControl::Unknown {
                oid,
                criticality: true,
                ..
            } => {
                return Err(format!("control {oid} is not supported"));
            }
            LdapControl::SyncRequest {
                criticality: true, ..
            } => {
                return Err("the sync request control is not supported".into());
            }
            _ => {}
        }
    }
    Ok(paged)
}
