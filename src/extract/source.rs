//! Opens a source file for the streaming pass, hashing (sha256) and counting its bytes as the
//! parser consumes them, so the digest and progress come from the same single read.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

/// Read buffer size: large enough that system calls do not show in profiles.
const BUFFER: usize = 256 * 1024;

/// The longest run of bytes without `<` or `>` a document may have. The XML parser buffers a
/// whole text node, comment or tag, so this bounds its memory on hostile input; real contact
/// data (values of at most 255 characters) is far below it.
pub const MAX_TOKEN_BYTES: u64 = 1 << 20;

/// A buffered file reader that hashes and counts every byte it hands out.
pub struct SourceReader {
    inner: BufReader<File>,
    hasher: Sha256,
    consumed: Arc<AtomicU64>,
    len: u64,
    /// Bytes since the last `<` or `>`.
    since_markup: u64,
}

impl SourceReader {
    pub fn open(path: &Path) -> io::Result<SourceReader> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        Ok(SourceReader {
            inner: BufReader::with_capacity(BUFFER, file),
            hasher: Sha256::new(),
            consumed: Arc::new(AtomicU64::new(0)),
            len,
            since_markup: 0,
        })
    }

    /// File size in bytes, for progress.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A shared counter of the bytes consumed so far, for a progress bar on another thread.
    pub fn progress(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.consumed)
    }

    /// Reads what is left unconsumed (so the digest covers the whole file even when parsing
    /// stopped early) and returns the hex sha256.
    pub fn finish(mut self) -> io::Result<String> {
        loop {
            let n = self.fill_buf()?.len();
            if n == 0 {
                break;
            }
            self.consume(n);
        }
        Ok(hex(&self.hasher.finalize()))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Read for SourceReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for SourceReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.since_markup > MAX_TOKEN_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "more than {MAX_TOKEN_BYTES} bytes without markup: a value, comment or tag this long is refused"
                ),
            ));
        }
        self.inner.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        let bytes = &self.inner.buffer()[..amt];
        match memchr::memrchr2(b'<', b'>', bytes) {
            Some(i) => self.since_markup = (amt - i - 1) as u64,
            None => self.since_markup += amt as u64,
        }
        self.hasher.update(bytes);
        self.consumed.fetch_add(amt as u64, Ordering::Relaxed);
        self.inner.consume(amt);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_covers_the_whole_file_even_when_reading_stops_early() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x");
        std::fs::write(&path, b"abc").unwrap();
        let mut r = SourceReader::open(&path).unwrap();
        let mut one = [0u8; 1];
        r.read_exact(&mut one).unwrap();
        assert_eq!(r.progress().load(Ordering::Relaxed), 1);
        assert_eq!(
            r.finish().unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
