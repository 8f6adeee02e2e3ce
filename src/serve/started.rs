//! Runs started over HTTP (the console's Approve, Dry run now and Upload; the API's run) as
//! they go: what phase each is in, the bytes downloaded and read, the contacts read, then its
//! outcome. A started run is named `s{n}` (the run's own number is only known once it is
//! recorded): the console's run page and `GET /api/runs/s{n}` read it while it runs, and
//! lead to the run or plan it recorded once it ends. The last [`KEPT`] are kept.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use serde_json::{Value, json};

use crate::extract::fetch::DownloadProgress;
use crate::pipeline::Progress;
use crate::report::RunReport;

/// Started runs kept for their pages, the running ones and the latest finished.
pub const KEPT: usize = 64;

/// Where a started run is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// Waiting for its turn or setting up.
    Starting = 0,
    /// Downloading the source.
    Downloading = 1,
    /// Reading, validating and merging the contacts.
    Reading = 2,
    /// Writing the changes (or the plan) and landing them.
    Writing = 3,
    /// Applying a plan.
    Applying = 4,
    /// Ended: see the outcome.
    Done = 5,
}

impl Phase {
    fn of(value: u8) -> Phase {
        match value {
            1 => Phase::Downloading,
            2 => Phase::Reading,
            3 => Phase::Writing,
            4 => Phase::Applying,
            5 => Phase::Done,
            _ => Phase::Starting,
        }
    }

    /// The phase in words, as the run page and the API show it.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Downloading => "downloading the source",
            Phase::Reading => "reading and merging the contacts",
            Phase::Writing => "writing the changes",
            Phase::Applying => "applying the plan",
            Phase::Done => "done",
        }
    }
}

/// What was asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Asked {
    Run,
    DryRun,
    /// An apply of this plan.
    Apply(i64),
    /// A dry run of an uploaded sample (its file name as shown).
    Sample(String),
}

impl std::fmt::Display for Asked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Asked::Run => write!(f, "run"),
            Asked::DryRun => write!(f, "dry run"),
            Asked::Apply(plan) => write!(f, "apply of plan #{plan}"),
            Asked::Sample(file) => write!(f, "dry run of {file}"),
        }
    }
}

/// One run started over HTTP.
#[derive(Debug)]
pub struct StartedRun {
    /// `s{id}`.
    pub id: u64,
    pub pipeline: String,
    pub asked: Asked,
    started: Instant,
    phase: AtomicU8,
    downloaded: AtomicU64,
    /// The source's size once reading starts (0: unknown).
    total: AtomicU64,
    read: AtomicU64,
    contacts: AtomicU64,
    /// The report, or why the run did not start or ended without one.
    outcome: OnceLock<Result<RunReport, String>>,
    ended: tokio::sync::Notify,
}

impl StartedRun {
    pub fn phase(&self) -> Phase {
        Phase::of(self.phase.load(Ordering::Acquire))
    }

    pub fn set_phase(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::Release);
    }

    /// Contacts read so far.
    pub fn contacts(&self) -> u64 {
        self.contacts.load(Ordering::Relaxed)
    }

    /// Bytes of the source read so far, and its size when known.
    pub fn read(&self) -> (u64, Option<u64>) {
        let total = self.total.load(Ordering::Relaxed);
        (
            self.read.load(Ordering::Relaxed),
            (total > 0).then_some(total),
        )
    }

    pub fn downloaded(&self) -> u64 {
        self.downloaded.load(Ordering::Relaxed)
    }

    pub fn elapsed_secs(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// The outcome once the run ended.
    pub fn outcome(&self) -> Option<&Result<RunReport, String>> {
        self.outcome.get()
    }

    /// Records the outcome (the first one counts) and wakes whoever waits for it.
    pub fn end(&self, outcome: Result<RunReport, String>) {
        let _ = self.outcome.set(outcome);
        self.set_phase(Phase::Done);
        self.ended.notify_waiters();
    }

    /// Waits for the outcome up to `wait`.
    pub async fn ended_within(&self, wait: std::time::Duration) -> bool {
        let ended = self.ended.notified();
        if self.outcome().is_some() {
            return true;
        }
        let _ = tokio::time::timeout(wait, ended).await;
        self.outcome().is_some()
    }

    /// The run as `GET /api/runs/s{n}` shows it: its progress, then its outcome (the run's
    /// number and the plan's once recorded).
    pub fn to_json(&self) -> Value {
        let (read, total) = self.read();
        let mut shown = json!({
            "id": format!("s{}", self.id),
            "pipeline": self.pipeline,
            "what": self.asked.to_string(),
            "running": self.outcome().is_none(),
            "phase": self.phase().as_str(),
            "seconds": (self.elapsed_secs() * 10.0).round() / 10.0,
            "bytes_downloaded": self.downloaded(),
            "bytes_read": read,
            "bytes_total": total,
            "contacts_read": self.contacts(),
        });
        match self.outcome() {
            Some(Ok(report)) => {
                shown["status"] = json!(report.status.as_str());
                shown["run_id"] = json!(report.run_id);
                shown["plan_id"] = json!(report.plan_id);
                shown["error"] = json!(report.error);
            }
            Some(Err(why)) => {
                shown["status"] = json!("not_started");
                shown["error"] = json!(why);
            }
            None => {}
        }
        shown
    }
}

impl Progress for StartedRun {
    fn start(&self, total: u64) {
        self.total.store(total, Ordering::Relaxed);
        self.set_phase(Phase::Reading);
    }
    fn advance(&self, bytes: u64) {
        self.read.store(bytes, Ordering::Relaxed);
    }
    fn contacts(&self, read: u64) {
        self.contacts.store(read, Ordering::Relaxed);
    }
    fn finish(&self) {
        self.set_phase(Phase::Writing);
    }
}

impl DownloadProgress for StartedRun {
    fn start(&self, _total: Option<u64>) {
        self.downloaded.store(0, Ordering::Relaxed);
        self.set_phase(Phase::Downloading);
    }
    fn advance(&self, bytes: u64) {
        self.downloaded.store(bytes, Ordering::Relaxed);
    }
    fn finish(&self) {}
}

/// The started runs the service keeps.
#[derive(Debug, Default)]
pub struct StartedRuns {
    next: AtomicU64,
    runs: Mutex<VecDeque<Arc<StartedRun>>>,
}

impl StartedRuns {
    /// A new started run of `pipeline`, kept (the oldest finished one is let go beyond
    /// [`KEPT`]).
    pub fn begin(&self, pipeline: &str, asked: Asked) -> Arc<StartedRun> {
        let run = Arc::new(StartedRun {
            id: self.next.fetch_add(1, Ordering::Relaxed) + 1,
            pipeline: pipeline.to_owned(),
            asked,
            started: Instant::now(),
            phase: AtomicU8::new(Phase::Starting as u8),
            downloaded: AtomicU64::new(0),
            total: AtomicU64::new(0),
            read: AtomicU64::new(0),
            contacts: AtomicU64::new(0),
            outcome: OnceLock::new(),
            ended: tokio::sync::Notify::new(),
        });
        let mut runs = self.runs.lock().expect("no poisoning");
        runs.push_back(Arc::clone(&run));
        while runs.len() > KEPT {
            match runs.iter().position(|r| r.outcome().is_some()) {
                Some(finished) => {
                    runs.remove(finished);
                }
                None => break,
            }
        }
        run
    }

    /// Started run `s{id}`, if kept.
    pub fn get(&self, id: u64) -> Option<Arc<StartedRun>> {
        let runs = self.runs.lock().expect("no poisoning");
        runs.iter().find(|r| r.id == id).cloned()
    }

    /// The id of `s{n}`, or None when `text` is not one.
    pub fn parse_id(text: &str) -> Option<u64> {
        text.strip_prefix('s')?.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_started_run_shows_its_progress_then_its_outcome() {
        let runs = StartedRuns::default();
        let run = runs.begin("demo", Asked::DryRun);
        assert_eq!(run.id, 1);
        DownloadProgress::start(&*run, Some(10));
        DownloadProgress::advance(&*run, 10);
        Progress::start(&*run, 100);
        Progress::advance(&*run, 40);
        Progress::contacts(&*run, 3);
        let shown = run.to_json();
        assert_eq!(shown["phase"], "reading and merging the contacts");
        assert_eq!(
            (shown["bytes_read"].as_u64(), shown["bytes_total"].as_u64()),
            (Some(40), Some(100))
        );
        assert_eq!(shown["contacts_read"], 3);
        assert_eq!(shown["running"], true);
        run.end(Err(
            "Pipeline demo is running; try again when it has finished.".into(),
        ));
        let shown = runs.get(1).unwrap().to_json();
        assert_eq!(
            (shown["running"].as_bool(), shown["phase"].as_str()),
            (Some(false), Some("done"))
        );
        assert_eq!(StartedRuns::parse_id("s1"), Some(1));
        assert_eq!(StartedRuns::parse_id("1"), None);
    }

    #[test]
    fn only_the_latest_finished_runs_are_kept_and_running_ones_always() {
        let runs = StartedRuns::default();
        let first = runs.begin("demo", Asked::Run);
        for _ in 0..KEPT + 5 {
            runs.begin("demo", Asked::Run).end(Err("x".into()));
        }
        assert!(runs.get(first.id).is_some(), "a running run is kept");
        assert!(runs.get(2).is_none(), "the oldest finished ones went");
        assert_eq!(runs.runs.lock().unwrap().len(), KEPT);
    }
}
