//! What a source holds, as the pipeline would map it, before anything lands (`ucm fetch
//! --preview N`): its first contacts field by field, the column, property or element each
//! value comes from, and what the mapping leaves unread (a CSV's other columns, the
//! properties of the cards read that no field takes).

use std::path::Path;

use super::contract::Contract;
use super::document::ReadError;
use super::mapping::SourceKind;
use crate::fields::{FIELD_COUNT, FIELD_NAMES, FieldValues};

/// A source's first contacts as mapped.
#[derive(Debug, Default)]
pub struct Preview {
    /// Each contact: the line it starts on and its values.
    pub contacts: Vec<(u64, FieldValues)>,
    /// Where each field is read from in this source (None: nowhere).
    pub from: [Option<String>; FIELD_COUNT],
    /// What the source has that no field reads.
    pub unmapped: Vec<String>,
    /// The first error, when the source is not valid (the contacts before it are shown).
    pub error: Option<String>,
}

/// Stops reading once the preview has its contacts.
struct Enough;

impl Contract {
    /// The first `count` contacts of the source file at `path`, as the pipeline maps them.
    pub fn preview(&self, path: &Path, count: usize) -> Preview {
        let mut preview = Preview::default();
        let read = self.read(path, 1, &|_| {}, |contact| {
            preview.contacts.push((contact.line, contact.values()));
            if preview.contacts.len() >= count {
                Err(Enough)
            } else {
                Ok(())
            }
        });
        match read {
            Ok(_) | Err(ReadError::Sink(Enough)) => {}
            Err(ReadError::Open(e)) => preview.error = Some(format!("cannot open the source: {e}")),
            Err(ReadError::Invalid(invalid)) => preview.error = Some(invalid.to_string()),
        }
        let (from, unmapped) = match (self.kind(), self.mapping()) {
            (SourceKind::Csv, Some(mapping)) => {
                super::csv_source::header_sources(path, mapping, self.csv_options())
            }
            (SourceKind::Vcard | SourceKind::Carddav, Some(mapping)) => {
                super::vcard_source::card_sources(path, mapping, count)
            }
            (SourceKind::Ldap, Some(mapping)) => {
                super::ldap::ldif::entry_sources(path, mapping, count)
            }
            _ => (
                std::array::from_fn(|i| Some(format!("<{}>", FIELD_NAMES[i]))),
                Vec::new(),
            ),
        };
        preview.from = from;
        preview.unmapped = unmapped;
        preview
    }
}

impl Preview {
    /// The preview as text: each contact's fields with their values and sources, then what
    /// is left unread.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for (n, (line, values)) in self.contacts.iter().enumerate() {
            out.push_str(&format!("contact {} (line {line})\n", n + 1));
            for (i, value) in values.iter().enumerate() {
                if let Some(value) = value {
                    let from = self.from[i].as_deref().unwrap_or("?");
                    out.push_str(&format!("  {:<14} {value:<32} <- {from}\n", FIELD_NAMES[i]));
                }
            }
        }
        if self.contacts.is_empty() {
            out.push_str("no contact read\n");
        }
        let unread: Vec<&str> = (0..FIELD_COUNT)
            .filter(|&i| self.from[i].is_none())
            .map(|i| FIELD_NAMES[i])
            .collect();
        if !unread.is_empty() {
            out.push_str(&format!(
                "fields read from nowhere: {}\n",
                unread.join(", ")
            ));
        }
        if !self.unmapped.is_empty() {
            out.push_str(&format!(
                "in the source, read by no field: {}\n",
                self.unmapped.join(", ")
            ));
        }
        if let Some(error) = &self.error {
            out.push_str(&format!("the source is not valid:\n{error}\n"));
        }
        out
    }
}
