//! Phonebooks for desk phones: the merged directory written in the formats phones fetch by
//! URL (Yealink, Cisco, Snom/Gigaset, Grandstream, Fanvil, Polycom), as vCard 4.0 and as CSV.
//! Which vendor document each format follows: docs/phonebooks.md.
//!
//! A [`FeedWriter`] writes one entry at a time to any `Write`, so a feed of any size is
//! streamed. Cisco's XML services show at most 32 entries per object: its feed is written a
//! page at a time ([`write_cisco_page`]) with Next/Prev soft keys, plus a search form
//! ([`write_cisco_search`]).

mod text;

use std::io::{self, Write};

use serde::Deserialize;

pub use text::{
    csv_cell, fold_vcard_line, into_one_line, is_one_line, one_line, vcard_text, xml_text,
};

/// The kinds of number a phonebook lists, in the order phones show them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NumberKind {
    /// The extension: the office number.
    Work,
    Mobile,
    Home,
    Fax,
}

/// How a contact's name is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NameStyle {
    /// "Anna Peeters".
    #[default]
    FirstLast,
    /// "Peeters, Anna".
    LastFirst,
}

/// The formats a feed can be written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Yealink,
    Cisco,
    Snom,
    Grandstream,
    Fanvil,
    Polycom,
    Vcard,
    Csv,
}

impl Format {
    pub const ALL: [Format; 8] = [
        Format::Yealink,
        Format::Cisco,
        Format::Snom,
        Format::Grandstream,
        Format::Fanvil,
        Format::Polycom,
        Format::Vcard,
        Format::Csv,
    ];

    /// The name in URLs and configs.
    pub fn name(self) -> &'static str {
        match self {
            Format::Yealink => "yealink",
            Format::Cisco => "cisco",
            Format::Snom => "snom",
            Format::Grandstream => "grandstream",
            Format::Fanvil => "fanvil",
            Format::Polycom => "polycom",
            Format::Vcard => "vcard",
            Format::Csv => "csv",
        }
    }

    pub fn parse(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The Content-Type of the feed.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Vcard => "text/vcard; charset=utf-8",
            Format::Csv => "text/csv; charset=utf-8",
            _ => "text/xml; charset=utf-8",
        }
    }
}

/// A number and its kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Number {
    pub kind: NumberKind,
    pub value: String,
}

/// A contact as a phonebook lists it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub e_mail: Option<String>,
    pub department: Option<String>,
    pub site: Option<String>,
    /// In the order the feed lists them; an entry without numbers is not written.
    pub numbers: Vec<Number>,
}

impl Entry {
    /// The name as `style` writes it; the e-mail address (or "?") when there is no name. One
    /// line of printable text ([`one_line`]), whatever the stored names hold.
    pub fn display_name(&self, style: NameStyle) -> String {
        let first = self.first_name.as_deref().filter(|s| !s.is_empty());
        let last = self.last_name.as_deref().filter(|s| !s.is_empty());
        let name = match (first, last, style) {
            (Some(f), Some(l), NameStyle::FirstLast) => format!("{f} {l}"),
            (Some(f), Some(l), NameStyle::LastFirst) => format!("{l}, {f}"),
            (Some(one), None, _) | (None, Some(one), _) => one.to_owned(),
            (None, None, _) => self.e_mail.clone().unwrap_or_else(|| "?".to_owned()),
        };
        into_one_line(name)
    }

    /// The entry with every value one line of printable text ([`one_line`]): what every
    /// phone format writes.
    pub fn printable(&self) -> std::borrow::Cow<'_, Entry> {
        let clean = |v: &Option<String>| v.as_deref().is_none_or(is_one_line);
        let all_clean = [
            &self.first_name,
            &self.last_name,
            &self.e_mail,
            &self.department,
            &self.site,
        ]
        .into_iter()
        .all(clean)
            && self.numbers.iter().all(|n| is_one_line(&n.value));
        if all_clean {
            return std::borrow::Cow::Borrowed(self);
        }
        let line = |v: &Option<String>| v.as_deref().map(|v| one_line(v).into_owned());
        std::borrow::Cow::Owned(Entry {
            first_name: line(&self.first_name),
            last_name: line(&self.last_name),
            e_mail: line(&self.e_mail),
            department: line(&self.department),
            site: line(&self.site),
            numbers: self
                .numbers
                .iter()
                .map(|n| Number {
                    kind: n.kind,
                    value: one_line(&n.value).into_owned(),
                })
                .collect(),
        })
    }
}

/// Writes a feed (every format but Cisco's pages) entry by entry.
pub struct FeedWriter<W: Write> {
    sink: Sink<W>,
    format: Format,
    style: NameStyle,
    written: u64,
}

/// Where a feed goes: straight to the output, or through the csv crate's writer (RFC 4180
/// quoting).
enum Sink<W: Write> {
    Plain(W),
    Csv(Box<csv::Writer<W>>),
}

/// The label phones show for a number kind, per format family.
fn label(kind: NumberKind) -> &'static str {
    match kind {
        NumberKind::Work => "Work",
        NumberKind::Mobile => "Mobile",
        NumberKind::Home => "Home",
        NumberKind::Fax => "Fax",
    }
}

/// The longest `fn`/`ln` Polycom accepts, in bytes of UTF-8.
const POLYCOM_NAME_BYTES: usize = 40;

/// `text` cut at a character boundary within `bytes`.
fn within(text: &str, bytes: usize) -> &str {
    if text.len() <= bytes {
        return text;
    }
    let mut end = bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

const CSV_HEADER: [&str; 10] = [
    "name",
    "first_name",
    "last_name",
    "work",
    "mobile",
    "home",
    "fax",
    "e_mail",
    "department",
    "site",
];

impl<W: Write> FeedWriter<W> {
    /// Starts a feed of `format` (not [`Format::Cisco`]: see [`write_cisco_page`]).
    pub fn begin(mut out: W, format: Format, style: NameStyle) -> io::Result<FeedWriter<W>> {
        let root = match format {
            Format::Yealink => Some("<YealinkIPPhoneDirectory>\n"),
            Format::Fanvil => Some("<FanvilIPPhoneDirectory>\n"),
            Format::Snom => Some("<tbook e=\"2\" version=\"2.0\" complete=\"true\">\n"),
            Format::Grandstream => Some("<AddressBook>\n<version>1</version>\n"),
            Format::Polycom => Some("<directory>\n<item_list>\n"),
            Format::Cisco => {
                return Err(io::Error::other(
                    "a Cisco directory is written a page at a time (write_cisco_page)",
                ));
            }
            Format::Vcard | Format::Csv => None,
        };
        if let Some(root) = root {
            out.write_all(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")?;
            out.write_all(root.as_bytes())?;
        }
        let sink = if format == Format::Csv {
            let mut writer = csv::WriterBuilder::new()
                .terminator(csv::Terminator::CRLF)
                .from_writer(out);
            writer.write_record(CSV_HEADER).map_err(io::Error::other)?;
            Sink::Csv(Box::new(writer))
        } else {
            Sink::Plain(out)
        };
        Ok(FeedWriter {
            sink,
            format,
            style,
            written: 0,
        })
    }

    /// Writes `entry` (nothing when it has no number).
    pub fn entry(&mut self, entry: &Entry) -> io::Result<()> {
        if entry.numbers.is_empty() {
            return Ok(());
        }
        let entry = &*entry.printable();
        let name = entry.display_name(self.style);
        match self.format {
            Format::Yealink | Format::Fanvil => self.put(&yealink_entry(entry, &name))?,
            Format::Snom => self.put(&snom_entry(entry, &name))?,
            Format::Grandstream => self.put(&grandstream_entry(entry, &name))?,
            Format::Polycom => self.put(&polycom_items(entry, &name))?,
            Format::Vcard => self.put(&vcard_entry(entry, &name))?,
            Format::Csv => {
                if let Sink::Csv(csv) = &mut self.sink {
                    csv.write_record(csv_record(entry, name))
                        .map_err(io::Error::other)?;
                }
            }
            Format::Cisco => unreachable!("refused by begin"),
        }
        self.written += 1;
        Ok(())
    }

    /// Passes on what the CSV writer holds (XML and vCard entries are written whole).
    pub fn flush(&mut self) -> io::Result<()> {
        match &mut self.sink {
            Sink::Csv(csv) => csv.flush(),
            Sink::Plain(out) => out.flush(),
        }
    }

    /// Entries written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Closes the feed.
    pub fn finish(mut self) -> io::Result<()> {
        let end = match self.format {
            Format::Yealink => "</YealinkIPPhoneDirectory>\n",
            Format::Fanvil => "</FanvilIPPhoneDirectory>\n",
            Format::Snom => "</tbook>\n",
            Format::Grandstream => "</AddressBook>\n",
            Format::Polycom => "</item_list>\n</directory>\n",
            Format::Vcard | Format::Csv | Format::Cisco => "",
        };
        match &mut self.sink {
            Sink::Csv(csv) => csv.flush(),
            Sink::Plain(out) => {
                out.write_all(end.as_bytes())?;
                out.flush()
            }
        }
    }

    /// Writes `text` to the output (XML and vCard feeds).
    fn put(&mut self, text: &str) -> io::Result<()> {
        match &mut self.sink {
            Sink::Plain(out) => out.write_all(text.as_bytes()),
            Sink::Csv(_) => Err(io::Error::other("a CSV feed writes records")),
        }
    }
}

/// A value or nothing, as text.
fn text_of(value: &Option<String>) -> String {
    value.as_deref().unwrap_or("").to_owned()
}

/// A Yealink (and Fanvil) `DirectoryEntry`.
fn yealink_entry(entry: &Entry, name: &str) -> String {
    let mut s = format!("<DirectoryEntry><Name>{}</Name>", xml_text(name));
    for n in &entry.numbers {
        s.push_str(&format!(
            "<Telephone label=\"{}\">{}</Telephone>",
            label(n.kind),
            xml_text(&n.value)
        ));
    }
    s.push_str("</DirectoryEntry>\n");
    s
}

/// A Snom tbook 2.0 `contact`.
fn snom_entry(entry: &Entry, name: &str) -> String {
    let mut s = String::from("<contact fav=\"false\" vip=\"false\" blocked=\"false\">");
    let mut element = |tag: &str, value: &Option<String>| {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            s.push_str(&format!("<{tag}>{}</{tag}>", xml_text(v)));
        }
    };
    element("first_name", &entry.first_name);
    element(
        "last_name",
        &entry
            .last_name
            .clone()
            .or_else(|| entry.first_name.is_none().then(|| name.to_owned())),
    );
    element("organization", &entry.department);
    element("email", &entry.e_mail);
    s.push_str("<numbers>");
    for n in &entry.numbers {
        let kind = match n.kind {
            NumberKind::Work => "business",
            NumberKind::Mobile => "mobile",
            NumberKind::Home => "home",
            NumberKind::Fax => "fax",
        };
        s.push_str(&format!(
            "<number no=\"{}\" type=\"{kind}\" outgoing_id=\"0\"/>",
            xml_text(&n.value)
        ));
    }
    s.push_str("</numbers></contact>\n");
    s
}

/// A Grandstream `Contact`.
fn grandstream_entry(entry: &Entry, name: &str) -> String {
    let mut s = String::from("<Contact>");
    let (first, last) = match (&entry.first_name, &entry.last_name) {
        (None, None) => (None, Some(name.to_owned())),
        (f, l) => (f.clone(), l.clone()),
    };
    if let Some(f) = first {
        s.push_str(&format!("<FirstName>{}</FirstName>", xml_text(&f)));
    }
    if let Some(l) = last {
        s.push_str(&format!("<LastName>{}</LastName>", xml_text(&l)));
    }
    for n in &entry.numbers {
        s.push_str(&format!(
            "<Phone type=\"{}\"><phonenumber>{}</phonenumber><accountindex>0</accountindex></Phone>",
            label(n.kind),
            xml_text(&n.value)
        ));
    }
    if let Some(mail) = entry.e_mail.as_deref() {
        s.push_str(&format!("<Mail type=\"Work\">{}</Mail>", xml_text(mail)));
    }
    s.push_str("</Contact>\n");
    s
}

/// Polycom `item`s: `ct` must be unique and not empty, so one item per number.
fn polycom_items(entry: &Entry, name: &str) -> String {
    let (first, last) = match (&entry.first_name, &entry.last_name) {
        (None, None) => (String::new(), name.to_owned()),
        (f, l) => (text_of(f), text_of(l)),
    };
    let mut s = String::new();
    for n in &entry.numbers {
        s.push_str(&format!(
            "<item><ln>{}</ln><fn>{}</fn><ct>{}</ct></item>\n",
            xml_text(within(&last, POLYCOM_NAME_BYTES)),
            xml_text(within(&first, POLYCOM_NAME_BYTES)),
            xml_text(&n.value)
        ));
    }
    s
}

/// A vCard 4.0, its lines folded at 75 octets.
fn vcard_entry(entry: &Entry, name: &str) -> String {
    let mut card = String::from("BEGIN:VCARD\r\nVERSION:4.0\r\n");
    let mut line = |l: String| {
        card.push_str(&fold_vcard_line(&l));
        card.push_str("\r\n");
    };
    line(format!("FN:{}", vcard_text(name)));
    line(format!(
        "N:{};{};;;",
        vcard_text(entry.last_name.as_deref().unwrap_or("")),
        vcard_text(entry.first_name.as_deref().unwrap_or(""))
    ));
    for n in &entry.numbers {
        let kind = match n.kind {
            NumberKind::Work => "work",
            NumberKind::Mobile => "cell",
            NumberKind::Home => "home",
            NumberKind::Fax => "fax",
        };
        line(format!("TEL;TYPE={kind}:{}", vcard_text(&n.value)));
    }
    if let Some(mail) = entry.e_mail.as_deref() {
        line(format!("EMAIL:{}", vcard_text(mail)));
    }
    if let Some(org) = entry.department.as_deref() {
        line(format!("ORG:{}", vcard_text(org)));
    }
    card.push_str("END:VCARD\r\n");
    card
}

/// A CSV record in [`CSV_HEADER`]'s order, every cell one a spreadsheet opens as text
/// ([`csv_cell`]; the four number columns keep numbers as they are).
fn csv_record(entry: &Entry, name: String) -> [String; 10] {
    let mut values = csv_values(entry, name);
    std::array::from_fn(|i| csv_cell(std::mem::take(&mut values[i]), (3..=6).contains(&i)))
}

/// The values of a CSV record, in [`CSV_HEADER`]'s order.
fn csv_values(entry: &Entry, name: String) -> [String; 10] {
    let number = |kind: NumberKind| {
        entry
            .numbers
            .iter()
            .find(|n| n.kind == kind)
            .map(|n| n.value.clone())
            .unwrap_or_default()
    };
    [
        name,
        text_of(&entry.first_name),
        text_of(&entry.last_name),
        number(NumberKind::Work),
        number(NumberKind::Mobile),
        number(NumberKind::Home),
        number(NumberKind::Fax),
        text_of(&entry.e_mail),
        text_of(&entry.department),
        text_of(&entry.site),
    ]
}

/// Entries a Cisco directory object holds at most (Cisco's XML services).
pub const CISCO_PAGE_ENTRIES: usize = 32;

/// One line of a Cisco directory: a name and one number (the object has one `Telephone` per
/// `DirectoryEntry`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CiscoLine {
    pub name: String,
    pub number: String,
}

/// The Cisco lines of `entry`: one per number; with several numbers, each name says which.
pub fn cisco_lines(entry: &Entry, style: NameStyle) -> Vec<CiscoLine> {
    let entry = &*entry.printable();
    let name = entry.display_name(style);
    let several = entry.numbers.len() > 1;
    entry
        .numbers
        .iter()
        .map(|n| CiscoLine {
            name: if several {
                format!("{name} ({})", label(n.kind))
            } else {
                name.clone()
            },
            number: n.value.clone(),
        })
        .collect()
}

/// A page of a Cisco directory.
pub struct CiscoPage<'a> {
    pub title: &'a str,
    /// The line under the title, e.g. "Page 2 of 7".
    pub prompt: &'a str,
    /// At most [`CISCO_PAGE_ENTRIES`].
    pub lines: &'a [CiscoLine],
    pub previous_url: Option<&'a str>,
    pub next_url: Option<&'a str>,
    /// The search form's URL ([`write_cisco_search`]).
    pub search_url: Option<&'a str>,
}

/// Writes a `CiscoIPPhoneDirectory` page: its lines and the soft keys Dial, EditDial, Prev,
/// Next, Search and Exit (Prev and Next only where there is such a page).
pub fn write_cisco_page<W: Write>(out: &mut W, page: &CiscoPage) -> io::Result<()> {
    if page.lines.len() > CISCO_PAGE_ENTRIES {
        return Err(io::Error::other(format!(
            "a Cisco directory page holds at most {CISCO_PAGE_ENTRIES} entries, not {}",
            page.lines.len()
        )));
    }
    let mut s = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CiscoIPPhoneDirectory>\n\
         <Title>{}</Title>\n<Prompt>{}</Prompt>\n",
        xml_text(page.title),
        xml_text(page.prompt)
    );
    for line in page.lines {
        s.push_str(&format!(
            "<DirectoryEntry><Name>{}</Name><Telephone>{}</Telephone></DirectoryEntry>\n",
            xml_text(&line.name),
            xml_text(&line.number)
        ));
    }
    let mut keys = vec![("Dial", "SoftKey:Dial"), ("EditDial", "SoftKey:EditDial")];
    if let Some(url) = page.previous_url {
        keys.push(("Prev", url));
    }
    if let Some(url) = page.next_url {
        keys.push(("Next", url));
    }
    if let Some(url) = page.search_url {
        keys.push(("Search", url));
    }
    keys.push(("Exit", "SoftKey:Exit"));
    for (position, (name, url)) in keys.iter().enumerate() {
        s.push_str(&format!(
            "<SoftKeyItem><Name>{name}</Name><URL>{}</URL><Position>{}</Position></SoftKeyItem>\n",
            xml_text(url),
            position + 1
        ));
    }
    s.push_str("</CiscoIPPhoneDirectory>\n");
    out.write_all(s.as_bytes())
}

/// Writes the `CiscoIPPhoneInput` search form: the phone asks for a name and requests
/// `url` with `?q=TEXT` appended (Cisco phones send input as a GET query string).
pub fn write_cisco_search<W: Write>(out: &mut W, title: &str, url: &str) -> io::Result<()> {
    let s = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CiscoIPPhoneInput>\n<Title>{}</Title>\n\
         <Prompt>Enter a name</Prompt>\n<URL>{}</URL>\n<InputItem><DisplayName>Name</DisplayName>\
         <QueryStringParam>q</QueryStringParam><DefaultValue></DefaultValue>\
         <InputFlags>A</InputFlags></InputItem>\n</CiscoIPPhoneInput>\n",
        xml_text(title),
        xml_text(url)
    );
    out.write_all(s.as_bytes())
}
