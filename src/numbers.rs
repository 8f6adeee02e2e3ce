//! Phone numbers as caller-ID lookup compares them: each number of a contact is turned into
//! the keys the number index (`contact_numbers`, kept by every run in its transaction) holds,
//! and a calling number into the keys it is looked up by.
//!
//! - mobile, home and fax numbers are normalised to E.164 (`+32475111111`) by the
//!   `rlibphonenumber` crate (a port of libphonenumber, with its metadata), numbers written
//!   without a country code read in the pipeline's `[lookup] default_region`:
//!   `0475 11 11 11`, `+32 475 111111`, `0032475111111` and `475111111` are all
//!   `+32475111111` in region BE;
//! - an extension is kept exactly as written (trimmed), and as its digits when it has
//!   separators: `1234` is found by `1234` only, `(02) 555-0101` by itself and `025550101`.
//!   An extension written as a full number (starting with `+`, or with 7 digits or more) is
//!   found by its E.164 form too;
//! - a number that cannot be normalised (no region configured and no country code, or not a
//!   number at all) is kept as its digits when it has at least 3: the same digits find it.
//!
//! A number several contacts share answers the best of them by [`RANK_RULE`]: the order of
//! the index's `rank` column, then the lowest contact id.
//!
//! The contact search finds numbers in the same index, by prefix
//! ([`NumberPlan::search_prefixes`]).

use rlibphonenumber::enums::Region;
use rlibphonenumber::{PHONE_NUMBER_UTIL, PhoneNumberFormat};

use crate::fields::FieldValues;
use crate::fields::Origin;

/// The fields a number is looked up in, best first: a person's own extension, then their
/// mobile, home and fax numbers. Indexes into [`crate::fields::FIELD_NAMES`].
pub const LOOKUP_FIELDS: [usize; 4] = [EXTENSION, MOBILE_NUMBER, HOME_NUMBER, FAX_NUMBER];
const EXTENSION: usize = 0;
const MOBILE_NUMBER: usize = 3;
const FAX_NUMBER: usize = 4;
const HOME_NUMBER: usize = 5;

/// The rule that picks one contact when several have the number, as the JSON answer states
/// it.
pub const RANK_RULE: &str = "the number's field (extension, then mobile_number, home_number, \
     fax_number), then contacts from the directory (origin directory or merged) before \
     external-only ones, then the oldest contact (lowest id)";

/// The longest calling number looked up, in bytes; longer input is not a phone number.
pub const MAX_NUMBER_BYTES: usize = 64;

/// Fewest digits a number kept as its digits must have (see the module documentation).
const MIN_FALLBACK_DIGITS: usize = 3;

/// Fewest digits for an extension to be read as a full number too.
const MIN_FULL_NUMBER_DIGITS: usize = 7;

/// One entry of the number index: a key and its rank (lower is better).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NumberKey {
    pub number: String,
    pub rank: i64,
}

/// What a rank stands for: the field the number was found in and whether the contact is
/// external-only.
pub fn rank_of(field_position: usize, origin: Origin) -> i64 {
    field_position as i64 * 2 + i64::from(origin == Origin::External)
}

/// The field a rank was given for (an index into [`crate::fields::FIELD_NAMES`]).
pub fn field_of_rank(rank: i64) -> Option<usize> {
    LOOKUP_FIELDS.get(usize::try_from(rank / 2).ok()?).copied()
}

/// How numbers are normalised: the region numbers without a country code are read in.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NumberPlan {
    region: Option<Region>,
}

impl NumberPlan {
    /// The plan for `region` (an ISO 3166 code such as "BE"), or none; an unknown code is
    /// an error naming it.
    pub fn new(region: Option<&str>) -> Result<NumberPlan, String> {
        let region = match region.map(str::trim).filter(|r| !r.is_empty()) {
            None => None,
            Some(code) => Some(
                Region::from_code(code)
                    .ok()
                    .filter(|region| {
                        PHONE_NUMBER_UTIL
                            .get_country_code_for_region(*region)
                            .is_some()
                    })
                    .ok_or_else(|| {
                        format!(
                            "default_region = {code:?} is not a region libphonenumber knows: use \
                             an ISO 3166 two-letter code such as \"BE\", \"FR\" or \"US\""
                        )
                    })?,
            ),
        };
        Ok(NumberPlan { region })
    }

    /// The region's code ("BE"), "" without one: stored with the index, which is rebuilt
    /// when it changes.
    pub fn region(&self) -> String {
        self.region
            .map(|region| region.as_region_str().as_str().to_owned())
            .unwrap_or_default()
    }

    /// `number` in E.164, if it can be read as a phone number.
    pub fn e164(&self, number: &str) -> Option<String> {
        // The separators libphonenumber would skip anyway, removed first: it parses a
        // compact number faster.
        let compact: String = number
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '.' | '/' | '\u{a0}'))
            .collect();
        let parsed = PHONE_NUMBER_UTIL.parse(&compact, self.region).ok()?;
        Some(parsed.format_as(PhoneNumberFormat::E164).into_owned())
    }

    /// Appends the index keys of a row's numbers to `out`.
    pub fn keys(&self, values: &FieldValues, origin: Origin, out: &mut Vec<NumberKey>) {
        let start = out.len();
        for (position, &field) in LOOKUP_FIELDS.iter().enumerate() {
            let Some(value) = values[field].as_deref() else {
                continue;
            };
            let rank = rank_of(position, origin);
            self.value_keys(field == EXTENSION, value, |number| {
                // One entry per key and row: the best rank it was found with.
                if !out[start..].iter().any(|k| k.number == number) {
                    out.push(NumberKey { number, rank });
                }
            });
        }
    }

    /// Gives each index key of one number to `key`: of an extension when `extension`, else
    /// of a mobile, home or fax number (nothing when it is blank).
    pub fn value_keys(&self, extension: bool, value: &str, mut key: impl FnMut(String)) {
        let value = value.trim();
        if value.is_empty() {
            return;
        }
        if extension {
            if reads_as_full_number(value)
                && let Some(e164) = self.e164(value)
            {
                key(e164);
            }
            key(value.to_owned());
            let digits: String = value.chars().filter(char::is_ascii_digit).collect();
            if !digits.is_empty() && digits != value {
                key(digits);
            }
        } else if let Some(found) = self.e164(value).or_else(|| fallback(value)) {
            key(found);
        }
    }

    /// The key prefixes a search for `digits` (a number typed with its separators removed)
    /// reads: the digits themselves (extensions, numbers kept as digits), `+` and the digits
    /// (an international number typed without its `+`), the digits after an international
    /// call prefix `00`, and, in the default region, the digits after the trunk prefix `0`
    /// with the region's country code (`0475` finds `+32475...` in BE).
    pub fn search_prefixes(&self, digits: &str) -> Vec<String> {
        let mut prefixes = vec![digits.to_owned(), format!("+{digits}")];
        if let Some(rest) = digits.strip_prefix("00") {
            prefixes.push(format!("+{rest}"));
        } else if let Some(rest) = digits.strip_prefix('0')
            && let Some(region) = self.region
            && let Some(code) = PHONE_NUMBER_UTIL.get_country_code_for_region(region)
        {
            prefixes.push(format!("+{code}{rest}"));
        }
        prefixes.retain(|p| p.len() > 1);
        prefixes.dedup();
        prefixes
    }

    /// The keys a calling number is looked up by: as written (an extension), its E.164 form,
    /// or its digits when it has no E.164 form. Empty when it is blank or too long.
    pub fn query_keys(&self, number: &str) -> Vec<String> {
        let number = number.trim();
        if number.is_empty() || number.len() > MAX_NUMBER_BYTES {
            return Vec::new();
        }
        let mut keys = vec![number.to_owned()];
        if let Some(key) = self.e164(number).or_else(|| fallback(number))
            && key != number
        {
            keys.push(key);
        }
        keys
    }
}

/// An extension that is written as a full number (`+32 2 555 01 23`, `025550123`).
fn reads_as_full_number(value: &str) -> bool {
    value.starts_with('+')
        || value.bytes().filter(u8::is_ascii_digit).count() >= MIN_FULL_NUMBER_DIGITS
}

/// The digits of a number with no E.164 form, when it has enough of them.
fn fallback(value: &str) -> Option<String> {
    let digits: String = value.chars().filter(char::is_ascii_digit).collect();
    (digits.len() >= MIN_FALLBACK_DIGITS).then_some(digits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields::empty_values;

    fn be() -> NumberPlan {
        NumberPlan::new(Some("BE")).unwrap()
    }

    #[test]
    fn every_spelling_of_a_belgian_mobile_number_is_one_e164_key() {
        for spelling in [
            "0475 11 11 11",
            "+32 475 111111",
            "0032475111111",
            "475111111",
            "+32 (0)475 11.11.11",
            "0475/11 11 11",
        ] {
            assert_eq!(
                be().e164(spelling).as_deref(),
                Some("+32475111111"),
                "{spelling}"
            );
        }
        assert_eq!(be().e164("+49 30 1234567").as_deref(), Some("+49301234567"));
    }

    #[test]
    fn an_extension_is_kept_as_written_and_a_full_number_extension_also_as_e164() {
        let mut values = empty_values();
        values[EXTENSION] = Some(" 1234 ".into());
        values[MOBILE_NUMBER] = Some("0475 11 11 11".into());
        values[FAX_NUMBER] = Some("+32 2 555 01 99".into());
        let mut keys = Vec::new();
        be().keys(&values, Origin::Merged, &mut keys);
        assert_eq!(
            keys,
            vec![
                NumberKey {
                    number: "1234".into(),
                    rank: 0
                },
                NumberKey {
                    number: "+32475111111".into(),
                    rank: 2
                },
                NumberKey {
                    number: "+3225550199".into(),
                    rank: 6
                },
            ]
        );
        values[EXTENSION] = Some("+32 2 555 01 23".into());
        keys.clear();
        be().keys(&values, Origin::External, &mut keys);
        assert_eq!(keys[0].number, "+3225550123");
        assert_eq!(keys[0].rank, 1);
        assert_eq!(keys[1].number, "+32 2 555 01 23");
    }

    #[test]
    fn an_extension_with_separators_is_also_kept_as_its_digits() {
        let mut values = empty_values();
        values[EXTENSION] = Some("(02) 555-0101".into());
        let mut keys = Vec::new();
        NumberPlan::default().keys(&values, Origin::Directory, &mut keys);
        let numbers: Vec<&str> = keys.iter().map(|k| k.number.as_str()).collect();
        assert_eq!(numbers, ["(02) 555-0101", "025550101"]);
    }

    #[test]
    fn a_search_reads_the_digits_the_international_and_the_national_prefixes() {
        assert_eq!(be().search_prefixes("0475"), ["0475", "+0475", "+32475"]);
        assert_eq!(
            be().search_prefixes("0032475"),
            ["0032475", "+0032475", "+32475"]
        );
        assert_eq!(be().search_prefixes("32475"), ["32475", "+32475"]);
        assert_eq!(
            NumberPlan::default().search_prefixes("0475"),
            ["0475", "+0475"]
        );
    }

    #[test]
    fn a_number_written_in_two_fields_of_one_contact_is_one_key_with_the_better_rank() {
        let mut values = empty_values();
        values[MOBILE_NUMBER] = Some("0475111111".into());
        values[HOME_NUMBER] = Some("+32475111111".into());
        let mut keys = Vec::new();
        be().keys(&values, Origin::Directory, &mut keys);
        assert_eq!(
            keys,
            vec![NumberKey {
                number: "+32475111111".into(),
                rank: 2
            }]
        );
        assert_eq!(field_of_rank(2), Some(MOBILE_NUMBER));
        assert_eq!(field_of_rank(7), Some(FAX_NUMBER));
        assert_eq!(field_of_rank(8), None);
    }

    #[test]
    fn without_a_region_national_numbers_are_kept_as_their_digits() {
        let none = NumberPlan::new(None).unwrap();
        assert_eq!(none.region(), "");
        assert_eq!(
            none.query_keys("0475 11 11 11"),
            vec!["0475 11 11 11".to_owned(), "0475111111".to_owned()]
        );
        assert_eq!(none.e164("+32 475 111111").as_deref(), Some("+32475111111"));
        let mut values = empty_values();
        values[MOBILE_NUMBER] = Some("0475/11.11.11".into());
        values[HOME_NUMBER] = Some("n/a".into());
        let mut keys = Vec::new();
        none.keys(&values, Origin::External, &mut keys);
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].number, "0475111111");
    }

    #[test]
    fn a_region_is_an_iso_code_libphonenumber_knows() {
        assert_eq!(NumberPlan::new(Some("be")).unwrap().region(), "BE");
        for unknown in ["Belgium", "XX", "B1"] {
            let error = NumberPlan::new(Some(unknown)).unwrap_err();
            assert!(
                error.contains(&format!("{unknown:?}")) && error.contains("ISO 3166"),
                "{error}"
            );
        }
    }

    /// The phonenumber crate (before version 13 of the schema) read `+39 06 ...` with
    /// region BE as `+39612345678`, dropping the 0 Italian numbers keep; it also refused a
    /// number with an `;ext=` suffix.
    #[test]
    fn an_italian_number_keeps_its_leading_zero_whatever_the_region() {
        for plan in [be(), NumberPlan::default()] {
            assert_eq!(
                plan.e164("+39 06 1234 5678").as_deref(),
                Some("+390612345678")
            );
            assert_eq!(
                plan.e164("+32475111111;ext=12").as_deref(),
                Some("+32475111111")
            );
        }
    }

    #[test]
    fn a_calling_number_is_looked_up_as_written_and_as_e164() {
        assert_eq!(
            be().query_keys(" 0032475111111 "),
            vec!["0032475111111".to_owned(), "+32475111111".to_owned()]
        );
        assert_eq!(
            be().query_keys("+32475111111"),
            vec!["+32475111111".to_owned()]
        );
        assert!(be().query_keys("   ").is_empty());
        assert!(
            be().query_keys(&"1".repeat(MAX_NUMBER_BYTES + 1))
                .is_empty()
        );
    }
}
