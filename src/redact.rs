//! What ucm shows of a URL and of untrusted text: every URL that is printed, logged, stored
//! in a run report or served goes through [`mask_url`], which never echoes user-info (user
//! names, passwords or tokens before an `@`) or the values of secret-looking query
//! parameters, whether or not the URL parses; text from a client or a contact that reaches
//! a log line or a terminal goes through [`printable`], which neutralises control
//! characters (a contact named with an escape sequence cannot repaint a terminal).

/// Query parameter names (lowercase substrings) whose values are secrets.
const SECRET_PARAMETERS: [&str; 10] = [
    "pass",
    "pwd",
    "secret",
    "token",
    "key",
    "auth",
    "sig",
    "credential",
    "session",
    "cookie",
];

/// `url` with its user-info replaced by `***` and the values of secret-looking query
/// parameters (`api_key`, `token`, `password`, ...) by `***`. Works on the text, so a URL
/// that does not parse (a `#` in a password, a bad port) is masked all the same.
pub fn mask_url(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(i) => url.split_at(i + 3),
        None => ("", url),
    };
    // The user-info ends at the last `@` before the path that follows the first `@`; an
    // `@` after the first `/` is part of the path.
    let rest = match (rest.find('@'), rest.find('/')) {
        (Some(at), slash) if !scheme.is_empty() && slash.is_none_or(|s| at < s) => {
            let authority_end = rest[at..].find('/').map_or(rest.len(), |s| at + s);
            let last_at = rest[..authority_end].rfind('@').expect("one @ at least");
            format!("***{}", &rest[last_at..])
        }
        _ => rest.to_owned(),
    };
    let Some(question) = rest.find('?') else {
        return format!("{scheme}{rest}");
    };
    let (before, query) = rest.split_at(question + 1);
    let (query, fragment) = match query.find('#') {
        Some(hash) => query.split_at(hash),
        None => (query, ""),
    };
    let masked: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if is_secret(key) => format!("{key}=***"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{scheme}{before}{}{fragment}", masked.join("&"))
}

fn is_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    SECRET_PARAMETERS.iter().any(|s| key.contains(s))
}

/// `text` (an error message that may quote `url`, as HTTP clients do) with `url` masked.
pub fn mask_in(text: &str, url: &str) -> String {
    if url.is_empty() {
        return text.to_owned();
    }
    text.replace(url, &mask_url(url))
}

/// `text` for a log line or a terminal: control characters shown as `\u{..}` escapes, at most `max`
/// characters.
pub fn printable(text: &str, max: usize) -> String {
    let mut out: String = text
        .chars()
        .take(max)
        .flat_map(|c| {
            if c.is_control() {
                c.escape_unicode().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect();
    if text.chars().count() > max {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_show_control_characters_escaped_and_long_names_cut() {
        assert_eq!(printable("adm\nin\u{1b}[31m", 64), "adm\\u{a}in\\u{1b}[31m");
        assert_eq!(
            printable(&"x".repeat(70), 64),
            format!("{}…", "x".repeat(64))
        );
    }

    #[test]
    fn user_info_is_never_echoed_even_when_the_url_does_not_parse() {
        let cases = [
            (
                "https://bob:s3cr%40t@example.com/x.xml",
                "https://***@example.com/x.xml",
            ),
            // A `#` in the password: no URL parser reads this as user-info.
            ("http://user:S3cr#tPW@host/x.xml", "http://***@host/x.xml"),
            // A bad port.
            (
                "http://user:pw@host:99999/x.xml",
                "http://***@host:99999/x.xml",
            ),
            // A token alone as user-info.
            (
                "https://ghp_abc123@example.com/c.xml",
                "https://***@example.com/c.xml",
            ),
            // An `@` in the password too.
            ("http://u:p@ss@host/x", "http://***@host/x"),
            (
                "postgres://ucm:s%40cret@db.example:5432/ucm",
                "postgres://***@db.example:5432/ucm",
            ),
            // An `@` in the path is not user-info.
            (
                "https://example.com/contacts@2.xml",
                "https://example.com/contacts@2.xml",
            ),
            ("https://example.com/x.xml", "https://example.com/x.xml"),
            ("samples/x.xml", "samples/x.xml"),
            ("sqlite://ucm.db", "sqlite://ucm.db"),
        ];
        for (url, masked) in cases {
            assert_eq!(mask_url(url), masked, "{url}");
        }
    }

    #[test]
    fn secret_looking_query_parameters_are_masked() {
        assert_eq!(
            mask_url("https://h/x.xml?api_key=K1&page=2&Token=T&sig=S#frag"),
            "https://h/x.xml?api_key=***&page=2&Token=***&sig=***#frag"
        );
        assert_eq!(
            mask_url("postgres://ucm@db/ucm?sslmode=require&password=s3cret"),
            "postgres://***@db/ucm?sslmode=require&password=***"
        );
        assert_eq!(mask_url("https://h/x?flag"), "https://h/x?flag");
    }

    #[test]
    fn a_url_quoted_in_an_error_message_is_masked() {
        let url = "http://u:pw@127.0.0.1:1/x.xml?key=k";
        assert_eq!(
            mask_in(&format!("error sending request for url ({url})"), url),
            "error sending request for url (http://***@127.0.0.1:1/x.xml?key=***)"
        );
    }
}
