//! A CSV source (`kind = "csv"`): a file read as a stream of rows, mapped onto the 22 fields
//! by its header and the pipeline's [`Mapping`], each value held to the schema's rules for
//! its field (its length, the characters XML 1.0 allows), so a CSV lands exactly what the
//! same contacts as XML would.
//!
//! - **Encoding**: a UTF-8 or UTF-16 byte-order mark decides; else UTF-8, or what
//!   `[source.csv] encoding` names (windows-1252, iso-8859-1, utf-16le/be). Bytes that are
//!   not UTF-8 are an error at their line and column (transcoding never replaces them
//!   silently); other encodings are decoded as a stream (`encoding_rs_io`).
//! - **Delimiter**: `,`, `;`, tab or `|`, the one the header uses most outside quotes, or
//!   what `[source.csv] delimiter` says.
//! - **Rows**: quoted fields with newlines and doubled quotes (the `csv` crate); a row with
//!   more fields than the header is an error at its line; one with fewer reads the missing
//!   ones as empty (Outlook writes such rows); a quote that never closes is an error at the
//!   line where its field starts. Blank lines are skipped.
//! - **Errors** are `file:line:column` (the column is the CSV column, from 1), and, as for
//!   XML, a source with an error lands nothing.

use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use super::document::{Document, Passed, ReadError, Summary};
use super::field_rules::checked;
use super::located::LocatedErrors;
use super::mapping::{Mapping, phone_field};
use super::reader::ExternalContact;
use super::schema::SimpleType;
use crate::fields::{FIELD_COUNT, FIELD_NAMES, Field};

/// `[source.csv]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CsvConfig {
    /// `"auto"` (the one of `,` `;` tab `|` the header uses most), or one of them.
    #[serde(default = "auto")]
    pub delimiter: String,
    /// `"auto"` (a UTF-8 or UTF-16 byte-order mark, else UTF-8), or `"utf-8"`,
    /// `"windows-1252"`, `"iso-8859-1"`, `"utf-16le"`, `"utf-16be"`.
    #[serde(default = "auto")]
    pub encoding: String,
}

use serde::Deserialize;

fn auto() -> String {
    "auto".into()
}

impl Default for CsvConfig {
    fn default() -> CsvConfig {
        CsvConfig {
            delimiter: auto(),
            encoding: auto(),
        }
    }
}

/// `[source.csv]`, checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct CsvOptions {
    /// None: found from the header.
    pub delimiter: Option<u8>,
    /// None: from the byte-order mark, else UTF-8.
    pub encoding: Option<&'static encoding_rs::Encoding>,
}

impl CsvConfig {
    pub fn options(&self) -> Result<CsvOptions, String> {
        let delimiter = match self.delimiter.as_str() {
            "auto" => None,
            "," => Some(b','),
            ";" => Some(b';'),
            "\t" | "tab" => Some(b'\t'),
            "|" => Some(b'|'),
            other => {
                return Err(format!(
                    "[source.csv] delimiter = {other:?}: use \"auto\", \",\", \";\", \"\\t\" or \"|\""
                ));
            }
        };
        let encoding = match self.encoding.to_ascii_lowercase().as_str() {
            "auto" => None,
            "utf-8" | "utf8" => Some(encoding_rs::UTF_8),
            // WHATWG (and encoding_rs) read ISO-8859-1 as windows-1252, its superset.
            "windows-1252" | "cp1252" | "iso-8859-1" | "latin1" => Some(encoding_rs::WINDOWS_1252),
            "utf-16le" => Some(encoding_rs::UTF_16LE),
            "utf-16be" => Some(encoding_rs::UTF_16BE),
            other => {
                return Err(format!(
                    "[source.csv] encoding = {other:?}: use \"auto\", \"utf-8\", \"windows-1252\", \
                     \"iso-8859-1\", \"utf-16le\" or \"utf-16be\""
                ));
            }
        };
        Ok(CsvOptions {
            delimiter,
            encoding,
        })
    }
}

/// What a CSV read checks each value against: the schema's rule for each field.
pub struct CsvRules<'r> {
    pub mapping: &'r Mapping,
    pub options: CsvOptions,
    pub field_types: &'r [Option<SimpleType>; FIELD_COUNT],
}

/// Reads the CSV file at `path`, calling `sink` with each valid contact in file order and
/// `progress` with the bytes read so far. Stops at the first `max_errors` errors.
pub fn read<E>(
    path: &Path,
    rules: &CsvRules<'_>,
    max_errors: usize,
    progress: &(dyn Fn(u64) + Sync),
    mut sink: impl FnMut(ExternalContact) -> Result<(), E>,
) -> Result<Summary, ReadError<E>> {
    let doc = Document::open(path).map_err(ReadError::Open)?;
    let file = path.display().to_string();
    let bytes = doc.bytes();
    let (encoding, body) = sniff_encoding(bytes, rules.options.encoding);
    let mut errors = LocatedErrors::new(file, max_errors);
    let delimiter = rules
        .options
        .delimiter
        .unwrap_or_else(|| sniff_delimiter(&first_line(body, encoding)));
    // The file's bytes as they are read: what was read is released from memory behind.
    let consumed = AtomicU64::new((bytes.len() - body.len()) as u64);
    let passed = std::sync::Mutex::new(Passed::new(&doc));
    let raw = Counting {
        rest: body,
        consumed: &consumed,
    };
    let input: Box<dyn Read + '_> = if encoding == encoding_rs::UTF_8 {
        Box::new(raw)
    } else {
        Box::new(
            encoding_rs_io::DecodeReaderBytesBuilder::new()
                .encoding(Some(encoding))
                .bom_sniffing(false)
                .build(raw),
        )
    };
    let on_progress = |_decoded: u64| {
        let at = consumed.load(Ordering::Relaxed);
        progress(at);
        passed.lock().expect("no poisoning").reach(at);
    };
    let quotes = QuoteTracker::new(input, delimiter);
    let mut csv = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .has_headers(false)
        .from_reader(quotes);
    let contacts = read_rows(&mut csv, rules, &mut errors, &on_progress, &mut sink)?;
    if !errors.full()
        && csv.get_ref().overlong.is_none()
        && let Some((line, column)) = csv.get_ref().open_quote()
    {
        errors.at(
            line,
            column,
            "a quoted value never ends: its closing \" is missing".into(),
        );
    }
    if !errors.is_empty() {
        return Err(ReadError::Invalid(errors.into_invalid()));
    }
    progress(bytes.len() as u64);
    let passed = passed.into_inner().expect("no poisoning");
    Ok(passed.summary(contacts))
}

/// Where each field is read from in the CSV file at `path` (its header's column, or Google's
/// labelled phone columns), and the header's columns no field reads: for `ucm fetch
/// --preview`.
pub fn header_sources(
    path: &Path,
    mapping: &Mapping,
    options: CsvOptions,
) -> ([Option<String>; FIELD_COUNT], Vec<String>) {
    let mut from: [Option<String>; FIELD_COUNT] = Default::default();
    let Ok(doc) = Document::open(path) else {
        return (from, Vec::new());
    };
    let (encoding, body) = sniff_encoding(doc.bytes(), options.encoding);
    let line = first_line(body, encoding);
    let delimiter = options.delimiter.unwrap_or_else(|| sniff_delimiter(&line));
    let mut csv = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .from_reader(line.as_bytes());
    let mut header = csv::StringRecord::new();
    if !csv.read_record(&mut header).unwrap_or(false) {
        return (from, Vec::new());
    }
    let Ok(columns) = Columns::of_header(&header, mapping) else {
        return (from, header.iter().map(|h| format!("{h:?}")).collect());
    };
    let mut used = vec![false; header.len()];
    for (i, at) in columns.of_field.iter().enumerate() {
        if let Some((column, name)) = at {
            from[i] = Some(format!("column {name:?}"));
            used[*column] = true;
        }
    }
    for &(label, value) in &columns.phones {
        used[label] = true;
        used[value] = true;
    }
    if !columns.phones.is_empty() {
        for (i, from) in from.iter_mut().enumerate() {
            if columns.from_phones[i] && from.is_none() && is_phone_field(i) {
                *from = Some("a \"Phone N - Value\" by its label".into());
            }
        }
    }
    let unmapped = header
        .iter()
        .zip(used)
        .filter(|(_, used)| !used)
        .map(|(h, _)| format!("{:?}", h.trim()))
        .collect();
    (from, unmapped)
}

/// Whether field `i` is one Google's labelled phones can fill.
fn is_phone_field(i: usize) -> bool {
    matches!(
        FIELD_NAMES[i],
        "extension" | "mobile_number" | "home_number" | "fax_number"
    )
}

/// The file's bytes as a reader that counts what it gave.
struct Counting<'b> {
    rest: &'b [u8],
    consumed: &'b AtomicU64,
}

impl Read for Counting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.rest.read(buf)?;
        self.consumed.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Reads the header, then each row as a contact for `sink`; problems go to `errors` (the
/// caller refuses the file when there are any). Returns the contacts read.
fn read_rows<R: Read, E>(
    csv: &mut csv::Reader<QuoteTracker<R>>,
    rules: &CsvRules<'_>,
    errors: &mut LocatedErrors,
    progress: &(dyn Fn(u64) + Sync),
    sink: &mut impl FnMut(ExternalContact) -> Result<(), E>,
) -> Result<u64, ReadError<E>> {
    let mut record = csv::StringRecord::new();
    let header = match csv.read_record(&mut record) {
        Ok(true) => record.clone(),
        Ok(false) => {
            let message = "the file is empty: a CSV source starts with its header row";
            errors.at(1, 1, message.into());
            return Ok(0);
        }
        Err(e) => {
            unreadable(errors, csv.get_mut(), e);
            return Ok(0);
        }
    };
    let columns = match Columns::of_header(&header, rules.mapping) {
        Ok(columns) => columns,
        Err(message) => {
            errors.at(1, 1, message);
            return Ok(0);
        }
    };
    let mut contacts = 0u64;
    while !errors.full() {
        match csv.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                unreadable(errors, csv.get_mut(), e);
                break;
            }
        }
        let line = (record.position()).map_or(0, |p| csv.get_mut().line_of_record(p.byte()));
        if record.len() > header.len() {
            let message = format!(
                "the row has {} fields and the header {}: a delimiter inside a value must be \
                 quoted",
                record.len(),
                header.len()
            );
            errors.at(line, header.len() as u64 + 1, message);
        } else if !(record.len() == 1 && record[0].is_empty())
            && let Some(contact) = columns.contact(&record, line, rules, errors)
        {
            contacts += 1;
            sink(contact).map_err(ReadError::Sink)?;
            if contacts.is_multiple_of(1024) {
                progress(record.position().map_or(0, |p| p.byte()));
            }
        }
    }
    Ok(contacts)
}

/// Records why the parser could not read on: a row over [`MAX_ROW_BYTES`] where it started,
/// or the parser's own error.
fn unreadable<R>(errors: &mut LocatedErrors, tracker: &mut QuoteTracker<R>, e: csv::Error) {
    match tracker.overlong() {
        Some((line, column, message)) => errors.at(line, column, message),
        None => {
            let line = e.position().map_or(0, |p| tracker.line_of_record(p.byte()));
            csv_failure(errors, e, line);
        }
    }
}

/// A row the `csv` crate could not read: bytes that are not UTF-8 (in their CSV column), or
/// its reader's own error.
fn csv_failure(errors: &mut LocatedErrors, e: csv::Error, line: u64) {
    match e.kind() {
        csv::ErrorKind::Utf8 { err, .. } => errors.at(
            line,
            err.field() as u64 + 1,
            "bytes that are not UTF-8: set [source.csv] encoding (e.g. \"windows-1252\" for an \
             Excel export)"
                .into(),
        ),
        _ => errors.at(line, 1, format!("the row cannot be read: {e}")),
    }
}

/// Where each field is read from in the rows of one file.
struct Columns {
    /// The column of each field (and its header, for messages).
    of_field: [Option<(usize, String)>; FIELD_COUNT],
    /// Google's labelled phone pairs: (label column, value column).
    phones: Vec<(usize, usize)>,
    /// Whether a field is read from a pair when its own column is empty.
    from_phones: [bool; FIELD_COUNT],
}

impl Columns {
    fn of_header(header: &csv::StringRecord, mapping: &Mapping) -> Result<Columns, String> {
        let names: Vec<String> = header
            .iter()
            .map(|h| h.trim().trim_start_matches('\u{feff}').to_owned())
            .collect();
        let find = |wanted: &str| names.iter().position(|n| n.eq_ignore_ascii_case(wanted));
        let mut of_field: [Option<(usize, String)>; FIELD_COUNT] = Default::default();
        for (i, candidates) in mapping.names.iter().enumerate() {
            of_field[i] = candidates
                .iter()
                .find_map(|c| find(c).map(|at| (at, names[at].clone())));
        }
        let mut phones = Vec::new();
        if mapping.preset.labelled_phones() {
            for n in 1.. {
                let label =
                    find(&format!("Phone {n} - Label")).or(find(&format!("Phone {n} - Type")));
                let (Some(label), Some(value)) = (label, find(&format!("Phone {n} - Value")))
                else {
                    break;
                };
                phones.push((label, value));
            }
        }
        let from_phones = std::array::from_fn(|i| !phones.is_empty() && !mapping.overridden[i]);
        if of_field.iter().all(Option::is_none) && phones.is_empty() {
            let expected: Vec<String> = mapping
                .names
                .iter()
                .flatten()
                .take(4)
                .map(|n| format!("{n:?}"))
                .collect();
            return Err(format!(
                "no column of the header matches preset {} (it reads {}, ...): set [source] \
                 preset, or name the columns in [source.mapping]",
                mapping.preset.name(),
                expected.join(", ")
            ));
        }
        Ok(Columns {
            of_field,
            phones,
            from_phones,
        })
    }

    /// The row as a contact, each value checked; None (errors recorded) when one breaks a
    /// rule. Values are copied once, into the contact.
    fn contact(
        &self,
        row: &csv::StringRecord,
        line: u64,
        rules: &CsvRules<'_>,
        errors: &mut LocatedErrors,
    ) -> Option<ExternalContact> {
        let mut contact = ExternalContact::empty(line);
        let mut filled = [false; FIELD_COUNT];
        let mut ok = true;
        // Whether the field got a value.
        let mut take = |i: usize, column: usize, shown: &str, text: &str| match checked(
            i,
            text,
            rules.field_types,
        ) {
            Ok(Some(value)) => {
                contact.push(Field::from_index(i), value);
                true
            }
            Ok(None) => false,
            Err(why) => {
                let field = FIELD_NAMES[i];
                let message = format!("{field} (column {shown:?}): {why}");
                errors.at(line, column as u64 + 1, message);
                ok = false;
                false
            }
        };
        for (i, at) in self.of_field.iter().enumerate() {
            if let Some((column, shown)) = at
                && let Some(raw) = row.get(*column)
            {
                filled[i] = take(i, *column, shown, raw);
            }
        }
        for &(label, value) in &self.phones {
            let Some(field) = row.get(label).and_then(phone_field) else {
                continue;
            };
            let i = field.index();
            if !filled[i] && self.from_phones[i] {
                // Google writes several numbers of one label in one cell, " ::: " between.
                let cell = row.get(value).unwrap_or_default();
                let first = cell.split(":::").next().unwrap_or_default();
                filled[i] = take(i, value, "Phone - Value", first);
            }
        }
        contact.sort_fields();
        ok.then_some(contact)
    }
}

/// The encoding of `bytes` and the bytes after its byte-order mark: a BOM decides, then the
/// configured encoding, then UTF-8.
fn sniff_encoding<'b>(
    bytes: &'b [u8],
    configured: Option<&'static encoding_rs::Encoding>,
) -> (&'static encoding_rs::Encoding, &'b [u8]) {
    match encoding_rs::Encoding::for_bom(bytes) {
        Some((encoding, bom)) => (encoding, &bytes[bom..]),
        None => (configured.unwrap_or(encoding_rs::UTF_8), bytes),
    }
}

/// The first line of `body`, decoded (for the delimiter's sniffing).
fn first_line(body: &[u8], encoding: &'static encoding_rs::Encoding) -> String {
    let head = &body[..body.len().min(64 * 1024)];
    let (text, _) = encoding.decode_without_bom_handling(head);
    text.lines().next().unwrap_or_default().to_owned()
}

/// The delimiter the header uses most outside quotes (`,` when none).
fn sniff_delimiter(header: &str) -> u8 {
    let mut counts = [0usize; 4];
    let mut quoted = false;
    for c in header.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => counts[0] += 1,
            ';' if !quoted => counts[1] += 1,
            '\t' if !quoted => counts[2] += 1,
            '|' if !quoted => counts[3] += 1,
            _ => {}
        }
    }
    let best = (0..4)
        .max_by_key(|&i| (counts[i], usize::MAX - i))
        .unwrap_or(0);
    if counts[best] == 0 {
        b','
    } else {
        [b',', b';', b'\t', b'|'][best]
    }
}

/// A reader that watches the CSV text going to the parser and remembers whether it ended
/// inside a quoted value, and where that value started (the `csv` crate reads an unclosed
/// quote to the end of the file without complaint).
struct QuoteTracker<R> {
    inner: R,
    delimiter: u8,
    line: u64,
    column: u64,
    /// Whether the next byte starts a field.
    field_start: bool,
    /// Inside a quoted value: where it started; and whether the last byte was a quote.
    open: Option<(u64, u64)>,
    quote_seen: bool,
    /// Bytes of the row being read, and the line it started on.
    row_bytes: usize,
    row_line: u64,
    /// Set when a row grew past [`MAX_ROW_BYTES`]: its message (the parser stops there).
    overlong: Option<String>,
    /// Bytes watched, where the lines the parser has not passed yet start, and how many it
    /// has passed: a record's line from its byte offset (the `csv` crate's own line count
    /// misses CRLF line ends).
    seen: u64,
    line_starts: std::collections::VecDeque<u64>,
    lines_passed: u64,
}

/// The longest row read, in bytes: a row of 90 columns of 255 characters is under 100 KiB, so
/// a longer one is a quote that never closes (or not a contacts export), refused before the
/// parser holds it.
const MAX_ROW_BYTES: usize = 1 << 20;

impl<R> QuoteTracker<R> {
    fn new(inner: R, delimiter: u8) -> QuoteTracker<R> {
        QuoteTracker {
            inner,
            delimiter,
            line: 1,
            column: 0,
            field_start: true,
            open: None,
            quote_seen: false,
            row_bytes: 0,
            row_line: 1,
            overlong: None,
            seen: 0,
            line_starts: std::collections::VecDeque::new(),
            lines_passed: 0,
        }
    }

    /// The line (from 1) of a record the parser says starts at offset `byte` of the text;
    /// offsets asked for never go back. After a CRLF line end the parser's record starts at
    /// the LF, one byte before its line.
    fn line_of_record(&mut self, byte: u64) -> u64 {
        let byte = byte + 1;
        while self.line_starts.front().is_some_and(|&start| start <= byte) {
            self.line_starts.pop_front();
            self.lines_passed += 1;
        }
        self.lines_passed + 1
    }

    /// Why reading stopped at a row longer than [`MAX_ROW_BYTES`], with where it started.
    fn overlong(&self) -> Option<(u64, u64, String)> {
        let message = self.overlong.clone()?;
        let (line, column) = self.open.unwrap_or((self.row_line, 1));
        Some((line, column, message))
    }

    /// Where the quoted value the text ended in started, if it ended in one.
    fn open_quote(&self) -> Option<(u64, u64)> {
        self.open.filter(|_| !self.quote_seen)
    }

    fn watch(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.column += 1;
            match self.open {
                Some(_) if self.quote_seen => {
                    // `""` is a quote inside the value; anything else closed it.
                    self.quote_seen = false;
                    if b != b'"' {
                        self.open = None;
                        self.field_start = b == self.delimiter || b == b'\n' || b == b'\r';
                    }
                }
                Some(_) => self.quote_seen = b == b'"',
                None if b == b'"' && self.field_start => {
                    self.open = Some((self.line, self.column));
                    self.field_start = false;
                }
                None => self.field_start = b == self.delimiter || b == b'\n' || b == b'\r',
            }
            self.row_bytes += 1;
            self.seen += 1;
            if b == b'\n' {
                self.line_starts.push_back(self.seen);
                self.line += 1;
                self.column = 0;
                if self.open.is_none() {
                    self.row_bytes = 0;
                    self.row_line = self.line;
                }
            }
        }
    }
}

impl<R: Read> Read for QuoteTracker<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.watch(&buf[..n]);
        if self.row_bytes > MAX_ROW_BYTES {
            let message = match self.open {
                Some(_) => "a quoted value runs on for over 1 MiB: its closing \" is missing",
                None => "a row is longer than 1 MiB: this is not a contacts export",
            };
            self.overlong = Some(message.to_owned());
            return Err(std::io::Error::other(message));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_chooses_the_delimiter() {
        assert_eq!(sniff_delimiter("First Name;Last Name;\"a,b\""), b';');
        assert_eq!(sniff_delimiter("a,b,c"), b',');
        assert_eq!(sniff_delimiter("a\tb"), b'\t');
        assert_eq!(sniff_delimiter("single"), b',');
    }

    #[test]
    fn a_quote_that_never_closes_is_found_where_it_opened() {
        let mut tracker = QuoteTracker::new(&b""[..], b',');
        tracker.watch(b"a,b\n1,\"two\n\"\"three\"\"\n");
        assert_eq!(tracker.open_quote(), Some((2, 3)));
        let mut closed = QuoteTracker::new(&b""[..], b',');
        closed.watch(b"a,b\n1,\"two \"\"x\"\"\"\n2,x\"y\n");
        assert_eq!(closed.open_quote(), None);
    }

    #[test]
    fn options_name_what_they_accept() {
        let config = CsvConfig {
            delimiter: "#".into(),
            encoding: "auto".into(),
        };
        assert!(config.options().unwrap_err().contains("\";\""));
        let excel = CsvConfig {
            delimiter: ";".into(),
            encoding: "windows-1252".into(),
        };
        let options = excel.options().unwrap();
        assert_eq!(options.delimiter, Some(b';'));
        assert_eq!(options.encoding, Some(encoding_rs::WINDOWS_1252));
    }
}
