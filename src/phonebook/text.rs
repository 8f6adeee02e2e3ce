//! Values made safe for each format: XML text and attribute values, vCard text values and
//! vCard line folding (RFC 6350, section 3.2).

use std::borrow::Cow;

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
