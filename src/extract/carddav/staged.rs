//! The staged copy of a CardDAV address book: one vCard file, each card as the server sent
//! it with two lines after its `BEGIN:VCARD`: `X-UCM-HREF` (the card's URL path on the
//! server) and `X-UCM-ETAG` (its version). The merge reads it as any vCard file (the two
//! properties are read by no field); the next run reads it back to copy the cards that did
//! not change, so only changed cards cross the network.

use crate::extract::lines::PhysicalLines;

/// One card of a staged file: where it lives on the server, its version, its text (from
/// `BEGIN:VCARD` to `END:VCARD` and its line break).
#[derive(Debug, PartialEq, Eq)]
pub struct StagedCard<'b> {
    pub href: &'b str,
    pub etag: &'b str,
    pub text: &'b [u8],
}

/// The cards of a staged file, in order (a card without its X-UCM-HREF is left out: it
/// will be read again).
pub fn cards(bytes: &[u8]) -> Vec<StagedCard<'_>> {
    let mut lines = PhysicalLines::new(bytes);
    let mut found = Vec::new();
    let mut start = None;
    let (mut href, mut etag) = ("", "");
    loop {
        let before = lines.offset();
        let Some(line) = lines.next_line() else { break };
        if line.eq_ignore_ascii_case(b"BEGIN:VCARD") {
            start = Some(before);
            (href, etag) = ("", "");
        } else if let Some(value) = line.strip_prefix(b"X-UCM-HREF:") {
            href = std::str::from_utf8(value).unwrap_or_default();
        } else if let Some(value) = line.strip_prefix(b"X-UCM-ETAG:") {
            etag = std::str::from_utf8(value).unwrap_or_default();
        } else if line.eq_ignore_ascii_case(b"END:VCARD")
            && let Some(from) = start.take()
            && !href.is_empty()
        {
            found.push(StagedCard {
                href,
                etag,
                text: &bytes[from..lines.offset()],
            });
        }
    }
    found
}

/// A value for one line of the staged file: line breaks would end it.
fn one_line(value: &str) -> String {
    value.replace(['\r', '\n'], " ")
}

/// Appends the card `text` (one vCard, as the server sent it) for `href` at version `etag`
/// to `out`; Err when the text is not a vCard.
pub fn write_card(out: &mut Vec<u8>, href: &str, etag: &str, text: &str) -> Result<(), String> {
    let text = text.trim_start();
    let first_end = text.find('\n').unwrap_or(text.len());
    if !text[..first_end]
        .trim_end()
        .eq_ignore_ascii_case("BEGIN:VCARD")
    {
        return Err(format!(
            "{href} is not a vCard (it does not start with BEGIN:VCARD)"
        ));
    }
    out.extend_from_slice(b"BEGIN:VCARD\r\n");
    out.extend_from_slice(format!("X-UCM-HREF:{}\r\n", one_line(href)).as_bytes());
    out.extend_from_slice(format!("X-UCM-ETAG:{}\r\n", one_line(etag)).as_bytes());
    let rest = &text[(first_end + 1).min(text.len())..];
    out.extend_from_slice(rest.as_bytes());
    if !rest.ends_with('\n') {
        out.extend_from_slice(b"\r\n");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_card_written_is_read_back_with_its_href_and_etag() {
        let mut out = Vec::new();
        write_card(
            &mut out,
            "/u/b/a.vcf",
            "\"1\"",
            "BEGIN:VCARD\r\nFN:A\r\nEND:VCARD\r\n",
        )
        .unwrap();
        write_card(
            &mut out,
            "/u/b/b.vcf",
            "\"2\"",
            "BEGIN:VCARD\nFN:B\nEND:VCARD",
        )
        .unwrap();
        let read = cards(&out);
        assert_eq!(read.len(), 2);
        assert_eq!((read[0].href, read[0].etag), ("/u/b/a.vcf", "\"1\""));
        assert_eq!(
            read[1].text,
            b"BEGIN:VCARD\r\nX-UCM-HREF:/u/b/b.vcf\r\nX-UCM-ETAG:\"2\"\r\nFN:B\nEND:VCARD\r\n"
        );
        assert!(write_card(&mut out, "/x", "", "FN:no begin").is_err());
    }
}
