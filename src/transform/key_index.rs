//! The key index: one entry per external match key, for the keys seen in the source (to reject
//! later duplicates) and the external rows the table already holds (to skip unchanged ones and
//! find the ones to delete). It is the only structure of a run that grows with the source: 40
//! bytes a key plus the hash table's slack.

use std::collections::HashMap;

use xxhash_rust::xxh3::xxh3_128;

/// The stored state of a row: its id and content hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowState {
    pub id: i64,
    pub hash: i64,
}

const SEEN: u8 = 1;
const PRODUCED: u8 = 2;

#[derive(Clone, Copy, Debug)]
struct Entry {
    /// The existing external row with this key (id 0: none).
    row: RowState,
    /// The line where the key was first seen in this run's source.
    first_line: u32,
    flags: u8,
}

/// Match-key fingerprint (128-bit xxh3) → state.
#[derive(Debug, Default)]
pub struct KeyIndex {
    map: HashMap<[u64; 2], Entry, foldhash::fast::FixedState>,
    /// External rows the table holds.
    existing: u64,
}

/// What seeing a key found.
pub enum Seen {
    /// First occurrence; the existing external row with this key, if any.
    First(Option<RowState>),
    /// Seen before, on this line.
    Again(u64),
}

impl KeyIndex {
    /// An index sized for `rows` existing external rows.
    pub fn with_capacity(rows: usize) -> KeyIndex {
        KeyIndex {
            map: HashMap::with_capacity_and_hasher(rows, Default::default()),
            existing: 0,
        }
    }

    /// The 128-bit fingerprint of a key (a match key, or a directory id), as two words:
    /// 8-byte alignment keeps hash-table slots small.
    pub fn fingerprint(key: &str) -> [u64; 2] {
        let f = xxh3_128(key.as_bytes());
        [f as u64, (f >> 64) as u64]
    }

    /// Records an external row of the table.
    pub fn insert_existing(&mut self, key: &str, row: RowState) {
        self.existing += 1;
        self.map.insert(
            Self::fingerprint(key),
            Entry {
                row,
                first_line: 0,
                flags: 0,
            },
        );
    }

    /// Makes room for `keys` keys in all.
    pub fn reserve(&mut self, keys: usize) {
        self.map.reserve(keys.saturating_sub(self.map.len()));
    }

    /// External rows the table holds.
    pub fn existing_rows(&self) -> u64 {
        self.existing
    }

    /// Marks the key with this fingerprint seen on `line`; `produce` says whether this run
    /// keeps an external row for it (the first occurrence only).
    pub fn see(&mut self, fingerprint: [u64; 2], line: u64, produce: bool) -> Seen {
        let line32 = u32::try_from(line).unwrap_or(u32::MAX);
        let entry = self.map.entry(fingerprint).or_insert(Entry {
            row: RowState { id: 0, hash: 0 },
            first_line: line32,
            flags: 0,
        });
        if entry.flags & SEEN != 0 {
            return Seen::Again(u64::from(entry.first_line));
        }
        entry.flags |= if produce { SEEN | PRODUCED } else { SEEN };
        entry.first_line = line32;
        Seen::First((entry.row.id != 0).then_some(entry.row))
    }

    /// Existing external rows this run did not keep: they are deleted.
    pub fn leftovers(&self) -> impl Iterator<Item = i64> + '_ {
        self.map
            .values()
            .filter(|e| e.row.id != 0 && e.flags & PRODUCED == 0)
            .map(|e| e.row.id)
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
}
