//! Distinguished names (RFC 4514) as the directory reads and writes them: compared without
//! regard to case or spaces around separators, escapes undone; RDN values escaped for
//! writing.

/// A DN as compared: its RDNs' (attribute, value) pairs, attribute names and values ASCII
/// lowercased, escapes undone, spaces around separators dropped.
pub type Dn = Vec<(String, String)>;

/// `text` as a [`Dn`]; None when it is not one (an RDN without `=`, a bad escape).
pub fn parse_dn(text: &str) -> Option<Dn> {
    let mut dn = parse_dn_as_written(text)?;
    for (_, value) in &mut dn {
        value.make_ascii_lowercase();
    }
    Some(dn)
}

/// `text`'s RDNs: attribute names lowercased, values with their escapes undone and spaces
/// around them dropped, their case kept (a uid names an identity as written).
pub fn parse_dn_as_written(text: &str) -> Option<Dn> {
    let mut dn = Vec::new();
    if text.trim().is_empty() {
        return Some(dn);
    }
    let mut attribute = String::new();
    let mut value: Vec<u8> = Vec::new();
    let mut in_value = false;
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut finish = |attribute: &mut String, value: &mut Vec<u8>, in_value: bool| {
        let name = attribute.trim().to_ascii_lowercase();
        if !in_value || name.is_empty() {
            return false;
        }
        let Ok(text) = String::from_utf8(std::mem::take(value)) else {
            return false;
        };
        dn.push((name, text.trim().to_owned()));
        attribute.clear();
        true
    };
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'\\' if in_value => {
                let next = *bytes.get(i + 1)?;
                if next.is_ascii_hexdigit() {
                    let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                    value.push(u8::from_str_radix(hex, 16).ok()?);
                    i += 3;
                    continue;
                }
                value.push(next);
                i += 2;
                continue;
            }
            b'=' if !in_value => in_value = true,
            b',' | b';' | b'+' => {
                if !finish(&mut attribute, &mut value, in_value) {
                    return None;
                }
                in_value = false;
            }
            _ if in_value => value.push(b),
            _ => attribute.push(b as char),
        }
        i += 1;
    }
    if !finish(&mut attribute, &mut value, in_value) {
        return None;
    }
    Some(dn)
}

/// `value` escaped for an RDN (RFC 4514).
pub fn escape_rdn_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=' => {
                out.push('\\');
                out.push(c);
            }
            '#' | ' ' if i == 0 => {
                out.push('\\');
                out.push(c);
            }
            ' ' if i == last => out.push_str("\\ "),
            '\0' => out.push_str("\\00"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_compare_without_case_spaces_or_escapes() {
        assert_eq!(
            parse_dn("OU=Contacts, DC=example,dc=COM"),
            parse_dn("ou=contacts,dc=example,dc=com")
        );
        assert_eq!(
            parse_dn("uid=ext-a\\,b\\2Bc,ou=x").unwrap()[0],
            ("uid".into(), "ext-a,b+c".into())
        );
        assert_eq!(
            parse_dn_as_written("UID=Ext-A\\,B, ou=X").unwrap(),
            [("uid".into(), "Ext-A,B".into()), ("ou".into(), "X".into())]
        );
        assert_eq!(parse_dn(""), Some(Vec::new()));
        assert_eq!(parse_dn("not a dn"), None);
        assert_eq!(parse_dn("ou=x,"), None);
        let odd = " #a,b+c\"d\\e<f>g;h=i ";
        let dn = format!("uid={},ou=x", escape_rdn_value(odd));
        assert_eq!(parse_dn(&dn).unwrap()[0].1, odd.trim().to_ascii_lowercase());
    }
}
