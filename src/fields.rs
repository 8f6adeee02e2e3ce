//! The 22 contact fields, in their contractual order, the value cleaning every stage shares,
//! and the origin of a merged row (directory, external, merged).

use std::fmt;

/// Number of contact fields.
pub const FIELD_COUNT: usize = 22;

/// The contact fields in the order the contract fixes (CSV columns, XSD, database columns).
pub const FIELD_NAMES: [&str; FIELD_COUNT] = [
    "extension",
    "first_name",
    "last_name",
    "mobile_number",
    "fax_number",
    "home_number",
    "e_mail",
    "site",
    "department",
    "office",
    "owner",
    "source",
    "user_1",
    "user_2",
    "user_3",
    "user_4",
    "user_5",
    "user_6",
    "user_7",
    "user_8",
    "user_9",
    "user_10",
];

/// Maximum length of a field value in characters (the XSD says the same; the CSV loader
/// enforces it for the directory).
pub const MAX_VALUE_CHARS: usize = 255;

/// One of the 22 contact fields, by its index in [`FIELD_NAMES`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Field(u8);

impl Field {
    /// The field called `name`, if it is one of the 22.
    pub fn from_name(name: &str) -> Option<Field> {
        FIELD_NAMES
            .iter()
            .position(|n| *n == name)
            .map(|i| Field(i as u8))
    }

    /// The field at `index` in [`FIELD_NAMES`]. Panics when out of range.
    pub fn from_index(index: usize) -> Field {
        assert!(index < FIELD_COUNT, "field index {index} out of range");
        Field(index as u8)
    }

    pub fn index(self) -> usize {
        self.0 as usize
    }

    pub fn name(self) -> &'static str {
        FIELD_NAMES[self.index()]
    }

    /// All 22 fields in order.
    pub fn all() -> impl Iterator<Item = Field> {
        (0..FIELD_COUNT).map(Field::from_index)
    }

    /// The comma-separated field list, for error messages.
    pub fn list() -> String {
        FIELD_NAMES.join(", ")
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The values of one contact, indexed by [`Field`]; `None` is NULL.
pub type FieldValues = [Option<String>; FIELD_COUNT];

/// An all-NULL set of values.
pub fn empty_values() -> FieldValues {
    Default::default()
}

/// XML's whitespace (space, tab, CR, LF): the only characters trimmed from a value's ends.
/// Other spaces (no-break, ideographic, em, ...) are data and survive the import.
pub fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// `value` without XML whitespace at its ends ([`is_xml_space`]).
pub fn trim_xml_space(value: &str) -> &str {
    value.trim_matches(is_xml_space)
}

/// Cleans a raw value as the merge rules say: leading and trailing whitespace (space, tab,
/// CR, LF) is trimmed and an empty value is NULL. Everything else is kept as given.
pub fn clean_value(raw: String) -> Option<String> {
    let trimmed = trim_xml_space(&raw);
    if trimmed.is_empty() {
        None
    } else if trimmed.len() == raw.len() {
        Some(raw)
    } else {
        Some(trimmed.to_owned())
    }
}

/// Where a merged row comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// A directory entry without a matching external contact.
    Directory,
    /// An external contact whose key matches no directory entry.
    External,
    /// A directory entry merged with its matching external contact.
    Merged,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Directory => "directory",
            Origin::External => "external",
            Origin::Merged => "merged",
        }
    }

    pub fn parse(s: &str) -> Option<Origin> {
        match s {
            "directory" => Some(Origin::Directory),
            "external" => Some(Origin::External),
            "merged" => Some(Origin::Merged),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn there_are_22_fields_in_the_contract_order() {
        assert_eq!(FIELD_NAMES.len(), 22);
        assert_eq!(Field::from_name("extension").unwrap().index(), 0);
        assert_eq!(Field::from_name("e_mail").unwrap().index(), 6);
        assert_eq!(Field::from_name("user_10").unwrap().index(), 21);
        assert_eq!(Field::from_name("nickname"), None);
    }

    #[test]
    fn values_are_trimmed_and_empty_means_null() {
        assert_eq!(clean_value("  Bob \n".into()), Some("Bob".into()));
        assert_eq!(clean_value("Bob".into()), Some("Bob".into()));
        assert_eq!(clean_value(" \t\n ".into()), None);
        assert_eq!(clean_value(String::new()), None);
        assert_eq!(clean_value(" a  b ".into()), Some("a  b".into()));
        // Hardening 3: no-break, ideographic and em spaces at the ends were trimmed; only XML's
        // whitespace is, the others are data.
        assert_eq!(
            clean_value(" \u{a0}Anna\u{3000}\u{2003} \n".into()),
            Some("\u{a0}Anna\u{3000}\u{2003}".into())
        );
        assert_eq!(clean_value("\u{a0}".into()), Some("\u{a0}".into()));
    }
}
