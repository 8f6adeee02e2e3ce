//! The URLs the service writes into its pages and feeds: path segments and query values
//! percent-encoded, and whether the client reached the service over TLS (for `https://`
//! links and `Secure` cookies).

use axum::http::HeaderMap;

/// A path segment or query value, percent-encoded.
pub fn encoded(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Whether the browser reached the service over TLS: through a reverse proxy that says so
/// (`X-Forwarded-Proto: https`, or RFC 7239 `Forwarded: proto=https`). The service itself
/// speaks plain HTTP.
pub fn behind_tls(headers: &HeaderMap) -> bool {
    let says = |name: &str, https: fn(&str) -> bool| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .is_some_and(https)
    };
    says("x-forwarded-proto", |v| {
        v.trim().eq_ignore_ascii_case("https")
    }) || says("forwarded", |v| {
        v.split([';', ','])
            .any(|p| p.trim().eq_ignore_ascii_case("proto=https"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_percent_encoded_and_tls_is_read_from_the_proxy_headers() {
        assert_eq!(encoded("a b/c?d"), "a%20b%2Fc%3Fd");
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, v.parse().unwrap());
            }
            h
        };
        assert!(behind_tls(&headers(&[(
            "forwarded",
            "for=1.2.3.4;proto=https"
        )])));
        assert!(!behind_tls(&headers(&[])));
    }
}
