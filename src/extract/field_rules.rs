//! What a value read from a source that is not XML (a CSV column, a vCard property, an LDAP
//! attribute) is held to before it becomes a field's value: XML 1.0's characters and the
//! schema's rule for the field (its length), so such a source lands exactly what the same
//! contacts as XML could.

use super::encoding::is_xml_char;
use super::schema::SimpleType;
use crate::fields::{FIELD_COUNT, trim_xml_space};

/// `text` as field `i`'s value: trimmed of XML whitespace (None when empty), held to XML 1.0's
/// characters and the schema's rule for the field; Err says what is wrong.
pub(super) fn checked<'t>(
    i: usize,
    text: &'t str,
    field_types: &[Option<SimpleType>; FIELD_COUNT],
) -> Result<Option<&'t str>, String> {
    let value = trim_xml_space(text);
    if value.is_empty() {
        return Ok(None);
    }
    if let Some(bad) = value.chars().find(|&c| !is_xml_char(c)) {
        return Err(format!(
            "character U+{:04X} is not allowed in XML 1.0",
            bad as u32
        ));
    }
    if let Some(rule) = &field_types[i]
        && !rule.admits(value)
    {
        let chars = value.chars().count();
        let limit = match (rule.min_length, rule.max_length) {
            (_, Some(max)) if chars > max => format!("at most {max}"),
            (Some(min), _) => format!("at least {min}"),
            _ => "another length".into(),
        };
        return Err(format!(
            "the value is {chars} characters long; {limit} allowed"
        ));
    }
    Ok(Some(value))
}
