//! The streaming pass: reads an external contacts document once, checks it is well-formed and
//! valid against the compiled XSD, and yields one contact at a time in bounded memory.
//!
//! Hostile input is refused as soon as it is seen: a DOCTYPE, any entity reference other than
//! the five predefined ones and character references, bytes that are not valid in the declared
//! encoding, and characters XML forbids.

use std::fmt;

use quick_xml::events::Event;

use crate::extract::encoding::{self, DecodeError, Encoding};
use crate::extract::namespaces::Scopes;
use crate::extract::position::{LineTracker, Position};
use crate::extract::schema::{Content, ElementId, Group, Schema, SchemaError};
use crate::fields::{Field, FieldValues, empty_values};

/// Deepest element nesting accepted. The contract needs 3 levels; the limit keeps the stacks
/// of the validator and the parser bounded on hostile input.
pub const MAX_DEPTH: usize = 64;

/// One contact read from the external source, its values already cleaned (trimmed, empty is
/// NULL). Compact, as contacts wait in the parsing window in large numbers: the present values
/// end to end in one string, with their spans.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExternalContact {
    /// Line of the `<contact>` start tag.
    pub line: u64,
    text: String,
    /// The present fields, sorted by field, with the byte span of each value in `text`.
    spans: Vec<(Field, u32, u32)>,
}

impl ExternalContact {
    /// A contact from a full set of values.
    pub fn from_values(line: u64, values: FieldValues) -> ExternalContact {
        let mut contact = ExternalContact::empty(line);
        for (i, v) in values.iter().enumerate() {
            if let Some(v) = v {
                contact.push(Field::from_index(i), v);
            }
        }
        contact
    }

    /// A contact with no fields yet, its `<contact>` start tag on `line`.
    pub(super) fn empty(line: u64) -> ExternalContact {
        ExternalContact {
            line,
            text: String::new(),
            spans: Vec::new(),
        }
    }

    /// Removes every field, keeping the buffers.
    pub(super) fn clear(&mut self) {
        self.text.clear();
        self.spans.clear();
    }

    /// Puts the fields in field order (they are pushed in document order).
    pub(super) fn sort_fields(&mut self) {
        self.spans.sort_unstable_by_key(|(field, _, _)| *field);
    }

    pub(super) fn push(&mut self, field: Field, value: &str) {
        let start = self.text.len() as u32;
        self.text.push_str(value);
        self.spans.push((field, start, self.text.len() as u32));
    }

    /// The present fields, sorted by field.
    pub fn fields(&self) -> impl Iterator<Item = (Field, &str)> + '_ {
        self.spans
            .iter()
            .map(|&(f, a, b)| (f, &self.text[a as usize..b as usize]))
    }

    /// The value of `field`, if present.
    pub fn value(&self, field: Field) -> Option<&str> {
        self.fields().find(|(f, _)| *f == field).map(|(_, v)| v)
    }

    /// The contact's values, indexed by field.
    pub fn values(&self) -> FieldValues {
        let mut values = empty_values();
        for (field, value) in self.fields() {
            values[field.index()] = Some(value.to_owned());
        }
        values
    }
}

/// A well-formedness or validity error at a place in a document.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DocumentError {
    pub file: String,
    pub line: u64,
    pub column: u64,
    pub message: String,
}

impl fmt::Display for DocumentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

/// Where the contacts and their fields sit in the schema: the record element (`<contact>`)
/// and which declaration holds which of the 22 fields.
#[derive(Clone, Debug)]
pub struct RecordLayout {
    pub record: ElementId,
    pub(super) field_of: Vec<Option<Field>>,
}

impl RecordLayout {
    /// Finds the record element: the one element-only declaration whose children are all
    /// text-only. Every child must be one of ucm's 22 fields.
    pub fn from_schema(schema: &Schema) -> Result<RecordLayout, SchemaError> {
        let invalid = |message: String| SchemaError::Invalid {
            path: schema.path.clone(),
            line: 1,
            column: 1,
            message,
        };
        let records: Vec<ElementId> = (0..schema.elements.len())
            .filter(|&id| match &schema.elements[id].content {
                Content::Complex(g) => {
                    !g.children().is_empty()
                        && g.children()
                            .iter()
                            .all(|&c| matches!(schema.elements[c].content, Content::Simple(_)))
                }
                Content::Simple(_) => false,
            })
            .collect();
        let [record] = records[..] else {
            return Err(invalid(format!(
                "ucm needs exactly one record element (an element whose children are all text fields); \
                 this schema has {}",
                records.len()
            )));
        };
        let mut field_of = vec![None; schema.elements.len()];
        if let Content::Complex(g) = &schema.elements[record].content {
            for &c in g.children() {
                let name = &schema.elements[c].name;
                let field = Field::from_name(name).ok_or_else(|| {
                    invalid(format!(
                        "field <{name}> of <{}> is not one of ucm's fields ({})",
                        schema.elements[record].name,
                        Field::list()
                    ))
                })?;
                field_of[c] = Some(field);
            }
        }
        Ok(RecordLayout { record, field_of })
    }

    /// The same layout keeping no values: for validation, which only needs the verdict.
    pub fn without_values(&self) -> RecordLayout {
        RecordLayout {
            record: self.record,
            field_of: vec![None; self.field_of.len()],
        }
    }
}

#[derive(Debug)]
pub(super) enum Frame {
    /// An element whose content is being validated.
    Element {
        decl: ElementId,
        start: Position,
        state: State,
    },
    /// The subtree of an element already reported as not allowed: ignored.
    Skip,
}

#[derive(Clone, Debug)]
pub(super) enum State {
    Simple,
    Sequence { pos: usize, count: u32 },
    All { seen: u64 },
}

impl State {
    /// Before the first child of `group`.
    pub(super) fn start_of(group: &Group) -> State {
        match group {
            Group::Sequence(_) => State::Sequence { pos: 0, count: 0 },
            Group::All(_) => State::All { seen: 0 },
        }
    }
}

#[derive(Debug)]
pub(super) struct OpenRecord {
    pub(super) errors_before: usize,
    pub(super) contact: ExternalContact,
}

/// Where a reader starts when it does not start at the top of the document: inside the root
/// element, between two records, with what the prolog declared. Chunks of a document after
/// the first are read from such a state (see `extract::document`).
#[derive(Clone, Debug)]
pub struct Resume {
    pub encoding: Encoding,
    /// The namespaces the root declares.
    pub namespaces: Scopes,
    pub root: ElementId,
    pub root_start: Position,
    /// The root's content-model state (a record was admitted at least once or may be).
    pub(super) root_state: (usize, u32),
}

/// Reads contacts from a document (or a chunk of one) held in memory, validating as it goes.
pub struct ContactReader<'s, 'd> {
    pub(super) xml: quick_xml::Reader<&'d [u8]>,
    /// Offset of the slice in the document.
    pub(super) base: u64,
    /// Whether the slice ends where the document ends.
    pub(super) last: bool,
    /// Set at the end of a non-last chunk that ended between two records.
    pub(super) clean_end: bool,
    pub(super) schema: &'s Schema,
    pub(super) layout: &'s RecordLayout,
    pub(super) file: String,
    pub(super) lines: LineTracker,
    pub(super) encoding: Encoding,
    pub(super) stack: Vec<Frame>,
    pub(super) events_seen: bool,
    pub(super) root_done: bool,
    pub(super) record: Option<OpenRecord>,
    pub(super) text: String,
    pub(super) namespaces: Scopes,
    /// The `xsi:type` of the start tag being read, resolved (namespace, local name) and as
    /// written, until its element's declaration is known ([`Self::push`] checks it).
    pub(super) xsi_type: Option<(Vec<u8>, Vec<u8>, String)>,
    pub(super) errors: Vec<DocumentError>,
    pub(super) max_errors: usize,
    pub(super) contacts: u64,
    pub(super) finished: bool,
}

/// The reason a document was refused: its first errors, in document order.
#[derive(Debug, thiserror::Error)]
pub struct InvalidDocument {
    pub errors: Vec<DocumentError>,
}

impl fmt::Display for InvalidDocument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl<'s, 'd> ContactReader<'s, 'd> {
    /// A reader over a whole document; `file` names it in messages. Reading stops after
    /// `max_errors` errors (at least 1); well-formedness errors always stop it.
    pub fn new(
        input: &'d [u8],
        file: &str,
        schema: &'s Schema,
        layout: &'s RecordLayout,
        max_errors: usize,
    ) -> Self {
        Self::over(
            input,
            0,
            true,
            None,
            LineTracker::default(),
            file,
            schema,
            layout,
            max_errors,
        )
    }

    /// A reader over `input`, the bytes of a document from offset `base`, where the lines
    /// before it are counted in `lines`; `resume` is the state at `base` (none at offset 0);
    /// `last` says whether the document ends where `input` does.
    #[allow(clippy::too_many_arguments)]
    pub fn over(
        input: &'d [u8],
        base: u64,
        last: bool,
        resume: Option<&Resume>,
        lines: LineTracker,
        file: &str,
        schema: &'s Schema,
        layout: &'s RecordLayout,
        max_errors: usize,
    ) -> Self {
        let mut errors = Vec::new();
        let mut finished = false;
        // UTF-16 with a byte-order mark, or without one: "<?" as UTF-16 (XML 1.0, appendix F),
        // which read as bytes looked like NULs or a broken attribute.
        let utf16 = [
            &[0xFF, 0xFE][..],
            &[0xFE, 0xFF],
            &[0x3C, 0x00, 0x3F, 0x00],
            &[0x00, 0x3C, 0x00, 0x3F],
        ];
        if base == 0 && utf16.iter().any(|start| input.starts_with(start)) {
            errors.push(DocumentError {
                file: file.to_owned(),
                line: 1,
                column: 1,
                message: "UTF-16 documents are not supported: convert the file to UTF-8".into(),
            });
            finished = true;
        }
        let mut xml = quick_xml::Reader::from_reader(input);
        let config = xml.config_mut();
        config.check_comments = true;
        config.check_end_names = true;
        // A chunk read from inside the root sees the root's end tag but not its start tag;
        // end_element checks end names against the validator's own stack.
        config.allow_unmatched_ends = resume.is_some();
        config.expand_empty_elements = false;
        config.trim_text(false);
        let mut reader = ContactReader {
            xml,
            base,
            last,
            clean_end: false,
            schema,
            layout,
            file: file.to_owned(),
            lines,
            encoding: Encoding::Utf8,
            stack: Vec::with_capacity(8),
            events_seen: false,
            root_done: false,
            record: None,
            text: String::with_capacity(256),
            namespaces: Scopes::default(),
            xsi_type: None,
            errors,
            max_errors: max_errors.max(1),
            contacts: 0,
            finished,
        };
        if let Some(r) = resume {
            reader.encoding = r.encoding;
            reader.namespaces = r.namespaces.clone();
            reader.events_seen = true;
            reader.stack.push(Frame::Element {
                decl: r.root,
                start: r.root_start,
                state: State::Sequence {
                    pos: r.root_state.0,
                    count: r.root_state.1,
                },
            });
        }
        reader
    }

    /// The state to resume from if the reader is now inside the root, between records, with a
    /// root whose content is a sequence: what reading a later chunk needs.
    pub fn resume_state(&self) -> Option<Resume> {
        match self.stack.as_slice() {
            [
                Frame::Element {
                    decl,
                    start,
                    state: State::Sequence { pos, count },
                },
            ] if self.record.is_none() => Some(Resume {
                encoding: self.encoding,
                namespaces: self.namespaces.of_root(),
                root: *decl,
                root_start: *start,
                root_state: (*pos, *count),
            }),
            _ => None,
        }
    }

    /// Whether reading a non-last chunk ended between two records, inside the root.
    pub fn ended_cleanly(&self) -> bool {
        self.clean_end
    }

    /// Bytes of the slice read so far.
    pub fn position(&self) -> u64 {
        self.xml.buffer_position()
    }

    /// The document offset reached.
    pub fn offset(&self) -> u64 {
        self.base + self.xml.buffer_position()
    }

    /// The line count so far.
    pub fn lines(&self) -> &LineTracker {
        &self.lines
    }

    /// Whether any error was found.
    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    /// Reads events until the root element is open (or reading stops); true when it is.
    pub fn open_root(&mut self) -> bool {
        while !self.finished && self.stack.is_empty() {
            if self.step().is_some() {
                unreachable!("no record before the root");
            }
        }
        !self.finished && self.stack.len() == 1
    }

    /// Contacts (`<contact>` elements) completed so far, valid or not.
    pub fn contacts_seen(&self) -> u64 {
        self.contacts
    }

    /// The next valid contact; `Ok(None)` at the end of a valid document; `Err` with the first
    /// errors as soon as the document is known to be invalid (after `max_errors` errors or at
    /// its end).
    pub fn next_contact(&mut self) -> Result<Option<ExternalContact>, InvalidDocument> {
        while !self.finished {
            if let Some(contact) = self.step() {
                return Ok(Some(contact));
            }
            if self.errors.len() >= self.max_errors {
                self.finished = true;
            }
        }
        if self.errors.is_empty() {
            Ok(None)
        } else {
            Err(InvalidDocument {
                errors: std::mem::take(&mut self.errors),
            })
        }
    }

    pub(super) fn error_at(&mut self, at: Position, message: String) {
        self.errors.push(DocumentError {
            file: self.file.clone(),
            line: at.line,
            column: at.column,
            message,
        });
    }

    pub(super) fn fatal(&mut self, at: Position, message: String) {
        self.error_at(at, message);
        self.finished = true;
    }

    /// Position of byte `offset` within `bytes`, a not yet recorded span starting at `base`.
    pub(super) fn position_in(&self, base: u64, bytes: &[u8], offset: usize) -> Position {
        let mut t = self.lines.clone();
        t.advance(base, &bytes[..offset.min(bytes.len())]);
        t.position(base + offset as u64)
    }

    pub(super) fn decode_failure(&mut self, base: u64, bytes: &[u8], e: DecodeError) {
        let (offset, message) = match e {
            DecodeError::BadBytes { offset, encoding } => (
                offset,
                format!(
                    "byte 0x{:02X} is not valid {}",
                    bytes[offset],
                    match encoding {
                        Encoding::Utf8 => "UTF-8",
                        Encoding::Ascii => "US-ASCII",
                        Encoding::Latin1 => "ISO-8859-1",
                        Encoding::Windows1252 => "windows-1252",
                    }
                ),
            ),
            DecodeError::ForbiddenChar { offset, ch } => (
                offset,
                format!("character U+{:04X} is not allowed in XML", ch as u32),
            ),
        };
        let at = self.position_in(base, bytes, offset);
        self.fatal(at, message);
    }

    /// Reads one event; returns a contact when one is complete and valid.
    fn step(&mut self) -> Option<ExternalContact> {
        let start = self.base + self.xml.buffer_position();
        match self.xml.read_event() {
            Err(e) => {
                let at = self.error_position();
                self.fatal(at, format!("not well-formed XML: {e}"));
                None
            }
            Ok(event) => self.handle(start, event),
        }
    }

    fn error_position(&self) -> Position {
        // quick-xml reports the start of the markup in error; lines are counted up to the last
        // complete event, which is where that markup starts.
        self.lines.position(self.base + self.xml.error_position())
    }

    fn handle(&mut self, start: u64, event: Event<'_>) -> Option<ExternalContact> {
        let first = !self.events_seen;
        self.events_seen = true;
        let at = self.lines.position(start);
        match event {
            Event::Decl(d) => self.declaration(start, at, first, &d),
            Event::DocType(_) => {
                self.fatal(
                    at,
                    "DOCTYPE declarations are refused: a DTD can declare entities that expand without bound; \
                     remove the <!DOCTYPE ...> line"
                        .into(),
                );
            }
            Event::PI(p) => self.processing_instruction(start, at, &p),
            Event::Comment(c) => {
                if let Err(e) = encoding::check_bytes(&c, self.encoding) {
                    self.decode_failure(start + 4, &c, e);
                    return None;
                }
                self.lines.advance(start + 4, &c);
            }
            Event::Start(e) => {
                self.lines.advance(start + 1, &e);
                self.start_element(&e, at);
            }
            Event::Empty(e) => {
                self.lines.advance(start + 1, &e);
                self.start_element(&e, at);
                return self.end_element();
            }
            Event::End(e) => {
                self.lines.advance(start + 2, &e);
                if let Some(Frame::Element { decl, .. }) = self.stack.last()
                    && self.schema.decl(*decl).name.as_bytes() != e.name().as_ref()
                {
                    let expected = self.schema.decl(*decl).name.clone();
                    let found = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                    self.fatal(
                        at,
                        format!("not well-formed XML: expected </{expected}>, found </{found}>"),
                    );
                    return None;
                }
                return self.end_element();
            }
            Event::Text(t) => {
                if let Some(i) = memchr::memmem::find(&t, b"]]>") {
                    let pos = self.position_in(start, &t, i);
                    self.fatal(
                        pos,
                        "\"]]>\" is not allowed in text (escape the > as &gt;)".into(),
                    );
                    return None;
                }
                self.text_event(start, &t);
                self.lines.advance(start, &t);
            }
            Event::CData(c) => {
                self.cdata_event(start + 9, at, &c);
                self.lines.advance(start + 9, &c);
            }
            Event::GeneralRef(r) => self.reference(at, &r),
            Event::Eof => self.end_of_file(at),
        }
        None
    }
}
