//! The console's browser sessions: a random id in a cookie (`HttpOnly`, `SameSite=Strict`,
//! `Secure` behind TLS) and, per session, a CSRF token every form carries back. The API keeps
//! its bearer tokens (`serve::auth`); a cookie never authorises an API call.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::http::{HeaderMap, HeaderValue, header};
use jiff::{SignedDuration, Timestamp};

use crate::secrets::{constant_time_eq, random_hex};

/// The session cookie's name.
pub const COOKIE: &str = "ucm_session";

/// A logged-in browser.
#[derive(Clone, Debug)]
pub struct Session {
    pub user: String,
    /// The token every form of this session carries (`csrf`), compared on every POST.
    pub csrf: String,
    expires: Timestamp,
}

impl Session {
    /// Whether `given` is this session's CSRF token (in constant time).
    pub fn csrf_matches(&self, given: &str) -> bool {
        constant_time_eq(given.as_bytes(), self.csrf.as_bytes())
    }
}

/// The open sessions, at most `max` (`[limits] max_browser_sessions`), each valid for
/// `minutes` (`[auth] session_minutes`) from its login.
pub struct BrowserSessions {
    open: Mutex<HashMap<String, Session>>,
    max: usize,
    minutes: u64,
}

impl BrowserSessions {
    pub fn new(max: usize, minutes: u64) -> BrowserSessions {
        BrowserSessions {
            open: Mutex::new(HashMap::new()),
            max: max.max(1),
            minutes: minutes.max(1),
        }
    }

    /// Opens a session for `user`; returns its id (the cookie's value). Expired sessions are
    /// dropped first; when `max` are still open, the one closest to expiry ends.
    pub fn open(&self, user: &str) -> Result<(String, Session), getrandom::Error> {
        let id = random_hex(32)?;
        let session = Session {
            user: user.to_owned(),
            csrf: random_hex(32)?,
            expires: Timestamp::now() + SignedDuration::from_mins(self.minutes as i64),
        };
        let mut open = self.open.lock().expect("no poisoning");
        let now = Timestamp::now();
        open.retain(|_, s| s.expires > now);
        while open.len() >= self.max {
            let Some(oldest) = open
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(id, _)| id.clone())
            else {
                break;
            };
            open.remove(&oldest);
        }
        open.insert(id.clone(), session.clone());
        Ok((id, session))
    }

    /// The session of the request's cookie, if it is open and not expired.
    pub fn of(&self, headers: &HeaderMap) -> Option<Session> {
        let id = cookie(headers, COOKIE)?;
        let open = self.open.lock().expect("no poisoning");
        open.get(id)
            .filter(|s| s.expires > Timestamp::now())
            .cloned()
    }

    /// Ends the session of the request's cookie.
    pub fn close(&self, headers: &HeaderMap) {
        if let Some(id) = cookie(headers, COOKIE) {
            self.open.lock().expect("no poisoning").remove(id);
        }
    }

    /// Seconds a new session lasts (the cookie's Max-Age).
    pub fn seconds(&self) -> u64 {
        self.minutes * 60
    }
}

/// The value of cookie `name` in the request's `Cookie` headers (RFC 6265: `a=1; b=2`).
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

/// The `Set-Cookie` value of a new session (`id`), valid for `seconds`.
pub fn set_cookie(id: &str, seconds: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={id}; Path=/; Max-Age={seconds}; HttpOnly; SameSite=Strict{secure}"
    ))
    .expect("hex ids are header-safe")
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie(secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict{secure}"
    ))
    .expect("a constant is header-safe")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::urls::behind_tls;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn the_session_cookie_is_found_among_others_and_in_any_cookie_header() {
        let h = headers(&[("cookie", "a=1; ucm_session=abc ; b=2")]);
        assert_eq!(cookie(&h, COOKIE), Some("abc"));
        let h = headers(&[("cookie", "a=1"), ("cookie", "ucm_session=xyz")]);
        assert_eq!(cookie(&h, COOKIE), Some("xyz"));
        assert_eq!(
            cookie(&headers(&[("cookie", "ucm_sessionx=1")]), COOKIE),
            None
        );
    }

    #[test]
    fn a_session_cookie_is_http_only_and_same_site_strict_and_secure_only_behind_tls() {
        let plain = set_cookie("ab", 60, false);
        assert_eq!(
            plain,
            "ucm_session=ab; Path=/; Max-Age=60; HttpOnly; SameSite=Strict"
        );
        assert!(
            set_cookie("ab", 60, true)
                .to_str()
                .unwrap()
                .ends_with("; Secure")
        );
        assert!(behind_tls(&headers(&[("x-forwarded-proto", "HTTPS")])));
        assert!(behind_tls(&headers(&[(
            "forwarded",
            "for=1.2.3.4;proto=https"
        )])));
        assert!(!behind_tls(&headers(&[("x-forwarded-proto", "http")])));
    }

    #[test]
    fn sessions_beyond_the_limit_end_the_oldest_and_a_closed_one_is_gone() {
        let sessions = BrowserSessions::new(2, 60);
        let (first, _) = sessions.open("admin").unwrap();
        let (second, s2) = sessions.open("admin").unwrap();
        let (third, _) = sessions.open("admin").unwrap();
        let with = |id: &str| {
            let mut h = HeaderMap::new();
            h.insert(
                header::COOKIE,
                HeaderValue::from_str(&format!("{COOKIE}={id}")).unwrap(),
            );
            h
        };
        assert!(sessions.of(&with(&first)).is_none(), "the oldest ended");
        let found = sessions.of(&with(&second)).unwrap();
        assert!(found.csrf_matches(&s2.csrf) && !found.csrf_matches("x"));
        sessions.close(&with(&third));
        assert!(sessions.of(&with(&third)).is_none());
    }
}
