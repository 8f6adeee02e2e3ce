//! "Test the source" (`POST /pipelines/{pipeline}/test-source`): the console's `ucm fetch
//! --preview`. Downloads the pipeline's source (nothing is staged or written) and shows its
//! first contacts as the pipeline maps them: each value with the column, property or element
//! it comes from, the fields read from nowhere, what the source has that no field reads, and
//! the first error when the source is not valid.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::html;

use super::page::{LoggedIn, TokenForm, csrf_refused, layout, not_found, problem};
use crate::extract::preview::Preview;
use crate::fields::{FIELD_COUNT, FIELD_NAMES};
use crate::serve::state::Service;

/// Contacts the test shows.
const SHOWN: usize = 5;

/// `POST /pipelines/{pipeline}/test-source`.
pub async fn test_source(
    State(service): State<Arc<Service>>,
    LoggedIn(session): LoggedIn,
    Path(name): Path<String>,
    axum::Form(form): axum::Form<TokenForm>,
) -> Response {
    if let Some(refused) = csrf_refused(&session, &form.csrf) {
        return refused;
    }
    let Some(Ok(loaded)) = service.pipeline(&name).map(|p| &p.loaded) else {
        return not_found(&session, &format!("No loaded pipeline {name}."));
    };
    let url =
        crate::extract::fetch::mask_url(&loaded.config.source.url.clone().unwrap_or_default());
    let preview =
        match crate::stage::preview(Arc::clone(&loaded.contract), &loaded.config, SHOWN).await {
            Ok(preview) => preview,
            Err(e) => {
                return problem(
                    StatusCode::BAD_GATEWAY,
                    Some(&session),
                    "The source cannot be read",
                    &e.to_string(),
                );
            }
        };
    let title = format!("Test of the source of {name}");
    let status = if preview.error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    (status, layout(&title, Some(&session), body(&url, &preview))).into_response()
}

fn body(url: &str, preview: &Preview) -> maud::Markup {
    let nowhere: Vec<&str> = (0..FIELD_COUNT)
        .filter(|&i| preview.from[i].is_none())
        .map(|i| FIELD_NAMES[i])
        .collect();
    html! {
        p {
            "The first " (preview.contacts.len()) " contacts of " code { (url) }
            ", as the pipeline maps them. Nothing was staged or written."
        }
        @for (n, (line, values)) in preview.contacts.iter().enumerate() {
            h2 { "Contact " (n + 1) " (line " (line) ")" }
            table.preview {
                tr { th { "field" } th { "value" } th { "from" } }
                @for (i, value) in values.iter().enumerate() {
                    @if let Some(value) = value {
                        tr {
                            td { (FIELD_NAMES[i]) }
                            td { (value) }
                            td { (preview.from[i].as_deref().unwrap_or("?")) }
                        }
                    }
                }
            }
        }
        @if !nowhere.is_empty() {
            p.nowhere { "Fields read from nowhere: " (nowhere.join(", ")) }
        }
        @if !preview.unmapped.is_empty() {
            p.unmapped { "In the source, read by no field: " (preview.unmapped.join(", ")) }
        }
        @if let Some(error) = &preview.error {
            p.failed.problem { "The source is not valid: " (error) }
        }
    }
}
