//! Well-formedness rules quick-xml leaves to its caller: XML names, the XML declaration's
//! exact grammar, and `]]>` in character data.

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
