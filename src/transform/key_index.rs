//! The key index: one entry per external match key, for the keys seen in the source (to reject
//! later duplicates) and the external rows the table already holds (to skip unchanged ones and
//! find the ones to delete). It is the only structure of a run that grows with the source.
//!
//! The keys are fingerprints (xxh3-128), already uniformly spread, so the index is an
//! open-addressing table with linear probing over 32-byte slots, positioned by multiplying the
//! fingerprint into the table's length: the length need not be a power of two, and the table
//! is kept at most 85% full. A general-purpose hash map would need 2^21 slots of 40 bytes for
//! 1.07 million keys (86 MB); this table holds them in 1.4 million slots of 32 bytes (44 MB).

use xxhash_rust::xxh3::xxh3_128;

/// The stored state of a row: its id and content hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowState {
    pub id: i64,
    pub hash: i64,
}

/// The slot holds a key.
const OCCUPIED: u32 = 1 << 24;
/// The key was seen in this run's source.
const SEEN: u32 = 1 << 25;
/// This run keeps an external row for the key.
const PRODUCED: u32 = 1 << 26;
/// The slot records an existing external row (its id and hash are set).
const EXISTING: u32 = 1 << 27;
/// The row id's bits above 32 (the id's high word has 24 bits: ids up to 2^56).
const ID_HIGH: u32 = (1 << 24) - 1;

/// Fill the table to at most this fraction (linear probing stays short below it).
const MAX_LOAD: f64 = 0.85;
/// Size new tables for this fill, leaving room to grow before the next rebuild.
const TARGET_LOAD: f64 = 0.75;

/// One slot: 96 bits of the fingerprint, the stored row's content hash and id, the line where
/// the key was first seen, and the flags. 32 bytes, 4-byte aligned.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
struct Slot {
    fingerprint: [u32; 3],
    hash: [u32; 2],
    id_low: u32,
    /// Flags (bits 24..) and the row id's high bits (bits 0..24).
    flags_id_high: u32,
    first_line: u32,
}

impl Slot {
    fn is(&self, key: [u32; 3]) -> bool {
        self.flags_id_high & OCCUPIED != 0 && self.fingerprint == key
    }

    fn row(&self) -> Option<RowState> {
        (self.flags_id_high & EXISTING != 0).then(|| RowState {
            id: ((u64::from(self.flags_id_high & ID_HIGH) << 32) | u64::from(self.id_low)) as i64,
            hash: ((u64::from(self.hash[1]) << 32) | u64::from(self.hash[0])) as i64,
        })
    }
}

/// Match-key fingerprint (128-bit xxh3) → state.
#[derive(Debug, Default)]
pub struct KeyIndex {
    slots: Vec<Slot>,
    /// Occupied slots.
    len: usize,
    /// The most occupied slots before the table grows (MAX_LOAD of its length).
    limit: usize,
    /// External rows the table holds.
    existing: u64,
    /// Table rows read but not placed yet: their slots are prefetched and placed in batches,
    /// so the cache misses of a batch overlap instead of following one another.
    arriving: Vec<([u64; 2], RowState)>,
}

/// Table rows placed together (see `KeyIndex::arriving`).
const PLACE_TOGETHER: usize = 16;

/// What seeing a key found.
pub enum Seen {
    /// First occurrence; the existing external row with this key, if any.
    First(Option<RowState>),
    /// Seen before, on this line.
    Again(u64),
}

/// The 96 bits of a fingerprint that the index keeps.
fn short(fingerprint: [u64; 2]) -> [u32; 3] {
    [
        fingerprint[0] as u32,
        (fingerprint[0] >> 32) as u32,
        fingerprint[1] as u32,
    ]
}

impl KeyIndex {
    /// An index sized for `keys` keys.
    pub fn with_capacity(keys: usize) -> KeyIndex {
        let mut index = KeyIndex::default();
        index.reserve(keys);
        index
    }

    /// The 128-bit fingerprint of a key (a match key, or a directory id), as two words:
    /// 8-byte alignment keeps hash-table slots small.
    pub fn fingerprint(key: &str) -> [u64; 2] {
        Self::fingerprint_of(key.as_bytes())
    }

    fn fingerprint_of(key: &[u8]) -> [u64; 2] {
        let f = xxh3_128(key);
        [f as u64, (f >> 64) as u64]
    }

    /// Records an external row of the table.
    pub fn insert_existing(&mut self, key: impl AsRef<[u8]>, row: RowState) {
        assert!(row.id >> 56 == 0, "row id {} is out of range", row.id);
        self.existing += 1;
        let fingerprint = Self::fingerprint_of(key.as_ref());
        self.prefetch(fingerprint);
        self.arriving.push((fingerprint, row));
        if self.arriving.len() == PLACE_TOGETHER {
            self.place_arrived();
        }
    }

    /// Places the table rows read so far.
    fn place_arrived(&mut self) {
        let mut arriving = std::mem::take(&mut self.arriving);
        for (fingerprint, row) in arriving.drain(..) {
            let (id, hash) = (row.id as u64, row.hash as u64);
            let slot = self.slot(fingerprint);
            slot.hash = [hash as u32, (hash >> 32) as u32];
            slot.id_low = id as u32;
            slot.flags_id_high = OCCUPIED | EXISTING | (id >> 32) as u32;
        }
        self.arriving = arriving;
    }

    /// Asks the processor to bring the fingerprint's home slot into the cache.
    pub fn prefetch(&self, fingerprint: [u64; 2]) {
        #[cfg(target_arch = "x86_64")]
        if !self.slots.is_empty() {
            let home = self.slots[Self::home(fingerprint[0], self.slots.len())..].as_ptr();
            // SAFETY: a prefetch is a hint that never faults, and the address is in the table.
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(home.cast())
            };
        }
    }

    /// Makes room for `keys` keys in all.
    fn reserve(&mut self, keys: usize) {
        self.place_arrived();
        if keys > self.limit {
            self.rebuild((keys as f64 / TARGET_LOAD) as usize + 1);
        }
    }

    /// Sizes the table once for a source of `expected` contacts, `read` of which have been
    /// seen: the keys this run added so far grow in proportion; the table's own rows are
    /// there already (a re-import mostly sees them again, and would otherwise grow a table it
    /// does not need, holding the old one meanwhile).
    pub fn expect(&mut self, read: u64, expected: u64) {
        self.place_arrived();
        let added = self.len.saturating_sub(self.existing as usize) as u128;
        let more = added * u128::from(expected) / u128::from(read.max(1));
        self.reserve(self.existing as usize + usize::try_from(more).unwrap_or(usize::MAX));
    }

    /// External rows the table holds.
    pub fn existing_rows(&self) -> u64 {
        self.existing
    }

    /// Marks the key with this fingerprint seen on `line`; `produce` says whether this run
    /// keeps an external row for it (the first occurrence only).
    pub fn see(&mut self, fingerprint: [u64; 2], line: u64, produce: bool) -> Seen {
        if !self.arriving.is_empty() {
            self.place_arrived();
        }
        let slot = self.slot(fingerprint);
        if slot.flags_id_high & SEEN != 0 {
            return Seen::Again(u64::from(slot.first_line));
        }
        slot.flags_id_high |= if produce { SEEN | PRODUCED } else { SEEN };
        slot.first_line = u32::try_from(line).unwrap_or(u32::MAX);
        Seen::First(slot.row())
    }

    /// Existing external rows this run did not keep: they are deleted.
    pub fn leftovers(&mut self) -> impl Iterator<Item = i64> + '_ {
        self.place_arrived();
        self.slots
            .iter()
            .filter(|s| s.flags_id_high & PRODUCED == 0)
            .filter_map(|s| s.row().map(|r| r.id))
    }

    /// The slot of this fingerprint, occupied for it if it was not there yet.
    fn slot(&mut self, fingerprint: [u64; 2]) -> &mut Slot {
        if self.len == self.limit {
            self.rebuild(((self.len + 1) as f64 / TARGET_LOAD) as usize + 1);
        }
        let key = short(fingerprint);
        let mut i = Self::home(fingerprint[0], self.slots.len());
        loop {
            let slot = &self.slots[i];
            if slot.flags_id_high & OCCUPIED == 0 {
                break;
            }
            if slot.is(key) {
                return &mut self.slots[i];
            }
            i = if i + 1 == self.slots.len() { 0 } else { i + 1 };
        }
        self.len += 1;
        let slot = &mut self.slots[i];
        slot.fingerprint = key;
        slot.flags_id_high = OCCUPIED;
        slot
    }

    /// Where probing for a fingerprint starts: its high bits scaled to the table's length.
    fn home(word: u64, len: usize) -> usize {
        ((u128::from(word) * len as u128) >> 64) as usize
    }

    /// Moves every key into a table of `len` slots.
    fn rebuild(&mut self, len: usize) {
        let old = std::mem::replace(&mut self.slots, vec![Slot::default(); len]);
        self.limit = (len as f64 * MAX_LOAD) as usize;
        for slot in old.into_iter().filter(|s| s.flags_id_high & OCCUPIED != 0) {
            let word = u64::from(slot.fingerprint[0]) | (u64::from(slot.fingerprint[1]) << 32);
            let mut i = Self::home(word, len);
            while self.slots[i].flags_id_high & OCCUPIED != 0 {
                i = if i + 1 == len { 0 } else { i + 1 };
            }
            self.slots[i] = slot;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_first_then_again_and_unclaimed_rows_are_left_over() {
        let mut index = KeyIndex::with_capacity(2);
        index.insert_existing("a", RowState { id: 7, hash: 1 });
        index.insert_existing("b", RowState { id: 8, hash: 2 });
        let fp = KeyIndex::fingerprint;
        assert!(matches!(
            index.see(fp("a"), 3, true),
            Seen::First(Some(RowState { id: 7, hash: 1 }))
        ));
        assert!(matches!(index.see(fp("c"), 4, false), Seen::First(None)));
        assert!(matches!(index.see(fp("a"), 9, true), Seen::Again(3)));
        assert_eq!(index.leftovers().collect::<Vec<_>>(), vec![8]);
        assert_eq!(index.existing_rows(), 2);
    }

    /// A re-import of 1,000,000 realistic contacts peaked at 155 MB: sized from the source's
    /// estimated length, the index of the table's 970,000 rows was rebuilt (both tables held
    /// at once) although nearly every key was already in it.
    #[test]
    fn a_re_import_of_the_same_keys_does_not_grow_the_index() {
        let existing = 10_000;
        let mut index = KeyIndex::with_capacity(existing);
        for i in 0..existing {
            index.insert_existing(
                format!("k{i}"),
                RowState {
                    id: i as i64 + 1,
                    hash: 0,
                },
            );
        }
        let slots = index.slots.len();
        for i in 0..1_000u64 {
            index.see(KeyIndex::fingerprint(&format!("k{i}")), i + 1, true);
        }
        // 1,000 of 12,000 contacts read, all of them keys the table holds (sized for the
        // whole source, 12,000 keys would be past its limit of 11,333).
        index.expect(1_000, 12_000);
        assert_eq!(index.slots.len(), slots);
        // A fresh import of the same: every key new, sized for all of them at once.
        let mut fresh = KeyIndex::default();
        for i in 0..1_000u64 {
            fresh.see(KeyIndex::fingerprint(&format!("k{i}")), i + 1, true);
        }
        fresh.expect(1_000, 12_000);
        assert!(fresh.limit >= 12_000, "{}", fresh.limit);
    }

    #[test]
    fn a_slot_is_32_bytes() {
        assert_eq!(std::mem::size_of::<Slot>(), 32);
    }

    #[test]
    fn large_ids_and_negative_hashes_come_back_whole() {
        let mut index = KeyIndex::default();
        let row = RowState {
            id: (1 << 55) + 12345,
            hash: i64::MIN + 3,
        };
        index.insert_existing("k", row);
        assert!(matches!(
            index.see(KeyIndex::fingerprint("k"), 1, false),
            Seen::First(Some(r)) if r == row
        ));
        assert_eq!(index.leftovers().collect::<Vec<_>>(), vec![row.id]);
    }

    #[test]
    fn the_index_grows_past_its_estimate_and_keeps_every_key() {
        // Sized for 10 keys, given 50,000 existing rows and 50,000 new keys: every rebuild
        // keeps each key's state.
        let mut index = KeyIndex::with_capacity(10);
        for i in 0..50_000i64 {
            index.insert_existing(
                format!("old{i}"),
                RowState {
                    id: i + 1,
                    hash: -i,
                },
            );
        }
        for i in 0..50_000u64 {
            let key = KeyIndex::fingerprint(&format!("new{i}"));
            assert!(matches!(index.see(key, i + 1, true), Seen::First(None)));
        }
        for i in (0..50_000i64).step_by(2) {
            let key = KeyIndex::fingerprint(&format!("old{i}"));
            let expected = RowState {
                id: i + 1,
                hash: -i,
            };
            assert!(matches!(index.see(key, 1, true), Seen::First(Some(r)) if r == expected));
        }
        for i in (0..50_000u64).step_by(7) {
            let key = KeyIndex::fingerprint(&format!("new{i}"));
            assert!(matches!(index.see(key, 0, true), Seen::Again(line) if line == i + 1));
        }
        assert!(index.len <= index.limit);
        assert!(index.limit as f64 <= index.slots.len() as f64 * MAX_LOAD);
        let mut left: Vec<i64> = index.leftovers().collect();
        left.sort_unstable();
        assert_eq!(
            left,
            (1..=50_000).step_by(2).map(|i| i + 1).collect::<Vec<_>>()
        );
    }
}
