//! Extract: reading the external contacts document, validating it against the XSD in the same
//! streaming pass, and handing out one contact at a time.

pub mod encoding;
pub mod fetch;
pub mod position;
pub mod reader;
pub mod schema;
pub mod source;
pub mod syntax;

use std::path::{Path, PathBuf};

pub use reader::{ContactReader, DocumentError, ExternalContact, InvalidDocument, RecordLayout};
pub use schema::{Schema, SchemaError};
pub use source::SourceReader;

/// The compiled schema and where the contact fields sit in it: everything extraction needs,
/// loaded once at start-up.
#[derive(Clone, Debug)]
pub struct Contract {
    pub schema: Schema,
    pub layout: RecordLayout,
}

/// The shipped `schemas/contacts.xsd`, built into the binary so an installed ucm needs no
/// data files; `source.schema` in the config points at another file.
const BUILTIN_XSD: &[u8] = include_bytes!("../../schemas/contacts.xsd");

impl Contract {
    /// The contract of the shipped `schemas/contacts.xsd`.
    pub fn builtin() -> Contract {
        let schema = Schema::parse(Path::new("schemas/contacts.xsd"), BUILTIN_XSD)
            .expect("the shipped XSD compiles");
        let layout =
            RecordLayout::from_schema(&schema).expect("the shipped XSD has a contact record");
        Contract { schema, layout }
    }

    /// Loads the XSD at `path` and checks that ucm can enforce all of it.
    pub fn load(path: &Path) -> Result<Contract, SchemaError> {
        let schema = Schema::load(path)?;
        let layout = RecordLayout::from_schema(&schema)?;
        Ok(Contract { schema, layout })
    }

    /// A reader over the file at `path`, naming it as given in messages.
    pub fn open(
        &self,
        path: &Path,
        max_errors: usize,
    ) -> Result<ContactReader<'_, SourceReader>, ExtractError> {
        let source = SourceReader::open(path).map_err(|source| ExtractError::Open {
            path: path.to_owned(),
            source,
        })?;
        Ok(ContactReader::new(
            source,
            &path.display().to_string(),
            &self.schema,
            &self.layout,
            max_errors,
        ))
    }

    /// Validates the whole file; returns how many contacts it holds and its sha256.
    pub fn validate(&self, path: &Path, max_errors: usize) -> Result<Validated, ExtractError> {
        let mut reader = self.open(path, max_errors)?;
        while reader.next_contact()?.is_some() {}
        let contacts = reader.contacts_seen();
        let bytes = reader.input().len();
        let sha256 = reader
            .into_input()
            .finish()
            .map_err(|source| ExtractError::Read {
                path: path.to_owned(),
                source,
            })?;
        Ok(Validated {
            contacts,
            bytes,
            sha256,
        })
    }
}

/// What a successful validation learned about a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validated {
    pub contacts: u64,
    pub bytes: u64,
    pub sha256: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("cannot open {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Invalid(#[from] InvalidDocument),
}
