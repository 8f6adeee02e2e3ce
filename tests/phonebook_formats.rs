//! Every phonebook format written for a directory with accents, `&`, quotes, emoji and
//! right-to-left names, then read back by a real parser: quick-xml for the XML formats (the
//! element structure each vendor documents, docs/phonebooks.md), vcard4 for vCard 4.0 (and
//! RFC 6350's line length and escaping), the csv crate for CSV.

mod common;

use quick_xml::events::Event;
use ucm::phonebook::{
    CISCO_PAGE_ENTRIES, CiscoPage, Entry, FeedWriter, Format, NameStyle, Number, NumberKind,
    cisco_lines, write_cisco_page, write_cisco_search,
};

fn number(kind: NumberKind, value: &str) -> Number {
    Number {
        kind,
        value: value.into(),
    }
}

fn entry(first: Option<&str>, last: Option<&str>, numbers: Vec<Number>) -> Entry {
    Entry {
        first_name: first.map(str::to_owned),
        last_name: last.map(str::to_owned),
        e_mail: Some("someone@example.com".into()),
        department: Some("R&D; \"Tools\", Gent".into()),
        site: Some("Liège".into()),
        numbers,
    }
}

/// The directory every format is written for: the hard cases of phone displays.
fn directory() -> Vec<Entry> {
    vec![
        entry(
            Some("Zoë"),
            Some("Wouters & Zonen <BV>"),
            vec![
                number(NumberKind::Work, "201"),
                number(NumberKind::Mobile, "+32 475 11 11 11"),
            ],
        ),
        entry(
            Some("\"Bart\""),
            Some("O'Neill"),
            vec![number(NumberKind::Home, "02/555.01.01")],
        ),
        entry(
            Some("😀 Emoji"),
            None,
            vec![number(NumberKind::Fax, "+32 2 555 99 99")],
        ),
        entry(
            Some("אבי"),
            Some("כהן"),
            vec![number(NumberKind::Work, "305")],
        ),
        entry(
            Some("Maximiliaan-Alexander"),
            Some("Van den Bossche-Vandenberghe de Longueville-Éèêëàâäôöûü"),
            vec![number(NumberKind::Work, "406")],
        ),
        // No number: left out of every feed.
        entry(Some("Nobody"), Some("Without Number"), Vec::new()),
    ]
}

fn written(format: Format, style: NameStyle) -> String {
    let mut out = Vec::new();
    let mut feed = FeedWriter::begin(&mut out, format, style).unwrap();
    for e in &directory() {
        feed.entry(e).unwrap();
    }
    assert_eq!(
        feed.written(),
        5,
        "{format:?}: the entry without a number is left out"
    );
    feed.finish().unwrap();
    String::from_utf8(out).unwrap()
}

/// An element as parsed: its name, attributes, text and children.
#[derive(Debug, Default)]
struct Node {
    name: String,
    attributes: Vec<(String, String)>,
    text: String,
    children: Vec<Node>,
}

impl Node {
    fn all(&self, name: &str) -> Vec<&Node> {
        self.children.iter().filter(|c| c.name == name).collect()
    }
    fn one(&self, name: &str) -> &Node {
        let found = self.all(name);
        assert_eq!(found.len(), 1, "one <{name}> in <{}>: {self:?}", self.name);
        found[0]
    }
    fn attribute(&self, name: &str) -> &str {
        self.attributes
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("<{}> has no {name}: {self:?}", self.name))
    }
}

/// Parses `xml` with quick-xml (well-formedness checked: end tags must match) into a tree.
fn parse(xml: &str) -> Node {
    let mut reader = quick_xml::Reader::from_str(xml);
    reader.config_mut().check_end_names = true;
    let mut stack = vec![Node::default()];
    loop {
        match reader.read_event().unwrap_or_else(|e| panic!("{e}: {xml}")) {
            Event::Start(start) => stack.push(node_of(&start)),
            Event::Empty(start) => {
                let node = node_of(&start);
                stack.last_mut().unwrap().children.push(node);
            }
            Event::End(_) => {
                let done = stack.pop().unwrap();
                stack.last_mut().unwrap().children.push(done);
            }
            Event::Text(text) => stack
                .last_mut()
                .unwrap()
                .text
                .push_str(&text.decode().unwrap()),
            Event::GeneralRef(r) => {
                let c = match r.resolve_char_ref().unwrap() {
                    Some(c) => c,
                    None => common::predefined_entity(&r.decode().unwrap()),
                };
                stack.last_mut().unwrap().text.push(c);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(stack.len(), 1, "unclosed elements: {xml}");
    let mut document = stack.pop().unwrap();
    assert_eq!(document.children.len(), 1, "one root element: {xml}");
    document.children.pop().unwrap()
}

fn node_of(start: &quick_xml::events::BytesStart) -> Node {
    Node {
        name: String::from_utf8(start.name().as_ref().to_vec()).unwrap(),
        attributes: start
            .attributes()
            .map(|a| {
                let a = a.unwrap();
                (
                    String::from_utf8(a.key.as_ref().to_vec()).unwrap(),
                    a.normalized_value(quick_xml::XmlVersion::Explicit1_0)
                        .unwrap()
                        .into_owned(),
                )
            })
            .collect(),
        ..Node::default()
    }
}

fn names(style: NameStyle) -> Vec<String> {
    directory()
        .iter()
        .filter(|e| !e.numbers.is_empty())
        .map(|e| e.display_name(style))
        .collect()
}

#[test]
fn yealink_and_fanvil_directories_hold_a_name_and_labelled_numbers_per_entry() {
    for (format, root) in [
        (Format::Yealink, "YealinkIPPhoneDirectory"),
        (Format::Fanvil, "FanvilIPPhoneDirectory"),
    ] {
        let tree = parse(&written(format, NameStyle::FirstLast));
        assert_eq!(tree.name, root);
        let entries = tree.all("DirectoryEntry");
        let shown: Vec<&str> = entries
            .iter()
            .map(|e| e.one("Name").text.as_str())
            .collect();
        assert_eq!(shown, names(NameStyle::FirstLast));
        let first = entries[0].all("Telephone");
        assert_eq!(first.len(), 2);
        assert_eq!(first[0].attribute("label"), "Work");
        assert_eq!(first[1].text, "+32 475 11 11 11");
    }
}

#[test]
fn a_snom_tbook_is_version_2_complete_with_typed_numbers() {
    let tree = parse(&written(Format::Snom, NameStyle::FirstLast));
    assert_eq!(tree.name, "tbook");
    assert_eq!(tree.attribute("version"), "2.0");
    assert_eq!(tree.attribute("complete"), "true");
    assert_eq!(tree.attribute("e"), "2");
    let contacts = tree.all("contact");
    assert_eq!(contacts.len(), 5);
    assert_eq!(contacts[0].one("last_name").text, "Wouters & Zonen <BV>");
    assert_eq!(contacts[1].one("first_name").text, "\"Bart\"");
    assert_eq!(contacts[0].one("organization").text, "R&D; \"Tools\", Gent");
    let numbers = contacts[0].one("numbers").all("number");
    assert_eq!(numbers[0].attribute("type"), "business");
    assert_eq!(numbers[1].attribute("type"), "mobile");
    assert_eq!(numbers[1].attribute("no"), "+32 475 11 11 11");
    assert_eq!(contacts[3].one("first_name").text, "אבי");
}

#[test]
fn a_grandstream_address_book_has_typed_phones_with_an_account_index() {
    let tree = parse(&written(Format::Grandstream, NameStyle::FirstLast));
    assert_eq!(tree.name, "AddressBook");
    assert_eq!(tree.one("version").text, "1");
    let contacts = tree.all("Contact");
    assert_eq!(contacts.len(), 5);
    let phones = contacts[0].all("Phone");
    assert_eq!(phones[1].attribute("type"), "Mobile");
    assert_eq!(phones[1].one("phonenumber").text, "+32 475 11 11 11");
    assert_eq!(phones[1].one("accountindex").text, "0");
    assert_eq!(contacts[2].one("FirstName").text, "😀 Emoji");
    assert_eq!(contacts[1].one("LastName").text, "O'Neill");
}

#[test]
fn a_polycom_directory_has_one_item_per_number_names_within_40_bytes() {
    let tree = parse(&written(Format::Polycom, NameStyle::FirstLast));
    assert_eq!(tree.name, "directory");
    let items = tree.one("item_list").all("item");
    assert_eq!(items.len(), 6, "Zoë has two numbers: two items");
    let contacts: Vec<&str> = items.iter().map(|i| i.one("ct").text.as_str()).collect();
    let mut unique = contacts.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), contacts.len(), "ct is unique: {contacts:?}");
    for item in &items {
        assert!(!item.one("ct").text.is_empty());
        assert!(item.one("ln").text.len() <= 40 && item.one("fn").text.len() <= 40);
    }
    assert!(items[5].one("ln").text.starts_with("Van den Bossche"));
}

#[test]
fn cisco_pages_hold_at_most_32_lines_with_paging_soft_keys_and_a_search_form() {
    let many: Vec<Entry> = (0..40)
        .map(|i| {
            let last = format!("Person {i:02}");
            entry(
                Some("A"),
                Some(&last),
                vec![number(NumberKind::Work, &format!("{}", 100 + i))],
            )
        })
        .collect();
    let lines: Vec<_> = many
        .iter()
        .flat_map(|e| cisco_lines(e, NameStyle::LastFirst))
        .collect();
    let pages: Vec<_> = lines.chunks(CISCO_PAGE_ENTRIES).collect();
    assert_eq!(pages.len(), 2);
    let mut seen = 0;
    for (i, chunk) in pages.iter().enumerate() {
        let next = format!("http://ucm/phonebook/p/cisco?page={}", i + 2);
        let previous = format!("http://ucm/phonebook/p/cisco?page={i}");
        let page = CiscoPage {
            title: "Directory & co",
            prompt: &format!("Page {} of {}", i + 1, pages.len()),
            lines: chunk,
            previous_url: (i > 0).then_some(previous.as_str()),
            next_url: (i + 1 < pages.len()).then_some(next.as_str()),
            search_url: Some("http://ucm/phonebook/p/cisco/search?a=1&b=2"),
        };
        let mut out = Vec::new();
        write_cisco_page(&mut out, &page).unwrap();
        let tree = parse(std::str::from_utf8(&out).unwrap());
        assert_eq!(tree.name, "CiscoIPPhoneDirectory");
        assert_eq!(tree.one("Title").text, "Directory & co");
        let entries = tree.all("DirectoryEntry");
        assert!(entries.len() <= 32);
        seen += entries.len();
        let keys: Vec<(String, String)> = tree
            .all("SoftKeyItem")
            .iter()
            .map(|k| (k.one("Name").text.clone(), k.one("URL").text.clone()))
            .collect();
        assert_eq!(keys.first().unwrap().1, "SoftKey:Dial");
        assert_eq!(keys.iter().any(|(n, _)| n == "Next"), i == 0);
        assert_eq!(keys.iter().any(|(n, _)| n == "Prev"), i == 1);
        let search = keys.iter().find(|(n, _)| n == "Search").unwrap();
        assert_eq!(search.1, "http://ucm/phonebook/p/cisco/search?a=1&b=2");
    }
    assert_eq!(seen, 40);
    assert_eq!(lines[0].name, "Person 00, A");
    let too_many = CiscoPage {
        title: "x",
        prompt: "x",
        lines: &lines,
        previous_url: None,
        next_url: None,
        search_url: None,
    };
    assert!(write_cisco_page(&mut Vec::new(), &too_many).is_err());

    let mut out = Vec::new();
    write_cisco_search(&mut out, "Search", "http://ucm/phonebook/p/cisco").unwrap();
    let form = parse(std::str::from_utf8(&out).unwrap());
    assert_eq!(form.name, "CiscoIPPhoneInput");
    let item = form.one("InputItem");
    assert_eq!(item.one("QueryStringParam").text, "q");
    assert_eq!(item.one("InputFlags").text, "A");
    assert!(FeedWriter::begin(Vec::new(), Format::Cisco, NameStyle::FirstLast).is_err());
}

#[test]
fn vcards_parse_with_a_vcard_4_parser_fold_at_75_octets_and_escape_text() {
    let text = written(Format::Vcard, NameStyle::LastFirst);
    for line in text.split("\r\n") {
        assert!(line.len() <= 75, "{} octets: {line}", line.len());
        assert!(!line.contains('\n'), "CRLF line ends only");
    }
    assert!(text.contains("ORG:R&D\\; \"Tools\"\\, Gent"), "{text}");
    let cards = vcard4::parse(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(cards.len(), 5);
    let shown: Vec<String> = cards
        .iter()
        .map(|c| c.formatted_name[0].value.clone())
        .collect();
    assert_eq!(shown, names(NameStyle::LastFirst));
    let zoe = &cards[0];
    assert_eq!(zoe.tel.len(), 2);
    assert_eq!(zoe.email[0].value, "someone@example.com");
    let name = zoe.name.as_ref().unwrap();
    assert_eq!(name.value[0], "Wouters & Zonen <BV>");
    assert_eq!(name.value[1], "Zoë");
    let long = &cards[4];
    assert_eq!(
        long.formatted_name[0].value,
        "Van den Bossche-Vandenberghe de Longueville-Éèêëàâäôöûü, Maximiliaan-Alexander"
    );
}

#[test]
fn csv_rows_are_rfc_4180_and_read_back_with_the_csv_crate() {
    let text = written(Format::Csv, NameStyle::FirstLast);
    assert!(text.contains("\r\n"));
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        [
            "name",
            "first_name",
            "last_name",
            "work",
            "mobile",
            "home",
            "fax",
            "e_mail",
            "department",
            "site"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 5);
    assert_eq!(&rows[0][0], "Zoë Wouters & Zonen <BV>");
    assert_eq!(&rows[0][4], "+32 475 11 11 11");
    assert_eq!(&rows[1][1], "\"Bart\"");
    assert_eq!(&rows[0][8], "R&D; \"Tools\", Gent");
}

#[test]
fn format_names_round_trip_and_control_characters_never_reach_an_xml_feed() {
    for f in Format::ALL {
        assert_eq!(Format::parse(f.name()), Some(f));
    }
    assert_eq!(Format::parse("aastra"), None);
    let mut out = Vec::new();
    let mut feed = FeedWriter::begin(&mut out, Format::Yealink, NameStyle::FirstLast).unwrap();
    feed.entry(&entry(
        Some("Bell\u{7}"),
        None,
        vec![number(NumberKind::Work, "1")],
    ))
    .unwrap();
    feed.finish().unwrap();
    let tree = parse(std::str::from_utf8(&out).unwrap());
    assert_eq!(tree.one("DirectoryEntry").one("Name").text, "Bell");
}

/// Writes `entries` in `format`, the feed's text.
fn written_of(entries: &[Entry], format: Format) -> String {
    let mut out = Vec::new();
    let mut feed = FeedWriter::begin(&mut out, format, NameStyle::FirstLast).unwrap();
    for e in entries {
        feed.entry(e).unwrap();
    }
    feed.finish().unwrap();
    String::from_utf8(out).unwrap()
}

/// Hardening 3: cells starting with `=`, `+`, `-`, `@` are run by spreadsheets
/// (`=HYPERLINK(...)`, `+cmd|' /C calc'!A0`): the CSV feed neutralises them with a leading
/// `'`, and leaves numbers in the number columns as they are.
#[test]
fn the_csv_feed_neutralises_formulas_and_keeps_numbers_as_they_are() {
    let mut evil = entry(
        Some("=HYPERLINK(\"http://evil.example\",\"Click\")"),
        Some("+cmd|' /C calc'!A0"),
        vec![
            number(NumberKind::Work, "+32 2 555 01 00"),
            number(NumberKind::Mobile, "=1+1"),
            number(NumberKind::Home, "-2 555 01 01"),
        ],
    );
    evil.e_mail = Some("@SUM(A1:A9)".into());
    evil.department = Some("-2+3+cmd|' /C calc'!A0".into());
    let text = written_of(&[evil], Format::Csv);
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let row = reader.records().next().unwrap().unwrap();
    assert_eq!(
        &row[0],
        "'=HYPERLINK(\"http://evil.example\",\"Click\") +cmd|' /C calc'!A0"
    );
    assert_eq!(&row[1], "'=HYPERLINK(\"http://evil.example\",\"Click\")");
    assert_eq!(&row[2], "'+cmd|' /C calc'!A0");
    assert_eq!(&row[3], "+32 2 555 01 00", "a number stays a number");
    assert_eq!(
        &row[4], "'=1+1",
        "a formula in a number column is neutralised too"
    );
    assert_eq!(&row[5], "-2 555 01 01");
    assert_eq!(&row[7], "'@SUM(A1:A9)");
    assert_eq!(&row[8], "'-2+3+cmd|' /C calc'!A0");
    // Only the CSV feed: an XML feed shows the name as it is.
    assert!(
        written_of(
            &[entry(
                Some("=A1"),
                None,
                vec![number(NumberKind::Work, "1")]
            )],
            Format::Yealink
        )
        .contains("<Name>=A1</Name>")
    );
}

/// Hardening 3: control characters and line breaks were dropped by the XML feeds but reached
/// phones through the CSV feed; one rule for every format: a value is one line of printable
/// text.
#[test]
fn every_feed_writes_names_as_one_line_of_printable_text() {
    let injected = entry(
        Some("Ext<b> One\r\nX-Injected: 1"),
        Some("\u{1b}[31mRed\u{b}\u{7f}"),
        vec![number(NumberKind::Work, "205\r\n")],
    );
    let text = written_of(std::slice::from_ref(&injected), Format::Csv);
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let row = reader.records().next().unwrap().unwrap();
    assert_eq!(&row[0], "Ext<b> One X-Injected: 1 [31mRed");
    assert_eq!(&row[3], "205");
    for format in [
        Format::Yealink,
        Format::Snom,
        Format::Grandstream,
        Format::Polycom,
        Format::Vcard,
    ] {
        let text = written_of(std::slice::from_ref(&injected), format);
        assert!(text.contains("X-Injected: 1"), "{format:?}: {text}");
        assert!(
            !text.contains("One\r\nX")
                && !text.contains("One\nX")
                && !text.contains('\u{1b}')
                && !text.contains('\u{7f}')
                && !text.contains('\u{b}'),
            "{format:?}: {text:?}"
        );
    }
    let lines = cisco_lines(&injected, NameStyle::FirstLast);
    assert_eq!(lines[0].name, "Ext<b> One X-Injected: 1 [31mRed");
}
