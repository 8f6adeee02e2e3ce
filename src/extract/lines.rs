//! A file's physical lines, without their line breaks (LF or CRLF), counted from 1, with the
//! bytes passed: what the line-based readers (vCard, LDIF) unfold their logical lines from.

/// The physical lines of a byte slice.
pub(super) struct PhysicalLines<'b> {
    rest: &'b [u8],
    consumed: usize,
    line: u64,
}

impl<'b> PhysicalLines<'b> {
    pub(super) fn new(bytes: &'b [u8]) -> PhysicalLines<'b> {
        PhysicalLines {
            rest: bytes,
            consumed: 0,
            line: 0,
        }
    }

    /// The next line, without its line break.
    pub(super) fn next_line(&mut self) -> Option<&'b [u8]> {
        if self.rest.is_empty() {
            return None;
        }
        let end = memchr::memchr(b'\n', self.rest).unwrap_or(self.rest.len());
        let line = &self.rest[..end];
        let taken = (end + 1).min(self.rest.len());
        self.rest = &self.rest[taken..];
        self.consumed += taken;
        self.line += 1;
        Some(line.strip_suffix(b"\r").unwrap_or(line))
    }

    /// The number (from 1) of the line last returned.
    pub(super) fn line(&self) -> u64 {
        self.line
    }

    /// The bytes passed so far.
    pub(super) fn offset(&self) -> usize {
        self.consumed
    }

    /// The first byte of the next line, if there is one.
    pub(super) fn next_byte(&self) -> Option<u8> {
        self.rest.first().copied()
    }
}
