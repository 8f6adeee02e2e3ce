//! ucm, the Unified Communication Model: keeps a phone system's contact directory merged with
//! an external contacts source.
//!
//! The pipeline's stages are modules: [`extract`] (read, validate, stream), [`transform`]
//! (match and merge), [`load`] (atomic database writes); [`pipeline`] runs them together and
//! [`report`] describes what a run did.

pub mod blocking;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod directory;
pub mod extract;
pub mod fields;
pub mod generate;
pub mod load;
pub mod numbers;
pub mod phonebook;
pub mod pipeline;
pub mod plan;
pub mod redact;
pub mod report;
pub mod schedule;
pub mod secrets;
pub mod serve;
pub mod stage;
pub mod timestamps;
pub mod transform;
