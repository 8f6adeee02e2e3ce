//! The directory as it is read: the merged table's contacts with their live state
//! ([`contacts`]), the name, e-mail and number search ([`search`]) and its case folding
//! ([`folding`]), caller-ID's ranked number lookup ([`caller_id`]), the SQLite read
//! connections they share ([`readers`]) and the query-plan checks ([`plans`]).
//!
//! It knows nothing of HTTP: the API, the console and the phone endpoints (feeds, lookup,
//! LDAP) all read through it.

pub mod caller_id;
pub mod contacts;
pub mod folding;
pub mod plans;
pub mod readers;
pub mod search;

pub use contacts::{Contact, LiveState, Status};
pub use folding::{fold_case, key_spellings, same_folded};
pub use search::{SearchTerms, search, search_plan, search_sql};
