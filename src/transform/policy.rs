//! The merge rules: which field matches external contacts to directory entries, how its value
//! is normalised into a match key, and which side's value wins for each field.

use serde::{Deserialize, Serialize};

use crate::fields::{FIELD_COUNT, Field, FieldValues};

/// A side of the merge: the internal directory or the external source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// Priority 0: the directory's value wins.
    #[default]
    Directory,
    /// Priority 1: the external value wins.
    External,
}

/// The side whose value wins for a field (`0`/`"directory"` or `1`/`"external"` in config).
pub type Priority = Side;

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Directory => "directory",
            Side::External => "external",
        }
    }
}

/// How external contacts are matched and merged; built from `[merge]` in the pipeline config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MergePolicy {
    pub matching_field: Field,
    pub priority: [Priority; FIELD_COUNT],
}

impl Default for MergePolicy {
    fn default() -> Self {
        MergePolicy {
            matching_field: Field::from_name("e_mail").expect("e_mail is a field"),
            priority: [Priority::Directory; FIELD_COUNT],
        }
    }
}

impl MergePolicy {
    /// The normalised match key of a contact's values (owned or borrowed), `None` when it has
    /// no usable key.
    pub fn match_key<S: AsRef<str>>(&self, values: &[Option<S>; FIELD_COUNT]) -> Option<String> {
        values[self.matching_field.index()]
            .as_ref()
            .and_then(|v| normalise_key(self.matching_field, v.as_ref()))
    }

    /// Merges a directory entry with its matching external contact: per field, the value of
    /// the side with priority, or the other side's value when that one is NULL. Returns the
    /// values and the side each came from.
    pub fn merge(
        &self,
        directory: &FieldValues,
        external: &FieldValues,
    ) -> (FieldValues, [Side; FIELD_COUNT]) {
        let mut values: FieldValues = Default::default();
        let mut sides = [Side::Directory; FIELD_COUNT];
        for i in 0..FIELD_COUNT {
            let (first, second, first_side, second_side) = match self.priority[i] {
                Side::Directory => (&directory[i], &external[i], Side::Directory, Side::External),
                Side::External => (&external[i], &directory[i], Side::External, Side::Directory),
            };
            (values[i], sides[i]) = match (first, second) {
                (Some(v), _) => (Some(v.clone()), first_side),
                (None, Some(v)) => (Some(v.clone()), second_side),
                (None, None) => (None, first_side),
            };
        }
        (values, sides)
    }
}

/// Normalises a value of the matching field into a match key: `e_mail` is lowercased; phone
/// fields (`extension`, `mobile_number`, `fax_number`, `home_number`) keep only their digits and
/// a leading `+`; other fields are compared exactly after trimming. `None` when nothing is left.
pub fn normalise_key(field: Field, value: &str) -> Option<String> {
    let value = crate::fields::trim_xml_space(value);
    let key = match field.name() {
        "e_mail" => value.to_lowercase(),
        "extension" | "mobile_number" | "fax_number" | "home_number" => {
            let mut key = String::with_capacity(value.len());
            if value.starts_with('+') {
                key.push('+');
            }
            key.extend(value.chars().filter(char::is_ascii_digit));
            if key == "+" {
                key.clear();
            }
            key
        }
        _ => value.to_owned(),
    };
    (!key.is_empty()).then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(name: &str) -> Field {
        Field::from_name(name).unwrap()
    }

    #[test]
    fn e_mail_keys_are_lowercased() {
        assert_eq!(
            normalise_key(field("e_mail"), " Bob.Smith@Example.COM "),
            Some("bob.smith@example.com".into())
        );
    }

    #[test]
    fn phone_keys_keep_digits_and_a_leading_plus() {
        assert_eq!(
            normalise_key(field("mobile_number"), "+32 (0)475-12.34.56"),
            Some("+320475123456".into())
        );
        assert_eq!(
            normalise_key(field("extension"), "ext 2 01"),
            Some("201".into())
        );
        assert_eq!(
            normalise_key(field("fax_number"), "0032+1"),
            Some("00321".into())
        );
        assert_eq!(normalise_key(field("home_number"), "+ -"), None);
        assert_eq!(normalise_key(field("extension"), "n/a"), None);
    }

    #[test]
    fn other_keys_are_compared_exactly_after_trimming() {
        assert_eq!(
            normalise_key(field("last_name"), "  Smith "),
            Some("Smith".into())
        );
        assert_ne!(
            normalise_key(field("last_name"), "smith"),
            normalise_key(field("last_name"), "Smith")
        );
        assert_eq!(normalise_key(field("user_3"), "   "), None);
    }

    fn values(pairs: &[(&str, &str)]) -> FieldValues {
        let mut v: FieldValues = Default::default();
        for (k, val) in pairs {
            v[field(k).index()] = Some(val.to_string());
        }
        v
    }

    #[test]
    fn priority_1_takes_the_external_value_and_0_the_directory_value() {
        let mut policy = MergePolicy::default();
        policy.priority[field("mobile_number").index()] = Side::External;
        let dir = values(&[("first_name", "Robert"), ("mobile_number", "111")]);
        let ext = values(&[("first_name", "Bob"), ("mobile_number", "222")]);
        let (merged, sides) = policy.merge(&dir, &ext);
        assert_eq!(
            merged[field("first_name").index()].as_deref(),
            Some("Robert")
        );
        assert_eq!(sides[field("first_name").index()], Side::Directory);
        assert_eq!(
            merged[field("mobile_number").index()].as_deref(),
            Some("222")
        );
        assert_eq!(sides[field("mobile_number").index()], Side::External);
    }

    #[test]
    fn when_the_winning_side_is_null_the_other_value_is_used() {
        let mut policy = MergePolicy::default();
        policy.priority[field("site").index()] = Side::External;
        let dir = values(&[("site", "Brussels")]);
        let ext = values(&[("department", "Sales")]);
        let (merged, sides) = policy.merge(&dir, &ext);
        assert_eq!(merged[field("site").index()].as_deref(), Some("Brussels"));
        assert_eq!(sides[field("site").index()], Side::Directory);
        assert_eq!(
            merged[field("department").index()].as_deref(),
            Some("Sales")
        );
        assert_eq!(sides[field("department").index()], Side::External);
        assert_eq!(merged[field("office").index()], None);
    }
}
