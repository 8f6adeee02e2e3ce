//! What the JSON endpoints of the live state and the cluster do first: check the login, find
//! the database holding the contacts and their live state, read a JSON body.

use axum::http::{HeaderMap, StatusCode};

use crate::load::Store;
use crate::serve::answers::{ApiError, unavailable};
use crate::serve::auth::authorized;
use crate::serve::state::Service;

pub fn check(service: &Service, headers: &HeaderMap) -> Result<(), ApiError> {
    if authorized(service, headers) {
        Ok(())
    } else {
        Err(ApiError(StatusCode::UNAUTHORIZED, String::new()))
    }
}

/// The objects' database, or the reason there is none.
pub fn store(service: &Service) -> Result<&Store, ApiError> {
    service
        .objects_store()
        .ok_or_else(|| unavailable("no pipeline is loaded, so there is no contacts database"))
}

/// Reads a JSON body, answering 400 with serde's reason when it does not fit.
pub fn body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, format!("invalid body: {e}")))
}
