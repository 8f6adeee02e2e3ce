//! The LDAP directory for phones (`[ldap]` of the service config): a read-only LDAPv3 server
//! over one pipeline's merged table, so desk phones and softphones search the company
//! directory as their user types, and PBXes find caller names, with no other server.
//!
//! The wire format is kanidm's `ldap3_proto` on tokio ([`codec`]); [`server`] runs the
//! listeners and connections, [`operations`] answers each message:
//! binds (anonymous when allowed, simple with the configured DN and password, compared in
//! constant time, wrong ones throttled per client address as the phonebooks' are), searches
//! ([`search`], entries as [`entry`] writes them), compare, WhoAmI and StartTLS. Changes
//! (add, modify, delete, modify DN) are refused `unwillingToPerform`; other extended
//! operations `protocolError`. Each connection is bounded: at most `max_connections` open,
//! closed after `idle_timeout_secs` of silence (or of a client not reading its answers), a
//! message larger than `max_request_bytes` or one that is not LDAP closes that connection
//! only (logged). Every answer and refusal is counted in `ucm_ldap_requests_total{op,result}`.

mod codec;
mod config;
pub mod dn;
pub mod entry;
mod operations;
mod places;
mod reads;
pub mod search;
mod search_answer;
mod server;
mod session;
mod tree;

pub use config::{LdapConfig, LdapSettings, resolve};
pub use server::listen;
