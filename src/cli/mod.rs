//! The `ucm` command line: argument definitions (a contract other tools rely on, [`args`])
//! and the commands they run, one file per group. Errors are `anyhow` here, at the edge, and
//! typed everywhere below.
//!
//! Dependencies point one way: `run` (dispatch) -> the command files -> `context` (what they
//! share) -> `args`, `formats`, `client`, `plans`, `progress`.

mod args;
mod client;
mod context;
mod formats;
mod inspect;
mod pipeline_commands;
mod plans;
mod progress;
mod run;
mod service_commands;
mod tools;

pub use args::{
    Cli, ClusterCommand, Command, ContactsCommand, DirectoryCommand, ProfileCommand, RunOptions,
};
pub use formats::{ExportFormat, ReportFormat, RunFormat};
pub use run::run;
