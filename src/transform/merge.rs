//! The keyed merge: streams external contacts against the directory index and produces the
//! rows of the merged `contacts` table, rejecting contacts the rules do not allow.

use serde::Serialize;
use std::cell::RefCell;

use xxhash_rust::xxh3::xxh3_64;

use crate::extract::ExternalContact;
pub use crate::fields::Origin;
use crate::fields::{FIELD_COUNT, FieldValues};
use crate::transform::directory::{Directory, KeyOwners};
use crate::transform::key_index::{KeyIndex, RowState, Seen};
use crate::transform::policy::{MergePolicy, Side, normalise_key};

/// One row of the merged table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MergedRow {
    pub origin: Origin,
    pub directory_id: Option<String>,
    pub match_key: Option<String>,
    pub values: FieldValues,
    /// The side each value came from.
    pub sides: [Side; FIELD_COUNT],
    /// The keys of its numbers in the number index, when the merge thread computed them
    /// (the writer computes them otherwise): normalising numbers is the merge side's work,
    /// so it runs on the other core than the database's writes.
    pub number_keys: Option<Vec<crate::numbers::NumberKey>>,
}

impl MergedRow {
    /// A hash of everything stored about the row but `updated_at`: equal hashes mean the row
    /// is unchanged and is not rewritten.
    pub fn content_hash(&self) -> i64 {
        content_hash(
            self.origin,
            self.directory_id.as_deref(),
            self.match_key.as_deref(),
            &self.values,
        )
    }
}

/// See [`MergedRow::content_hash`].
pub fn content_hash(
    origin: Origin,
    directory_id: Option<&str>,
    match_key: Option<&str>,
    values: &FieldValues,
) -> i64 {
    hash_values(
        origin,
        directory_id,
        match_key,
        values.iter().map(Option::as_deref),
    )
}

/// [`content_hash`] of a contact's present fields, sorted by field (absent ones are NULL).
pub fn content_hash_of_fields(
    origin: Origin,
    directory_id: Option<&str>,
    match_key: Option<&str>,
    contact: &ExternalContact,
) -> i64 {
    let mut present = contact.fields().peekable();
    let values = (0..FIELD_COUNT).map(move |i| match present.peek() {
        Some((f, v)) if f.index() == i => {
            let v = *v;
            present.next();
            Some(v)
        }
        _ => None,
    });
    hash_values(origin, directory_id, match_key, values)
}

fn hash_values<'v>(
    origin: Origin,
    directory_id: Option<&str>,
    match_key: Option<&str>,
    values: impl Iterator<Item = Option<&'v str>>,
) -> i64 {
    thread_local! {
        /// The bytes hashed, laid end to end: one xxh3 call over them is the same hash as
        /// feeding them piece by piece, and several times faster for values this short.
        static HASHED: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(1024));
    }
    HASHED.with_borrow_mut(|bytes| {
        bytes.clear();
        bytes.extend_from_slice(origin.as_str().as_bytes());
        let mut put = |v: Option<&str>| match v {
            None => bytes.push(0),
            Some(s) => {
                bytes.push(1);
                bytes.extend_from_slice(&(s.len() as u64).to_le_bytes());
                bytes.extend_from_slice(s.as_bytes());
            }
        };
        put(directory_id);
        put(match_key);
        for v in values {
            put(v);
        }
        xxh3_64(bytes) as i64
    })
}

/// Why an external contact was not loaded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Rejection {
    /// The matching field is missing or empty after normalisation.
    NoKey { line: u64, field: String },
    /// The key occurred earlier in the source; the first occurrence is used.
    DuplicateKey {
        line: u64,
        key: String,
        first_line: u64,
    },
    /// Several directory entries share the key.
    AmbiguousKey {
        line: u64,
        key: String,
        directory_ids: Vec<String>,
    },
}

impl Rejection {
    pub fn line(&self) -> u64 {
        match self {
            Rejection::NoKey { line, .. }
            | Rejection::DuplicateKey { line, .. }
            | Rejection::AmbiguousKey { line, .. } => *line,
        }
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rejection::NoKey { line, field } => {
                write!(f, "line {line}: no {field} (the matching field)")
            }
            Rejection::DuplicateKey {
                line,
                key,
                first_line,
            } => {
                write!(
                    f,
                    "line {line}: key \"{key}\" already used on line {first_line}"
                )
            }
            Rejection::AmbiguousKey {
                line,
                key,
                directory_ids,
            } => write!(
                f,
                "line {line}: key \"{key}\" is shared by directory entries {}",
                directory_ids.join(", ")
            ),
        }
    }
}

/// An external-only contact, compared with the table's row of the same key.
#[derive(Debug, PartialEq, Eq)]
pub enum ExternalRow {
    /// The table holds exactly this row already.
    Unchanged,
    /// The row, and the table's row of the same key if there is one.
    Changed(Box<MergedRow>, Option<RowState>),
}

/// An external contact on its way into the merge (see [`Merger::arrive`]).
pub struct Arriving {
    contact: ExternalContact,
    /// The normalised match key and its fingerprint; `None` when the contact has no key.
    key: Option<(String, [u64; 2])>,
}

/// How many rejections are kept with their details; all are counted.
pub const REJECTIONS_KEPT: usize = 100;

/// Streams external contacts into merged rows.
pub struct Merger<'a> {
    policy: &'a MergePolicy,
    directory: &'a Directory,
    /// The external contact matched to each directory entry (compact: only present fields).
    matched: Vec<Option<ExternalContact>>,
    /// Keys seen so far and the table's external rows.
    index: KeyIndex,
    /// Whether the key index was sized from an estimate of the source's contacts.
    sized: bool,
    pub contacts_read: u64,
    pub rejected: u64,
    pub rejections: Vec<Rejection>,
}

impl<'a> Merger<'a> {
    /// A merger over `directory`, with `index` holding the table's external rows.
    pub fn new(policy: &'a MergePolicy, directory: &'a Directory, index: KeyIndex) -> Merger<'a> {
        Merger {
            policy,
            directory,
            matched: vec![None; directory.len()],
            index,
            sized: false,
            contacts_read: 0,
            rejected: 0,
            rejections: Vec::new(),
        }
    }

    /// Sizes the key index once for a source of `contacts` contacts, so it does not grow
    /// (holding two tables at once) while the source streams in.
    pub fn expect_contacts(&mut self, contacts: u64) {
        if !self.sized {
            self.index.expect(self.contacts_read, contacts);
            self.sized = true;
        }
    }

    fn reject(&mut self, r: Rejection) {
        self.rejected += 1;
        if self.rejections.len() < REJECTIONS_KEPT {
            self.rejections.push(r);
        }
    }

    /// Takes one external contact. Returns its row, with the state of the table's row of the
    /// same key, when it is external-only; a contact that matches a directory entry is kept
    /// until [`Merger::finish`], a rejected one is counted.
    pub fn accept(&mut self, contact: ExternalContact) -> Option<ExternalRow> {
        let arriving = self.arrive(contact);
        self.accept_arrived(arriving)
    }

    /// The first half of [`Merger::accept`], which needs nothing the merge changes: the
    /// contact's key and its fingerprint, whose key-index slot is prefetched. A caller that
    /// arrives a few contacts ahead of accepting them overlaps their cache misses.
    pub fn arrive(&self, contact: ExternalContact) -> Arriving {
        let matching = self.policy.matching_field;
        let key = contact
            .value(matching)
            .and_then(|v| normalise_key(matching, v));
        // One hash of the key serves the directory lookup and the key index.
        let fingerprint = key.as_deref().map(KeyIndex::fingerprint);
        if let Some(fingerprint) = fingerprint {
            self.index.prefetch(fingerprint);
        }
        Arriving {
            contact,
            key: key.zip(fingerprint),
        }
    }

    /// The second half of [`Merger::accept`]; contacts are accepted in the order they arrived.
    pub fn accept_arrived(&mut self, arriving: Arriving) -> Option<ExternalRow> {
        self.contacts_read += 1;
        let Arriving { contact, key } = arriving;
        let line = contact.line;
        let Some((key, fingerprint)) = key else {
            let field = self.policy.matching_field.name().to_owned();
            self.reject(Rejection::NoKey { line, field });
            return None;
        };
        let owners = self.directory.lookup(fingerprint);
        let external_only = owners.is_none();
        let existing = match self.index.see(fingerprint, line, external_only) {
            Seen::First(existing) => existing,
            Seen::Again(first_line) => {
                self.reject(Rejection::DuplicateKey {
                    line,
                    key,
                    first_line,
                });
                return None;
            }
        };
        match owners {
            Some(KeyOwners::One(i)) => {
                self.matched[*i] = Some(contact);
                None
            }
            Some(KeyOwners::Many(owners)) => {
                let directory_ids = owners
                    .iter()
                    .map(|&i| self.directory.id(i).to_owned())
                    .collect();
                self.reject(Rejection::AmbiguousKey {
                    line,
                    key,
                    directory_ids,
                });
                None
            }
            None => {
                // Unchanged rows (most of them, run after run) are recognised from the compact
                // fields, without building the row.
                if let Some(stored) = existing
                    && stored.hash
                        == content_hash_of_fields(Origin::External, None, Some(&key), &contact)
                {
                    return Some(ExternalRow::Unchanged);
                }
                let row = MergedRow {
                    origin: Origin::External,
                    directory_id: None,
                    match_key: Some(key),
                    values: contact.values(),
                    sides: [Side::External; FIELD_COUNT],
                    number_keys: None,
                };
                Some(ExternalRow::Changed(Box::new(row), existing))
            }
        }
    }

    /// The directory's rows (merged where an external contact matched, the entry's own values
    /// otherwise), and the key index, which knows the external rows to delete.
    pub fn finish(self) -> (impl Iterator<Item = MergedRow> + 'a, KeyIndex) {
        let policy = self.policy;
        let directory = self.directory;
        let rows = self
            .matched
            .into_iter()
            .enumerate()
            .map(move |(i, external)| {
                let own = directory.values(i);
                let directory_id = Some(directory.id(i).to_owned());
                let match_key = directory.keys[i].clone();
                match external {
                    Some(ext) => {
                        let (values, sides) = policy.merge(&own, &ext.values());
                        MergedRow {
                            origin: Origin::Merged,
                            directory_id,
                            match_key,
                            values,
                            sides,
                            number_keys: None,
                        }
                    }
                    None => MergedRow {
                        origin: Origin::Directory,
                        directory_id,
                        match_key,
                        values: own,
                        sides: [Side::Directory; FIELD_COUNT],
                        number_keys: None,
                    },
                }
            });
        (rows, self.index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields::{Field, empty_values};
    use crate::transform::directory::DirectoryEntry;

    fn with(pairs: &[(&str, &str)]) -> FieldValues {
        let mut v = empty_values();
        for (k, val) in pairs {
            v[Field::from_name(k).unwrap().index()] = Some(val.to_string());
        }
        v
    }

    fn contact(line: u64, pairs: &[(&str, &str)]) -> ExternalContact {
        ExternalContact::from_values(line, with(pairs))
    }

    #[test]
    fn a_rows_content_hash_never_changes_between_versions() {
        // Stored in every row: a different hash would rewrite (and re-date) every row once.
        let values = with(&[("e_mail", "anna@example.com"), ("site", "Liège")]);
        let hash = content_hash(Origin::External, None, Some("anna@example.com"), &values);
        let mut streamed = xxhash_rust::xxh3::Xxh3::new();
        streamed.update(b"external");
        streamed.update(&[0, 1]);
        streamed.update(&16u64.to_le_bytes());
        streamed.update(b"anna@example.com");
        for v in &values {
            match v {
                None => streamed.update(&[0]),
                Some(s) => {
                    streamed.update(&[1]);
                    streamed.update(&(s.len() as u64).to_le_bytes());
                    streamed.update(s.as_bytes());
                }
            }
        }
        assert_eq!(hash, streamed.digest() as i64);
        assert_eq!(hash, PINNED);
        let contact = contact(1, &[("site", "Liège"), ("e_mail", "anna@example.com")]);
        let of_fields =
            content_hash_of_fields(Origin::External, None, Some("anna@example.com"), &contact);
        assert_eq!(of_fields, PINNED);
    }
    /// The hash of the row above, as every version of ucm computed it.
    const PINNED: i64 = -1180956902217994164;

    fn directory(entries: &[(&str, &[(&str, &str)])]) -> Directory {
        let entries = entries
            .iter()
            .map(|(id, pairs)| DirectoryEntry {
                id: id.to_string(),
                values: with(pairs),
            })
            .collect();
        Directory::new(entries, &MergePolicy::default())
    }

    #[test]
    fn a_contact_without_a_key_is_rejected_with_its_line() {
        let policy = MergePolicy::default();
        let dir = directory(&[]);
        let mut m = Merger::new(&policy, &dir, KeyIndex::default());
        assert_eq!(m.accept(contact(7, &[("first_name", "Ann")])), None);
        assert_eq!(
            m.rejections,
            vec![Rejection::NoKey {
                line: 7,
                field: "e_mail".into()
            }]
        );
    }

    #[test]
    fn a_repeated_key_keeps_the_first_occurrence() {
        let policy = MergePolicy::default();
        let dir = directory(&[]);
        let mut m = Merger::new(&policy, &dir, KeyIndex::default());
        let first = m
            .accept(contact(
                3,
                &[("e_mail", "a@x.com"), ("first_name", "First")],
            ))
            .unwrap();
        let ExternalRow::Changed(first, None) = first else {
            panic!()
        };
        assert_eq!(first.values[1].as_deref(), Some("First"));
        assert_eq!(m.accept(contact(9, &[("e_mail", "A@X.com")])), None);
        assert_eq!(
            m.rejections,
            vec![Rejection::DuplicateKey {
                line: 9,
                key: "a@x.com".into(),
                first_line: 3
            }]
        );
    }

    #[test]
    fn an_ambiguous_key_rejects_the_contact_and_leaves_the_entries_alone() {
        let policy = MergePolicy::default();
        let dir = directory(&[
            ("1", &[("e_mail", "a@x.com")]),
            ("2", &[("e_mail", "a@x.com"), ("site", "B")]),
        ]);
        let mut m = Merger::new(&policy, &dir, KeyIndex::default());
        assert_eq!(
            m.accept(contact(4, &[("e_mail", "a@x.com"), ("site", "X")])),
            None
        );
        assert_eq!(m.rejected, 1);
        let rows: Vec<_> = m.finish().0.collect();
        assert!(rows.iter().all(|r| r.origin == Origin::Directory));
        assert_eq!(rows[1].values[7].as_deref(), Some("B"));
    }

    #[test]
    fn matched_entries_merge_and_unmatched_ones_keep_their_values() {
        let policy = MergePolicy::default();
        let dir = directory(&[
            ("1", &[("e_mail", "a@x.com")]),
            ("2", &[("e_mail", "b@x.com")]),
        ]);
        let mut m = Merger::new(&policy, &dir, KeyIndex::default());
        assert_eq!(
            m.accept(contact(2, &[("e_mail", "A@x.com"), ("office", "7")])),
            None
        );
        let Some(ExternalRow::Changed(ext, _)) = m.accept(contact(3, &[("e_mail", "c@x.com")]))
        else {
            panic!()
        };
        assert_eq!(
            (
                ext.origin,
                ext.directory_id.clone(),
                ext.match_key.as_deref()
            ),
            (Origin::External, None, Some("c@x.com"))
        );
        let rows: Vec<_> = m.finish().0.collect();
        assert_eq!(rows[0].origin, Origin::Merged);
        assert_eq!(rows[0].values[9].as_deref(), Some("7"));
        assert_eq!(
            rows[0].values[6].as_deref(),
            Some("a@x.com"),
            "directory value wins at priority 0"
        );
        assert_eq!(rows[1].origin, Origin::Directory);
    }

    #[test]
    fn the_hash_of_compact_fields_equals_the_hash_of_the_values() {
        let values = with(&[("e_mail", "a@x.com"), ("site", "Gent"), ("user_10", "z")]);
        let contact = ExternalContact::from_values(1, values.clone());
        assert_eq!(
            content_hash(Origin::External, None, Some("k"), &values),
            content_hash_of_fields(Origin::External, None, Some("k"), &contact)
        );
    }

    #[test]
    fn content_hash_changes_with_any_value_and_with_null_versus_empty() {
        let a = content_hash(Origin::External, None, Some("k"), &with(&[("site", "a")]));
        let b = content_hash(Origin::External, None, Some("k"), &with(&[("site", "b")]));
        let c = content_hash(
            Origin::Merged,
            Some("1"),
            Some("k"),
            &with(&[("site", "a")]),
        );
        assert!(a != b && a != c && b != c);
        assert_eq!(
            a,
            content_hash(Origin::External, None, Some("k"), &with(&[("site", "a")]))
        );
    }
}
