//! Writes synthetic, seeded test data: an external contacts XML of N contacts (and the same
//! contacts as a CSV source, with `ucm export`'s column names, and as vCards 3.0), and a
//! directory CSV of M entries of which a given share match external contacts by e-mail.
//! `realistic` data is shaped like real directories: accented and non-Latin names, numbers in
//! E.164 and national spellings, random-looking keys, some fields empty.

use std::io::{self, BufWriter, Write};
use std::path::Path;

const FIRST: [&str; 16] = [
    "Anna", "Bart", "Chloé", "Dirk", "Emma", "Frank", "Greet", "Hugo", "Inès", "Jan", "Karin",
    "Lucas", "Marie", "Noah", "Olivia", "Pieter",
];
const LAST: [&str; 16] = [
    "Peeters", "Janssens", "Maes", "Jacobs", "Mertens", "Willems", "Claes", "Goossens", "Wouters",
    "De Smet", "Dubois", "Lambert", "Dupont", "Martin", "Leroy", "Müller",
];
/// Names of real directories: accented Latin, Greek, Cyrillic, Chinese, Arabic, Japanese.
const REALISTIC_FIRST: [&str; 32] = [
    "Chloé",
    "Inès",
    "Zoë",
    "François",
    "Łukasz",
    "Søren",
    "Jürgen",
    "Ágnes",
    "Øystein",
    "Çağla",
    "Siobhán",
    "José",
    "Maëlle",
    "Dvořák",
    "Ørjan",
    "Mónica",
    "Γιώργος",
    "Ελένη",
    "Иван",
    "Ольга",
    "Дмитрий",
    "伟",
    "芳",
    "娜",
    "محمد",
    "فاطمة",
    "健",
    "さくら",
    "Anna",
    "Jan",
    "Marie",
    "Pieter",
];
const REALISTIC_LAST: [&str; 32] = [
    "Dupré",
    "Lefèvre",
    "Müller",
    "Gößmann",
    "Kowalczyk",
    "Jørgensen",
    "Nuñez",
    "Szabó",
    "Ó Súilleabháin",
    "Van den Bossche",
    "D'Hondt",
    "Þórsson",
    "Öztürk",
    "Šimić",
    "Čapek",
    "Papadopoulos",
    "Παπαδόπουλος",
    "Οικονόμου",
    "Петров",
    "Смирнова",
    "Кузнецов",
    "王",
    "李",
    "张",
    "علي",
    "حسن",
    "佐藤",
    "鈴木",
    "Peeters",
    "Janssens",
    "Maes",
    "Claes",
];
const DOMAINS: [&str; 4] = [
    "example.com",
    "example.be",
    "corp.example.net",
    "mail.example.org",
];

const DEPARTMENTS: [&str; 6] = ["Sales", "Support", "R&D", "Finance", "HR", "Operations"];
const SITES: [&str; 4] = ["Brussels", "Gent", "Liège", "Antwerpen"];

/// What to generate.
#[derive(Clone, Debug)]
pub struct GenerateSpec {
    pub contacts: u64,
    pub directory: u64,
    /// Share (0.0-1.0) of directory entries that match an external contact.
    pub overlap: f64,
    pub seed: u64,
    /// Data shaped like real directories (see the module's comment).
    pub realistic: bool,
}

/// The e-mail (the matching key) of contact `i`: `user{i}@example.com`, or for realistic data
/// a random-looking one, unique (`i` scrambled by an odd multiplier, a bijection).
fn email(spec: &GenerateSpec, i: u64) -> String {
    if !spec.realistic {
        return format!("user{i}@example.com");
    }
    let scrambled = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ spec.seed;
    let domain = DOMAINS[(scrambled % DOMAINS.len() as u64) as usize];
    format!("p{scrambled:016x}@{domain}")
}

/// A number the way people write it: mostly E.164 (`+32475123456`), else with spaces, in the
/// national spelling (`0475 12 34 56`), with dashes or dots.
fn spelled_number(rng: &mut fastrand::Rng, prefix: &str, digits: u32) -> String {
    let national = format!("{prefix}{digits:06}");
    match rng.u8(0..10) {
        0..=5 => format!("+32{national}"),
        6 => format!(
            "+32 {} {} {} {}",
            &national[..3],
            &national[3..5],
            &national[5..7],
            &national[7..]
        ),
        7 => format!(
            "0{} {} {} {}",
            &national[..3],
            &national[3..5],
            &national[5..7],
            &national[7..]
        ),
        8 => format!("0{}-{}-{}", &national[..3], &national[3..6], &national[6..]),
        _ => format!("0{}.{}.{}", &national[..3], &national[3..6], &national[6..]),
    }
}

/// One generated external contact (its fax number is empty, its source "crm").
struct Generated {
    e_mail: String,
    first: &'static str,
    last: &'static str,
    extension: String,
    mobile: String,
    department: &'static str,
    site: &'static str,
    office: u16,
}

/// The external contacts of `spec`, in order: contact `i` has e-mail [`email`]`(spec, i)`.
fn contacts(spec: &GenerateSpec) -> impl Iterator<Item = Generated> {
    let mut rng = fastrand::Rng::with_seed(spec.seed);
    let (firsts, lasts): (&[&'static str], &[&'static str]) = match spec.realistic {
        true => (&REALISTIC_FIRST, &REALISTIC_LAST),
        false => (&FIRST, &LAST),
    };
    (0..spec.contacts).map(move |i| {
        let first = firsts[rng.usize(..firsts.len())];
        let last = lasts[rng.usize(..lasts.len())];
        let mobile = if !spec.realistic {
            format!("+32 47{} {:06}", rng.u8(0..10), rng.u32(0..1_000_000))
        } else if rng.u8(0..10) < 8 {
            let prefix = format!("47{}", rng.u8(0..10));
            let digits = rng.u32(0..1_000_000);
            spelled_number(&mut rng, &prefix, digits)
        } else {
            String::new()
        };
        Generated {
            e_mail: email(spec, i),
            first,
            last,
            extension: match spec.realistic {
                // A direct-dial number now and then, else a 4-digit extension.
                true if rng.u8(0..10) == 0 => {
                    let digits = rng.u32(0..1_000_000);
                    spelled_number(&mut rng, "25", digits)
                }
                true => rng.u16(1000..10000).to_string(),
                false => (1000 + i % 9000).to_string(),
            },
            mobile,
            department: DEPARTMENTS[rng.usize(..DEPARTMENTS.len())],
            site: SITES[rng.usize(..SITES.len())],
            office: rng.u16(100..999),
        }
    })
}

/// Writes the external contacts XML.
pub fn write_xml(spec: &GenerateSpec, out: &Path) -> io::Result<()> {
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(out)?);
    writeln!(w, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>")?;
    writeln!(w, "<contacts>")?;
    for c in contacts(spec) {
        writeln!(w, "  <contact>")?;
        writeln!(w, "    <e_mail>{}</e_mail>", c.e_mail)?;
        writeln!(w, "    <first_name>{}</first_name>", c.first)?;
        writeln!(w, "    <last_name>{}</last_name>", c.last)?;
        writeln!(w, "    <extension>{}</extension>", c.extension)?;
        writeln!(w, "    <mobile_number>{}</mobile_number>", c.mobile)?;
        writeln!(
            w,
            "    <department>{}</department>",
            c.department.replace('&', "&amp;")
        )?;
        writeln!(w, "    <site>{}</site>", c.site)?;
        writeln!(w, "    <office>{}</office>", c.office)?;
        writeln!(w, "    <fax_number/>")?;
        writeln!(w, "    <source>crm</source>")?;
        writeln!(w, "  </contact>")?;
    }
    writeln!(w, "</contacts>")?;
    w.flush()
}

/// Writes the same contacts as [`write_xml`] as a CSV source (`kind = "csv"`, the `ucm-csv`
/// preset: `ucm export`'s column names).
pub fn write_source_csv(spec: &GenerateSpec, out: &Path) -> io::Result<()> {
    let mut w = csv::Writer::from_writer(BufWriter::with_capacity(
        1 << 20,
        std::fs::File::create(out)?,
    ));
    w.write_record([
        "e_mail",
        "first_name",
        "last_name",
        "extension",
        "mobile_number",
        "department",
        "site",
        "office",
        "fax_number",
        "source",
    ])?;
    for c in contacts(spec) {
        w.write_record([
            c.e_mail.as_str(),
            c.first,
            c.last,
            &c.extension,
            &c.mobile,
            c.department,
            c.site,
            &c.office.to_string(),
            "",
            "crm",
        ])?;
    }
    w.flush()
}

/// Writes the same contacts as [`write_xml`] as vCards 3.0 (`kind = "vcard"`; the office and
/// source are `X-OFFICE` and `X-SOURCE`, which the `vcard` preset leaves to a mapping).
pub fn write_vcard(spec: &GenerateSpec, out: &Path) -> io::Result<()> {
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(out)?);
    for c in contacts(spec) {
        write!(
            w,
            "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:{first} {last}\r\nN:{last};{first};;;\r\n\
             EMAIL;TYPE=INTERNET:{mail}\r\nTEL;TYPE=WORK:{ext}\r\nTEL;TYPE=CELL:{mobile}\r\n\
             ORG:;{department}\r\nADR;TYPE=WORK:;;;{site};;;\r\nX-OFFICE:{office}\r\n\
             X-SOURCE:crm\r\nEND:VCARD\r\n",
            first = c.first,
            last = c.last,
            mail = c.e_mail,
            ext = c.extension,
            mobile = c.mobile,
            department = c.department,
            site = c.site,
            office = c.office,
        )?;
    }
    w.flush()
}

/// Writes the directory CSV: the first `overlap × directory` entries share an e-mail with an
/// external contact (spread over the source), the rest are internal only.
pub fn write_csv(spec: &GenerateSpec, out: &Path) -> io::Result<()> {
    let mut rng = fastrand::Rng::with_seed(spec.seed ^ 0x9E37_79B9_7F4A_7C15);
    let mut w = csv::Writer::from_writer(BufWriter::new(std::fs::File::create(out)?));
    w.write_record([
        "id",
        "e_mail",
        "first_name",
        "last_name",
        "extension",
        "mobile_number",
        "site",
    ])?;
    let matching = ((spec.directory as f64) * spec.overlap.clamp(0.0, 1.0)).round() as u64;
    let stride = spec.contacts.checked_div(matching).unwrap_or(1).max(1);
    for i in 0..spec.directory {
        let mail = if i < matching && i * stride < spec.contacts {
            email(spec, i * stride)
        } else {
            format!("staff{i}@internal.example")
        };
        w.write_record([
            format!("{}", i + 1),
            mail,
            FIRST[rng.usize(..FIRST.len())].to_owned(),
            LAST[rng.usize(..LAST.len())].to_owned(),
            format!("{}", 200 + i),
            String::new(),
            SITES[rng.usize(..SITES.len())].to_owned(),
        ])?;
    }
    w.flush()
}
