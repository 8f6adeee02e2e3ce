//! `ucm serve`: the resident service. It fires each pipeline's import cron (the fetch stage)
//! and merge cron (the merge stage) in the pipeline's time zone, delayed by its spread
//! offset; never runs a pipeline's stages on top of each other (a fire that finds its
//! pipeline busy is recorded as skipped); does not replay fires missed while it was down (it
//! logs them); and serves the status API, Prometheus metrics, the console and the phone
//! endpoints ([`router`]).
//! SIGTERM or SIGINT stops the firing, lets a running load finish (or roll back), and exits 0.

//!
//! The rooms, from the process down (each imports only those below it):
//! - [`process`] (start and stop) -> [`router`] (routes and layers) -> the handlers:
//!   [`api`] (the JSON API by resource), [`console`] (the browser console), [`phones`]
//!   (phonebook feeds, caller-ID lookup, the LDAP directory and their access rules);
//! - the handlers -> [`auth`] (logins, bearer tokens), [`answers`] (JSON errors and
//!   refusals), [`status`] (how pipelines and runs are shown), [`runs`] (runs started);
//! - [`scheduler`] and [`runs`] -> [`state`] ([`Service`]: what they all share) -> [`config`]
//!   (assembling each feature's config), [`limits`], [`throttle`], [`connections`],
//!   [`metrics`] (the counters).
//!
//! Reading the directory is `crate::directory`'s; the cluster's changes `crate::cluster`'s.

pub mod answers;
pub mod api;
pub mod auth;
pub mod config;
pub mod connections;
pub mod console;
pub mod delivery;
pub mod limits;
pub mod metrics;
pub mod phones;
mod process;
pub mod router;
pub mod runs;
pub mod scheduler;
pub mod started;
pub mod state;
pub mod status;
pub mod throttle;
pub mod urls;

pub use config::ServiceConfig;
pub use process::serve;
pub use state::{Loaded, Pipeline, Service, Stage, StageSchedule, StartRefused};
