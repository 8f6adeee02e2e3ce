//! The internal directory: its entries (read from a CSV file or the `directory` table) and the
//! match-key index the merge looks external contacts up in.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::fields::{FIELD_COUNT, Field, FieldValues, MAX_VALUE_CHARS, clean_value, empty_values};
use crate::transform::key_index::KeyIndex;
use crate::transform::policy::MergePolicy;

/// One directory entry: its id and its 22 values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectoryEntry {
    pub id: String,
    pub values: FieldValues,
}

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("cannot read directory CSV {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Invalid {
        path: PathBuf,
        line: u64,
        message: String,
    },
}

/// Reads a directory CSV: a header row with `id` and any of the 22 field names, then one entry
/// per row. Values are trimmed and an empty value is NULL; ids must be present and unique.
pub fn read_csv(path: &Path) -> Result<Vec<DirectoryEntry>, DirectoryError> {
    let invalid = |line: u64, message: String| DirectoryError::Invalid {
        path: path.to_owned(),
        line,
        message,
    };
    let file = std::fs::File::open(path).map_err(|source| DirectoryError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(file);
    let csv_error = |e: csv::Error| {
        let line = e.position().map(|p| p.line()).unwrap_or(0);
        match e.into_kind() {
            csv::ErrorKind::Io(source) => DirectoryError::Io {
                path: path.to_owned(),
                source,
            },
            csv::ErrorKind::Utf8 { .. } => invalid(line, "the file is not valid UTF-8".into()),
            csv::ErrorKind::UnequalLengths {
                expected_len, len, ..
            } => invalid(
                line,
                format!("{len} columns where the header has {expected_len}"),
            ),
            other => invalid(line, format!("{other:?}")),
        }
    };
    let headers = reader.headers().map_err(csv_error)?.clone();
    let mut id_column = None;
    let mut columns: Vec<Option<Field>> = Vec::with_capacity(headers.len());
    let mut seen_fields = [false; FIELD_COUNT];
    for (i, h) in headers.iter().enumerate() {
        let h = h.trim().trim_start_matches('\u{feff}');
        if h == "id" {
            if id_column.replace(i).is_some() {
                return Err(invalid(1, "column id appears twice in the header".into()));
            }
            columns.push(None);
            continue;
        }
        let field = Field::from_name(h).ok_or_else(|| {
            invalid(
                1,
                format!("unknown column \"{h}\"; allowed: id, {}", Field::list()),
            )
        })?;
        if std::mem::replace(&mut seen_fields[field.index()], true) {
            return Err(invalid(
                1,
                format!("column {h} appears twice in the header"),
            ));
        }
        columns.push(Some(field));
    }
    let id_column = id_column.ok_or_else(|| invalid(1, "the header has no id column".into()))?;
    let mut entries = Vec::new();
    let mut ids: HashMap<String, u64> = HashMap::new();
    for record in reader.records() {
        let record = record.map_err(csv_error)?;
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        let mut values = empty_values();
        let mut id = None;
        for (i, raw) in record.iter().enumerate() {
            if raw.chars().count() > MAX_VALUE_CHARS {
                let column = if i == id_column {
                    "id"
                } else {
                    columns[i].map_or("?", Field::name)
                };
                return Err(invalid(
                    line,
                    format!("value of {column} is longer than {MAX_VALUE_CHARS} characters"),
                ));
            }
            let value = clean_value(raw.to_owned());
            match columns[i] {
                None => id = value,
                Some(field) => values[field.index()] = value,
            }
        }
        let id = id.ok_or_else(|| invalid(line, "the id is empty".into()))?;
        if let Some(first) = ids.insert(id.clone(), line) {
            return Err(invalid(
                line,
                format!("id \"{id}\" appears again (first on line {first})"),
            ));
        }
        entries.push(DirectoryEntry { id, values });
    }
    Ok(entries)
}

/// Directory entries sharing one match key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyOwners {
    One(usize),
    /// The key is ambiguous: an external contact with it is rejected.
    Many(Vec<usize>),
}

/// A directory entry's values in one allocation: the present values end to end, with their
/// end offsets. About a quarter of the size of 22 `Option<String>`s for typical entries.
#[derive(Clone, Debug)]
struct CompactValues {
    text: Box<str>,
    ends: [u16; FIELD_COUNT],
    present: u32,
}

impl CompactValues {
    fn new<S: AsRef<str>>(values: &[Option<S>; FIELD_COUNT]) -> CompactValues {
        let mut text = String::new();
        let mut ends = [0u16; FIELD_COUNT];
        let mut present = 0u32;
        for (i, v) in values.iter().enumerate() {
            if let Some(v) = v {
                text.push_str(v.as_ref());
                present |= 1 << i;
            }
            // At most 22 values of 255 characters of at most 4 bytes: below u16::MAX.
            ends[i] = text.len() as u16;
        }
        CompactValues {
            text: text.into_boxed_str(),
            ends,
            present,
        }
    }

    fn get(&self, i: usize) -> Option<&str> {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        (self.present & (1 << i) != 0).then(|| &self.text[start..self.ends[i] as usize])
    }

    fn values(&self) -> FieldValues {
        std::array::from_fn(|i| self.get(i).map(str::to_owned))
    }
}

/// The directory with its match-key index.
#[derive(Debug, Default)]
pub struct Directory {
    ids: Vec<String>,
    values: Vec<CompactValues>,
    /// Each entry's normalised match key.
    pub keys: Vec<Option<String>>,
    /// Match-key fingerprint → the entries with that key.
    index: HashMap<[u64; 2], KeyOwners, foldhash::fast::FixedState>,
}

impl Directory {
    pub fn new(entries: Vec<DirectoryEntry>, policy: &MergePolicy) -> Directory {
        let mut directory = Directory {
            ids: Vec::with_capacity(entries.len()),
            values: Vec::with_capacity(entries.len()),
            keys: Vec::with_capacity(entries.len()),
            index: HashMap::default(),
        };
        for entry in entries {
            directory.push(entry.id, &entry.values, policy);
        }
        directory
    }

    /// Adds an entry, compacted at once: a directory read from the table never holds its
    /// entries loose, nor its values as separate strings.
    pub fn push<S: AsRef<str>>(
        &mut self,
        id: String,
        values: &[Option<S>; FIELD_COUNT],
        policy: &MergePolicy,
    ) {
        let i = self.ids.len();
        let key = policy.match_key(values);
        if let Some(key) = &key {
            self.index
                .entry(KeyIndex::fingerprint(key))
                .and_modify(|owners| match owners {
                    KeyOwners::One(first) => *owners = KeyOwners::Many(vec![*first, i]),
                    KeyOwners::Many(all) => all.push(i),
                })
                .or_insert(KeyOwners::One(i));
        }
        self.keys.push(key);
        self.ids.push(id);
        self.values.push(CompactValues::new(values));
    }

    /// The entries whose match key has this fingerprint ([`KeyIndex::fingerprint`]).
    pub fn lookup(&self, fingerprint: [u64; 2]) -> Option<&KeyOwners> {
        self.index.get(&fingerprint)
    }

    /// The id of entry `i`.
    pub fn id(&self, i: usize) -> &str {
        &self.ids[i]
    }

    /// The values of entry `i`.
    pub fn values(&self, i: usize) -> FieldValues {
        self.values[i].values()
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(content: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("directory.csv");
        std::fs::write(&path, content).unwrap();
        (dir, path)
    }

    #[test]
    fn a_csv_with_any_subset_of_fields_loads_trimmed_with_nulls() {
        let (_d, path) = write("id,e_mail,first_name\n1, a@x.com ,\n2,b@x.com,Bea\n");
        let entries = read_csv(&path).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].values[6].as_deref(), Some("a@x.com"));
        assert_eq!(entries[0].values[1], None);
        assert_eq!(entries[1].values[1].as_deref(), Some("Bea"));
    }

    #[test]
    fn an_unknown_column_is_named_with_the_file() {
        let (_d, path) = write("id,nickname\n1,x\n");
        let err = read_csv(&path).unwrap_err().to_string();
        assert!(
            err.contains("directory.csv:1: unknown column \"nickname\""),
            "{err}"
        );
    }

    #[test]
    fn duplicate_and_missing_ids_are_refused_with_their_line() {
        let (_d, path) = write("id,e_mail\n1,a\n1,b\n");
        assert!(
            read_csv(&path)
                .unwrap_err()
                .to_string()
                .contains(":3: id \"1\" appears again (first on line 2)")
        );
        let (_d, path) = write("id,e_mail\n,a\n");
        assert!(
            read_csv(&path)
                .unwrap_err()
                .to_string()
                .contains(":2: the id is empty")
        );
        let (_d, path) = write("e_mail\na\n");
        assert!(
            read_csv(&path)
                .unwrap_err()
                .to_string()
                .contains("no id column")
        );
    }

    #[test]
    fn compact_values_give_back_what_they_were_given() {
        let mut values = empty_values();
        values[0] = Some("201".into());
        values[7] = Some("Liège".into());
        values[21] = Some(String::new());
        let compact = CompactValues::new(&values);
        assert_eq!(compact.values(), values);
        assert_eq!(compact.get(1), None);
    }

    #[test]
    fn a_shared_key_is_ambiguous() {
        let entry = |id: &str, mail: &str| {
            let mut values = empty_values();
            values[6] = Some(mail.into());
            DirectoryEntry {
                id: id.into(),
                values,
            }
        };
        let dir = Directory::new(
            vec![
                entry("1", "A@x.com"),
                entry("2", "a@x.com"),
                entry("3", "c@x.com"),
            ],
            &MergePolicy::default(),
        );
        let fp = KeyIndex::fingerprint;
        assert_eq!(
            dir.lookup(fp("a@x.com")),
            Some(&KeyOwners::Many(vec![0, 1]))
        );
        assert_eq!(dir.lookup(fp("c@x.com")), Some(&KeyOwners::One(2)));
    }
}
