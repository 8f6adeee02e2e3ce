//! An LDAP directory or Active Directory as the source (`kind = "ldap"`): `config` (the
//! `[source.ldap]` section), `search` (bind, StartTLS, paged search, written to a staged LDIF
//! file as it arrives) and `ldif` (LDIF written, and read onto the 22 fields by the mapping).
//! Decision record: docs/decisions/0015-ldap-and-carddav-sources.md.

pub mod config;
pub mod ldif;
pub mod search;
