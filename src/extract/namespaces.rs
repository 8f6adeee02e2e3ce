//! Namespaces in XML 1.0 (Third Edition) for the streaming reader: qualified names, the
//! constraints on `xmlns` declarations, and the prefixes in scope at each element.
//!
//! A namespace error makes a document not namespace-well-formed. libxml2 reports these as
//! "namespace error" and, unlike ucm, carries on; ucm refuses the document, because a source
//! that gets them wrong is broken in ways a merge should not guess around.

/// The namespace the `xml` prefix is bound to, and only it.
pub const XML_NS: &[u8] = b"http://www.w3.org/XML/1998/namespace";
/// The namespace of `xmlns` attributes, which nothing may be bound to.
pub const XMLNS_NS: &[u8] = b"http://www.w3.org/2000/xmlns/";
/// XML Schema instance attributes (`xsi:noNamespaceSchemaLocation`, ...).
pub const XSI_NS: &[u8] = b"http://www.w3.org/2001/XMLSchema-instance";

/// The prefixes declared by the open elements, innermost last.
#[derive(Clone, Debug, Default)]
pub struct Scopes {
    bindings: Vec<Binding>,
}

#[derive(Clone, Debug)]
struct Binding {
    /// Empty for the default namespace.
    prefix: Vec<u8>,
    /// Empty when a default namespace declaration undeclares it (`xmlns=""`).
    uri: Vec<u8>,
    /// Depth of the declaring element (0 for the root).
    depth: usize,
}

impl Scopes {
    /// Declares `prefix` (empty: the default namespace) as `uri` for the element at `depth`
    /// and its content, after checking the declaration (Namespaces in XML 1.0, section 3).
    pub fn declare(&mut self, prefix: &[u8], uri: &[u8], depth: usize) -> Result<(), String> {
        check_declaration(prefix, uri)?;
        self.bindings.push(Binding {
            prefix: prefix.to_vec(),
            uri: uri.to_vec(),
            depth,
        });
        Ok(())
    }

    /// Forgets what the elements at `depth` and deeper declared: called when the element at
    /// `depth` ends.
    pub fn leave(&mut self, depth: usize) {
        while self.bindings.last().is_some_and(|b| b.depth >= depth) {
            self.bindings.pop();
        }
    }

    /// Keeps only the root's declarations: what a chunk read from inside the root starts with.
    pub fn of_root(&self) -> Scopes {
        Scopes {
            bindings: self
                .bindings
                .iter()
                .filter(|b| b.depth == 0)
                .cloned()
                .collect(),
        }
    }

    /// The namespace `prefix` is bound to: `xml` always, others as declared; `None` when it is
    /// not declared. The empty prefix gives the default namespace (empty when there is none).
    pub fn resolve(&self, prefix: &[u8]) -> Option<&[u8]> {
        if prefix == b"xml" {
            return Some(XML_NS);
        }
        match self.bindings.iter().rev().find(|b| b.prefix == prefix) {
            Some(b) => Some(&b.uri),
            None if prefix.is_empty() => Some(b""),
            None => None,
        }
    }
}

/// Splits a name into prefix and local part: a `QName` is an `NCName`, or two joined by
/// one colon. `name` is already an XML `Name`.
pub fn split_qname(name: &[u8]) -> Result<(Option<&[u8]>, &[u8]), String> {
    let Some(colon) = name.iter().position(|&b| b == b':') else {
        return Ok((None, name));
    };
    let (prefix, local) = (&name[..colon], &name[colon + 1..]);
    if !is_ncname(prefix) || !is_ncname(local) {
        return Err(format!(
            "\"{}\" is not a qualified name: Namespaces in XML allow one colon, between a \
             prefix and a local name",
            String::from_utf8_lossy(name)
        ));
    }
    Ok((Some(prefix), local))
}

/// Whether a part of an XML `Name` is an `NCName`: not empty, no colon, and a first
/// character that may start a name.
fn is_ncname(part: &[u8]) -> bool {
    part.first()
        .is_some_and(|&b| !b.is_ascii_digit() && !matches!(b, b'-' | b'.'))
        && !part.contains(&b':')
}

/// The constraints on a declaration `xmlns:prefix="uri"` (or `xmlns="uri"` with an empty
/// prefix), as Namespaces in XML 1.0 states them, and a URI that is a URI reference.
fn check_declaration(prefix: &[u8], uri: &[u8]) -> Result<(), String> {
    let shown = String::from_utf8_lossy(uri);
    let attr = if prefix.is_empty() {
        "xmlns".to_owned()
    } else {
        format!("xmlns:{}", String::from_utf8_lossy(prefix))
    };
    if prefix == b"xmlns" {
        return Err("the prefix xmlns must not be declared".into());
    }
    if prefix == b"xml" {
        return if uri == XML_NS {
            Ok(())
        } else {
            Err(format!(
                "the prefix xml is bound to {} and must not be declared as \"{shown}\"",
                String::from_utf8_lossy(XML_NS)
            ))
        };
    }
    if uri == XML_NS {
        return Err(format!(
            "{attr}: the XML namespace may only be bound to the prefix xml"
        ));
    }
    if uri == XMLNS_NS {
        return Err(format!("{attr}: the xmlns namespace must not be declared"));
    }
    if uri.is_empty() {
        return if prefix.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{attr}=\"\": a prefix cannot be undeclared in Namespaces in XML 1.0"
            ))
        };
    }
    if !is_uri_reference(uri) {
        return Err(format!(
            "{attr}: \"{shown}\" is not a URI reference (RFC 3986); percent-encode spaces and \
             other characters a URI cannot hold"
        ));
    }
    Ok(())
}

/// Whether `s` is an RFC 3986 `URI-reference` (ASCII only, as in libxml2: an IRI's
/// characters must be percent-encoded).
pub fn is_uri_reference(s: &[u8]) -> bool {
    let (rest, fragment) = split_at_first(s, b'#');
    let (rest, query) = split_at_first(rest, b'?');
    let tail_ok = |part: Option<&[u8]>| {
        part.is_none_or(|p| all_chars(p, |b| is_pchar(b) || b == b'/' || b == b'?'))
    };
    if !tail_ok(fragment) || !tail_ok(query) {
        return false;
    }
    // A colon before the first slash ends a scheme; a relative reference's first segment
    // cannot hold one.
    let first_slash = rest.iter().position(|&b| b == b'/').unwrap_or(rest.len());
    let rest = match rest[..first_slash].iter().position(|&b| b == b':') {
        Some(colon) => {
            let scheme = &rest[..colon];
            let scheme_ok = scheme.first().is_some_and(u8::is_ascii_alphabetic)
                && scheme
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
            if !scheme_ok {
                return false;
            }
            &rest[colon + 1..]
        }
        None => rest,
    };
    let path = match rest.strip_prefix(b"//") {
        Some(after) => {
            let end = after.iter().position(|&b| b == b'/').unwrap_or(after.len());
            if !is_authority(&after[..end]) {
                return false;
            }
            &after[end..]
        }
        None => rest,
    };
    all_chars(path, |b| is_pchar(b) || b == b'/')
}

/// `[ userinfo "@" ] host [ ":" port ]`.
fn is_authority(authority: &[u8]) -> bool {
    let (userinfo, hostport) = match authority.iter().rposition(|&b| b == b'@') {
        Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
        None => (None, authority),
    };
    if !userinfo.is_none_or(|u| all_chars(u, |b| is_unreserved(b) || is_sub_delim(b) || b == b':'))
    {
        return false;
    }
    let (host_ok, after_host) = if let Some(literal) = hostport.strip_prefix(b"[") {
        match literal.iter().position(|&b| b == b']') {
            Some(end) => (
                !literal[..end].is_empty()
                    && literal[..end].iter().all(|&b| {
                        b.is_ascii_hexdigit() || b == b':' || b == b'.' || is_unreserved(b)
                    }),
                &literal[end + 1..],
            ),
            None => return false,
        }
    } else {
        let end = hostport
            .iter()
            .position(|&b| b == b':')
            .unwrap_or(hostport.len());
        (
            all_chars(&hostport[..end], |b| is_unreserved(b) || is_sub_delim(b)),
            &hostport[end..],
        )
    };
    host_ok
        && (after_host.is_empty()
            || after_host
                .strip_prefix(b":")
                .is_some_and(|port| port.iter().all(u8::is_ascii_digit)))
}

fn split_at_first(s: &[u8], delimiter: u8) -> (&[u8], Option<&[u8]>) {
    match s.iter().position(|&b| b == delimiter) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    }
}

/// Whether every byte of `s` passes `allowed`, percent-encodings (`%` and two hex digits)
/// aside.
fn all_chars(s: &[u8], allowed: impl Fn(u8) -> bool) -> bool {
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            if !(i + 2 < s.len() && s[i + 1].is_ascii_hexdigit() && s[i + 2].is_ascii_hexdigit()) {
                return false;
            }
            i += 3;
        } else if allowed(s[i]) {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn is_sub_delim(b: u8) -> bool {
    matches!(
        b,
        b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
    )
}

fn is_pchar(b: u8) -> bool {
    is_unreserved(b) || is_sub_delim(b) || b == b':' || b == b'@'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualified_names_have_at_most_one_colon_between_two_parts() {
        assert_eq!(split_qname(b"contact").unwrap(), (None, &b"contact"[..]));
        assert_eq!(
            split_qname(b"xsi:type").unwrap(),
            (Some(&b"xsi"[..]), &b"type"[..])
        );
        for bad in [&b":a"[..], b"a:", b"a:b:c", b"xmlns:", b"xmlns:1p", b"a:-b"] {
            assert!(
                split_qname(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn declarations_follow_the_namespace_constraints() {
        let mut scopes = Scopes::default();
        scopes.declare(b"p", b"urn:x", 0).unwrap();
        scopes.declare(b"", b"", 1).unwrap();
        scopes.declare(b"xml", XML_NS, 1).unwrap();
        for (prefix, uri) in [
            (&b"xmlns"[..], &b"urn:x"[..]),
            (b"xmlns", XMLNS_NS),
            (b"xml", b"urn:x"),
            (b"p", XML_NS),
            (b"", XML_NS),
            (b"p", XMLNS_NS),
            (b"", XMLNS_NS),
            (b"p", b""),
            (b"p", b"not a uri"),
        ] {
            assert!(
                scopes.declare(prefix, uri, 2).is_err(),
                "xmlns:{}={}",
                String::from_utf8_lossy(prefix),
                String::from_utf8_lossy(uri)
            );
        }
    }

    #[test]
    fn prefixes_are_in_scope_in_the_declaring_element_and_its_content() {
        let mut scopes = Scopes::default();
        scopes.declare(b"p", b"urn:root", 0).unwrap();
        scopes.declare(b"p", b"urn:inner", 1).unwrap();
        scopes.declare(b"q", b"urn:q", 2).unwrap();
        assert_eq!(scopes.resolve(b"p"), Some(&b"urn:inner"[..]));
        assert_eq!(scopes.resolve(b"xml"), Some(XML_NS));
        scopes.leave(1);
        assert_eq!(scopes.resolve(b"p"), Some(&b"urn:root"[..]));
        assert_eq!(scopes.resolve(b"q"), None);
        assert_eq!(scopes.resolve(b""), Some(&b""[..]));
        assert_eq!(scopes.of_root().bindings.len(), 1);
    }

    /// The verdicts of libxml2 2.9 (`xmllint`) on namespace names, probed one by one.
    #[test]
    fn uri_references_are_judged_as_libxml2_judges_them() {
        for ok in [
            "urn:x",
            "%41",
            "http://[::1]/",
            "a:b",
            "a+b:c",
            "rel/path",
            "rel:path/x",
            "#frag",
            "?q",
            "http:",
            "http://a:b@c:80/",
            "http://x?a?b",
            "a&b",
            "//host/p",
            "///p",
            ".",
            "a/b:c",
            "mailto:a@b",
            "http://www.w3.org/2001/XMLSchema-instance",
        ] {
            assert!(is_uri_reference(ok.as_bytes()), "{ok} is a URI reference");
        }
        for bad in [
            "a b",
            "%zz",
            "1a:b",
            "+a:b",
            "http://x/ä",
            "http://x/a|b",
            "http://x/{a}",
            "http://x/a^b",
            "http://x/a`",
            "http://x/\\",
            "a%2",
            ":a",
            "http://x/%",
            "x:y#a#b",
            "http://x/a[b]",
            "http://[bad/",
            "http://x:abc/",
            "http://x/>",
            "ä",
        ] {
            assert!(
                !is_uri_reference(bad.as_bytes()),
                "{bad} is not a URI reference"
            );
        }
    }
}
