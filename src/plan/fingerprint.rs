//! A plan's base fingerprint: short texts that change whenever what a plan was computed
//! against changes: the merged table's rows, the directory, the merge policy.
//!
//! The table and the directory are fingerprinted as a multiset: the row count and the sum
//! (mod 2^128) of a 128-bit xxh3 of each row (the table: id and content hash, which covers
//! every stored value; the directory: id and values). A sum does not depend on the order rows
//! are read in, so the same content always gives the same fingerprint on either backend, and
//! one changed value, one row added or removed changes it. It guards against changes made
//! meanwhile, not against someone forging a collision (whoever can write the database needs
//! none).

use xxhash_rust::xxh3::xxh3_128;

use crate::fields::FIELD_NAMES;
use crate::load::LoadError;
use crate::load::run::RunTransaction;
use crate::transform::{Directory, MergePolicy, Side};

/// A multiset of rows: their count and the sum of their hashes.
#[derive(Default)]
struct RowSum {
    rows: u64,
    sum: u128,
}

impl RowSum {
    fn add(&mut self, bytes: &[u8]) {
        self.rows += 1;
        self.sum = self.sum.wrapping_add(xxh3_128(bytes));
    }

    fn render(&self, what: &str) -> String {
        format!("{} {what}, {:032x}", self.rows, self.sum)
    }
}

/// The merged table as the run transaction `run` sees it (one read of ids and content
/// hashes).
pub fn table(run: &mut RunTransaction) -> Result<String, LoadError> {
    let mut sum = RowSum::default();
    run.each_row_hash(|id, hash| {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&id.to_le_bytes());
        bytes[8..].copy_from_slice(&hash.to_le_bytes());
        sum.add(&bytes);
    })?;
    Ok(sum.render("rows"))
}

/// The directory's entries: ids and values.
pub fn directory(directory: &Directory) -> String {
    let mut sum = RowSum::default();
    let mut bytes = Vec::new();
    for i in 0..directory.len() {
        bytes.clear();
        bytes.extend_from_slice(directory.id(i).as_bytes());
        for value in directory.values(i) {
            // A NULL and an empty string differ; a length prefix keeps values apart.
            match value {
                None => bytes.push(0),
                Some(v) => {
                    bytes.push(1);
                    bytes.extend_from_slice(&(v.len() as u64).to_le_bytes());
                    bytes.extend_from_slice(v.as_bytes());
                }
            }
        }
        sum.add(&bytes);
    }
    sum.render("entries")
}

/// The merge policy, readable: the matching field and the fields where the external value
/// wins (what a refusal shows when it changed).
pub fn policy(policy: &MergePolicy) -> String {
    let external: Vec<&str> = policy
        .priority
        .iter()
        .enumerate()
        .filter(|(_, side)| **side == Side::External)
        .map(|(i, _)| FIELD_NAMES[i])
        .collect();
    format!(
        "match on {}; external wins for {}",
        policy.matching_field.name(),
        if external.is_empty() {
            "no field".to_owned()
        } else {
            external.join(", ")
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields::{FIELD_COUNT, Field};

    fn entry(id: &str, first: Option<&str>) -> crate::transform::DirectoryEntry {
        let mut values = crate::fields::empty_values();
        values[Field::from_name("first_name").unwrap().index()] = first.map(str::to_owned);
        crate::transform::DirectoryEntry {
            id: id.into(),
            values,
        }
    }

    #[test]
    fn a_directory_fingerprint_ignores_order_and_sees_every_value() {
        let policy = MergePolicy::default();
        let of = |entries| directory(&Directory::new(entries, &policy));
        let ab = of(vec![entry("1", Some("Ann")), entry("2", None)]);
        assert_eq!(ab, of(vec![entry("2", None), entry("1", Some("Ann"))]));
        assert_ne!(ab, of(vec![entry("1", Some("Anne")), entry("2", None)]));
        assert_ne!(ab, of(vec![entry("1", Some("Ann")), entry("2", Some(""))]));
        assert_ne!(ab, of(vec![entry("1", Some("Ann"))]));
        assert!(ab.starts_with("2 entries, "), "{ab}");
    }

    #[test]
    fn a_policy_fingerprint_names_what_changed() {
        let mut p = MergePolicy::default();
        assert_eq!(policy(&p), "match on e_mail; external wins for no field");
        p.priority[Field::from_name("site").unwrap().index()] = Side::External;
        assert_eq!(policy(&p), "match on e_mail; external wins for site");
        assert_eq!(p.priority.len(), FIELD_COUNT);
    }
}
