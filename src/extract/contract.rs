//! The contract: the compiled XSD and where the contact fields sit in it, loaded once at
//! start-up; reading and validating a document against it.

use std::path::{Path, PathBuf};

use super::document::{self, Document, ReadError, Summary};
use super::reader::{ExternalContact, InvalidDocument, RecordLayout};
use super::schema::{Schema, SchemaError};

/// The compiled schema and where the contact fields sit in it: everything extraction needs,
/// loaded once at start-up.
#[derive(Clone, Debug)]
pub struct Contract {
    pub schema: Schema,
    pub layout: RecordLayout,
    /// The layout for validation only, which keeps no values.
    checking: RecordLayout,
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
        let checking = layout.without_values();
        Contract {
            schema,
            layout,
            checking,
        }
    }

    /// Loads the XSD at `path` and checks that ucm can enforce all of it.
    pub fn load(path: &Path) -> Result<Contract, SchemaError> {
        let schema = Schema::load(path)?;
        let layout = RecordLayout::from_schema(&schema)?;
        let checking = layout.without_values();
        Ok(Contract {
            schema,
            layout,
            checking,
        })
    }

    /// Reads the file at `path`, calling `sink` with each valid contact in document order and
    /// `progress` with the bytes parsed so far. Stops at the first `max_errors` errors.
    pub fn read<E: Send>(
        &self,
        path: &Path,
        max_errors: usize,
        progress: &(dyn Fn(u64) + Sync),
        sink: impl FnMut(ExternalContact) -> Result<(), E>,
    ) -> Result<Summary, ReadError<E>> {
        Self::read_with(&self.schema, &self.layout, path, max_errors, progress, sink)
    }

    fn read_with<E: Send>(
        schema: &Schema,
        layout: &RecordLayout,
        path: &Path,
        max_errors: usize,
        progress: &(dyn Fn(u64) + Sync),
        sink: impl FnMut(ExternalContact) -> Result<(), E>,
    ) -> Result<Summary, ReadError<E>> {
        let doc = Document::open(path).map_err(ReadError::Open)?;
        document::read(&doc, schema, layout, max_errors, progress, sink)
    }

    /// Validates the whole file; returns how many contacts it holds, its size and its sha256.
    pub fn validate(&self, path: &Path, max_errors: usize) -> Result<Summary, ExtractError> {
        let nothing = |_| Ok::<(), std::convert::Infallible>(());
        Self::read_with(
            &self.schema,
            &self.checking,
            path,
            max_errors,
            &|_| {},
            nothing,
        )
        .map_err(|e| match e {
            ReadError::Open(source) => ExtractError::Open {
                path: path.to_owned(),
                source,
            },
            ReadError::Invalid(invalid) => ExtractError::Invalid(invalid),
            ReadError::Sink(never) => match never {},
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("cannot open {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Invalid(#[from] InvalidDocument),
}
