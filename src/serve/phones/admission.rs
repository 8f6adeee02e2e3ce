//! Letting a phone or PBX in: the failure throttle per client address first, then the
//! endpoint's own access rules ([`super::access`]); refusals answered bare and counted.

use std::net::IpAddr;

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::access::{PhoneAccess, Refusal};
use crate::serve::state::Service;

/// Lets a phone in (None), or answers why not: first an address refused for presenting wrong
/// credentials too often (`429` with `Retry-After`, counted as `{kind}_throttled`, see
/// [`crate::serve::throttle::FailureThrottle`]), then the endpoint's own check. Wrong
/// credentials (a basic-auth header or a token in the path that do not match) count against
/// the address; a request with none does not (phones try without, then answer the 401).
pub fn admit(
    service: &Service,
    access: &PhoneAccess,
    client: Option<IpAddr>,
    headers: &HeaderMap,
    path_token: Option<&str>,
    kind: &str,
    realm: &str,
) -> Option<Response> {
    if let Some(ip) = client
        && let Some(wait) = service.phone_throttle.refused(ip)
    {
        service.metrics.refused(&format!("{kind}_throttled"));
        let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
        return Some(
            (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, seconds.to_string())],
            )
                .into_response(),
        );
    }
    access
        .check(client, headers, path_token)
        .err()
        .map(|refusal| {
            let presented = path_token.is_some() || headers.contains_key(header::AUTHORIZATION);
            if refusal == Refusal::Unauthorized
                && presented
                && let Some(ip) = client
            {
                service.phone_throttle.failed(ip);
            }
            refuse(service, refusal, kind, realm)
        })
}

/// The bare answer to a refusal, counted as `ucm_http_refusals{reason="{kind}_unauthorized"}`
/// or `{kind}_network`; `realm` names the endpoint in the basic-auth challenge.
fn refuse(service: &Service, refusal: Refusal, kind: &str, realm: &str) -> Response {
    match refusal {
        Refusal::Forbidden => {
            service.metrics.refused(&format!("{kind}_network"));
            StatusCode::FORBIDDEN.into_response()
        }
        Refusal::Unauthorized => {
            service.metrics.refused(&format!("{kind}_unauthorized"));
            (
                StatusCode::UNAUTHORIZED,
                [(
                    header::WWW_AUTHENTICATE,
                    format!("Basic realm=\"{realm}\", charset=\"UTF-8\""),
                )],
            )
                .into_response()
        }
    }
}
