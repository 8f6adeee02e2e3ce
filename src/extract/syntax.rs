//! Well-formedness rules quick-xml leaves to its caller: XML names, the XML declaration's
//! exact grammar, attributes (XML 1.0 productions 41 and 10: `Attribute`, `AttValue`), and
//! `]]>` in character data.

use crate::extract::encoding::{self, Encoding};

/// Whether `bytes` (in the document's `encoding`) is an XML `Name`: productions 4, 4a and 5
/// of XML 1.0 (fifth edition), as libxml2 reads them. `×`, NBSP and other punctuation are no
/// name characters; `·`, combining marks and digits may follow the first character only.
pub fn is_name(bytes: &[u8], encoding: Encoding) -> bool {
    if bytes.is_ascii() {
        let Some((&first, rest)) = bytes.split_first() else {
            return false;
        };
        let start = |b: u8| b.is_ascii_alphabetic() || b == b'_' || b == b':';
        return start(first)
            && rest
                .iter()
                .all(|&b| start(b) || b.is_ascii_digit() || b == b'.' || b == b'-');
    }
    let mut text = String::new();
    if encoding::decode_into(bytes, encoding, &mut text).is_err() {
        return false;
    }
    let mut chars = text.chars();
    chars.next().is_some_and(is_name_start_char) && chars.all(is_name_char)
}

/// XML 1.0's NameStartChar (production 4).
fn is_name_start_char(c: char) -> bool {
    matches!(c,
        ':' | 'A'..='Z' | '_' | 'a'..='z'
        | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}' | '\u{F8}'..='\u{2FF}'
        | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}' | '\u{200C}'..='\u{200D}'
        | '\u{2070}'..='\u{218F}' | '\u{2C00}'..='\u{2FEF}' | '\u{3001}'..='\u{D7FF}'
        | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}' | '\u{10000}'..='\u{EFFFF}')
}

/// XML 1.0's NameChar (production 4a).
fn is_name_char(c: char) -> bool {
    is_name_start_char(c)
        || matches!(c,
            '-' | '.' | '0'..='9' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
}

/// Checks an XML declaration's content (`xml version="1.0" encoding="..." standalone="..."`,
/// as between `<?` and `?>`) against the XMLDecl production. Returns the declared encoding.
pub fn parse_declaration(content: &[u8]) -> Result<Option<String>, String> {
    let rest = content
        .strip_prefix(b"xml")
        .ok_or("the declaration must start with <?xml")?;
    let mut p = Pairs { rest };
    let (name, version) = p.next()?.ok_or("the XML declaration needs a version")?;
    if name != b"version" {
        return Err("version must be the first item of the XML declaration".into());
    }
    // libxml2 also accepts "1." without digits; so does ucm, to give the same verdict.
    let version_ok = version.starts_with(b"1.") && version[2..].iter().all(u8::is_ascii_digit);
    if !version_ok {
        return Err(format!(
            "version \"{}\" is not an XML 1.x version",
            String::from_utf8_lossy(version)
        ));
    }
    let mut encoding = None;
    let mut item = p.next()?;
    if let Some((b"encoding", value)) = item {
        let ok = value.first().is_some_and(u8::is_ascii_alphabetic)
            && value
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !ok {
            return Err(format!(
                "encoding name \"{}\" is not valid",
                String::from_utf8_lossy(value)
            ));
        }
        encoding = Some(String::from_utf8_lossy(value).into_owned());
        item = p.next()?;
    }
    if let Some((b"standalone", value)) = item {
        if value != b"yes" && value != b"no" {
            return Err("standalone must be \"yes\" or \"no\"".into());
        }
        item = p.next()?;
    }
    match item {
        None => Ok(encoding),
        Some((name, _)) => Err(format!(
            "unexpected \"{}\" in the XML declaration (order: version, encoding, standalone)",
            String::from_utf8_lossy(name)
        )),
    }
}

/// One attribute of a start tag, as written: `value` is between the quotes, references not
/// yet resolved.
#[derive(Debug, PartialEq, Eq)]
pub struct RawAttribute<'a> {
    pub name: &'a [u8],
    pub value: &'a [u8],
}

/// Splits what follows an element's name in its start tag into attributes:
/// `(S Name S? '=' S? AttValue)* S?`. Names are checked to be XML names and to appear once;
/// values are only delimited here (see [`attribute_value`]).
pub fn attributes(raw: &[u8], encoding: Encoding) -> Result<Vec<RawAttribute<'_>>, String> {
    let mut out: Vec<RawAttribute<'_>> = Vec::new();
    let mut rest = raw;
    loop {
        let trimmed = trim_start(rest);
        if trimmed.is_empty() {
            return Ok(out);
        }
        if trimmed.len() == rest.len() {
            return Err("attributes must be separated by whitespace".into());
        }
        let name_len = trimmed
            .iter()
            .position(|&b| matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'='))
            .unwrap_or(trimmed.len());
        let (name, after) = trimmed.split_at(name_len);
        let shown = String::from_utf8_lossy(name);
        if !is_name(name, encoding) {
            return Err(format!("\"{shown}\" is not a valid attribute name"));
        }
        let after = trim_start(after)
            .strip_prefix(b"=")
            .ok_or_else(|| format!("attribute {shown} has no value: write {shown}=\"...\""))?;
        let after = trim_start(after);
        let quote = match after.first() {
            Some(&q @ (b'"' | b'\'')) => q,
            _ => return Err(format!("the value of attribute {shown} must be quoted")),
        };
        let end = after[1..]
            .iter()
            .position(|&b| b == quote)
            .ok_or_else(|| format!("the value of attribute {shown} is not closed"))?;
        if out.iter().any(|a| a.name == name) {
            return Err(format!("attribute {shown} appears twice"));
        }
        out.push(RawAttribute {
            name,
            value: &after[1..1 + end],
        });
        rest = &after[end + 2..];
    }
}

/// The value of an attribute (between its quotes) as XML 1.0 defines it: decoded, `<`
/// refused, references resolved (the five predefined entities and character references to
/// characters XML allows), and each literal tab, newline or carriage return (a CR LF pair
/// counting once) normalised to a space (section 3.3.3).
pub fn attribute_value(raw: &[u8], encoding: Encoding) -> Result<String, String> {
    let mut decoded = String::new();
    encoding::decode_into(raw, encoding, &mut decoded)
        .map_err(|_| "the value has bytes or characters that are not allowed".to_owned())?;
    let mut out = String::with_capacity(decoded.len());
    let mut rest = decoded.as_str();
    while let Some(i) = rest.find(['<', '&', '\t', '\n', '\r']) {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        rest = match rest.as_bytes()[i] {
            b'<' => return Err("\"<\" is not allowed in an attribute value: write &lt;".into()),
            b'&' => {
                let end = after
                    .find(';')
                    .ok_or("\"&\" must start a reference ending in \";\": write &amp;")?;
                out.push(resolve_reference(&after[..end])?);
                &after[end + 1..]
            }
            b'\r' => {
                out.push(' ');
                after.strip_prefix('\n').unwrap_or(after)
            }
            _ => {
                out.push(' ');
                after
            }
        };
    }
    out.push_str(rest);
    Ok(out)
}

/// The character `&name;` stands for, without a DTD: a predefined entity or a character
/// reference to a character XML allows.
fn resolve_reference(name: &str) -> Result<char, String> {
    let number = if let Some(hex) = name.strip_prefix("#x") {
        Some((hex, 16))
    } else {
        name.strip_prefix('#').map(|dec| (dec, 10))
    };
    if let Some((digits, radix)) = number {
        return (!digits.is_empty() && digits.chars().all(|c| c.is_digit(radix)))
            .then(|| u32::from_str_radix(digits, radix).ok())
            .flatten()
            .and_then(char::from_u32)
            .filter(|&c| encoding::is_xml_char(c))
            .ok_or_else(|| format!("&{name}; does not refer to a character XML allows"));
    }
    match name {
        "lt" => Ok('<'),
        "gt" => Ok('>'),
        "amp" => Ok('&'),
        "apos" => Ok('\''),
        "quot" => Ok('"'),
        _ if is_name(name.as_bytes(), Encoding::Utf8) => Err(format!(
            "entity reference &{name}; is not defined: only &lt; &gt; &amp; &apos; &quot; and \
             character references (&#...;) are accepted"
        )),
        _ => Err("\"&\" must start a reference ending in \";\": write &amp;".into()),
    }
}

/// One `name="value"` item of a declaration.
type Item<'a> = (&'a [u8], &'a [u8]);

/// `S Name Eq 'value'` items of a declaration.
struct Pairs<'a> {
    rest: &'a [u8],
}

impl<'a> Pairs<'a> {
    fn next(&mut self) -> Result<Option<Item<'a>>, String> {
        let trimmed = trim_start(self.rest);
        if trimmed.is_empty() {
            return Ok(None);
        }
        if trimmed.len() == self.rest.len() {
            return Err("items of the XML declaration must be separated by whitespace".into());
        }
        let name_len = trimmed
            .iter()
            .position(|&b| !b.is_ascii_alphabetic())
            .unwrap_or(trimmed.len());
        let (name, after) = trimmed.split_at(name_len);
        let after = trim_start(after)
            .strip_prefix(b"=")
            .ok_or("expected = in the XML declaration")?;
        let after = trim_start(after);
        let quote = *after
            .first()
            .ok_or("expected a quoted value in the XML declaration")?;
        if quote != b'"' && quote != b'\'' {
            return Err("values in the XML declaration must be quoted".into());
        }
        let end = after[1..]
            .iter()
            .position(|&b| b == quote)
            .ok_or("unterminated value in the XML declaration")?;
        let value = &after[1..1 + end];
        self.rest = &after[end + 2..];
        Ok(Some((name, value)))
    }
}

fn trim_start(b: &[u8]) -> &[u8] {
    let n = b
        .iter()
        .position(|c| !matches!(c, b' ' | b'\t' | b'\r' | b'\n'))
        .unwrap_or(b.len());
    &b[n..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_xml_rules() {
        let name = |n: &str| is_name(n.as_bytes(), Encoding::Utf8);
        assert!(name("e_mail") && name("xsi:type") && name("a-b.c") && name("é") && name("a·"));
        assert!(!name("") && !name("1a") && !name("x/ml") && !name("-a"));
        // Hardening 3: a first character that is no NameStartChar was taken for a name
        // (then a schema error) where libxml2 finds the document malformed.
        for not_a_name in ["×", "·a", "\u{301}a", "\u{a0}a", "a×"] {
            assert!(!name(not_a_name), "{not_a_name:?}");
        }
        // A Latin-1 document's names are read in Latin-1: é is 0xE9, × is 0xD7.
        assert!(is_name(b"\xe9t\xe9", Encoding::Latin1));
        assert!(!is_name(b"\xd7", Encoding::Latin1));
    }

    #[test]
    fn attributes_follow_the_attribute_production() {
        let attrs = attributes(b" a=\"1\"\tb = '2' \n", Encoding::Utf8).unwrap();
        assert_eq!(
            attrs,
            [
                RawAttribute {
                    name: b"a",
                    value: b"1"
                },
                RawAttribute {
                    name: b"b",
                    value: b"2"
                }
            ]
        );
        assert!(attributes(b"", Encoding::Utf8).unwrap().is_empty());
        for bad in [
            &b" a"[..],
            b" a=1",
            b" a=\"1\"b=\"2\"",
            b" 1a=\"1\"",
            b" a=\"1\" a='2'",
            b" a=\"1",
            b" =\"1\"",
            b" a\x01=\"1\"",
        ] {
            assert!(
                attributes(bad, Encoding::Utf8).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn attribute_values_are_resolved_and_normalised() {
        let value = |raw: &[u8]| attribute_value(raw, Encoding::Utf8);
        assert_eq!(value(b"a&amp;b&#x2D;&#45;&lt;").unwrap(), "a&b--<");
        assert_eq!(value(b"a\tb\r\nc\rd&#10;").unwrap(), "a b c d\n");
        for bad in [
            &b"a<b"[..],
            b"a&b",
            b"&foo;",
            b"&#0;",
            b"&#xD800;",
            b"&#;",
            b"&#x;",
            b"&#12a;",
            b"\x01",
            b"\xff",
        ] {
            assert!(value(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn declarations_follow_the_grammar() {
        assert_eq!(parse_declaration(b"xml version=\"1.0\"").unwrap(), None);
        assert_eq!(
            parse_declaration(b"xml version='1.0' encoding='ISO-8859-1' standalone='yes' ")
                .unwrap(),
            Some("ISO-8859-1".into())
        );
        for bad in [
            &b"xml vrsion=\"1.0\""[..],
            b"xml <x>version=\"1.0\"",
            b"xml ve'rsion=\"1.0\"",
            b"xml version=\"1.0&#0;\"",
            b"xml encoding=\"UTF-8\" version=\"1.0\"",
            b"xml version=\"1.0\" standalone=\"maybe\"",
            b"xml version=\"1.0\"encoding=\"UTF-8\"",
            b"xml version=\"2.0\"",
        ] {
            assert!(
                parse_declaration(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
