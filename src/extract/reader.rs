//! The streaming pass: reads an external contacts document once, checks it is well-formed and
//! valid against the compiled XSD, and yields one contact at a time in bounded memory.
//!
//! Hostile input is refused as soon as it is seen: a DOCTYPE, any entity reference other than
//! the five predefined ones and character references, bytes that are not valid in the declared
//! encoding, and characters XML forbids.

use std::fmt;

use quick_xml::events::{BytesStart, Event};

use crate::extract::encoding::{self, DecodeError, Encoding};
use crate::extract::namespaces::{self, Scopes};
use crate::extract::position::{LineTracker, Position};
use crate::extract::schema::{Content, ElementId, Group, Schema, SchemaError};
use crate::extract::syntax;
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
enum Frame {
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
struct OpenRecord {
    errors_before: usize,
    contact: ExternalContact,
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
    xml: quick_xml::Reader<&'d [u8]>,
    /// Offset of the slice in the document.
    base: u64,
    /// Whether the slice ends where the document ends.
    last: bool,
    /// Set at the end of a non-last chunk that ended between two records.
    clean_end: bool,
    schema: &'s Schema,
    layout: &'s RecordLayout,
    file: String,
    lines: LineTracker,
    encoding: Encoding,
    stack: Vec<Frame>,
    events_seen: bool,
    root_done: bool,
    record: Option<OpenRecord>,
    text: String,
    namespaces: Scopes,
    errors: Vec<DocumentError>,
    max_errors: usize,
    contacts: u64,
    finished: bool,
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

    fn error_at(&mut self, at: Position, message: String) {
        self.errors.push(DocumentError {
            file: self.file.clone(),
            line: at.line,
            column: at.column,
            message,
        });
    }

    fn fatal(&mut self, at: Position, message: String) {
        self.error_at(at, message);
        self.finished = true;
    }

    /// Position of byte `offset` within `bytes`, a not yet recorded span starting at `base`.
    fn position_in(&self, base: u64, bytes: &[u8], offset: usize) -> Position {
        let mut t = self.lines.clone();
        t.advance(base, &bytes[..offset.min(bytes.len())]);
        t.position(base + offset as u64)
    }

    fn decode_failure(&mut self, base: u64, bytes: &[u8], e: DecodeError) {
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
            Event::Decl(d) => {
                if !first {
                    self.fatal(
                        at,
                        "not well-formed XML: the XML declaration is only allowed at the very start of the document"
                            .into(),
                    );
                    return None;
                }
                let label = match syntax::parse_declaration(&d) {
                    Ok(label) => label,
                    Err(why) => {
                        self.fatal(at, format!("malformed XML declaration: {why}"));
                        return None;
                    }
                };
                if let Some(label) = label {
                    match Encoding::from_label(&label) {
                        Some(enc) => self.encoding = enc,
                        None => {
                            self.fatal(
                                at,
                                format!(
                                    "encoding \"{label}\" is not supported: ucm reads UTF-8, ISO-8859-1 and windows-1252"
                                ),
                            );
                            return None;
                        }
                    }
                }
                self.lines.advance(start + 2, &d);
            }
            Event::DocType(_) => {
                self.fatal(
                    at,
                    "DOCTYPE declarations are refused: a DTD can declare entities that expand without bound; \
                     remove the <!DOCTYPE ...> line"
                        .into(),
                );
            }
            Event::PI(p) => {
                let target = p.target();
                if !syntax::is_name(target) {
                    let t = String::from_utf8_lossy(target).into_owned();
                    self.fatal(
                        at,
                        format!("not well-formed XML: processing instruction target \"{t}\" is not an XML name"),
                    );
                    return None;
                }
                if target.contains(&b':') {
                    let t = String::from_utf8_lossy(target).into_owned();
                    self.fatal(
                        at,
                        format!(
                            "not well-formed XML: processing instruction target \"{t}\" has a colon, which Namespaces in XML forbid"
                        ),
                    );
                    return None;
                }
                if target.eq_ignore_ascii_case(b"xml") {
                    self.fatal(
                        at,
                        "not well-formed XML: the XML declaration is only allowed at the very start of the document"
                            .into(),
                    );
                    return None;
                }
                if let Err(e) = encoding::check_bytes(&p, self.encoding) {
                    self.decode_failure(start + 2, &p, e);
                    return None;
                }
                self.lines.advance(start + 2, &p);
            }
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
                self.text_event(start + 9, &c);
                self.lines.advance(start + 9, &c);
            }
            Event::GeneralRef(r) => self.reference(at, &r),
            Event::Eof => {
                self.finished = true;
                if !self.last {
                    self.clean_end = self.resume_state().is_some();
                    return None;
                }
                if let Some(Frame::Element { decl, start, .. }) = self.stack.last() {
                    let name = self.schema.decl(*decl).name.clone();
                    let (line, column) = (start.line, start.column);
                    self.fatal(at, format!("unexpected end of file: <{name}> opened at {line}:{column} is not closed"));
                } else if !self.stack.is_empty() {
                    self.fatal(
                        at,
                        "unexpected end of file: an element is not closed".into(),
                    );
                } else if !self.root_done {
                    self.fatal(at, "the document has no root element".into());
                }
            }
        }
        None
    }

    fn reference(&mut self, at: Position, r: &quick_xml::events::BytesRef<'_>) {
        let ch = if r.is_char_ref() {
            match r.resolve_char_ref() {
                Ok(Some(ch)) if encoding::is_xml_char(ch) => ch,
                _ => {
                    let name = String::from_utf8_lossy(r).into_owned();
                    self.fatal(
                        at,
                        format!("&{name}; does not refer to a character XML allows"),
                    );
                    return;
                }
            }
        } else {
            match &**r {
                b"lt" => '<',
                b"gt" => '>',
                b"amp" => '&',
                b"apos" => '\'',
                b"quot" => '"',
                other => {
                    let name = String::from_utf8_lossy(other).into_owned();
                    self.fatal(
                        at,
                        format!(
                            "entity reference &{name}; is refused: only &lt; &gt; &amp; &apos; &quot; and character \
                             references (&#...;) are accepted"
                        ),
                    );
                    return;
                }
            }
        };
        match self.stack.last() {
            Some(Frame::Element {
                state: State::Simple,
                ..
            }) => self.text.push(ch),
            Some(Frame::Skip) => {}
            // Whitespace between elements may be written as character references (&#32;,
            // &#10;): element-only content allows whitespace however it is written, as
            // libxml2 does; literal whitespace is let through by text_event the same way.
            Some(Frame::Element { .. }) if matches!(ch, ' ' | '\t' | '\n' | '\r') => {}
            Some(Frame::Element { decl, .. }) => {
                let name = self.schema.decl(*decl).name.clone();
                self.error_at(
                    at,
                    format!("character data is not allowed directly inside <{name}>"),
                );
            }
            None => self.fatal(
                at,
                "character data is not allowed outside the root element".into(),
            ),
        }
    }

    fn text_event(&mut self, base: u64, bytes: &[u8]) {
        match self.stack.last() {
            Some(Frame::Element {
                state: State::Simple,
                ..
            }) => {
                let before = self.text.len();
                if let Err(e) = encoding::decode_into(bytes, self.encoding, &mut self.text) {
                    self.decode_failure(base, bytes, e);
                    return;
                }
                if memchr::memchr(b'\r', bytes).is_some() {
                    // XML end-of-line handling: CRLF and lone CR become LF (character
                    // references are appended separately and keep their CR).
                    let normalised = self.text[before..]
                        .replace("\r\n", "\n")
                        .replace('\r', "\n");
                    self.text.truncate(before);
                    self.text.push_str(&normalised);
                }
            }
            other => {
                let is_space = bytes
                    .iter()
                    .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'));
                if is_space {
                    return;
                }
                if let Err(e) = encoding::check_bytes(bytes, self.encoding) {
                    self.decode_failure(base, bytes, e);
                    return;
                }
                let offset = bytes
                    .iter()
                    .position(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
                    .unwrap_or(0);
                let at = self.position_in(base, bytes, offset);
                match other {
                    Some(Frame::Skip) => {}
                    Some(Frame::Element { decl, .. }) => {
                        let name = self.schema.decl(*decl).name.clone();
                        let snippet = snippet(&String::from_utf8_lossy(&bytes[offset..]));
                        self.error_at(
                            at,
                            format!("text \"{snippet}\" is not allowed directly inside <{name}>: it holds elements only"),
                        );
                    }
                    None => {
                        self.fatal(at, "text is not allowed outside the root element".into());
                    }
                }
            }
        }
    }

    /// Checks a start tag before the schema sees it: its name, its attributes (XML 1.0) and
    /// its namespaces (Namespaces in XML 1.0), declaring what it binds for its content. Any
    /// of these is a well-formedness error that stops reading, reported before a schema
    /// error on the same tag (as libxml2 does); then attributes the schema does not allow
    /// are schema errors. Returns false after a well-formedness error.
    fn check_start_tag(&mut self, e: &BytesStart<'_>, at: Position) -> bool {
        let name = e.name();
        let name = name.as_ref();
        let raw = e.attributes_raw();
        let plain_name = !name.contains(&b':');
        if plain_name && raw.iter().all(|b| b.is_ascii_whitespace()) {
            if !syntax::is_name(name) {
                let n = String::from_utf8_lossy(name).into_owned();
                self.fatal(
                    at,
                    format!("not well-formed XML: \"{n}\" is not an XML name"),
                );
                return false;
            }
            return true;
        }
        match self.check_names(name, raw) {
            Ok(not_allowed) => {
                for message in not_allowed {
                    self.error_at(at, message);
                }
                true
            }
            Err(why) => {
                let element = String::from_utf8_lossy(name).into_owned();
                self.fatal(at, format!("not well-formed XML in <{element}>: {why}"));
                false
            }
        }
    }

    /// The well-formedness and namespace checks of [`Self::check_start_tag`] for a tag with
    /// attributes or a prefix; returns the schema errors (attributes not allowed).
    fn check_names(&mut self, name: &[u8], raw: &[u8]) -> Result<Vec<String>, String> {
        let shown = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        if !syntax::is_name(name) {
            return Err(format!("\"{}\" is not an XML name", shown(name)));
        }
        let depth = self.stack.len();
        let mut attributes = Vec::new();
        for attr in syntax::attributes(raw)? {
            let value = syntax::attribute_value(attr.value, self.encoding)
                .map_err(|why| format!("attribute {}: {why}", shown(attr.name)))?;
            if attr.name == b"xmlns" {
                self.namespaces.declare(b"", value.as_bytes(), depth)?;
            } else if let Some(prefix) = attr.name.strip_prefix(b"xmlns:") {
                namespaces::split_qname(attr.name)?;
                self.namespaces.declare(prefix, value.as_bytes(), depth)?;
            } else {
                attributes.push(attr.name);
            }
        }
        let (prefix, _) = namespaces::split_qname(name)?;
        if let Some(prefix) = prefix
            && (prefix == b"xmlns" || self.namespaces.resolve(prefix).is_none())
        {
            return Err(format!("the prefix {} is not declared", shown(prefix)));
        }
        let mut expanded: Vec<(&[u8], &[u8])> = Vec::new();
        let mut not_allowed = Vec::new();
        for attr in attributes {
            let (prefix, local) = namespaces::split_qname(attr)?;
            let ns = match prefix {
                None => &b""[..],
                Some(p) => self
                    .namespaces
                    .resolve(p)
                    .filter(|_| p != b"xmlns")
                    .ok_or_else(|| {
                        format!(
                            "the prefix {} of attribute {} is not declared",
                            shown(p),
                            shown(attr)
                        )
                    })?,
            };
            if !ns.is_empty() && expanded.contains(&(ns, local)) {
                return Err(format!(
                    "attribute {} appears twice in namespace {}",
                    shown(local),
                    shown(ns)
                ));
            }
            expanded.push((ns, local));
            if !(ns == namespaces::XSI_NS
                && matches!(local, b"schemaLocation" | b"noNamespaceSchemaLocation"))
            {
                not_allowed.push(format!(
                    "attribute {} is not allowed on <{}>: the schema declares no attributes",
                    shown(attr),
                    shown(name)
                ));
            }
        }
        if let Some(ns) = self.namespaces.resolve(b"").filter(|ns| !ns.is_empty())
            && prefix.is_none()
        {
            not_allowed.insert(
                0,
                format!(
                    "<{}> is in namespace \"{}\"; the schema's elements have no namespace",
                    shown(name),
                    shown(ns)
                ),
            );
        }
        Ok(not_allowed)
    }

    fn start_element(&mut self, e: &BytesStart<'_>, at: Position) {
        if self.stack.len() >= MAX_DEPTH {
            self.fatal(
                at,
                format!("elements are nested more than {MAX_DEPTH} levels deep"),
            );
            return;
        }
        if !self.check_start_tag(e, at) {
            return;
        }
        let name = e.name();
        let name = name.as_ref();
        let Some(parent) = self.stack.last_mut() else {
            if self.root_done {
                let n = String::from_utf8_lossy(name).into_owned();
                self.fatal(
                    at,
                    format!("a second root element <{n}>: a document has exactly one root"),
                );
                return;
            }
            match self.schema.root_named(name) {
                Some(decl) => self.push(decl, at),
                None => {
                    let n = String::from_utf8_lossy(name).into_owned();
                    let expected: Vec<_> = self
                        .schema
                        .roots
                        .iter()
                        .map(|&r| format!("<{}>", self.schema.decl(r).name))
                        .collect();
                    let schema = self.schema.path.display().to_string();
                    self.fatal(
                        at,
                        format!(
                            "root element <{n}> is not declared in {schema}; expected {}",
                            expected.join(" or ")
                        ),
                    );
                }
            }
            return;
        };
        let (parent_decl, state) = match parent {
            Frame::Skip => {
                self.stack.push(Frame::Skip);
                return;
            }
            Frame::Element { decl, state, .. } => (*decl, state),
        };
        let parent_name = &self.schema.decl(parent_decl).name;
        let verdict: Result<ElementId, String> =
            match (state, &self.schema.decl(parent_decl).content) {
                (State::Simple, _) => Err(format!(
                    "element <{}> is not allowed inside <{parent_name}>: it holds text only",
                    String::from_utf8_lossy(name)
                )),
                (state, Content::Complex(group)) => {
                    match self.schema.child_position(parent_decl, name) {
                        None => Err(format!(
                            "element <{}> is not allowed in <{parent_name}>; allowed: {}",
                            String::from_utf8_lossy(name),
                            self.schema.child_names(parent_decl)
                        )),
                        Some(p) => admit(self.schema, group, state, p)
                            .map(|()| group.children()[p])
                            .map_err(|why| {
                                format!(
                                    "element <{}> {why} in <{parent_name}>",
                                    String::from_utf8_lossy(name)
                                )
                            }),
                    }
                }
                (_, Content::Simple(_)) => unreachable!("simple content has State::Simple"),
            };
        match verdict {
            Ok(decl) => self.push(decl, at),
            Err(message) => {
                self.error_at(at, message);
                self.stack.push(Frame::Skip);
            }
        }
    }

    fn push(&mut self, decl: ElementId, at: Position) {
        let state = match &self.schema.decl(decl).content {
            Content::Simple(_) => {
                self.text.clear();
                State::Simple
            }
            Content::Complex(group) => State::start_of(group),
        };
        if decl == self.layout.record {
            self.record = Some(OpenRecord {
                errors_before: self.errors.len(),
                contact: ExternalContact::empty(at.line),
            });
        }
        self.stack.push(Frame::Element {
            decl,
            start: at,
            state,
        });
    }

    fn end_element(&mut self) -> Option<ExternalContact> {
        if self.finished {
            // A fatal error stopped reading; an empty element whose start failed has no frame.
            return None;
        }
        let frame = self.stack.pop()?;
        self.namespaces.leave(self.stack.len());
        if self.stack.is_empty() {
            self.root_done = true;
        }
        let Frame::Element { decl, start, state } = frame else {
            return None;
        };
        let d = self.schema.decl(decl);
        match (&d.content, state) {
            (Content::Simple(st), State::Simple) => {
                let text = &self.text;
                if !st.admits(text) {
                    let name = d.name.clone();
                    let chars = text.chars().count();
                    let rule = match st.max_length {
                        Some(max) if chars > max => format!("at most {max}"),
                        _ => format!("at least {}", st.min_length.unwrap_or_default()),
                    };
                    self.error_at(
                        start,
                        format!("value of <{name}> is {chars} characters long; {rule} allowed"),
                    );
                } else if let (Some(field), Some(record)) =
                    (self.layout.field_of[decl], self.record.as_mut())
                {
                    // Trimmed, and empty is NULL, as `fields::clean_value` says; the value is
                    // copied into the contact's one string, and the buffer is reused.
                    let value = self.text.trim();
                    if !value.is_empty() {
                        record.contact.push(field, value);
                    }
                    self.text.clear();
                }
            }
            (Content::Complex(group), state) => {
                if let Some(missing) = missing_child(self.schema, group, &state) {
                    let name = d.name.clone();
                    let missing = self.schema.decl(missing).name.clone();
                    let at = self.lines.position(self.xml.buffer_position());
                    self.error_at(
                        at,
                        format!(
                            "<{name}> (opened at {start}) is missing required element <{missing}>"
                        ),
                    );
                }
            }
            (Content::Simple(_), _) => unreachable!("simple content has State::Simple"),
        }
        if decl == self.layout.record {
            self.contacts += 1;
            let mut record = self.record.take()?;
            if self.errors.len() == record.errors_before {
                record.contact.sort_fields();
                return Some(record.contact);
            }
        }
        None
    }
}

/// Checks that child `p` of `group` may come next, and records it in `state`.
pub(super) fn admit(
    schema: &Schema,
    group: &Group,
    state: &mut State,
    p: usize,
) -> Result<(), String> {
    let children = group.children();
    match state {
        State::All { seen } => {
            let bit = 1u64 << p;
            if *seen & bit != 0 {
                return Err("appears twice".into());
            }
            *seen |= bit;
            Ok(())
        }
        State::Sequence { pos, count } => {
            if p == *pos && *count > 0 {
                let max = schema.decl(children[p]).max_occurs;
                if max.is_some_and(|m| *count >= m) {
                    return Err(format!(
                        "occurs more than {} times",
                        max.unwrap_or_default()
                    ));
                }
                *count += 1;
                return Ok(());
            }
            let from = if *count > 0 { *pos + 1 } else { *pos };
            if p < from {
                return Err("is out of order".into());
            }
            if *count < schema.decl(children[*pos]).min_occurs && p != *pos {
                let need = &schema.decl(children[*pos]).name;
                return Err(format!("comes before required <{need}>"));
            }
            if let Some(skipped) = children[from..p]
                .iter()
                .enumerate()
                .find(|(i, c)| from + i != *pos && schema.decl(**c).min_occurs > 0)
            {
                return Err(format!(
                    "comes before required <{}>",
                    schema.decl(*skipped.1).name
                ));
            }
            *pos = p;
            *count = 1;
            Ok(())
        }
        State::Simple => unreachable!("only element-only content admits children"),
    }
}

/// The first required child that never appeared, if any.
pub(super) fn missing_child(schema: &Schema, group: &Group, state: &State) -> Option<ElementId> {
    let children = group.children();
    match state {
        State::All { seen } => children
            .iter()
            .enumerate()
            .find(|(i, c)| seen & (1u64 << i) == 0 && schema.decl(**c).min_occurs > 0)
            .map(|(_, c)| *c),
        State::Sequence { pos, count } => {
            if *count < schema.decl(children.get(*pos).copied()?).min_occurs {
                return Some(children[*pos]);
            }
            children[*pos + 1..]
                .iter()
                .copied()
                .find(|c| schema.decl(*c).min_occurs > 0)
        }
        State::Simple => None,
    }
}

/// The first characters of a text, for messages.
fn snippet(text: &str) -> String {
    let t = text.trim();
    let mut s: String = t.chars().take(30).collect();
    if t.chars().count() > 30 {
        s.push('…');
    }
    s
}
