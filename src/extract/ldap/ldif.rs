//! LDIF (RFC 2849), the staged form of an LDAP source: `super::search` writes each entry it
//! reads, and [`read`] maps the file's entries onto the 22 fields by the pipeline's
//! [`Mapping`] (`inetorgperson` or `active-directory` preset: README, "Sources"), each value
//! held to the schema's rule for its field. `ucm import` of an `.ldif` file (an
//! `ldapsearch -LLL` output) reads it the same way.
//!
//! - **Values**: `attr: text` or `attr:: base64`; folded lines (a line starting with one
//!   space continues the one before) are joined; `#` comments are skipped. Values that are
//!   not UTF-8, and attributes with the `binary` option, are binary (jpegPhoto, objectGUID):
//!   never read.
//! - **Multi-valued attributes**: a field takes the first value in the entry's order.
//! - **Errors** name the entry's DN and the attribute (`entry uid=ann,ou=people,... attribute
//!   mail: ...`), at the file's line; as for XML, a source with an error lands nothing.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::extract::document::{Document, Passed, ReadError, Summary};
use crate::extract::field_rules::checked;
use crate::extract::lines::PhysicalLines;
use crate::extract::located::LocatedErrors;
use crate::extract::mapping::Mapping;
use crate::extract::reader::ExternalContact;
use crate::extract::schema::SimpleType;
use crate::fields::{FIELD_COUNT, FIELD_NAMES, FieldValues};

/// An entry's attributes with their values, in the order the server sent them.
pub type Attributes = Vec<(String, Vec<String>)>;

/// Writes entries as LDIF text, reusing one buffer.
pub struct LdifWriter {
    text: Vec<u8>,
}

impl Default for LdifWriter {
    fn default() -> Self {
        LdifWriter::new()
    }
}

impl LdifWriter {
    pub fn new() -> LdifWriter {
        LdifWriter { text: Vec::new() }
    }

    /// The file's first line.
    pub fn header(&self) -> &'static [u8] {
        b"version: 1\n\n"
    }

    /// One entry and the blank line after it.
    pub fn entry(&mut self, dn: &str, attributes: &Attributes) -> &[u8] {
        self.text.clear();
        line(&mut self.text, "dn", dn);
        for (name, values) in attributes {
            if is_binary(name) {
                continue;
            }
            for value in values {
                line(&mut self.text, name, value);
            }
        }
        self.text.push(b'\n');
        &self.text
    }
}

/// Attributes whose values are binary even when their bytes happen to be UTF-8.
const BINARY: [&str; 8] = [
    "jpegphoto",
    "thumbnailphoto",
    "objectguid",
    "objectsid",
    "usercertificate",
    "photo",
    "audio",
    "msexchmailboxguid",
];

fn is_binary(name: &str) -> bool {
    let mut parts = name.split(';');
    let base = parts.next().unwrap_or_default();
    BINARY.iter().any(|b| base.eq_ignore_ascii_case(b))
        || parts.any(|option| option.eq_ignore_ascii_case("binary"))
}

/// `name: value`, or `name:: base64` when the value is not a SAFE-STRING (RFC 2849).
fn line(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    let bytes = value.as_bytes();
    let safe = !matches!(bytes.first(), Some(b' ' | b':' | b'<'))
        && !bytes.ends_with(b" ")
        && bytes
            .iter()
            .all(|&b| (1..0x80).contains(&b) && b != b'\n' && b != b'\r');
    if safe {
        out.extend_from_slice(b": ");
        out.extend_from_slice(bytes);
    } else {
        out.extend_from_slice(b":: ");
        out.extend_from_slice(BASE64.encode(bytes).as_bytes());
    }
    out.push(b'\n');
}

/// What an LDIF read checks and maps each value by.
pub struct LdifRules<'r> {
    pub mapping: &'r Mapping,
    pub field_types: &'r [Option<SimpleType>; FIELD_COUNT],
}

/// One entry being read: its DN, the line it starts on, its attributes (name as written,
/// value, line).
#[derive(Default)]
struct Entry {
    dn: String,
    line: u64,
    values: Vec<(String, String, u64)>,
}

/// Reads the LDIF file at `path`, calling `sink` with each valid entry in file order.
pub fn read<E>(
    path: &Path,
    rules: &LdifRules<'_>,
    max_errors: usize,
    progress: &(dyn Fn(u64) + Sync),
    mut sink: impl FnMut(ExternalContact) -> Result<(), E>,
) -> Result<Summary, ReadError<E>> {
    let doc = Document::open(path).map_err(ReadError::Open)?;
    let bytes = doc.bytes();
    let mut errors = LocatedErrors::new(path.display().to_string(), max_errors);
    let mut passed = Passed::new(&doc);
    let mut lines = Unfolded::new(bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes));
    let mut entry: Option<Entry> = None;
    let mut contacts = 0u64;
    loop {
        let next = lines.next();
        let ends_entry = matches!(next, None | Some((_, None)));
        if ends_entry && let Some(done) = entry.take() {
            match values(&done, rules) {
                Ok(values) => {
                    contacts += 1;
                    sink(ExternalContact::from_values(done.line, values))
                        .map_err(ReadError::Sink)?;
                    if contacts.is_multiple_of(1024) {
                        progress(lines.offset() as u64);
                        passed.reach(lines.offset() as u64);
                    }
                }
                Err((line, message)) => errors.at(line, 1, message),
            }
        }
        let Some((line, Some(text))) = next else {
            if next.is_none() || errors.full() {
                break;
            }
            continue;
        };
        if let Err(message) = take_line(&mut entry, line, &text) {
            errors.at(line, 1, message);
        }
        if errors.full() {
            break;
        }
    }
    if !errors.is_empty() {
        return Err(ReadError::Invalid(errors.into_invalid()));
    }
    progress(bytes.len() as u64);
    Ok(passed.summary(contacts))
}

/// One logical line of an entry (or the `version:` line before the first).
fn take_line(entry: &mut Option<Entry>, line: u64, text: &[u8]) -> Result<(), String> {
    let (name, value) = attribute(text)?;
    match entry {
        None if name.eq_ignore_ascii_case("version") => Ok(()),
        None if name.eq_ignore_ascii_case("dn") => {
            let dn = value.ok_or("a DN that is not UTF-8")?;
            *entry = Some(Entry {
                dn,
                line,
                values: Vec::new(),
            });
            Ok(())
        }
        None => Err(format!("{name}: an entry starts with its dn: line")),
        Some(current) if name.eq_ignore_ascii_case("changetype") => Err(format!(
            "entry {}: a change record (changetype); ucm reads entries (ldapsearch's output)",
            current.dn
        )),
        Some(current) => {
            if let Some(value) = value
                && !is_binary(&name)
            {
                current.values.push((name, value, line));
            }
            Ok(())
        }
    }
}

/// `name: value`, `name:: base64` or `name:< URL` as the attribute's name and its value
/// (None: binary, not UTF-8).
fn attribute(text: &[u8]) -> Result<(String, Option<String>), String> {
    let colon = memchr::memchr(b':', text).ok_or("a line needs name: value")?;
    let name = std::str::from_utf8(&text[..colon])
        .map_err(|_| "an attribute name that is not UTF-8")?
        .trim()
        .to_owned();
    let rest = &text[colon + 1..];
    let value = match rest.first() {
        Some(b':') => {
            let encoded: Vec<u8> = rest[1..]
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            let decoded = BASE64
                .decode(&encoded)
                .map_err(|_| format!("{name}: the value after :: is not base64"))?;
            String::from_utf8(decoded).ok()
        }
        Some(b'<') => return Err(format!("{name}: values by URL (:<) are not read")),
        _ => {
            let value = rest.strip_prefix(b" ").unwrap_or(rest);
            let value = value
                .iter()
                .position(|&b| b != b' ')
                .map_or(&value[..0], |i| &value[i..]);
            Some(
                std::str::from_utf8(value)
                    .map_err(|_| {
                        format!("{name}: bytes that are not UTF-8 (write them as name:: base64)")
                    })?
                    .to_owned(),
            )
        }
    };
    Ok((name, value))
}

/// The entry's values by the mapping (each field: its first attribute present, that
/// attribute's first value), each checked; Err at the first that breaks a rule.
fn values(entry: &Entry, rules: &LdifRules<'_>) -> Result<FieldValues, (u64, String)> {
    let mut values: FieldValues = Default::default();
    for (i, names) in rules.mapping.names.iter().enumerate() {
        let found = names.iter().find_map(|wanted| {
            entry
                .values
                .iter()
                .find(|(name, value, _)| same_attribute(name, wanted) && !value.trim().is_empty())
        });
        let Some((name, raw, line)) = found else {
            continue;
        };
        match checked(i, raw, rules.field_types) {
            Ok(Some(value)) => values[i] = Some(value.to_owned()),
            Ok(None) => {}
            Err(why) => {
                let message = format!(
                    "entry {}, attribute {name} ({}): {why}",
                    entry.dn, FIELD_NAMES[i]
                );
                return Err((*line, message));
            }
        }
    }
    Ok(values)
}

/// Where each field is read from (its attributes), and the attributes of the first `count`
/// entries of the LDIF file at `path` that no field reads: for `ucm fetch --preview`.
pub fn entry_sources(
    path: &Path,
    mapping: &Mapping,
    count: usize,
) -> ([Option<String>; FIELD_COUNT], Vec<String>) {
    let from = std::array::from_fn(|i| {
        let names = &mapping.names[i];
        (!names.is_empty()).then(|| format!("attribute {}", names.join(" or ")))
    });
    let mut unmapped: Vec<String> = Vec::new();
    let Ok(doc) = Document::open(path) else {
        return (from, unmapped);
    };
    let (mut entries, mut in_entry) = (0, false);
    for (_, text) in Unfolded::new(doc.bytes()) {
        let Some(text) = text else {
            entries += usize::from(in_entry);
            in_entry = false;
            if entries >= count {
                break;
            }
            continue;
        };
        let Ok((name, _)) = attribute(&text) else {
            continue;
        };
        in_entry |= name.eq_ignore_ascii_case("dn");
        let taken = mapping
            .names
            .iter()
            .flatten()
            .any(|n| same_attribute(&name, n));
        let structural = ["dn", "version", "objectclass"]
            .iter()
            .any(|n| name.eq_ignore_ascii_case(n));
        if !taken && !structural && !is_binary(&name) && !unmapped.contains(&name) {
            unmapped.push(name);
        }
    }
    (from, unmapped)
}

/// Whether attribute `name` as written (maybe with options: `cn;lang-en`) is `wanted`.
fn same_attribute(name: &str, wanted: &str) -> bool {
    name.eq_ignore_ascii_case(wanted)
        || name
            .split_once(';')
            .is_some_and(|(base, _)| base.eq_ignore_ascii_case(wanted) && !wanted.contains(';'))
}

/// The file's logical lines, unfolded, with the line each starts on; None for a blank line
/// (an entry's end); comments left out.
struct Unfolded<'b> {
    lines: PhysicalLines<'b>,
}

impl<'b> Unfolded<'b> {
    fn new(bytes: &'b [u8]) -> Unfolded<'b> {
        Unfolded {
            lines: PhysicalLines::new(bytes),
        }
    }

    fn offset(&self) -> usize {
        self.lines.offset()
    }
}

impl Iterator for Unfolded<'_> {
    type Item = (u64, Option<Vec<u8>>);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let first = self.lines.next_line()?;
            let line = self.lines.line();
            if first.is_empty() {
                return Some((line, None));
            }
            let mut text = first.to_vec();
            while self.lines.next_byte() == Some(b' ') {
                let more = self.lines.next_line().expect("a continuation line");
                text.extend_from_slice(&more[1..]);
            }
            if text.first() != Some(&b'#') {
                return Some((line, Some(text)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_that_are_not_safe_strings_are_written_in_base64() {
        let mut writer = LdifWriter::new();
        let attributes = vec![
            ("sn".to_owned(), vec!["Ærø".to_owned()]),
            (
                "cn".to_owned(),
                vec![" lead".to_owned(), "plain".to_owned()],
            ),
            ("jpegPhoto".to_owned(), vec!["x".to_owned()]),
        ];
        let text = String::from_utf8(writer.entry("uid=a,dc=x", &attributes).to_vec()).unwrap();
        assert_eq!(
            text,
            "dn: uid=a,dc=x\nsn:: w4Zyw7g=\ncn:: IGxlYWQ=\ncn: plain\n\n"
        );
    }

    #[test]
    fn folded_lines_base64_and_comments_are_read() {
        let (name, value) = attribute(b"sn:: w4Zyw7g=").unwrap();
        assert_eq!((name.as_str(), value.as_deref()), ("sn", Some("Ærø")));
        let (_, binary) = attribute(b"jpegPhoto:: /9j/4AAQ").unwrap();
        assert_eq!(binary, None);
        let mut lines = Unfolded::new(b"# c\ndn: uid=a,\n dc=x\n\ncn: b\n");
        assert_eq!(lines.next(), Some((2, Some(b"dn: uid=a,dc=x".to_vec()))));
        assert_eq!(lines.next(), Some((4, None)));
        assert_eq!(lines.next(), Some((5, Some(b"cn: b".to_vec()))));
        assert!(attribute(b"photo:< file:///etc/passwd").is_err());
    }

    #[test]
    fn attribute_options_are_the_same_attribute_unless_binary() {
        assert!(same_attribute("cn;lang-en", "cn"));
        assert!(same_attribute("TelephoneNumber", "telephoneNumber"));
        assert!(!same_attribute("cn", "sn"));
        assert!(is_binary("userCertificate;binary") && is_binary("objectGUID"));
    }
}
