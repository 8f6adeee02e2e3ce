//! Character decoding of document text: UTF-8 (with or without BOM), ISO-8859-1 and
//! windows-1252 when the XML declaration says so, with the XML 1.0 character rules.

/// The document encodings ucm reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    /// US-ASCII: bytes above 0x7F are errors.
    Ascii,
    /// ISO-8859-1: every byte is the code point of the same value.
    Latin1,
    /// windows-1252: like ISO-8859-1 but 0x80-0x9F are typographic characters; five of those
    /// bytes are undefined and are errors.
    Windows1252,
}

impl Encoding {
    /// The encoding named in an XML declaration, if ucm reads it.
    pub fn from_label(label: &str) -> Option<Encoding> {
        match label.trim().to_ascii_lowercase().as_str() {
            "utf-8" | "utf8" => Some(Encoding::Utf8),
            "us-ascii" | "ascii" => Some(Encoding::Ascii),
            "iso-8859-1" | "iso_8859-1" | "iso8859-1" | "latin1" | "latin-1" | "l1"
            | "iso-latin-1" => Some(Encoding::Latin1),
            "windows-1252" | "cp1252" | "x-cp1252" => Some(Encoding::Windows1252),
            _ => None,
        }
    }
}

/// A decoding failure: `offset` is relative to the start of the decoded slice.
#[derive(Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Bytes that are not valid in the declared encoding.
    BadBytes { offset: usize, encoding: Encoding },
    /// A character that XML 1.0 does not allow (`U+0001`, `U+FFFE`, ...).
    ForbiddenChar { offset: usize, ch: char },
}

/// windows-1252 0x80..=0x9F; `None` marks the five undefined bytes.
const CP1252_HIGH: [Option<char>; 32] = [
    Some('\u{20AC}'),
    None,
    Some('\u{201A}'),
    Some('\u{0192}'),
    Some('\u{201E}'),
    Some('\u{2026}'),
    Some('\u{2020}'),
    Some('\u{2021}'),
    Some('\u{02C6}'),
    Some('\u{2030}'),
    Some('\u{0160}'),
    Some('\u{2039}'),
    Some('\u{0152}'),
    None,
    Some('\u{017D}'),
    None,
    None,
    Some('\u{2018}'),
    Some('\u{2019}'),
    Some('\u{201C}'),
    Some('\u{201D}'),
    Some('\u{2022}'),
    Some('\u{2013}'),
    Some('\u{2014}'),
    Some('\u{02DC}'),
    Some('\u{2122}'),
    Some('\u{0161}'),
    Some('\u{203A}'),
    Some('\u{0153}'),
    None,
    Some('\u{017E}'),
    Some('\u{0178}'),
];

/// Decodes `bytes` in `encoding`, appending to `out`, and checks every character against the
/// XML 1.0 `Char` production.
pub fn decode_into(bytes: &[u8], encoding: Encoding, out: &mut String) -> Result<(), DecodeError> {
    match encoding {
        Encoding::Utf8 => {
            let s = std::str::from_utf8(bytes).map_err(|e| DecodeError::BadBytes {
                offset: e.valid_up_to(),
                encoding,
            })?;
            check_chars(s)?;
            out.push_str(s);
        }
        Encoding::Ascii | Encoding::Latin1 | Encoding::Windows1252 => {
            if bytes.is_ascii() {
                // ASCII is the same in all three; the fast path keeps them cheap.
                let s = std::str::from_utf8(bytes).expect("ASCII is UTF-8");
                check_chars(s)?;
                out.push_str(s);
                return Ok(());
            }
            for (i, &b) in bytes.iter().enumerate() {
                let ch = match (encoding, b) {
                    (_, 0..=0x7F) => b as char,
                    (Encoding::Latin1, _) => b as char,
                    (Encoding::Windows1252, 0x80..=0x9F) => CP1252_HIGH[(b - 0x80) as usize]
                        .ok_or(DecodeError::BadBytes {
                            offset: i,
                            encoding,
                        })?,
                    (Encoding::Windows1252, _) => b as char,
                    _ => {
                        return Err(DecodeError::BadBytes {
                            offset: i,
                            encoding,
                        });
                    }
                };
                if !is_xml_char(ch) {
                    return Err(DecodeError::ForbiddenChar { offset: i, ch });
                }
                out.push(ch);
            }
        }
    }
    Ok(())
}

/// Checks a UTF-8 slice of the document (names, comments) without keeping it.
pub fn check_bytes(bytes: &[u8], encoding: Encoding) -> Result<(), DecodeError> {
    if encoding == Encoding::Utf8 {
        let s = std::str::from_utf8(bytes).map_err(|e| DecodeError::BadBytes {
            offset: e.valid_up_to(),
            encoding,
        })?;
        check_chars(s)
    } else {
        decode_into(bytes, encoding, &mut String::new())
    }
}

/// XML 1.0 `Char`: `#x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]`.
pub fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Finds characters XML forbids in valid UTF-8 text: C0 controls and U+FFFE/U+FFFF.
#[inline]
fn check_chars(s: &str) -> Result<(), DecodeError> {
    let bytes = s.as_bytes();
    // Almost all text has neither a control character nor the lead byte of U+FFFE/U+FFFF:
    // one branch-free pass (no early exit, so it vectorises) says so.
    if !bytes
        .iter()
        .fold(false, |suspect, &b| suspect | (b < 0x20) | (b == 0xEF))
    {
        return Ok(());
    }
    for (i, &b) in bytes.iter().enumerate() {
        if (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r'))
            || (b == 0xEF
                && bytes.get(i + 1) == Some(&0xBF)
                && matches!(bytes.get(i + 2), Some(0xBE | 0xBF)))
        {
            let ch = s[i..].chars().next().expect("index is a char boundary");
            return Err(DecodeError::ForbiddenChar { offset: i, ch });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8], enc: Encoding) -> Result<String, DecodeError> {
        let mut s = String::new();
        decode_into(bytes, enc, &mut s).map(|_| s)
    }

    #[test]
    fn latin1_maps_bytes_to_code_points() {
        assert_eq!(
            decode(b"Ren\xe9 M\xfcller", Encoding::Latin1).unwrap(),
            "René Müller"
        );
        assert_eq!(decode(b"\x80", Encoding::Latin1).unwrap(), "\u{80}");
    }

    #[test]
    fn windows_1252_maps_the_typographic_range_and_refuses_undefined_bytes() {
        assert_eq!(
            decode(b"\x80 \x93ok\x94", Encoding::Windows1252).unwrap(),
            "€ “ok”"
        );
        assert_eq!(
            decode(b"ab\x81", Encoding::Windows1252),
            Err(DecodeError::BadBytes {
                offset: 2,
                encoding: Encoding::Windows1252
            })
        );
    }

    #[test]
    fn bad_utf8_is_reported_at_its_offset() {
        assert_eq!(
            decode(b"abc\xff", Encoding::Utf8),
            Err(DecodeError::BadBytes {
                offset: 3,
                encoding: Encoding::Utf8
            })
        );
    }

    #[test]
    fn control_characters_and_noncharacters_are_forbidden() {
        assert_eq!(
            decode(b"a\x01", Encoding::Utf8),
            Err(DecodeError::ForbiddenChar {
                offset: 1,
                ch: '\u{1}'
            })
        );
        assert_eq!(
            decode("x\u{FFFE}".as_bytes(), Encoding::Utf8),
            Err(DecodeError::ForbiddenChar {
                offset: 1,
                ch: '\u{FFFE}'
            })
        );
        assert!(decode("tab\tnl\ncr\r é \u{FFFD}".as_bytes(), Encoding::Utf8).is_ok());
    }

    #[test]
    fn labels_are_case_insensitive() {
        assert_eq!(Encoding::from_label("ISO-8859-1"), Some(Encoding::Latin1));
        assert_eq!(
            Encoding::from_label("Windows-1252"),
            Some(Encoding::Windows1252)
        );
        assert_eq!(Encoding::from_label("UTF-16"), None);
    }
}
