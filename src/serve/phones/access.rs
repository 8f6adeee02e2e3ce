//! Access for phones and PBXes (phonebook feeds, caller-ID lookup): HTTP basic auth (phones
//! support it), a token in the path, and/or an allow-list of client networks. An endpoint
//! with none of them is refused when the service starts. Refusals are answered `401`/`403`
//! with nothing else (no JSON, no hint) and counted in `/metrics`.

use std::net::IpAddr;
use std::path::PathBuf;

use axum::http::{HeaderMap, header};

/// The access keys of a `[[phonebooks]]` or `[[lookups]]` entry, as configured.
pub struct AccessSettings<'c> {
    pub username: &'c Option<String>,
    pub password: &'c Option<String>,
    pub password_env: &'c Option<String>,
    pub password_file: &'c Option<PathBuf>,
    pub password_hash: &'c Option<String>,
    pub token: &'c Option<String>,
    pub token_env: &'c Option<String>,
    pub token_file: &'c Option<PathBuf>,
    pub allow: &'c [String],
}

/// Who may reach an endpoint: its secrets read and networks parsed.
#[derive(Clone)]
pub struct PhoneAccess {
    login: Option<(String, crate::secrets::Password)>,
    token: Option<String>,
    allow: Vec<ipnet::IpNet>,
}

/// Why a phone was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// 401 with a basic-auth challenge.
    Unauthorized,
    /// 403: a network not allowed.
    Forbidden,
}

/// The client networks of an `allow` list (CIDR, or one address), for the entry `at` names.
pub fn parse_networks(at: &str, allow: &[String]) -> Result<Vec<ipnet::IpNet>, String> {
    allow
        .iter()
        .map(|n| {
            n.parse::<ipnet::IpNet>()
                .or_else(|_| n.parse::<IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    format!("{at}: allow = {n:?} is not a network (CIDR, e.g. 10.0.0.0/8)")
                })
        })
        .collect()
}

/// Whether an `allow` list lets `client` in: an empty list lets every client in, a list
/// only the clients in one of its networks (an IPv4 client seen as IPv6 `::ffff:a.b.c.d`
/// as its IPv4 address).
pub fn network_allows(allow: &[ipnet::IpNet], client: Option<IpAddr>) -> bool {
    allow.is_empty()
        || client.is_some_and(|ip| {
            let ip = match ip {
                IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
                v4 => v4,
            };
            allow.iter().any(|n| n.contains(&ip))
        })
}

impl PhoneAccess {
    /// Reads the secrets and parses the networks of the entry `at` names (e.g.
    /// `[[lookups]] default`), `what` it is ("a feed"); refuses an endpoint nobody could be
    /// kept out of, half a login and a guessable token.
    pub fn resolve(
        at: &str,
        what: &str,
        settings: AccessSettings<'_>,
    ) -> Result<PhoneAccess, String> {
        let password = crate::config::read_password(
            at,
            settings.password,
            settings.password_env,
            settings.password_file,
            settings.password_hash,
        )?;
        let token = crate::config::read_secret(
            at,
            "token",
            settings.token,
            settings.token_env,
            settings.token_file,
        )?
        .filter(|t| !t.is_empty());
        let login = match (settings.username, password) {
            (Some(user), Some(password)) => Some((user.clone(), password)),
            (None, None) => None,
            _ => {
                return Err(format!(
                    "{at}: basic auth needs both username and a password"
                ));
            }
        };
        if token.as_ref().is_some_and(|t| t.len() < 16) {
            return Err(format!(
                "{at}: the token must be at least 16 characters (unguessable)"
            ));
        }
        let allow = parse_networks(at, settings.allow)?;
        if login.is_none() && token.is_none() && allow.is_empty() {
            return Err(format!(
                "{at}: {what} needs basic auth (username, password), a token or an allow list"
            ));
        }
        Ok(PhoneAccess {
            login,
            token,
            allow,
        })
    }

    /// Whether `client`, with these headers and the token of its URL, may read.
    pub fn check(
        &self,
        client: Option<IpAddr>,
        headers: &HeaderMap,
        path_token: Option<&str>,
    ) -> Result<(), Refusal> {
        use crate::secrets::constant_time_eq;
        if !network_allows(&self.allow, client) {
            return Err(Refusal::Forbidden);
        }
        if self.login.is_none() && self.token.is_none() {
            return Ok(());
        }
        if let (Some(token), Some(given)) = (&self.token, path_token)
            && constant_time_eq(given.as_bytes(), token.as_bytes())
        {
            return Ok(());
        }
        if let (Some((user, password)), Some((given_user, given_password))) =
            (&self.login, basic(headers))
        {
            let user_ok = constant_time_eq(given_user.as_bytes(), user.as_bytes());
            let password_ok = password.matches(&given_password);
            if user_ok & password_ok {
                return Ok(());
            }
        }
        Err(Refusal::Unauthorized)
    }
}

/// The user name and password of an `Authorization: Basic` header.
fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    use base64::Engine as _;
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}
