//! The contract: the compiled XSD and where the contact fields sit in it, loaded once at
//! start-up, and the pipeline's kind of source; reading and validating a source against it.
//! An XML source is validated against the XSD; a CSV source is read through its mapping
//! (`super::csv_source`), each value held to the XSD's rule for its field.

use std::path::{Path, PathBuf};

use super::csv_source::{self, CsvOptions, CsvRules};
use super::document::{self, Document, ReadError, Summary};
use super::ldap::ldif::{self, LdifRules};
use super::mapping::{Mapping, SourceKind};
use super::reader::{ExternalContact, InvalidDocument, RecordLayout};
use super::schema::{Content, Schema, SchemaError, SimpleType};
use super::vcard_source::{self, VcardRules};
use crate::fields::{FIELD_COUNT, Field};

/// What kind of file the source is and how it maps onto the fields.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceFormat {
    pub kind: SourceKind,
    /// None for XML.
    pub mapping: Option<Mapping>,
    pub csv: CsvOptions,
}

/// The compiled schema and where the contact fields sit in it: everything extraction needs,
/// loaded once at start-up.
#[derive(Clone, Debug)]
pub struct Contract {
    pub schema: Schema,
    pub layout: RecordLayout,
    /// The layout for validation only, which keeps no values.
    checking: RecordLayout,
    /// The kind of source and its mapping (XML unless [`Contract::with_source`] says).
    source: SourceFormat,
    /// The XSD's rule for each field's value (what a CSV value is held to).
    field_types: [Option<SimpleType>; FIELD_COUNT],
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
        Contract::of(schema, layout)
    }

    fn of(schema: Schema, layout: RecordLayout) -> Contract {
        let checking = layout.without_values();
        let mut field_types: [Option<SimpleType>; FIELD_COUNT] = Default::default();
        if let Content::Complex(group) = &schema.decl(layout.record).content {
            for &child in group.children() {
                let decl = schema.decl(child);
                if let (Some(field), Content::Simple(rule)) =
                    (Field::from_name(&decl.name), &decl.content)
                {
                    field_types[field.index()] = Some(rule.clone());
                }
            }
        }
        Contract {
            schema,
            layout,
            checking,
            source: SourceFormat::default(),
            field_types,
        }
    }

    /// This contract for a source of `format` (a CSV export through its mapping, ...).
    pub fn with_source(mut self, format: SourceFormat) -> Contract {
        self.source = format;
        self
    }

    /// The kind of source this contract reads.
    pub fn kind(&self) -> SourceKind {
        self.source.kind
    }

    /// The source's mapping (None for XML).
    pub fn mapping(&self) -> Option<&Mapping> {
        self.source.mapping.as_ref()
    }

    pub fn csv_options(&self) -> CsvOptions {
        self.source.csv
    }

    /// Loads the XSD at `path` and checks that ucm can enforce all of it.
    pub fn load(path: &Path) -> Result<Contract, SchemaError> {
        let schema = Schema::load(path)?;
        let layout = RecordLayout::from_schema(&schema)?;
        Ok(Contract::of(schema, layout))
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
        self.read_with(&self.layout, path, max_errors, progress, sink)
    }

    fn read_with<E: Send>(
        &self,
        layout: &RecordLayout,
        path: &Path,
        max_errors: usize,
        progress: &(dyn Fn(u64) + Sync),
        sink: impl FnMut(ExternalContact) -> Result<(), E>,
    ) -> Result<Summary, ReadError<E>> {
        match (self.source.kind, &self.source.mapping) {
            (SourceKind::Csv, Some(mapping)) => {
                let rules = CsvRules {
                    mapping,
                    options: self.source.csv,
                    field_types: &self.field_types,
                };
                csv_source::read(path, &rules, max_errors, progress, sink)
            }
            (SourceKind::Vcard | SourceKind::Carddav, Some(mapping)) => {
                let rules = VcardRules {
                    mapping,
                    field_types: &self.field_types,
                };
                vcard_source::read(path, &rules, max_errors, progress, sink)
            }
            (SourceKind::Ldap, Some(mapping)) => {
                let rules = LdifRules {
                    mapping,
                    field_types: &self.field_types,
                };
                ldif::read(path, &rules, max_errors, progress, sink)
            }
            _ => {
                let doc = Document::open(path).map_err(ReadError::Open)?;
                document::read(&doc, &self.schema, layout, max_errors, progress, sink)
            }
        }
    }

    /// Validates the whole file; returns how many contacts it holds, its size and its sha256.
    pub fn validate(&self, path: &Path, max_errors: usize) -> Result<Summary, ExtractError> {
        let nothing = |_| Ok::<(), std::convert::Infallible>(());
        self.read_with(&self.checking, path, max_errors, &|_| {}, nothing)
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
