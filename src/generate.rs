//! Writes synthetic, seeded test data: an external contacts XML of N contacts and a directory
//! CSV of M entries of which a given share match external contacts by e-mail.

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
}

fn email(i: u64) -> String {
    format!("user{i}@example.com")
}

/// Writes the external contacts XML. External contact `i` has e-mail `user{i}@example.com`.
pub fn write_xml(spec: &GenerateSpec, out: &Path) -> io::Result<()> {
    let mut rng = fastrand::Rng::with_seed(spec.seed);
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(out)?);
    writeln!(w, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>")?;
    writeln!(w, "<contacts>")?;
    for i in 0..spec.contacts {
        let first = FIRST[rng.usize(..FIRST.len())];
        let last = LAST[rng.usize(..LAST.len())];
        writeln!(w, "  <contact>")?;
        writeln!(w, "    <e_mail>{}</e_mail>", email(i))?;
        writeln!(w, "    <first_name>{first}</first_name>")?;
        writeln!(w, "    <last_name>{last}</last_name>")?;
        writeln!(w, "    <extension>{}</extension>", 1000 + i % 9000)?;
        writeln!(
            w,
            "    <mobile_number>+32 47{} {:06}</mobile_number>",
            rng.u8(0..10),
            rng.u32(0..1_000_000)
        )?;
        writeln!(
            w,
            "    <department>{}</department>",
            DEPARTMENTS[rng.usize(..DEPARTMENTS.len())].replace('&', "&amp;")
        )?;
        writeln!(w, "    <site>{}</site>", SITES[rng.usize(..SITES.len())])?;
        writeln!(w, "    <office>{}</office>", rng.u16(100..999))?;
        writeln!(w, "    <fax_number/>")?;
        writeln!(w, "    <source>crm</source>")?;
        writeln!(w, "  </contact>")?;
    }
    writeln!(w, "</contacts>")?;
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
            email(i * stride)
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
