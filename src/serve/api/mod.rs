//! The JSON API, one file per resource: pipelines and runs ([`runs`]), plans ([`plans`]),
//! contacts and their live state ([`live`]), the cluster ([`cluster`]), and Prometheus
//! metrics ([`metrics`]). What the live-state and cluster endpoints check first is in
//! [`request`].

pub mod cluster;
pub mod live;
pub mod metrics;
pub mod plans;
mod request;
pub mod runs;
