//! A vCard source (`kind = "vcard"`): a file of cards (a phone's or Nextcloud's or iCloud's
//! export), versions 2.1, 3.0 and 4.0, read as a stream of lines and mapped onto the 22
//! fields by the pipeline's [`Mapping`] (`vcard` preset: README, "Sources"), each value held
//! to the schema's rule for its field.
//!
//! - **Lines**: folded lines (a line starting with a space or tab continues the one before,
//!   RFC 6350 §3.2) are joined; so are 2.1's quoted-printable soft breaks (`=` at a line's
//!   end). PHOTO, LOGO, SOUND and KEY values are skipped as they are read (memory does not
//!   grow with a photo).
//! - **Values**: 2.1's `ENCODING=QUOTED-PRINTABLE` and `CHARSET=...`, 3.0/4.0's escapes
//!   (`\n`, `\,`, `\;`, `\\`), structured values (N, ORG, ADR) by component, 4.0's `tel:` URIs
//!   read as the number. A property's group (`item1.TEL`, Apple's and Google's) is ignored.
//! - **Types**: `TEL;TYPE=CELL,VOICE`, `TEL;TYPE="cell,voice"` and 2.1's `TEL;CELL;VOICE`
//!   all give the types CELL and VOICE, in any case.
//! - **Errors** are `file:line:1` (BEGIN without END, a continuation with nothing to
//!   continue, bytes that are not UTF-8 outside a CHARSET), and, as for XML, a source with
//!   an error lands nothing. A card with neither FN nor N is read with empty names (phones
//!   export number-only cards).

use std::path::Path;

use super::document::{Document, Passed, ReadError, Summary};
use super::field_rules::checked;
use super::lines::PhysicalLines;
use super::located::LocatedErrors;
use super::mapping::Mapping;
use super::reader::ExternalContact;
use super::schema::SimpleType;
use crate::fields::{FIELD_COUNT, FIELD_NAMES, FieldValues};

/// What a vCard read checks and maps each value by.
pub struct VcardRules<'r> {
    pub mapping: &'r Mapping,
    pub field_types: &'r [Option<SimpleType>; FIELD_COUNT],
}

/// Properties whose values are binary blobs, skipped as they are read.
const BLOBS: [&str; 4] = ["PHOTO", "LOGO", "SOUND", "KEY"];

/// The longest property read (unfolded), in bytes: a contact's values are at most 255
/// characters, so a longer one is not a contact's (its blob properties are skipped unread).
const MAX_PROPERTY_BYTES: usize = 1 << 20;

/// The most properties a card may have.
const MAX_PROPERTIES: usize = 10_000;

/// One property of a card: its name (upper case, without group), its parameters (names
/// upper case; TYPE values upper case, one entry each), its value decoded to text, and the
/// line it started on.
#[derive(Debug, Default)]
struct Property {
    name: String,
    types: Vec<String>,
    value: String,
    line: u64,
}

/// Reads the vCard file at `path`, calling `sink` with each valid card in file order.
pub fn read<E>(
    path: &Path,
    rules: &VcardRules<'_>,
    max_errors: usize,
    progress: &(dyn Fn(u64) + Sync),
    mut sink: impl FnMut(ExternalContact) -> Result<(), E>,
) -> Result<Summary, ReadError<E>> {
    let doc = Document::open(path).map_err(ReadError::Open)?;
    let bytes = doc.bytes();
    let body = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let mut errors = LocatedErrors::new(path.display().to_string(), max_errors);
    // The mapping's sources, read once (the config was checked: none fails).
    let sources: Vec<Vec<VcardSource>> = (rules.mapping.names.iter())
        .map(|names| {
            names
                .iter()
                .filter_map(|n| VcardSource::parse(n).ok())
                .collect()
        })
        .collect();
    let mut passed = Passed::new(&doc);
    let mut card: Option<(u64, Vec<Property>)> = None;
    let mut contacts = 0u64;
    let mut lines = LogicalLines::new(body);
    while let Some(logical) = lines.next() {
        let parsed = logical.and_then(|(line, text)| {
            if text.iter().all(u8::is_ascii_whitespace) {
                return Ok(None);
            }
            parse_property(&text, line).map(Some).map_err(|m| (line, m))
        });
        let property = match parsed {
            Ok(Some(property)) => property,
            Ok(None) => continue,
            Err((line, message)) => {
                errors.at(line, 1, message);
                if errors.full() {
                    break;
                }
                continue;
            }
        };
        let line = property.line;
        match (property.name.as_str(), &mut card) {
            ("BEGIN", None) if property.value.eq_ignore_ascii_case("VCARD") => {
                card = Some((line, Vec::new()));
            }
            ("BEGIN", Some((begun, _))) => {
                let message =
                    format!("BEGIN:VCARD at line {begun} has no END:VCARD before this BEGIN");
                errors.at(line, 1, message);
                break;
            }
            ("END", Some(_)) if property.value.eq_ignore_ascii_case("VCARD") => {
                let (begun, properties) = card.take().expect("in a card");
                match values(&properties, &sources, rules) {
                    Ok(values) => {
                        contacts += 1;
                        let contact = ExternalContact::from_values(begun, values);
                        sink(contact).map_err(ReadError::Sink)?;
                        if contacts.is_multiple_of(1024) {
                            progress(lines.offset() as u64);
                            passed.reach(lines.offset() as u64);
                        }
                    }
                    Err((at, message)) => errors.at(at, 1, message),
                }
            }
            (_, Some((begun, properties))) => {
                if properties.len() >= MAX_PROPERTIES {
                    let message = format!(
                        "the card that begins at line {begun} has more than {MAX_PROPERTIES} properties"
                    );
                    errors.at(line, 1, message);
                    break;
                }
                properties.push(property);
            }
            (name, None) => {
                let message = format!("{name} outside BEGIN:VCARD ... END:VCARD");
                errors.at(line, 1, message);
            }
        }
        if errors.full() {
            break;
        }
    }
    if let Some((begun, _)) = card
        && !errors.full()
    {
        let message = "BEGIN:VCARD has no END:VCARD (the file ends inside the card)";
        errors.at(begun, 1, message.into());
    }
    if !errors.is_empty() {
        return Err(ReadError::Invalid(errors.into_invalid()));
    }
    progress(bytes.len() as u64);
    Ok(passed.summary(contacts))
}

/// The card's values by the mapping, each checked; Err at the first that breaks a rule.
fn values(
    properties: &[Property],
    sources: &[Vec<VcardSource>],
    rules: &VcardRules<'_>,
) -> Result<FieldValues, (u64, String)> {
    let mut values: FieldValues = Default::default();
    // FN stands in for the names only on a card without them (N).
    let named = properties
        .iter()
        .any(|p| p.name == "N" && p.value.chars().any(|c| c != ';' && !c.is_whitespace()));
    for (i, sources) in sources.iter().enumerate() {
        let found = sources.iter().find_map(|spec| {
            if spec.property == "FN" && named {
                return None;
            }
            properties
                .iter()
                .filter(|p| spec.takes(&p.name, &p.types))
                .find_map(|p| spec.component(&p.value).map(|v| (p.line, v)))
        });
        let Some((line, raw)) = found else { continue };
        let value = match checked(i, &raw, rules.field_types) {
            Ok(Some(value)) => value,
            Ok(None) => continue,
            Err(why) => return Err((line, format!("{}: {why}", FIELD_NAMES[i]))),
        };
        values[i] = Some(value.to_owned());
    }
    Ok(values)
}

/// The file's logical lines: unfolded, with the line each starts on; blobs left out.
struct LogicalLines<'b> {
    lines: PhysicalLines<'b>,
}

impl<'b> LogicalLines<'b> {
    fn new(body: &'b [u8]) -> LogicalLines<'b> {
        LogicalLines {
            lines: PhysicalLines::new(body),
        }
    }

    fn offset(&self) -> usize {
        self.lines.offset()
    }

    fn physical(&mut self) -> Option<&'b [u8]> {
        self.lines.next_line()
    }

    fn continues(&self) -> bool {
        matches!(self.lines.next_byte(), Some(b' ' | b'\t'))
    }
}

impl Iterator for LogicalLines<'_> {
    type Item = Result<(u64, Vec<u8>), (u64, String)>;

    fn next(&mut self) -> Option<Self::Item> {
        let first = self.physical()?;
        let line = self.lines.line();
        if matches!(first.first(), Some(b' ' | b'\t')) && !first.iter().all(u8::is_ascii_whitespace)
        {
            return Some(Err((
                line,
                "a folded line (starting with a space) continues nothing".into(),
            )));
        }
        // The property's name and parameters: what comes before its value.
        let head = &first[..value_start(first).unwrap_or(first.len())];
        let name_end = head.iter().position(|&b| b == b';').unwrap_or(head.len());
        let name = &head[..name_end];
        let name = name.rsplit(|&b| b == b'.').next().unwrap_or(name);
        let blob = BLOBS
            .iter()
            .any(|b| name.eq_ignore_ascii_case(b.as_bytes()));
        let quoted_printable = head
            .windows(16)
            .any(|w| w.eq_ignore_ascii_case(b"QUOTED-PRINTABLE"));
        let too_long = || {
            let message = "a property longer than 1 MiB: not a contact's value";
            Some(Err((line, message.to_owned())))
        };
        if !blob && first.len() > MAX_PROPERTY_BYTES {
            return too_long();
        }
        let mut text = if blob { Vec::new() } else { first.to_vec() };
        loop {
            if text.len() > MAX_PROPERTY_BYTES {
                return too_long();
            }
            if self.continues() {
                let next = self.physical().expect("a continuation line");
                if !blob {
                    text.extend_from_slice(&next[1..]);
                }
            } else if quoted_printable && text.ends_with(b"=") && self.lines.next_byte().is_some() {
                // 2.1: a soft line break inside a quoted-printable value.
                text.pop();
                let next = self.physical().expect("a line follows");
                text.extend_from_slice(next);
            } else {
                break;
            }
        }
        if blob {
            // Only the property's name is kept: its value is never read.
            text = b"X-UCM-SKIPPED:".to_vec();
        }
        Some(Ok((line, text)))
    }
}

/// One logical line as a property.
fn parse_property(text: &[u8], line: u64) -> Result<Property, String> {
    let colon = value_start(text).ok_or("a property line needs NAME:value")?;
    let (head, raw_value) = (&text[..colon], &text[colon + 1..]);
    let head = std::str::from_utf8(head)
        .map_err(|_| "bytes that are not UTF-8 in a property's name".to_owned())?;
    let mut parts = split_unquoted(head, ';').into_iter();
    let full_name = parts.next().unwrap_or_default();
    let name = full_name
        .rsplit('.')
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    let mut types = Vec::new();
    let mut quoted_printable = false;
    let mut charset: Option<String> = None;
    for param in parts {
        let (key, value) = match param.split_once('=') {
            Some((k, v)) => (
                k.trim().to_ascii_uppercase(),
                v.trim().trim_matches('"').to_owned(),
            ),
            // 2.1: a bare parameter is a type (TEL;CELL) or an encoding.
            None => {
                let bare = param.trim().to_ascii_uppercase();
                if bare == "QUOTED-PRINTABLE" {
                    ("ENCODING".into(), bare)
                } else {
                    ("TYPE".into(), bare)
                }
            }
        };
        match key.as_str() {
            "TYPE" => types.extend(value.split(',').map(|t| t.trim().to_ascii_uppercase())),
            "ENCODING" => quoted_printable = value.eq_ignore_ascii_case("QUOTED-PRINTABLE"),
            "CHARSET" => charset = Some(value),
            _ => {}
        }
    }
    let bytes = if quoted_printable {
        decode_quoted_printable(raw_value)
    } else {
        raw_value.to_vec()
    };
    let value = match charset {
        Some(label) => {
            let encoding = encoding_rs::Encoding::for_label(label.as_bytes())
                .ok_or_else(|| format!("CHARSET={label} is not an encoding ucm knows"))?;
            encoding.decode_without_bom_handling(&bytes).0.into_owned()
        }
        None => String::from_utf8(bytes).map_err(|_| {
            "bytes that are not UTF-8 (a vCard 2.1 value in another encoding needs CHARSET=...)"
                .to_owned()
        })?,
    };
    Ok(Property {
        name,
        types,
        value,
        line,
    })
}

/// Where a property's value starts: after the first `:` outside a quoted parameter value.
fn value_start(text: &[u8]) -> Option<usize> {
    let mut quoted = false;
    for (i, &b) in text.iter().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b':' if !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

fn split_unquoted(text: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut quoted = false;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if c == separator && !quoted => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn decode_quoted_printable(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'='
            && let Some(hex) = raw.get(i + 1..i + 3)
            && let Ok(text) = std::str::from_utf8(hex)
            && let Ok(byte) = u8::from_str_radix(text, 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(raw[i]);
        i += 1;
    }
    out
}

/// The components of a structured value (N, ORG, ADR), split at unescaped `;`, each
/// unescaped.
pub(super) fn components(value: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('n' | 'N') => parts.last_mut().expect("one part").push('\n'),
                Some(other) => parts.last_mut().expect("one part").push(other),
                None => {}
            },
            ';' => parts.push(String::new()),
            c => parts.last_mut().expect("one part").push(c),
        }
    }
    parts
}

/// Where a field comes from in a card, as a mapping names it: a property (`EMAIL`, `TITLE`),
/// a TEL of a type (`TEL;TYPE=CELL`: its TYPE list holds CELL, any case), a component of a
/// structured value (`N.family`, `N.given`, `ORG.1`, `ADR.locality`, or its number from 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VcardSource {
    property: String,
    types: Vec<String>,
    /// From 0.
    component: Option<usize>,
}

/// The kinds of number a TEL is only read as when a source asks for that kind.
const SPECIAL_NUMBERS: [&str; 3] = ["FAX", "CELL", "PAGER"];

impl VcardSource {
    /// The source `spec` names; Err says what a spec may be.
    pub fn parse(spec: &str) -> Result<VcardSource, String> {
        let invalid = || {
            format!(
                "{spec:?} is not a vCard property: write e.g. \"EMAIL\", \"TEL;TYPE=CELL\", \
                 \"N.family\", \"N.given\", \"ORG.1\", \"ADR.locality\""
            )
        };
        let (head, component) = match spec.split_once('.') {
            Some((head, component)) => (head, Some(component)),
            None => (spec, None),
        };
        let mut parts = head.split(';');
        let property = parts.next().unwrap_or_default().trim().to_ascii_uppercase();
        if property.is_empty()
            || !property
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(invalid());
        }
        let mut types = Vec::new();
        for part in parts {
            let (key, value) = part.split_once('=').ok_or_else(invalid)?;
            if !key.trim().eq_ignore_ascii_case("TYPE") {
                return Err(invalid());
            }
            types.extend(value.split(',').map(|t| t.trim().to_ascii_uppercase()));
        }
        let component = match component {
            None => None,
            Some(c) => Some(component_index(&property, c).ok_or_else(invalid)?),
        };
        Ok(VcardSource {
            property,
            types,
            component,
        })
    }

    /// Whether a property named `name` with `types` is one this source reads.
    fn takes(&self, name: &str, types: &[String]) -> bool {
        if name != self.property || !self.types.iter().all(|t| types.contains(t)) {
            return false;
        }
        if name == "TEL" {
            // A fax, mobile or pager number is only taken by a source asking for one (a work
            // fax is no work number); a source asking for no type takes untyped numbers only.
            let has = |kind: &str| types.iter().any(|t| t == kind);
            let wants = |kind: &str| self.types.iter().any(|t| t == kind);
            if SPECIAL_NUMBERS.iter().any(|k| has(k) && !wants(k)) {
                return false;
            }
            if self.types.is_empty() && (has("HOME") || has("WORK")) {
                return false;
            }
        }
        true
    }

    /// The text this source reads from a property's `value`; None when empty.
    fn component(&self, value: &str) -> Option<String> {
        let text = match self.component {
            Some(i) => components(value).into_iter().nth(i)?,
            None if matches!(self.property.as_str(), "N" | "ORG" | "ADR") => {
                components(value).into_iter().next()?
            }
            None => components(&value.replace(';', "\\;")).concat(),
        };
        let text = match self.property.as_str() {
            "TEL" => text.strip_prefix("tel:").map(str::to_owned).unwrap_or(text),
            "EMAIL" => text
                .strip_prefix("mailto:")
                .map(str::to_owned)
                .unwrap_or(text),
            _ => text,
        };
        (!text.trim().is_empty()).then_some(text)
    }
}

/// The index of a structured value's component named `name` (or numbered from 1).
fn component_index(property: &str, name: &str) -> Option<usize> {
    if let Ok(n) = name.parse::<usize>() {
        return n.checked_sub(1);
    }
    let names: &[&str] = match property {
        "N" => &["family", "given", "additional", "prefix", "suffix"],
        "ADR" => &[
            "pobox", "extended", "street", "locality", "region", "code", "country",
        ],
        _ => &[],
    };
    names.iter().position(|n| n.eq_ignore_ascii_case(name))
}

/// What each field reads in a vCard source (the mapping's properties), and the properties of
/// the first `count` cards of the file at `path` that no field takes: for `ucm fetch
/// --preview`.
pub fn card_sources(
    path: &Path,
    mapping: &Mapping,
    count: usize,
) -> ([Option<String>; FIELD_COUNT], Vec<String>) {
    let from = std::array::from_fn(|i| {
        let names = &mapping.names[i];
        (!names.is_empty()).then(|| names.join(" or "))
    });
    let sources: Vec<VcardSource> = (mapping.names.iter().flatten())
        .filter_map(|n| VcardSource::parse(n).ok())
        .collect();
    let mut unmapped: Vec<String> = Vec::new();
    let Ok(doc) = Document::open(path) else {
        return (from, unmapped);
    };
    let mut cards = 0;
    for logical in LogicalLines::new(doc.bytes()) {
        let Ok((line, text)) = logical else { break };
        let Ok(property) = parse_property(&text, line) else {
            continue;
        };
        match property.name.as_str() {
            "END" => {
                cards += 1;
                if cards >= count {
                    break;
                }
            }
            "BEGIN" | "VERSION" | "X-UCM-SKIPPED" => {}
            name => {
                let taken = sources.iter().any(|s| s.takes(name, &property.types));
                let shown = match property.types.is_empty() {
                    true => name.to_owned(),
                    false => format!("{name};TYPE={}", property.types.join(",")),
                };
                if !taken && !unmapped.contains(&shown) {
                    unmapped.push(shown);
                }
            }
        }
    }
    (from, unmapped)
}

/// Checks every property a vCard mapping names.
pub fn check_mapping(mapping: &Mapping) -> Result<(), String> {
    for (i, sources) in mapping.names.iter().enumerate() {
        for spec in sources {
            VcardSource::parse(spec)
                .map_err(|e| format!("[source.mapping] {}: {e}", FIELD_NAMES[i]))?;
        }
    }
    Ok(())
}
