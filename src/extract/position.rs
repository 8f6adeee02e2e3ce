//! Turns byte offsets into `line:column` positions for error messages.
//!
//! Documents are read once, streaming, so [`LineTracker`] counts newlines in each event's bytes
//! as the parser passes them. Small files read whole (the schema) use [`LineIndex`].

/// Line starts of a small in-memory file.
pub struct LineIndex {
    starts: Vec<u64>,
}

impl LineIndex {
    pub fn new(bytes: &[u8]) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(memchr::memchr_iter(b'\n', bytes).map(|i| i as u64 + 1));
        LineIndex { starts }
    }

    /// 1-based line and column (in bytes) of `offset`.
    pub fn line_column(&self, offset: u64) -> (u64, u64) {
        let line = self.starts.partition_point(|&s| s <= offset);
        let start = self.starts[line - 1];
        (line as u64, offset - start + 1)
    }
}

/// Running line count over a document read front to back.
#[derive(Debug, Default, Clone)]
pub struct LineTracker {
    /// Newlines seen before `counted_to`.
    newlines: u64,
    /// Offset of the byte after the last newline seen (start of the current line).
    line_start: u64,
}

impl LineTracker {
    /// Records the newlines in `bytes`, which start at byte `offset` of the document. Spans must
    /// be passed in document order.
    #[inline]
    pub fn advance(&mut self, offset: u64, bytes: &[u8]) {
        if let Some(last) = memchr::memrchr(b'\n', bytes) {
            self.newlines += memchr::memchr_iter(b'\n', bytes).count() as u64;
            self.line_start = offset + last as u64 + 1;
        }
    }

    /// A tracker for text that starts at byte `offset` of a document, counting lines from 1
    /// there.
    pub fn starting_at(offset: u64) -> LineTracker {
        LineTracker {
            newlines: 0,
            line_start: offset,
        }
    }

    /// Counts `newlines` more, the last of them ending at `line_start` (a span read elsewhere).
    pub fn skip(&mut self, newlines: u64, line_start: Option<u64>) {
        self.newlines += newlines;
        if let Some(start) = line_start {
            self.line_start = start;
        }
    }

    /// The start of the current line, if a newline was seen since `starting_at`.
    pub fn line_start_if_moved(&self) -> Option<u64> {
        (self.newlines > 0).then_some(self.line_start)
    }

    /// 1-based line and column of `offset`, which must not be before the last span recorded
    /// (it may be inside the span being processed if that span was not recorded yet).
    pub fn position(&self, offset: u64) -> Position {
        Position {
            line: self.newlines + 1,
            column: offset.saturating_sub(self.line_start) + 1,
        }
    }

    /// The 1-based line the next unrecorded byte is on.
    pub fn line(&self) -> u64 {
        self.newlines + 1
    }
}

/// A place in a document: 1-based line, 1-based column in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Position {
    pub line: u64,
    pub column: u64,
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_index_finds_lines_and_columns() {
        let idx = LineIndex::new(b"ab\ncd\n\nx");
        assert_eq!(idx.line_column(0), (1, 1));
        assert_eq!(idx.line_column(1), (1, 2));
        assert_eq!(idx.line_column(3), (2, 1));
        assert_eq!(idx.line_column(7), (4, 1));
    }

    #[test]
    fn tracker_counts_across_spans() {
        let mut t = LineTracker::default();
        t.advance(0, b"<a>\n  ");
        assert_eq!(t.position(6), Position { line: 2, column: 3 });
        t.advance(6, b"b\n\nc");
        assert_eq!(t.position(10), Position { line: 4, column: 2 });
    }
}
