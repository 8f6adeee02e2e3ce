//! The errors a reader of a source that is not XML collects (CSV rows, vCard lines): each
//! with its file, line and column, at most as many as asked for, then the refusal.

use super::reader::{DocumentError, InvalidDocument};

/// The errors found so far in one file, at most `max`.
pub(super) struct LocatedErrors {
    file: String,
    pub(super) found: Vec<DocumentError>,
    max: usize,
}

impl LocatedErrors {
    pub(super) fn new(file: String, max: usize) -> LocatedErrors {
        LocatedErrors {
            file,
            found: Vec::new(),
            max: max.max(1),
        }
    }

    /// Records an error at `line`:`column`, unless `max` are recorded already.
    pub(super) fn at(&mut self, line: u64, column: u64, message: String) {
        if !self.full() {
            self.found.push(DocumentError {
                file: self.file.clone(),
                line,
                column,
                message,
            });
        }
    }

    pub(super) fn full(&self) -> bool {
        self.found.len() >= self.max
    }

    pub(super) fn is_empty(&self) -> bool {
        self.found.is_empty()
    }

    pub(super) fn into_invalid(self) -> InvalidDocument {
        InvalidDocument { errors: self.found }
    }
}
