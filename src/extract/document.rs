//! Reading a whole document: memory-mapped, hashed (sha256) on one thread while it is parsed
//! on the others, in chunks when it is large, and handed to the caller one contact at a time,
//! in document order, in bounded memory.
//!
//! Large documents are split at record starts (`<contact`) into chunks that two workers parse
//! at once. A chunk after the first is parsed as if it started inside the root, between two
//! records; that guess is checked by the chunk before it, which must end exactly there. Any
//! error, or a chunk that does not end cleanly, sends the rest of the document, from the
//! start of that chunk, through the single-threaded reader, which has the last word on
//! errors: the verdict and the messages are those of a front-to-back read.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, mpsc};

use memmap2::{Mmap, UncheckedAdvice};
use sha2::{Digest, Sha256};

use crate::extract::plain::PlainRecords;
use crate::extract::position::LineTracker;
use crate::extract::reader::{
    ContactReader, DocumentError, ExternalContact, InvalidDocument, RecordLayout, Resume,
};
use crate::extract::schema::{Content, Group, Schema};

/// Documents smaller than this are read by one thread.
const PARALLEL_FROM: usize = 8 << 20;
/// Target size of a chunk.
const CHUNK: usize = 1 << 20;
/// Chunks parsed ahead of the consumer: bounds memory.
const WINDOW: usize = 4;
/// Pages behind the parser are dropped from memory in steps of this size.
const RELEASE_STEP: u64 = 4 << 20;

/// What reading a whole document learned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// `<contact>` elements read.
    pub contacts: u64,
    pub bytes: u64,
    pub sha256: String,
}

/// Why reading stopped.
#[derive(Debug)]
pub enum ReadError<E> {
    /// The file could not be opened or mapped.
    Open(std::io::Error),
    Invalid(InvalidDocument),
    /// The caller's sink refused a contact.
    Sink(E),
}

/// A document mapped into memory.
pub struct Document {
    map: Option<Mmap>,
    file: std::fs::File,
    name: String,
}

impl Document {
    pub fn open(path: &Path) -> std::io::Result<Document> {
        let file = super::local::open_regular(path)?;
        let len = file.metadata()?.len();
        // SAFETY: the file is a staged or downloaded copy (or an ad-hoc file the user names)
        // that ucm does not modify while reading; a concurrent writer could change bytes under
        // the parser, which then reports the document as invalid, never undefined behaviour in
        // safe code reading a &[u8] that stays mapped.
        let map = if len == 0 {
            None
        } else {
            Some(unsafe { Mmap::map(&file)? })
        };
        if let Some(map) = &map {
            let _ = map.advise(memmap2::Advice::Sequential);
        }
        Ok(Document {
            map,
            file,
            name: path.display().to_string(),
        })
    }

    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or_default()
    }

    pub fn len(&self) -> u64 {
        self.bytes().len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.bytes().is_empty()
    }

    /// Drops mapped pages in `[from, to)` from this process's memory (they stay in the page
    /// cache and are read again if touched).
    fn release(&self, from: u64, to: u64) {
        // Whole 2 MiB blocks: the kernel maps files in large folios, and dropping part of one
        // may leave it mapped.
        let page = 2u64 << 20;
        let from = from / page * page;
        let to = if to >= self.len() {
            to
        } else {
            to / page * page
        };
        if let (Some(map), true) = (&self.map, to > from) {
            // SAFETY: a read-only file mapping: dropped pages are read back from the file.
            let _ = unsafe {
                map.unchecked_advise_range(
                    UncheckedAdvice::DontNeed,
                    from as usize,
                    (to - from) as usize,
                )
            };
        }
    }
}

/// What a reader that is not the XML reader has passed of a document it reads front to back:
/// those bytes are hashed (sha256) and their pages released a step at a time, so each page is
/// read once while it is resident and memory holds a step whatever the document's size.
pub struct Passed<'d> {
    doc: &'d Document,
    done: u64,
    hasher: Sha256,
}

impl<'d> Passed<'d> {
    pub fn new(doc: &'d Document) -> Passed<'d> {
        Passed {
            doc,
            done: 0,
            hasher: Sha256::new(),
        }
    }

    /// The reader has passed byte `at`.
    pub fn reach(&mut self, at: u64) {
        let at = at.min(self.doc.len());
        if at >= self.done + RELEASE_STEP {
            self.hasher
                .update(&self.doc.bytes()[self.done as usize..at as usize]);
            self.doc.release(self.done, at);
            self.done = at;
        }
    }

    /// The document's summary once the reader found `contacts` in all of it.
    pub fn summary(mut self, contacts: u64) -> Summary {
        self.hasher.update(&self.doc.bytes()[self.done as usize..]);
        self.doc.release(self.done, self.doc.len());
        Summary {
            contacts,
            bytes: self.doc.len(),
            sha256: self
                .hasher
                .finalize()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        }
    }
}

/// Reads `doc`, calling `sink` with each valid contact in document order and `progress` with
/// the bytes parsed so far.
pub fn read<E: Send>(
    doc: &Document,
    schema: &Schema,
    layout: &RecordLayout,
    max_errors: usize,
    progress: &(dyn Fn(u64) + Sync),
    mut sink: impl FnMut(ExternalContact) -> Result<(), E>,
) -> Result<Summary, ReadError<E>> {
    let scan = Scan::default();
    scan.violation.store(u64::MAX, Ordering::Relaxed);
    std::thread::scope(|scope| {
        let scanner = scope.spawn(|| {
            yield_to_consumers();
            scan.run(doc)
        });
        let mut released = 0u64;
        let mut on_progress = |at: u64| {
            progress(at);
            if at >= released + RELEASE_STEP {
                doc.release(released, at);
                released = at;
            }
        };
        let contacts = read_contacts(
            doc,
            schema,
            layout,
            max_errors,
            &scan,
            &mut on_progress,
            &mut sink,
        );
        if contacts.is_err() {
            scan.stop.store(true, Ordering::Relaxed);
        }
        let sha256 = scanner.join().expect("the scanning thread does not panic");
        doc.release(0, doc.len());
        contacts.map(|contacts| Summary {
            contacts,
            bytes: doc.len(),
            sha256: sha256.unwrap_or_default(),
        })
    })
}

/// Lowers the calling thread's scheduling priority a little (nice +5): the parsers and the
/// scanner produce faster than a run's merge and database writer consume, and on two cores
/// the writer, the run's critical path, should not wait for a core behind them.
fn yield_to_consumers() {
    // SAFETY: setpriority on this thread's own id; a failure changes nothing.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 5);
    }
}

/// The longest run of bytes without `<` or `>` a large document may have: the parser holds a
/// whole text node, comment or tag at once, so this bounds its memory on hostile input. Real
/// contact data (values of at most 255 characters) is far below it.
pub const MAX_TOKEN_BYTES: u64 = 1 << 20;

/// The scanning thread's progress: it reads the file (with reads, not through the mapping),
/// hashing it and checking that no run of bytes without markup is longer than
/// [`MAX_TOKEN_BYTES`]. Chunk parsers wait for it before they read a chunk, so a hostile token
/// never reaches a parser whole.
#[derive(Default)]
struct Scan {
    /// Bytes scanned and found acceptable.
    done: AtomicU64,
    /// Where reading must stop before a run without markup that is too long: just before the
    /// `<` or just after the `>` that precedes it (u64::MAX: none).
    violation: AtomicU64,
    finished: AtomicBool,
    stop: AtomicBool,
    lock: Mutex<()>,
    moved: Condvar,
}

impl Scan {
    fn run(&self, doc: &Document) -> Option<String> {
        use std::os::unix::fs::FileExt;
        let mut hasher = Sha256::new();
        let mut block = vec![0u8; MAX_TOKEN_BYTES as usize];
        let mut at = 0u64;
        let mut since_markup = 0u64;
        // Where a read can stop cleanly before the run: before the last '<', after the last '>'.
        let mut clean_cut = 0u64;
        let result = loop {
            if self.stop.load(Ordering::Relaxed) {
                break None;
            }
            let n = match doc.file.read_at(&mut block, at) {
                Ok(0) => {
                    break Some(
                        hasher
                            .finalize()
                            .iter()
                            .map(|b| format!("{b:02x}"))
                            .collect(),
                    );
                }
                Ok(n) => n,
                Err(_) => break None,
            };
            let bytes = &block[..n];
            // A block is no longer than MAX_TOKEN_BYTES, so no run inside one can be too long:
            // only the run reaching into the block from before it needs checking, and only the
            // block's first and last markup bytes need finding.
            match memchr::memchr2(b'<', b'>', bytes) {
                Some(first) if since_markup + first as u64 <= MAX_TOKEN_BYTES => {
                    let last = memchr::memrchr2(b'<', b'>', bytes).unwrap_or(first);
                    clean_cut = at + last as u64 + u64::from(bytes[last] == b'>');
                    since_markup = (n - last - 1) as u64;
                }
                Some(_) => self.violation.store(clean_cut, Ordering::Release),
                None => {
                    since_markup += n as u64;
                    if since_markup > MAX_TOKEN_BYTES {
                        self.violation.store(clean_cut, Ordering::Release);
                    }
                }
            }
            if self.violation.load(Ordering::Relaxed) != u64::MAX {
                break None;
            }
            hasher.update(bytes);
            at += n as u64;
            self.advance(at, false);
        };
        self.advance(self.done.load(Ordering::Relaxed), true);
        result
    }

    fn advance(&self, to: u64, finished: bool) {
        let _guard = self.lock.lock().expect("no poisoning");
        self.done.store(to, Ordering::Release);
        if finished {
            self.finished.store(true, Ordering::Release);
        }
        self.moved.notify_all();
    }

    /// Waits until `[0, to)` is scanned; false when a hostile run starts before `to`.
    fn wait_for(&self, to: u64) -> bool {
        let mut guard = self.lock.lock().expect("no poisoning");
        loop {
            if self.violation.load(Ordering::Acquire) < to {
                return false;
            }
            if self.done.load(Ordering::Acquire) >= to || self.finished.load(Ordering::Acquire) {
                // Read again: the violation is stored before `finished`.
                return self.violation.load(Ordering::Acquire) >= to;
            }
            guard = self.moved.wait(guard).expect("no poisoning");
        }
    }

    /// Where the first hostile run became too long, if one was found.
    fn violation(&self) -> Option<u64> {
        let v = self.violation.load(Ordering::Acquire);
        (v != u64::MAX).then_some(v)
    }
}

/// One chunk's outcome from a worker.
struct ChunkResult {
    contacts: Vec<ExternalContact>,
    seen: u64,
    newlines: u64,
    /// Offset of the last line start in the chunk, if it has a newline.
    line_start: Option<u64>,
    ok: bool,
}

/// What the reading threads share: the document's chunks, the next chunk to take, and how
/// many the consumer has taken (workers stay at most [`WINDOW`] chunks ahead of it).
struct Chunks<'a> {
    doc: &'a Document,
    schema: &'a Schema,
    layout: &'a RecordLayout,
    scan: &'a Scan,
    resume: &'a Resume,
    plain: Option<&'a PlainRecords<'a>>,
    /// Chunk i spans bounds[i]..bounds[i + 1]; the last one ends with the document.
    bounds: Vec<usize>,
    next: AtomicUsize,
    /// Chunks consumed, or `usize::MAX` once the workers are to stop.
    consumed: Mutex<usize>,
    room: Condvar,
}

impl Chunks<'_> {
    fn count(&self) -> usize {
        self.bounds.len() - 1
    }

    /// A worker: takes the next chunk while there is room in the window, parses it and
    /// sends its result, until the chunks run out or the consumer stops.
    fn work(&self, tx: mpsc::SyncSender<(usize, ChunkResult)>) {
        yield_to_consumers();
        let bytes = self.doc.bytes();
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            if i >= self.count() || !self.wait_for_room(i) {
                break;
            }
            let (from, to) = (self.bounds[i], self.bounds[i + 1]);
            let result = if self.scan.wait_for(to as u64) {
                parse_chunk(
                    &bytes[from..to],
                    from as u64,
                    to == bytes.len(),
                    self.resume,
                    self.plain,
                    &self.doc.name,
                    self.schema,
                    self.layout,
                )
            } else {
                ChunkResult {
                    contacts: Vec::new(),
                    seen: 0,
                    newlines: 0,
                    line_start: None,
                    ok: false,
                }
            };
            if tx.send((i, result)).is_err() {
                break;
            }
        }
    }

    /// Waits until chunk `i` is within the window; false when the consumer stopped.
    fn wait_for_room(&self, i: usize) -> bool {
        let mut done = self.consumed.lock().expect("no poisoning");
        while *done != usize::MAX && i >= *done + WINDOW {
            done = self.room.wait(done).expect("no poisoning");
        }
        *done != usize::MAX
    }

    fn set_consumed(&self, consumed: usize) {
        *self.consumed.lock().expect("no poisoning") = consumed;
        self.room.notify_all();
    }
}

fn read_contacts<E: Send>(
    doc: &Document,
    schema: &Schema,
    layout: &RecordLayout,
    max_errors: usize,
    scan: &Scan,
    progress: &mut dyn FnMut(u64),
    sink: &mut dyn FnMut(ExternalContact) -> Result<(), E>,
) -> Result<u64, ReadError<E>> {
    let bytes = doc.bytes();
    let whole = |progress: &mut dyn FnMut(u64),
                 sink: &mut dyn FnMut(ExternalContact) -> Result<(), E>| {
        let from_start = Start {
            offset: 0,
            resume: None,
            lines: LineTracker::default(),
            seen_before: 0,
        };
        guarded(
            doc, scan, from_start, schema, layout, max_errors, progress, sink,
        )
    };
    if bytes.len() < PARALLEL_FROM || !record_is_the_roots_only_child(schema, layout) {
        return whole(progress, sink);
    }
    let mut head = ContactReader::new(bytes, &doc.name, schema, layout, max_errors);
    if !head.open_root() || head.has_errors() {
        return whole(progress, sink);
    }
    let Some(resume) = head.resume_state() else {
        return whole(progress, sink);
    };
    let body = head.position() as usize;
    let record = schema.decl(layout.record).name.as_bytes();
    let lines_at_body = head.lines().clone();
    drop(head);
    let plain = PlainRecords::new(schema, layout, resume.root);
    let chunks = Chunks {
        doc,
        schema,
        layout,
        scan,
        resume: &resume,
        plain: plain.as_ref(),
        bounds: split(doc, body, record),
        next: AtomicUsize::new(0),
        consumed: Mutex::new(0),
        room: Condvar::new(),
    };
    let (tx, rx) = mpsc::sync_channel::<(usize, ChunkResult)>(WINDOW);
    std::thread::scope(|scope| {
        for _ in 0..2 {
            let (tx, chunks) = (tx.clone(), &chunks);
            scope.spawn(move || chunks.work(tx));
        }
        drop(tx);
        let outcome = consume(&chunks, &rx, lines_at_body, max_errors, progress, sink);
        // Stop the workers (on early exits some may wait for room).
        chunks.set_consumed(usize::MAX);
        drop(rx);
        outcome
    })
}

/// The consumer: the chunks' contacts in document order, each chunk's lines counted on; at
/// the first chunk that did not parse cleanly, one thread reads on from its start.
fn consume<E>(
    chunks: &Chunks<'_>,
    rx: &mpsc::Receiver<(usize, ChunkResult)>,
    mut lines: LineTracker,
    max_errors: usize,
    progress: &mut dyn FnMut(u64),
    sink: &mut dyn FnMut(ExternalContact) -> Result<(), E>,
) -> Result<u64, ReadError<E>> {
    let mut pending = BTreeMap::new();
    let mut seen = 0u64;
    for expected in 0..chunks.count() {
        let result = loop {
            if let Some(r) = pending.remove(&expected) {
                break r;
            }
            let (i, r) = rx.recv().expect("workers send every chunk they take");
            pending.insert(i, r);
        };
        let from = chunks.bounds[expected] as u64;
        if !result.ok {
            // From here on, one thread, front to back: it has the last word on errors.
            let tail = Start {
                offset: from as usize,
                resume: Some(chunks.resume),
                lines: lines.clone(),
                seen_before: seen,
            };
            let (doc, scan, schema, layout) =
                (chunks.doc, chunks.scan, chunks.schema, chunks.layout);
            return guarded(doc, scan, tail, schema, layout, max_errors, progress, sink);
        }
        let base_line = lines.line();
        for mut contact in result.contacts {
            contact.line += base_line - 1;
            sink(contact).map_err(ReadError::Sink)?;
        }
        seen += result.seen;
        lines.skip(result.newlines, result.line_start.map(|s| from + s));
        progress(chunks.bounds[expected + 1] as u64);
        chunks.set_consumed(expected + 1);
    }
    Ok(seen)
}

/// Where a single-threaded read starts.
struct Start<'r> {
    offset: usize,
    resume: Option<&'r Resume>,
    lines: LineTracker,
    /// Records counted before `offset`.
    seen_before: u64,
}

/// Reads the rest of a document with one reader, front to back. In a large document the
/// reader stops where the scanner found a run without markup that is too long, and that is
/// reported as the error it is.
#[allow(clippy::too_many_arguments)]
fn guarded<E>(
    doc: &Document,
    scan: &Scan,
    start: Start<'_>,
    schema: &Schema,
    layout: &RecordLayout,
    max_errors: usize,
    progress: &mut dyn FnMut(u64),
    sink: &mut dyn FnMut(ExternalContact) -> Result<(), E>,
) -> Result<u64, ReadError<E>> {
    let bytes = doc.bytes();
    let cut = if bytes.len() >= PARALLEL_FROM {
        scan.wait_for(bytes.len() as u64);
        scan.violation().map(|v| v as usize)
    } else {
        None
    };
    let end = cut.unwrap_or(bytes.len()).max(start.offset);
    let mut reader = ContactReader::over(
        &bytes[start.offset..end],
        start.offset as u64,
        cut.is_none(),
        start.resume,
        start.lines,
        &doc.name,
        schema,
        layout,
        max_errors,
    );
    let mut count = 0u64;
    while let Some(contact) = reader.next_contact().map_err(ReadError::Invalid)? {
        sink(contact).map_err(ReadError::Sink)?;
        count += 1;
        if count.is_multiple_of(4096) {
            progress(reader.offset());
        }
    }
    if let Some(at) = cut {
        let position = reader.lines().position(at as u64);
        return Err(ReadError::Invalid(InvalidDocument {
            errors: vec![DocumentError {
                file: doc.name.clone(),
                line: position.line,
                column: position.column,
                message: format!(
                    "more than {MAX_TOKEN_BYTES} bytes follow without markup: a value, comment or tag this long is refused"
                ),
            }],
        }));
    }
    Ok(start.seen_before + reader.contacts_seen())
}

/// Parses one chunk from the state between two records; lines are counted from the chunk's
/// start (the consumer adds the lines before it). The plain records at its start are read by
/// the fast path, the rest (if any) by the full reader.
#[allow(clippy::too_many_arguments)]
fn parse_chunk(
    slice: &[u8],
    base: u64,
    last: bool,
    resume: &Resume,
    plain: Option<&PlainRecords>,
    name: &str,
    schema: &Schema,
    layout: &RecordLayout,
) -> ChunkResult {
    let mut lines = LineTracker::starting_at(base);
    let mut resume = std::borrow::Cow::Borrowed(resume);
    let (mut contacts, mut read) = (Vec::new(), 0);
    if let Some(plain) = plain {
        let mut root_state = resume.root_state;
        let run = plain.read(slice, resume.encoding, &mut root_state, 1);
        lines.skip(run.newlines, run.line_start.map(|s| base + s as u64));
        (contacts, read) = (run.contacts, run.read);
        resume.to_mut().root_state = root_state;
    }
    // Every record the fast path read is a contact.
    let plain_records = contacts.len() as u64;
    let mut reader = ContactReader::over(
        &slice[read..],
        base + read as u64,
        last,
        Some(&resume),
        lines,
        name,
        schema,
        layout,
        1,
    );
    let ok = loop {
        match reader.next_contact() {
            Ok(Some(c)) => contacts.push(c),
            Ok(None) => break last || reader.ended_cleanly(),
            Err(_) => break false,
        }
    };
    let newlines = reader.lines().line() - 1;
    let line_start = reader.lines().line_start_if_moved();
    debug_assert!(line_start.is_none_or(|s| s >= base));
    ChunkResult {
        seen: plain_records + reader.contacts_seen(),
        contacts,
        newlines,
        line_start: line_start.map(|s| s - base),
        ok,
    }
}

/// Chunk boundaries: `body`, then record starts about every CHUNK bytes, then the end.
/// The file is searched with reads, not through the mapping: touching the mapping at every
/// boundary would map the kernel's large folios (megabytes each) all over the file at once.
fn split(doc: &Document, body: usize, record: &[u8]) -> Vec<usize> {
    use std::os::unix::fs::FileExt;
    let len = doc.len() as usize;
    let mut bounds = vec![body];
    let mut at = body + CHUNK;
    let finder = memchr::memmem::Finder::new(record);
    let mut window = vec![0u8; 64 * 1024];
    'boundaries: while at < len {
        // Search window by window; consecutive windows overlap by the tag's length.
        let mut from = at;
        loop {
            let n = match doc.file.read_at(&mut window, from as u64) {
                Ok(0) | Err(_) => break 'boundaries,
                Ok(n) => n,
            };
            let w = &window[..n];
            let found = finder.find_iter(w).find(|&i| {
                i > 0
                    && w[i - 1] == b'<'
                    && matches!(
                        w.get(i + record.len()),
                        Some(b'>' | b'/' | b' ' | b'\t' | b'\r' | b'\n')
                    )
            });
            if let Some(i) = found {
                let start = from + i - 1;
                bounds.push(start);
                at = start + CHUNK;
                continue 'boundaries;
            }
            if n < record.len() + 2 {
                break 'boundaries;
            }
            from += n - record.len() - 1;
        }
    }
    bounds.push(len);
    bounds
}

/// Chunks can start between records only when the root's content is a sequence holding just
/// the record, so the root's state is the same at every record boundary.
fn record_is_the_roots_only_child(schema: &Schema, layout: &RecordLayout) -> bool {
    schema.roots.iter().any(|&root| {
        matches!(&schema.decl(root).content, Content::Complex(Group::Sequence(children))
            if children.as_slice() == [layout.record] && schema.decl(layout.record).max_occurs.is_none())
    })
}
