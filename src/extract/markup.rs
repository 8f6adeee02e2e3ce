//! The events of a document that are not elements: the XML declaration (and the encoding it
//! names), processing instructions, text and CDATA, entity and character references, and the
//! end of the input.

use super::elements::snippet;
use super::reader::{ContactReader, Frame, State};
use crate::extract::encoding::{self, Encoding};
use crate::extract::position::Position;
use crate::extract::syntax;

impl<'s, 'd> ContactReader<'s, 'd> {
    /// The XML declaration: only at the very start; its encoding label, if any, is one ucm
    /// reads.
    pub(super) fn declaration(
        &mut self,
        start: u64,
        at: Position,
        first: bool,
        d: &quick_xml::events::BytesDecl<'_>,
    ) {
        if !first {
            self.fatal(
                    at,
                    "not well-formed XML: the XML declaration is only allowed at the very start of the document"
                        .into(),
                );
            return;
        }
        let label = match syntax::parse_declaration(d) {
            Ok(label) => label,
            Err(why) => {
                self.fatal(at, format!("malformed XML declaration: {why}"));
                return;
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
                    return;
                }
            }
        }
        self.lines.advance(start + 2, d);
    }

    /// A processing instruction: its target an XML name without a colon, not `xml`; its
    /// bytes valid in the document's encoding.
    pub(super) fn processing_instruction(
        &mut self,
        start: u64,
        at: Position,
        p: &quick_xml::events::BytesPI<'_>,
    ) {
        let target = p.target();
        if !syntax::is_name(target, self.encoding) {
            let t = String::from_utf8_lossy(target).into_owned();
            self.fatal(
                at,
                format!(
                    "not well-formed XML: processing instruction target \"{t}\" is not an XML name"
                ),
            );
            return;
        }
        if target.contains(&b':') {
            let t = String::from_utf8_lossy(target).into_owned();
            self.fatal(
                    at,
                    format!(
                        "not well-formed XML: processing instruction target \"{t}\" has a colon, which Namespaces in XML forbid"
                    ),
                );
            return;
        }
        if target.eq_ignore_ascii_case(b"xml") {
            self.fatal(
                    at,
                    "not well-formed XML: the XML declaration is only allowed at the very start of the document"
                        .into(),
                );
            return;
        }
        if let Err(e) = encoding::check_bytes(p, self.encoding) {
            self.decode_failure(start + 2, p, e);
            return;
        }
        self.lines.advance(start + 2, p);
    }

    /// The end of the input: the end of a chunk (resumable when it falls between records),
    /// or of the document, where every element must be closed and a root must have been seen.
    pub(super) fn end_of_file(&mut self, at: Position) {
        self.finished = true;
        if !self.last {
            self.clean_end = self.resume_state().is_some();
            return;
        }
        if let Some(Frame::Element { decl, start, .. }) = self.stack.last() {
            let name = self.schema.decl(*decl).name.clone();
            let (line, column) = (start.line, start.column);
            self.fatal(
                at,
                format!("unexpected end of file: <{name}> opened at {line}:{column} is not closed"),
            );
        } else if !self.stack.is_empty() {
            self.fatal(
                at,
                "unexpected end of file: an element is not closed".into(),
            );
        } else if !self.root_done {
            self.fatal(at, "the document has no root element".into());
        }
    }

    pub(super) fn reference(&mut self, at: Position, r: &quick_xml::events::BytesRef<'_>) {
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

    /// A CDATA section (its content from `base`, the section at `at`): text of a simple
    /// element's value; outside the root element it is not well-formed, and in element-only
    /// content it is a schema error even when empty or blank (a CDATA section is never
    /// ignorable whitespace), as libxml2 finds.
    pub(super) fn cdata_event(&mut self, base: u64, at: Position, bytes: &[u8]) {
        match self.stack.last() {
            Some(Frame::Element {
                state: State::Simple,
                ..
            })
            | Some(Frame::Skip) => self.text_event(base, bytes),
            Some(Frame::Element { decl, .. }) => {
                let name = self.schema.decl(*decl).name.clone();
                self.error_at(
                    at,
                    format!(
                        "a CDATA section is not allowed directly inside <{name}>: it holds elements only"
                    ),
                );
            }
            None => self.fatal(
                at,
                "not well-formed XML: a CDATA section is not allowed outside the root element"
                    .into(),
            ),
        }
    }

    pub(super) fn text_event(&mut self, base: u64, bytes: &[u8]) {
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
}
