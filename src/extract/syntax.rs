//! Well-formedness rules quick-xml leaves to its caller: XML names, the XML declaration's
//! exact grammar, attributes (XML 1.0 productions 41 and 10: `Attribute`, `AttValue`), and
//! `]]>` in character data.

use crate::extract::encoding::{self, Encoding};

/// Whether `bytes` is an XML `Name` (ASCII rules exactly; any non-ASCII UTF-8 accepted).
pub fn is_name(bytes: &[u8]) -> bool {
    let Some((&first, rest)) = bytes.split_first() else {
        return false;
    };
    let start = |b: u8| b.is_ascii_alphabetic() || b == b'_' || b == b':' || b >= 0x80;
    start(first)
        && rest
            .iter()
            .all(|&b| start(b) || b.is_ascii_digit() || b == b'.' || b == b'-')
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
pub fn attributes(raw: &[u8]) -> Result<Vec<RawAttribute<'_>>, String> {
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
        if !is_name(name) {
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
        _ if is_name(name.as_bytes()) => Err(format!(
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
        assert!(
            is_name(b"e_mail")
                && is_name(b"xsi:type")
                && is_name(b"a-b.c")
                && is_name("é".as_bytes())
        );
        assert!(!is_name(b"") && !is_name(b"1a") && !is_name(b"x/ml") && !is_name(b"-a"));
    }

    #[test]
    fn attributes_follow_the_attribute_production() {
        let attrs = attributes(b" a=\"1\"\tb = '2' \n").unwrap();
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
        assert!(attributes(b"").unwrap().is_empty());
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
            assert!(attributes(bad).is_err(), "{}", String::from_utf8_lossy(bad));
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
