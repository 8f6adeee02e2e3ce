//! Extract: reading the external contacts document, validating it against the XSD in the same
//! streaming pass, and handing out one contact at a time.

pub mod carddav;
mod contract;
pub mod csv_source;
pub mod document;
pub mod download;
mod elements;
pub mod encoding;
pub mod fetch;
mod field_rules;
pub mod ldap;
mod lines;
pub mod local;
mod located;
pub mod mapping;
mod markup;
pub mod namespaces;
mod plain;
pub mod position;
pub mod preview;
pub mod reader;
pub mod schema;
pub mod syntax;
pub mod vcard_source;
mod xsd;

pub use contract::{Contract, ExtractError, SourceFormat};
pub use document::{Document, ReadError, Summary};
pub use reader::{ContactReader, DocumentError, ExternalContact, InvalidDocument, RecordLayout};
pub use schema::{Schema, SchemaError};
