//! What reaches phones and PBXes: phonebook feeds ([`feeds`], configured by
//! [`feeds_config`], their rows read by [`feed_rows`], Cisco's pages by [`cisco`]), caller-ID lookup ([`lookup`], [`lookup_config`]) and the LDAP directory
//! ([`ldap`]). The feeds and the lookup share their access rules ([`access`]) and the way a
//! request is let in or refused and counted ([`admission`]).

pub mod access;
pub mod admission;
mod cisco;
mod feed_rows;
pub mod feeds;
pub mod feeds_config;
pub mod ldap;
pub mod lookup;
pub mod lookup_config;
