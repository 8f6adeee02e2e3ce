//! The parser thread: reads and validates the source, merges each contact with the directory
//! and the table's index, compares each row with the table, and sends the changes to the
//! transaction's thread in batches over a bounded channel.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};

use super::request::{Progress, RunFailure, Table};
use crate::extract::{Contract, ExtractError, ReadError, Summary};
use crate::load::contacts::compare;
use crate::load::{ExistingRows, Op};
use crate::numbers::NumberPlan;
use crate::transform::{Arriving, Directory, ExternalRow, MergePolicy, Merger, Rejection};

/// Changes per message between the parser thread and the writer.
const OPS_PER_BATCH: usize = 1024;
/// After this many contacts, the key index is sized for the whole source.
const ESTIMATE_AFTER: u64 = 16384;
/// Contacts that have arrived ahead of their merge (see `Merger::arrive`): enough for their
/// key-index cache misses to overlap.
const LOOKAHEAD: usize = 8;

/// What the parser thread merges with: the rules, the directory, and the number plan that
/// keys the rows' numbers (None for a dry run, which writes no row).
pub(super) struct MergeWith<'r> {
    pub policy: &'r MergePolicy,
    pub directory: &'r Directory,
    pub numbers: Option<&'r NumberPlan>,
}

/// What the parse-and-merge thread learned.
pub(super) struct ParseOutcome {
    pub contacts_read: u64,
    pub rejected: u64,
    pub rejections: Vec<Rejection>,
    pub unchanged: u64,
    pub deletions: Vec<i64>,
    pub external_deletions: u64,
    pub external_rows_before: u64,
    pub sha256: String,
}

/// The changes on their way to the writer: a batch filled and sent when full, the rows left
/// unchanged counted.
struct Batches<'s> {
    batch: Vec<Op>,
    unchanged: u64,
    /// Keys the rows' numbers on this thread (the merge side), so the writer does not.
    numbers: Option<&'s NumberPlan>,
    sender: &'s SyncSender<Vec<Op>>,
}

impl Batches<'_> {
    fn push(&mut self, op: Option<Op>) {
        match op {
            Some(op) => self.batch.push(op),
            None => self.unchanged += 1,
        }
    }

    fn send_when_full(&mut self) -> Result<(), RunFailure> {
        if self.batch.len() >= OPS_PER_BATCH {
            self.send()?;
        }
        Ok(())
    }

    fn send(&mut self) -> Result<(), RunFailure> {
        if let Some(plan) = self.numbers {
            for op in self.batch.iter_mut() {
                if let Op::Insert(row) | Op::Update { row, .. } = op {
                    crate::load::numbers::attach_keys(plan, row);
                }
            }
        }
        let full = std::mem::replace(&mut self.batch, Vec::with_capacity(OPS_PER_BATCH));
        self.sender
            .send(full)
            .map_err(|_| RunFailure::Internal("the database writer stopped".into()))
    }

    /// Merges one contact that has arrived, and keeps its change.
    fn merge(&mut self, merger: &mut Merger<'_>, arriving: Arriving) {
        match merger.accept_arrived(arriving) {
            Some(ExternalRow::Changed(row, stored)) => self.push(compare(row, stored)),
            Some(ExternalRow::Unchanged) => self.push(None),
            None => {}
        }
    }
}

/// The parser thread's work: every contact of `source` merged, every change sent.
pub(super) fn parse_and_merge(
    contract: &Contract,
    with: MergeWith<'_>,
    table: Receiver<Table>,
    source: &Path,
    sender: SyncSender<Vec<Op>>,
    progress: &dyn Progress,
) -> Result<ParseOutcome, RunFailure> {
    let MergeWith {
        policy,
        directory,
        numbers,
    } = with;
    let file_len = std::fs::metadata(source).map(|m| m.len()).unwrap_or(0);
    progress.start(file_len);
    let parsed = AtomicU64::new(0);
    let mut accepted = 0u64;
    // The table's rows and the merger, once the transaction's thread has read the table.
    let mut merging: Option<(ExistingRows, Merger<'_>)> = None;
    let ready = || -> Result<(ExistingRows, Merger<'_>), RunFailure> {
        let (existing, index) = table.recv().map_err(|_| {
            RunFailure::Internal("the database thread stopped before reading the table".into())
        })?;
        Ok((existing, Merger::new(policy, directory, index)))
    };
    let mut out = Batches {
        batch: Vec::with_capacity(OPS_PER_BATCH),
        unchanged: 0,
        numbers,
        sender: &sender,
    };
    // Contacts arrive (key, fingerprint, key-index slot prefetched) a few ahead of their
    // merge, in order.
    let mut arrived: VecDeque<Arriving> = VecDeque::with_capacity(LOOKAHEAD + 1);
    let summary = contract
        .read(
            source,
            1,
            &|bytes| {
                parsed.store(bytes, Ordering::Relaxed);
                progress.advance(bytes)
            },
            |contact| {
                let (_, merger) = match &mut merging {
                    Some(merging) => merging,
                    None => merging.insert(ready()?),
                };
                accepted += 1;
                if accepted.is_multiple_of(1024) {
                    progress.contacts(accepted);
                }
                if accepted == ESTIMATE_AFTER {
                    // Size the key index from the contacts a byte so far, once.
                    let bytes = parsed.load(Ordering::Relaxed);
                    if let Some(total) = file_len.saturating_mul(accepted).checked_div(bytes) {
                        merger.expect_contacts(total);
                    }
                }
                arrived.push_back(merger.arrive(contact));
                if arrived.len() > LOOKAHEAD
                    && let Some(arriving) = arrived.pop_front()
                {
                    out.merge(merger, arriving);
                }
                out.send_when_full()
            },
        )
        .map_err(|e| read_failure(source, e))?;
    progress.contacts(accepted);
    progress.finish();
    let (existing, mut merger) = match merging {
        Some(merging) => merging,
        None => ready()?,
    };
    for arriving in arrived.drain(..) {
        out.merge(&mut merger, arriving);
    }
    finish(existing, merger, &mut out, summary)
}

/// After the last contact: the directory rows the merge left (each compared with the table),
/// then what the table holds that the run did not see, to delete.
fn finish(
    mut existing: ExistingRows,
    mut merger: Merger<'_>,
    out: &mut Batches<'_>,
    summary: Summary,
) -> Result<ParseOutcome, RunFailure> {
    let (rejected, rejections) = (merger.rejected, std::mem::take(&mut merger.rejections));
    let (directory_rows, mut index) = merger.finish();
    let external_rows_before = index.existing_rows();
    for row in directory_rows {
        out.push(existing.classify(Box::new(row)));
        out.send_when_full()?;
    }
    if !out.batch.is_empty() {
        out.send()?;
    }
    let external: Vec<i64> = index.leftovers().collect();
    let external_deletions = external.len() as u64;
    let mut deletions: Vec<i64> = existing.leftovers().chain(external).collect();
    deletions.sort_unstable();
    Ok(ParseOutcome {
        contacts_read: summary.contacts,
        rejected,
        rejections,
        unchanged: out.unchanged,
        deletions,
        external_deletions,
        external_rows_before,
        sha256: summary.sha256,
    })
}

fn read_failure(source: &Path, e: ReadError<RunFailure>) -> RunFailure {
    match e {
        ReadError::Open(error) => ExtractError::Open {
            path: source.to_owned(),
            source: error,
        }
        .into(),
        ReadError::Invalid(invalid) => RunFailure::Extract(ExtractError::Invalid(invalid)),
        ReadError::Sink(failure) => failure,
    }
}
