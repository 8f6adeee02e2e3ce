//! The fast path for plain records: `<contact>` elements written the way nearly every source
//! writes them (start tags without attributes, empty elements, text whose only references are
//! the five predefined entities, no CDATA, comments or carriage returns), read with a few byte
//! searches instead of the general XML event loop.
//!
//! It only ever accepts: a record it accepts is one the full reader ([`super::reader`]) would
//! accept, with the same values. Anything else, valid or not (an attribute, a character
//! reference, a comment, a CDATA section, a value out of its length bounds, an element out of
//! order), makes it stop before that record and hand the rest of the chunk to the full
//! reader, which reads it, reports its errors with their positions, or both. The same checks
//! are shared, not copied: the content model (`admit`, `missing_child`), the length bounds
//! ([`SimpleType::admits`]), decoding and character checks ([`encoding::decode_into`]).
//! `tests` below check it against the full reader on thousands of mutated records a run.
//! On the 1M-contact benchmark it took validation from 0.98 s to 0.5 s (docs/performance.md).

use memchr::{memchr, memchr3, memrchr};

use crate::extract::elements::{admit, missing_child};
use crate::extract::encoding::{self, Encoding};
use crate::extract::reader::{ExternalContact, RecordLayout, State};
use crate::extract::schema::{Content, ElementId, Group, Schema, SimpleType};
use crate::fields::Field;

/// One child of the record element: its tags and what its text may be.
struct Child {
    name: Vec<u8>,
    /// `/name>`: the end tag after its `<`.
    close: Vec<u8>,
    field: Option<Field>,
    text: SimpleType,
}

/// What the fast path needs to know of the schema, computed once a document.
pub struct PlainRecords<'s> {
    schema: &'s Schema,
    record: ElementId,
    /// `<contact>` and `</contact>`.
    open: Vec<u8>,
    close: Vec<u8>,
    group: &'s Group,
    children: Vec<Child>,
    root_group: &'s Group,
    /// The record's position in the root's content.
    record_position: usize,
}

/// What reading plain records from the start of a slice found.
pub struct PlainRun {
    /// Bytes read: everything up to the end of the last plain record.
    pub read: usize,
    /// One for each `<contact>` element read (all of them valid).
    pub contacts: Vec<ExternalContact>,
    /// Newlines in the bytes read, and the offset after the last one.
    pub newlines: u64,
    pub line_start: Option<usize>,
}

impl<'s> PlainRecords<'s> {
    /// The fast path for records of `layout` directly inside `root`, if its content model
    /// allows one (a root whose content is a sequence holding the record, records whose
    /// children all hold text).
    pub fn new(
        schema: &'s Schema,
        layout: &RecordLayout,
        root: ElementId,
    ) -> Option<PlainRecords<'s>> {
        let Content::Complex(root_group @ Group::Sequence(_)) = &schema.decl(root).content else {
            return None;
        };
        let record = schema.decl(layout.record);
        let record_position = schema.child_position(root, record.name.as_bytes())?;
        if root_group.children()[record_position] != layout.record {
            return None;
        }
        let Content::Complex(group) = &record.content else {
            return None;
        };
        let mut children = Vec::with_capacity(group.children().len());
        for &c in group.children() {
            let decl = schema.decl(c);
            let Content::Simple(text) = &decl.content else {
                return None;
            };
            children.push(Child {
                name: decl.name.clone().into_bytes(),
                close: format!("/{}>", decl.name).into_bytes(),
                field: layout.field_of[c],
                text: text.clone(),
            });
        }
        Some(PlainRecords {
            schema,
            record: layout.record,
            open: format!("<{}>", record.name).into_bytes(),
            close: format!("</{}>", record.name).into_bytes(),
            group,
            children,
            root_group,
            record_position,
        })
    }

    /// Reads plain records from the start of `bytes` (inside the root, between records, in
    /// `encoding`) until one is not plain or the bytes end; `root_state` is the root's
    /// content-model state, advanced for each record read. `line` is the line `bytes` start
    /// on; each contact gets the line of its start tag.
    pub fn read(
        &self,
        bytes: &[u8],
        encoding: Encoding,
        root_state: &mut (usize, u32),
        mut line: u64,
    ) -> PlainRun {
        let mut run = PlainRun {
            read: 0,
            contacts: Vec::new(),
            newlines: 0,
            line_start: None,
        };
        let first_line = line;
        let mut text = String::with_capacity(256);
        // Values are gathered here, then copied out at their exact size (no regrowth).
        let mut scratch = ExternalContact::empty(0);
        // The child that followed each child (and, last, the record's start) in the records
        // read so far: sources write their fields in one order, so it is the one to try first.
        let mut follows = vec![0; self.children.len() + 1];
        let mut root = State::Sequence {
            pos: root_state.0,
            count: root_state.1,
        };
        while let Some(len) = self.record(
            &bytes[run.read..],
            encoding,
            &mut root,
            &mut text,
            &mut scratch,
            &mut follows,
        ) {
            let mut contact = scratch.clone();
            let record = &bytes[run.read..run.read + len];
            // The start tag's line: the newlines before it (whitespace only) and, for the
            // next record, those inside this one.
            let lead = record.iter().position(|&b| b == b'<').unwrap_or(0);
            let before = memchr::memchr_iter(b'\n', &record[..lead]).count() as u64;
            contact.line = line + before;
            line += before + memchr::memchr_iter(b'\n', &record[lead..]).count() as u64;
            run.contacts.push(contact);
            run.read += len;
        }
        if let State::Sequence { pos, count } = root {
            *root_state = (pos, count);
        }
        run.newlines = line - first_line;
        run.line_start = memrchr(b'\n', &bytes[..run.read]).map(|i| i + 1);
        run
    }

    /// One plain, valid record at the start of `bytes` (after whitespace): its length; its
    /// values are put in `contact`. `root` is advanced only when the record is accepted.
    fn record(
        &self,
        bytes: &[u8],
        encoding: Encoding,
        root: &mut State,
        text: &mut String,
        contact: &mut ExternalContact,
        follows: &mut [usize],
    ) -> Option<usize> {
        let mut at = skip_space(bytes, 0);
        if !bytes[at..].starts_with(&self.open) {
            return None;
        }
        at += self.open.len();
        let mut state = State::start_of(self.group);
        contact.clear();
        let mut previous = self.children.len();
        loop {
            at = skip_space(bytes, at);
            let rest = &bytes[at..];
            if rest.first() != Some(&b'<') {
                return None;
            }
            // Only an end tag starts with `</`: compare with the record's only then.
            if rest.get(1) == Some(&b'/') {
                if !rest.starts_with(&self.close) {
                    return None;
                }
                at += self.close.len();
                break;
            }
            let (p, tag) = self.child_at(&rest[1..], follows[previous])?;
            follows[previous] = p;
            previous = p;
            admit(self.schema, self.group, &mut state, p).ok()?;
            let child = &self.children[p];
            let value_start = at + 1 + child.name.len() + tag.len();
            let after = if tag == EMPTY_TAG {
                text.clear();
                value_start
            } else {
                let value_end = value(bytes, value_start, encoding, text)?;
                if !bytes[value_end + 1..].starts_with(&child.close) {
                    return None;
                }
                value_end + 1 + child.close.len()
            };
            if !child.text.admits(text) {
                return None;
            }
            if let Some(field) = child.field {
                // Trimmed, and empty is NULL, as the full reader does.
                let value = crate::fields::trim_xml_space(text);
                if !value.is_empty() {
                    contact.push(field, value);
                }
            }
            at = after;
        }
        if missing_child(self.schema, self.group, &state).is_some() {
            return None;
        }
        let mut admitted = root.clone();
        admit(
            self.schema,
            self.root_group,
            &mut admitted,
            self.record_position,
        )
        .ok()?;
        *root = admitted;
        contact.sort_fields();
        Some(at)
    }

    /// The child whose start tag (`name>` or the empty element `name/>`) `rest` begins with,
    /// and the tag's end; child `expected` is tried first.
    fn child_at(&self, rest: &[u8], expected: usize) -> Option<(usize, &'static [u8])> {
        if let Some(after) = rest.strip_prefix(self.children[expected].name.as_slice())
            && let Some(tag) = [START_TAG, EMPTY_TAG]
                .into_iter()
                .find(|tag| after.starts_with(tag))
        {
            return Some((expected, tag));
        }
        let name_len = rest
            .iter()
            .position(|b| matches!(b, b'>' | b'/' | b' ' | b'\t' | b'\r' | b'\n'))?;
        let p = self.schema.child_position(self.record, &rest[..name_len])?;
        let after = &rest[name_len..];
        let tag = [START_TAG, EMPTY_TAG]
            .into_iter()
            .find(|tag| after.starts_with(tag))?;
        Some((p, tag))
    }
}

/// How a start tag without attributes ends: `<name>` or the empty element `<name/>`.
const START_TAG: &[u8] = b">";
const EMPTY_TAG: &[u8] = b"/>";

/// Decodes the value starting at `start` into `text`, resolving the five predefined entities;
/// returns the offset of the `<` that ends it. Character references, a `]` (which could
/// start `]]>`) and carriage returns (normalised by the full reader) are left to the full
/// reader, as is anything the encoding or XML does not allow.
fn value(bytes: &[u8], start: usize, encoding: Encoding, text: &mut String) -> Option<usize> {
    text.clear();
    let mut at = start;
    loop {
        let end = at + memchr3(b'<', b'&', b']', &bytes[at..])?;
        let piece = &bytes[at..end];
        if memchr(b'\r', piece).is_some() {
            return None;
        }
        encoding::decode_into(piece, encoding, text).ok()?;
        match bytes[end] {
            b'<' => return Some(end),
            b'&' => {
                let (reference, ch) = PREDEFINED
                    .iter()
                    .find(|(reference, _)| bytes[end..].starts_with(reference))?;
                text.push(*ch);
                at = end + reference.len();
            }
            _ => return None,
        }
    }
}

/// XML's predefined entities.
const PREDEFINED: [(&[u8], char); 5] = [
    (b"&amp;", '&'),
    (b"&lt;", '<'),
    (b"&gt;", '>'),
    (b"&apos;", '\''),
    (b"&quot;", '"'),
];

/// The offset of the first byte at or after `at` that is not XML white space.
fn skip_space(bytes: &[u8], mut at: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\r' | b'\n') = bytes.get(at) {
        at += 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::Contract;
    use crate::extract::position::LineTracker;
    use crate::extract::reader::{ContactReader, Resume};

    const HEAD: &[u8] = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<contacts>";

    /// Records of the shapes sources write: every field kind, empty elements, entities,
    /// multi-byte characters, values needing trimming, fields in any order.
    fn records() -> Vec<u8> {
        let mut body = Vec::new();
        let values = [
            "Anna",
            "  De Smet ",
            "R&amp;D",
            "Chloé Müller",
            "&lt;b&gt; &quot;x&quot; &apos;y&apos;",
            "+32 477 12 34 56",
            "a\tb",
            "",
            "€ 5",
        ];
        for i in 0..60usize {
            body.extend_from_slice(b"\n  <contact>");
            for (k, field) in ["e_mail", "first_name", "last_name", "department", "user_10"]
                .iter()
                .enumerate()
                .filter(|(k, _)| (i >> k) & 1 == 0 || *k == 0)
            {
                let value = if *field == "e_mail" {
                    format!("u{i}@example.com")
                } else {
                    values[(i + k) % values.len()].to_owned()
                };
                let sep = if i % 3 == 0 { "\n    " } else { "" };
                if value.is_empty() && i % 2 == 0 {
                    body.extend_from_slice(format!("{sep}<{field}/>").as_bytes());
                } else {
                    body.extend_from_slice(format!("{sep}<{field}>{value}</{field}>").as_bytes());
                }
            }
            body.extend_from_slice(b"\n  </contact>");
        }
        body
    }

    /// The full reader's contacts, verdict and root state for `body` read from `resume`.
    fn full_read(
        contract: &Contract,
        resume: &Resume,
        body: &[u8],
    ) -> (Vec<ExternalContact>, bool, Option<(usize, u32)>) {
        let mut reader = ContactReader::over(
            body,
            HEAD.len() as u64,
            false,
            Some(resume),
            LineTracker::starting_at(HEAD.len() as u64),
            "t.xml",
            &contract.schema,
            &contract.layout,
            1,
        );
        let mut contacts = Vec::new();
        let ok = loop {
            match reader.next_contact() {
                Ok(Some(c)) => contacts.push(c),
                Ok(None) => break reader.ended_cleanly(),
                Err(_) => break false,
            }
        };
        (contacts, ok, reader.resume_state().map(|r| r.root_state))
    }

    fn resume(contract: &Contract) -> Resume {
        let mut doc = HEAD.to_vec();
        doc.extend_from_slice(b"</contacts>");
        let mut head = ContactReader::new(&doc, "t.xml", &contract.schema, &contract.layout, 1);
        assert!(head.open_root());
        head.resume_state().expect("inside the root")
    }

    /// Checks the fast path against the full reader on `body`: what it accepts, the full
    /// reader accepts with the same contacts (values and lines) and root state. Returns the
    /// records the fast path read.
    fn agrees(contract: &Contract, resume: &Resume, body: &[u8]) -> u64 {
        let plain = PlainRecords::new(&contract.schema, &contract.layout, resume.root).unwrap();
        let mut root_state = resume.root_state;
        let run = plain.read(body, Encoding::Utf8, &mut root_state, 1);
        let (contacts, ok, full_state) = full_read(contract, resume, &body[..run.read]);
        assert!(
            ok,
            "the full reader refuses what the fast path read: {:?}",
            String::from_utf8_lossy(&body[..run.read])
        );
        assert_eq!(
            run.contacts,
            contacts,
            "in {:?}",
            String::from_utf8_lossy(body)
        );
        assert_eq!(Some(root_state), full_state);
        run.contacts.len() as u64
    }

    #[test]
    fn plain_records_are_read_as_the_full_reader_reads_them() {
        let contract = Contract::builtin();
        let resume = resume(&contract);
        let body = records();
        assert_eq!(
            agrees(&contract, &resume, &body),
            60,
            "every record is plain"
        );
        assert_eq!(agrees(&contract, &resume, &records()[..body.len() - 3]), 59);
    }

    #[test]
    fn the_fast_path_hands_over_what_it_does_not_read_plainly() {
        let contract = Contract::builtin();
        let resume = resume(&contract);
        let plain = PlainRecords::new(&contract.schema, &contract.layout, resume.root).unwrap();
        for record in [
            "<contact><e_mail>a&#64;b</e_mail></contact>",
            "<contact><e_mail>a]]>b</e_mail></contact>",
            "<contact><e_mail>a\r\nb</e_mail></contact>",
            "<contact><e_mail x=\"1\">a</e_mail></contact>",
            "<contact><e_mail><!-- c -->a</e_mail></contact>",
            "<contact><e_mail><![CDATA[a]]></e_mail></contact>",
            "<contact><e_mail>a</e_mail><e_mail>b</e_mail></contact>",
            "<contact><e_mail>a&nbsp;b</e_mail></contact>",
            "<contact ><e_mail>a</e_mail></contact>",
            "<contact><e_mail >a</e_mail></contact>",
            "<contact><unknown>a</unknown></contact>",
            "<contact>text<e_mail>a</e_mail></contact>",
            "<contact><e_mail>a\u{1}b</e_mail></contact>",
        ] {
            let mut root_state = resume.root_state;
            let run = plain.read(record.as_bytes(), Encoding::Utf8, &mut root_state, 1);
            assert_eq!((run.contacts.len(), run.read), (0, 0), "{record}");
            assert_eq!(root_state, resume.root_state);
        }
        // 255 characters (two bytes each) is the limit; 256 is not plain.
        for (chars, records) in [(255, 1), (256, 0)] {
            let record = format!("<contact><site>{}</site></contact>", "é".repeat(chars));
            let mut root_state = resume.root_state;
            let run = plain.read(record.as_bytes(), Encoding::Utf8, &mut root_state, 1);
            assert_eq!(run.contacts.len(), records, "{chars} characters");
        }
    }

    #[test]
    fn mutated_records_read_by_the_fast_path_are_those_the_full_reader_accepts() {
        let contract = Contract::builtin();
        let resume = resume(&contract);
        let body = records();
        let alphabet: &[&[u8]] = &[
            b"<",
            b">",
            b"/",
            b"&",
            b";",
            b"]",
            b"\r",
            b"\n",
            b" ",
            b"#",
            b"x",
            b"a",
            b"\xC3\xA9",
            b"\xC3",
            b"\xFF",
            b"\x00",
            b"&amp;",
            b"&#65;",
            b"<e_mail>",
            b"</e_mail>",
            b"<contact>",
            b"</contact>",
            b"<site/>",
            b"\xEF\xBF\xBE",
        ];
        let seed = std::env::var("UCM_MUTATION_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(7);
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut plain_read = 0;
        for _ in 0..3000 {
            let mut mutant = body.clone();
            for _ in 0..rng.usize(1..4) {
                let at = rng.usize(..mutant.len());
                let piece = alphabet[rng.usize(..alphabet.len())];
                match rng.u8(..3) {
                    0 => drop(mutant.splice(at..at, piece.iter().copied())),
                    1 => drop(mutant.remove(at)),
                    _ => {
                        let end = (at + piece.len()).min(mutant.len());
                        drop(mutant.splice(at..end, piece.iter().copied()));
                    }
                }
            }
            plain_read += agrees(&contract, &resume, &mutant);
        }
        assert!(
            plain_read > 3000 * 10,
            "the fast path read only {plain_read} records"
        );
    }
}
