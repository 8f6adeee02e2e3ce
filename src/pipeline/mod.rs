//! Runs the pipeline once: extract, transform and load in one streaming pass, inside one
//! transaction, so a run lands whole or not at all.
//!
//! The parse-and-merge side ([`parse`]) runs on its own thread and hands batches of changes
//! to the database side ([`transaction`]) over a bounded channel, so the two cores work at
//! the same time and memory stays bounded by the channel, the directory and the key index.
//! [`execute`] runs a request and records it.

mod execute;
mod parse;
mod request;
mod transaction;

pub use execute::execute;
pub use request::{NoProgress, Progress, RunRequest};
