//! The service's JSON answers: errors as `{"error": reason}`, the bare 401, 503 when shedding
//! load, refusals of the JSON endpoints ([`ApiError`]), and the answer to a request that
//! started a run or an apply.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::state::StartRefused;

/// 503 for a request beyond `max_requests_in_flight`.
pub fn overloaded() -> Response {
    let mut response = error(
        StatusCode::SERVICE_UNAVAILABLE,
        "the service is handling as many requests as it is allowed to; try again shortly",
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// An error as `{"error": message}` with its status.
pub fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

/// The answer to a request that started a run (or an apply) on a task of its own: its report,
/// 200 when it succeeded, 422 when it failed or was refused; 409 when it could not start.
pub async fn answer_task(
    name: &str,
    started: Result<tokio::sync::oneshot::Receiver<crate::report::RunReport>, StartRefused>,
) -> Response {
    let report = match started {
        Ok(report) => report,
        Err(StartRefused::NotLoaded) => {
            return error(
                StatusCode::CONFLICT,
                format!("pipeline {name} is not loaded: see GET /ready"),
            );
        }
        Err(StartRefused::Running) => {
            return error(
                StatusCode::CONFLICT,
                format!("pipeline {name} is running; try again when it has finished"),
            );
        }
    };
    let Ok(report) = report.await else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the run ended without a report: see the service log",
        );
    };
    let status = if report.status.is_success() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let body: Value = serde_json::from_str(&report.to_json()).unwrap_or(Value::Null);
    (status, Json(body)).into_response()
}

/// 401 with `WWW-Authenticate: Bearer` and nothing else.
pub fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        Json(json!({ "error": "unauthorized" })),
    )
        .into_response()
}

/// A refusal: its status and reason (`{"error": reason}`), or 401 and nothing else.
pub struct ApiError(pub StatusCode, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.0 == StatusCode::UNAUTHORIZED {
            unauthorized()
        } else {
            error(self.0, self.1)
        }
    }
}

/// What a JSON endpoint answers: a response, or a refusal.
pub type Answer = Result<Response, ApiError>;

/// 503 with the reason: the database could not be read or written.
pub fn unavailable(e: impl ToString) -> ApiError {
    ApiError(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
}
