//! Values made safe for each format: one line of printable text for everything that reaches
//! a phone or a PBX ([`one_line`]), XML text and attribute values, vCard text values and
//! vCard line folding (RFC 6350, section 3.2), and CSV cells a spreadsheet will not run
//! ([`csv_cell`]).

use std::borrow::Cow;

/// Whether `c` breaks a line or is not printable: control characters (C0 with TAB, CR, LF,
/// ESC; DEL; C1 with NEL) and the Unicode line and paragraph separators.
fn breaks_a_line(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')
}

/// The one rule for every value that reaches a phone or a PBX (feeds, caller-ID lookup, LDAP
/// directory): one line of printable text. Each run of control characters and line breaks
/// becomes one space (none when a space is already there) (`Ext One\r\nX-Injected: 1` is `Ext One X-Injected: 1`: a PBX reading one
/// line gets one), and the ends are trimmed of them. Accents, emoji and right-to-left text
/// stay as they are.
pub fn one_line(value: &str) -> Cow<'_, str> {
    if is_one_line(value) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len());
    let mut gap = false;
    for c in value.chars() {
        if breaks_a_line(c) {
            gap = true;
            continue;
        }
        if gap && !out.is_empty() && !out.ends_with(' ') && c != ' ' {
            out.push(' ');
        }
        gap = false;
        out.push(c);
    }
    Cow::Owned(out)
}

/// Whether `value` is one line of printable text already ([`one_line`] would keep it).
pub fn is_one_line(value: &str) -> bool {
    !value.chars().any(breaks_a_line)
}

/// [`one_line`] of an owned value: the value itself when it is one line already.
pub fn into_one_line(value: String) -> String {
    match one_line(&value) {
        Cow::Borrowed(_) => value,
        Cow::Owned(cleaned) => cleaned,
    }
}

/// A CSV cell a spreadsheet opens as text: a cell starting with `=`, `+`, `-` or `@` (or a tab
/// or CR, which [`one_line`] already removed) is a formula to Excel, LibreOffice and Google
/// Sheets (`=HYPERLINK(...)`, `+cmd|' /C calc'!A0`), so it gets a leading `'` (OWASP's CSV
/// injection advice). `number` cells holding only what a phone number is written with
/// (digits, spaces, `+ - ( ) . /`) stay as they are: `+32 475 11 11 11` is a number.
pub fn csv_cell(value: String, number: bool) -> String {
    let phone = |v: &str| {
        v.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '+' | '-' | '(' | ')' | '.' | '/'))
    };
    match value.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') if !(number && phone(&value)) => {
            format!("'{value}")
        }
        _ => value,
    }
}

/// Whether XML 1.0 allows `c` in a document (the `Char` production).
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// `value` as XML text or a quoted attribute value: `& < > " '` escaped, characters XML 1.0
/// forbids (C0 controls, U+FFFE, U+FFFF) dropped; everything else (accents, emoji,
/// right-to-left text) kept as it is.
pub fn xml_text(value: &str) -> Cow<'_, str> {
    let allowed: Cow<'_, str> = if value.chars().all(xml_char) {
        Cow::Borrowed(value)
    } else {
        Cow::Owned(value.chars().filter(|c| xml_char(*c)).collect())
    };
    quick_xml::escape::escape(allowed)
}

/// `value` as a vCard text value: backslash, comma and semicolon escaped, line breaks as
/// `\n` (RFC 6350, section 3.4).
pub fn vcard_text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            ',' => out.push_str("\\,"),
            ';' => out.push_str("\\;"),
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push_str("\\n");
            }
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// The longest content line, in octets, before it is folded.
const VCARD_LINE_OCTETS: usize = 75;

/// `line` folded as RFC 6350 asks: no line longer than 75 octets (CRLF excluded), each
/// continuation starting with one space, never inside a UTF-8 sequence.
pub fn fold_vcard_line(line: &str) -> String {
    if line.len() <= VCARD_LINE_OCTETS {
        return line.to_owned();
    }
    let mut out = String::with_capacity(line.len() + line.len() / 70 * 3);
    let mut rest = line;
    // The first line holds 75 octets; a continuation holds the space and 74 more.
    let mut room = VCARD_LINE_OCTETS;
    while rest.len() > room {
        let mut cut = room;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        out.push_str(&rest[..cut]);
        out.push_str("\r\n ");
        rest = &rest[cut..];
        room = VCARD_LINE_OCTETS - 1;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hardening 3: control characters and line breaks reached PBXes and phones through the
    /// CSV feed, the caller-ID lookup's plain-text name and LDAP values.
    #[test]
    fn a_value_for_phones_is_one_line_of_printable_text() {
        assert_eq!(
            one_line("Ext<b> One\r\nX-Injected: 1"),
            "Ext<b> One X-Injected: 1"
        );
        assert_eq!(one_line("\u{1b}[31mRed\u{7}\u{b}\u{7f}"), "[31mRed");
        assert_eq!(one_line("a\u{85}b\u{2028}c\u{2029}d\te"), "a b c d e");
        assert_eq!(one_line("\r\n  Anna \n"), "  Anna ");
        assert!(matches!(one_line("Élodie Dupré 😀 שלום"), Cow::Borrowed(_)));
    }

    /// Hardening 3: cells starting with `=`, `+`, `-`, `@` are run by spreadsheets.
    #[test]
    fn csv_cells_that_a_spreadsheet_would_run_get_a_leading_quote_but_numbers_stay() {
        for formula in [
            "=HYPERLINK(\"http://x\",\"y\")",
            "+cmd|' /C calc'!A0",
            "-2+3+cmd|' /C calc'!A0",
            "@SUM(A1)",
        ] {
            assert_eq!(csv_cell(formula.into(), false), format!("'{formula}"));
            assert_eq!(
                csv_cell(formula.into(), true),
                format!("'{formula}"),
                "a formula in a number column"
            );
        }
        assert_eq!(
            csv_cell("+32 475 11 11 11".into(), true),
            "+32 475 11 11 11"
        );
        assert_eq!(csv_cell("-".into(), true), "-");
        assert_eq!(csv_cell("+32 475".into(), false), "'+32 475");
        assert_eq!(csv_cell("Anna".into(), false), "Anna");
        assert_eq!(csv_cell(String::new(), false), "");
    }

    #[test]
    fn xml_text_escapes_markup_and_drops_what_xml_forbids() {
        assert_eq!(
            xml_text("Wouters & Zonen <b>"),
            "Wouters &amp; Zonen &lt;b&gt;"
        );
        assert_eq!(xml_text("a\"b'c"), "a&quot;b&apos;c");
        assert_eq!(xml_text("bell\u{7}tab\t"), "belltab\t");
        assert_eq!(xml_text("Zoë 😀 אבי"), "Zoë 😀 אבי");
        assert!(matches!(xml_text("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn vcard_text_escapes_what_rfc_6350_escapes() {
        assert_eq!(vcard_text(r"a\b,c;d"), r"a\\b\,c\;d");
        assert_eq!(vcard_text("one\r\ntwo\nthree"), r"one\ntwo\nthree");
    }

    #[test]
    fn long_lines_fold_at_75_octets_without_splitting_a_character() {
        let line = format!("FN:{}", "é".repeat(60));
        let folded = fold_vcard_line(&line);
        for (i, physical) in folded.split("\r\n").enumerate() {
            assert!(physical.len() <= 75, "{i}: {} octets", physical.len());
            if i > 0 {
                assert!(physical.starts_with(' '));
            }
        }
        let unfolded = folded.replace("\r\n ", "");
        assert_eq!(unfolded, line);
        assert_eq!(fold_vcard_line("FN:short"), "FN:short");
    }
}
