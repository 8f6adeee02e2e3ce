//! What the service counts as it goes (runs, rows, bytes, durations, refusals, lookups, LDAP
//! requests): [`RunMetrics`]. `GET /metrics` (`super::api::metrics`) adds what is read at
//! scrape time and encodes it all.

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;

use crate::report::{RunReport, RunStatus};

/// Label pairs, in order.
pub type Labels = Vec<(&'static str, String)>;

/// Upper bounds of the run duration histogram, in seconds.
pub const DURATION_BUCKETS: [f64; 9] = [0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0];

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// What the service counts since it started.
pub struct RunMetrics {
    /// (pipeline, status) → runs this service finished.
    pub(crate) runs: Family<Labels, Counter>,
    /// (pipeline, inserted|updated|deleted) → rows.
    pub(crate) rows: Family<Labels, Counter>,
    pub(crate) fetch_bytes: Family<Labels, Counter>,
    pub(crate) last_success: Family<Labels, FloatGauge>,
    pub(crate) durations: Family<Labels, Histogram, fn() -> Histogram>,
    /// reason → HTTP refusals (login throttled or wrong, unauthenticated requests).
    pub refusals: Family<Labels, Counter>,
    /// (pipeline, found|unknown) → caller-ID lookups answered.
    pub(crate) lookups: Family<Labels, Counter>,
    /// (op, result) → LDAP requests answered or refused.
    pub(crate) ldap: Family<Labels, Counter>,
}

impl Default for RunMetrics {
    fn default() -> Self {
        RunMetrics {
            runs: Family::default(),
            rows: Family::default(),
            fetch_bytes: Family::default(),
            last_success: Family::default(),
            durations: Family::new_with_constructor(duration_histogram),
            refusals: Family::default(),
            lookups: Family::default(),
            ldap: Family::default(),
        }
    }
}

/// The labels of one pipeline.
pub(crate) fn pipeline(name: &str) -> Labels {
    vec![("pipeline", name.to_owned())]
}

impl RunMetrics {
    /// Counts a finished run.
    pub fn count(&self, report: &RunReport) {
        let p = &report.pipeline;
        self.runs
            .get_or_create(&vec![
                ("pipeline", p.clone()),
                ("status", report.status.as_str().to_owned()),
            ])
            .inc();
        // A dry run writes nothing.
        if report.status != RunStatus::DryRun {
            for (action, n) in [
                ("inserted", report.inserted),
                ("updated", report.updated),
                ("deleted", report.deleted),
            ] {
                self.rows
                    .get_or_create(&vec![
                        ("pipeline", p.clone()),
                        ("action", action.to_owned()),
                    ])
                    .inc_by(n);
            }
        }
        if let Some(fetch) = &report.fetch {
            self.fetch_bytes
                .get_or_create(&pipeline(p))
                .inc_by(fetch.bytes);
        }
        if report.status.is_success() && report.status != RunStatus::DryRun {
            let now = jiff::Timestamp::now().as_millisecond() as f64 / 1000.0;
            self.last_success.get_or_create(&pipeline(p)).set(now);
        }
        self.durations
            .get_or_create(&pipeline(p))
            .observe(report.duration_ms as f64 / 1000.0);
    }

    /// Counts a caller-ID lookup answered from the index.
    pub fn looked_up(&self, pipeline: &str, found: bool) {
        self.lookups
            .get_or_create(&vec![
                ("pipeline", pipeline.to_owned()),
                ("result", if found { "found" } else { "unknown" }.to_owned()),
            ])
            .inc();
    }

    /// Counts an HTTP refusal.
    /// Counts an LDAP request: its operation (bind, search, ..., or connect and malformed for
    /// connections refused and messages that could not be read) and its result.
    pub fn ldap(&self, op: &str, result: &str) {
        self.ldap
            .get_or_create(&vec![("op", op.to_owned()), ("result", result.to_owned())])
            .inc();
    }

    pub fn refused(&self, reason: &str) {
        self.refusals
            .get_or_create(&vec![("reason", reason.to_owned())])
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::encoding::prometheus_text::encode;
    use prometheus_client::registry::Registry;

    use super::*;

    #[test]
    fn a_run_is_counted_by_status_rows_and_duration() {
        let metrics = RunMetrics::default();
        let mut report = RunReport::begin("p", "run", "x.xml", false);
        report.status = RunStatus::Succeeded;
        report.inserted = 4;
        report.duration_ms = 700;
        metrics.count(&report);
        let mut registry = Registry::default();
        registry.register("ucm_runs", "r", metrics.runs.clone());
        registry.register("ucm_rows", "r", metrics.rows.clone());
        registry.register("ucm_run_duration_seconds", "d", metrics.durations.clone());
        let mut out = String::new();
        encode(&mut out, &registry).unwrap();
        for line in [
            "ucm_runs_total{pipeline=\"p\",status=\"succeeded\"} 1",
            "ucm_rows_total{pipeline=\"p\",action=\"inserted\"} 4",
            "ucm_run_duration_seconds_bucket{pipeline=\"p\",le=\"1\"} 1",
            "ucm_run_duration_seconds_count{pipeline=\"p\"} 1",
        ] {
            assert!(out.contains(line), "{line} in {out}");
        }
    }
}
