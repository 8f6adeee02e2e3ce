//! Contacts as LDAP entries (`inetOrgPerson`) and search filters evaluated on them (their
//! DNs are parsed in [`super::dn`]).
//!
//! An entry's RDN is its identity, stable across runs: `uid=dir-{directory_id}` for a contact
//! of the internal directory (origin directory or merged), `uid=ext-{match_key}` for an
//! external-only one. Names and text compare without regard to case, `É` as `é`
//! (`crate::directory::fold_case`, the contact search's rule); `uid` compares exactly;
//! numbers compare as the number index keys them (`crate::numbers`): `0475 11*` finds
//! `+32 475 11 11 11` in region BE.

use std::borrow::Cow;

use ldap3_proto::proto::{LdapFilter, LdapPartialAttribute, LdapSubstringFilter};

pub use super::dn::{Dn, escape_rdn_value, parse_dn, parse_dn_as_written};
use crate::directory::{fold_case, same_folded};
use crate::numbers::NumberPlan;
use crate::phonebook::NameStyle;

/// The attributes an entry has, by their canonical names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attr {
    ObjectClass,
    Uid,
    Cn,
    DisplayName,
    Sn,
    GivenName,
    TelephoneNumber,
    Mobile,
    HomePhone,
    Fax,
    Mail,
    O,
    Ou,
    L,
}

impl Attr {
    pub const ALL: [Attr; 14] = [
        Attr::ObjectClass,
        Attr::Uid,
        Attr::Cn,
        Attr::DisplayName,
        Attr::Sn,
        Attr::GivenName,
        Attr::TelephoneNumber,
        Attr::Mobile,
        Attr::HomePhone,
        Attr::Fax,
        Attr::Mail,
        Attr::O,
        Attr::Ou,
        Attr::L,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Attr::ObjectClass => "objectClass",
            Attr::Uid => "uid",
            Attr::Cn => "cn",
            Attr::DisplayName => "displayName",
            Attr::Sn => "sn",
            Attr::GivenName => "givenName",
            Attr::TelephoneNumber => "telephoneNumber",
            Attr::Mobile => "mobile",
            Attr::HomePhone => "homePhone",
            Attr::Fax => "facsimileTelephoneNumber",
            Attr::Mail => "mail",
            Attr::O => "o",
            Attr::Ou => "ou",
            Attr::L => "l",
        }
    }

    /// The attribute a filter or an attribute list names, by its name or a standard alias
    /// (`commonName`, `surname`, `gn`, `mobileTelephoneNumber`, ...), in any case.
    pub fn parse(name: &str) -> Option<Attr> {
        let name = name.to_ascii_lowercase();
        Some(match name.as_str() {
            "objectclass" => Attr::ObjectClass,
            "uid" | "userid" => Attr::Uid,
            "cn" | "commonname" => Attr::Cn,
            "displayname" => Attr::DisplayName,
            "sn" | "surname" => Attr::Sn,
            "givenname" | "gn" => Attr::GivenName,
            "telephonenumber" => Attr::TelephoneNumber,
            "mobile" | "mobiletelephonenumber" => Attr::Mobile,
            "homephone" | "hometelephonenumber" => Attr::HomePhone,
            "facsimiletelephonenumber" | "fax" => Attr::Fax,
            "mail" | "rfc822mailbox" => Attr::Mail,
            "o" | "organizationname" => Attr::O,
            "ou" | "organizationalunitname" => Attr::Ou,
            "l" | "localityname" => Attr::L,
            _ => return None,
        })
    }

    /// A phone number: compared as the number index keys it.
    pub fn is_number(self) -> bool {
        matches!(
            self,
            Attr::TelephoneNumber | Attr::Mobile | Attr::HomePhone | Attr::Fax
        )
    }
}

/// The object classes of every contact entry.
pub const CONTACT_CLASSES: [&str; 4] = ["top", "person", "organizationalPerson", "inetOrgPerson"];

/// The columns of a contact an entry is made of, in [`ContactRow`]'s order.
pub const CONTACT_COLUMNS: &str = "c.id, c.origin, c.directory_id, c.match_key, c.extension, \
     c.first_name, c.last_name, c.mobile_number, c.fax_number, c.home_number, c.e_mail, c.site, \
     c.department";

/// One row of the merged table, as far as the directory shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContactRow {
    pub id: i64,
    pub origin: String,
    pub directory_id: Option<String>,
    pub match_key: Option<String>,
    pub extension: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub mobile_number: Option<String>,
    pub fax_number: Option<String>,
    pub home_number: Option<String>,
    pub e_mail: Option<String>,
    pub site: Option<String>,
    pub department: Option<String>,
    /// The number index keys of extension, mobile, home and fax, worked out once.
    pub number_keys: [std::cell::OnceCell<Vec<String>>; 4],
}

/// How entries are written: the name format and the organisation.
pub struct EntryStyle<'s> {
    pub name_style: NameStyle,
    pub organization: Option<&'s str>,
    pub numbers: &'s NumberPlan,
}

/// A value that is there and not blank.
fn present(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.trim().is_empty())
}

impl ContactRow {
    /// The number index keys of the number `attr` stands for (see `crate::numbers`).
    pub fn keys_of(&self, attr: Attr, plan: &NumberPlan) -> &[String] {
        let (slot, value) = match attr {
            Attr::TelephoneNumber => (0, &self.extension),
            Attr::Mobile => (1, &self.mobile_number),
            Attr::HomePhone => (2, &self.home_number),
            Attr::Fax => (3, &self.fax_number),
            _ => return &[],
        };
        self.number_keys[slot].get_or_init(|| {
            let mut keys = Vec::new();
            if let Some(value) = value {
                plan.value_keys(attr == Attr::TelephoneNumber, value, |k| keys.push(k));
            }
            keys
        })
    }

    /// The entry's `uid`: its identity.
    pub fn uid(&self) -> String {
        match (&self.directory_id, &self.match_key) {
            (Some(id), _) => format!("dir-{id}"),
            (None, Some(key)) => format!("ext-{key}"),
            (None, None) => format!("row-{}", self.id),
        }
    }

    fn display_name(&self, style: NameStyle) -> String {
        crate::phonebook::Entry {
            first_name: present(&self.first_name).map(str::to_owned),
            last_name: present(&self.last_name).map(str::to_owned),
            e_mail: present(&self.e_mail).map(str::to_owned),
            ..Default::default()
        }
        .display_name(style)
    }

    /// The values of `attr` (none, or one: only objectClass has several).
    pub fn values<'r>(&'r self, attr: Attr, style: &EntryStyle<'r>) -> Vec<Cow<'r, str>> {
        let one = |v: &'r Option<String>| present(v).map(Cow::Borrowed).into_iter().collect();
        match attr {
            Attr::ObjectClass => CONTACT_CLASSES.iter().map(|c| Cow::Borrowed(*c)).collect(),
            Attr::Uid => vec![Cow::Owned(self.uid())],
            Attr::Cn | Attr::DisplayName => vec![Cow::Owned(self.display_name(style.name_style))],
            // `person` requires a surname: the name shown when there is no last name.
            Attr::Sn => match present(&self.last_name) {
                Some(last) => vec![Cow::Borrowed(last)],
                None => vec![Cow::Owned(self.display_name(style.name_style))],
            },
            Attr::GivenName => one(&self.first_name),
            Attr::TelephoneNumber => one(&self.extension),
            Attr::Mobile => one(&self.mobile_number),
            Attr::HomePhone => one(&self.home_number),
            Attr::Fax => one(&self.fax_number),
            Attr::Mail => one(&self.e_mail),
            Attr::O => style.organization.map(Cow::Borrowed).into_iter().collect(),
            Attr::Ou => one(&self.department),
            Attr::L => one(&self.site),
        }
    }

    /// The entry's attributes `wanted` picks, values left out when `types_only`.
    pub fn attributes(
        &self,
        wanted: &Wanted,
        types_only: bool,
        style: &EntryStyle<'_>,
    ) -> Vec<LdapPartialAttribute> {
        Attr::ALL
            .iter()
            .filter(|a| wanted.wants(**a))
            .filter_map(|&attr| {
                let values = self.values(attr, style);
                (!values.is_empty()).then(|| LdapPartialAttribute {
                    atype: attr.name().to_owned(),
                    vals: if types_only {
                        Vec::new()
                    } else {
                        // One line of printable text, as every phone-facing value is.
                        values
                            .into_iter()
                            .map(|v| crate::phonebook::into_one_line(v.into_owned()).into_bytes())
                            .collect()
                    },
                })
            })
            .collect()
    }

    /// Whether the filter is true of this entry (false when undefined, as RFC 4511 says).
    pub fn matches(&self, filter: &LdapFilter, style: &EntryStyle<'_>) -> bool {
        self.evaluate(filter, style) == Some(true)
    }

    /// RFC 4511 §4.5.1.7's three values: Some(true), Some(false), None (undefined: an
    /// attribute or a matching rule this directory does not have).
    fn evaluate(&self, filter: &LdapFilter, style: &EntryStyle<'_>) -> Option<bool> {
        match filter {
            LdapFilter::And(all) => {
                let mut result = Some(true);
                for f in all {
                    match self.evaluate(f, style) {
                        Some(false) => return Some(false),
                        None => result = None,
                        Some(true) => {}
                    }
                }
                result
            }
            LdapFilter::Or(any) => {
                let mut result = Some(false);
                for f in any {
                    match self.evaluate(f, style) {
                        Some(true) => return Some(true),
                        None => result = None,
                        Some(false) => {}
                    }
                }
                result
            }
            LdapFilter::Not(inner) => self.evaluate(inner, style).map(|b| !b),
            LdapFilter::Present(name) => {
                let attr = Attr::parse(name)?;
                Some(!self.values(attr, style).is_empty())
            }
            LdapFilter::Equality(name, wanted) | LdapFilter::Approx(name, wanted) => {
                let attr = Attr::parse(name)?;
                Some(self.values(attr, style).iter().any(|v| {
                    if attr.is_number() {
                        number_equals(style.numbers, self.keys_of(attr, style.numbers), v, wanted)
                    } else if attr == Attr::Uid {
                        v == wanted
                    } else {
                        same_folded(v, wanted)
                    }
                }))
            }
            LdapFilter::Substring(name, parts) => {
                let attr = Attr::parse(name)?;
                Some(self.values(attr, style).iter().any(|v| {
                    if attr.is_number() {
                        number_substrings(
                            style.numbers,
                            self.keys_of(attr, style.numbers),
                            v,
                            parts,
                        )
                    } else if attr == Attr::Uid {
                        substrings(v, parts)
                    } else {
                        substrings(&fold_case(v), &fold_parts(parts))
                    }
                }))
            }
            LdapFilter::GreaterOrEqual(name, bound) | LdapFilter::LessOrEqual(name, bound) => {
                let attr = Attr::parse(name)?;
                let at_least = matches!(filter, LdapFilter::GreaterOrEqual(..));
                let bound = fold_case(bound);
                Some(self.values(attr, style).iter().any(|v| {
                    let v = fold_case(v);
                    if at_least { v >= bound } else { v <= bound }
                }))
            }
            LdapFilter::Extensible(_) => None,
        }
    }
}

/// `parts` as names compare ([`fold_case`]).
pub(super) fn fold_parts(parts: &LdapSubstringFilter) -> LdapSubstringFilter {
    LdapSubstringFilter {
        initial: parts.initial.as_deref().map(fold_case),
        any: parts.any.iter().map(|s| fold_case(s)).collect(),
        final_: parts.final_.as_deref().map(fold_case),
    }
}

/// RFC 4517's substrings match: `initial` at the start, each `any` after the last in order,
/// `final` at the end, none overlapping.
pub fn substrings(value: &str, parts: &LdapSubstringFilter) -> bool {
    let mut rest = value;
    if let Some(initial) = &parts.initial {
        let Some(after) = rest.strip_prefix(initial.as_str()) else {
            return false;
        };
        rest = after;
    }
    for any in &parts.any {
        let Some(at) = rest.find(any.as_str()) else {
            return false;
        };
        rest = &rest[at + any.len()..];
    }
    match &parts.final_ {
        Some(last) => rest.ends_with(last.as_str()),
        None => true,
    }
}

/// The digits of `text`.
pub fn digits(text: &str) -> String {
    text.chars().filter(char::is_ascii_digit).collect()
}

/// The keys a typed number is searched by (see [`NumberPlan::search_prefixes`]); none when
/// it has no digit.
pub fn typed_number_keys(plan: &NumberPlan, typed: &str) -> Vec<String> {
    let typed_digits = digits(typed);
    if typed_digits.is_empty() {
        return Vec::new();
    }
    let mut keys = plan.search_prefixes(&typed_digits);
    let trimmed = typed.trim();
    if !keys.iter().any(|k| k == trimmed) {
        keys.push(trimmed.to_owned());
    }
    keys
}

/// A number equals a typed one when one of its keys is one of the typed number's keys (text
/// without digits compares as text).
fn number_equals(plan: &NumberPlan, keys: &[String], value: &str, typed: &str) -> bool {
    let wanted = typed_number_keys(plan, typed);
    if wanted.is_empty() {
        return same_folded(value, typed.trim());
    }
    keys.iter().any(|k| wanted.contains(k))
}

/// A number's substrings: the initial part is a prefix of one of its keys (as the index is
/// searched); the other parts are found in its digits, in order.
fn number_substrings(
    plan: &NumberPlan,
    keys: &[String],
    value: &str,
    parts: &LdapSubstringFilter,
) -> bool {
    if let Some(initial) = &parts.initial {
        let wanted = typed_number_keys(plan, initial);
        if wanted.is_empty() {
            return substrings(&fold_case(value), &fold_parts(parts));
        }
        if !keys
            .iter()
            .any(|k| wanted.iter().any(|w| k.starts_with(w.as_str())))
        {
            return false;
        }
    }
    let rest = LdapSubstringFilter {
        initial: None,
        any: parts
            .any
            .iter()
            .map(|a| digits(a))
            .filter(|a| !a.is_empty())
            .collect(),
        final_: parts
            .final_
            .as_ref()
            .map(|f| digits(f))
            .filter(|f| !f.is_empty()),
    };
    substrings(&digits(value), &rest)
}

/// Which attributes a search asked for.
pub struct Wanted {
    /// Every attribute (no list, or `*`).
    all: bool,
    listed: Vec<Attr>,
}

impl Wanted {
    /// From a search's attribute list: empty or `*` for all, `1.1` for none.
    pub fn of(list: &[String]) -> Wanted {
        Wanted {
            all: list.is_empty() || list.iter().any(|a| a == "*"),
            listed: list.iter().filter_map(|a| Attr::parse(a)).collect(),
        }
    }

    pub fn wants(&self, attr: Attr) -> bool {
        self.all || self.listed.contains(&attr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn anna() -> ContactRow {
        ContactRow {
            id: 7,
            origin: "merged".into(),
            directory_id: Some("1001".into()),
            match_key: Some("anna@example.com".into()),
            extension: Some("2001".into()),
            first_name: Some("Anna".into()),
            last_name: Some("Peeters".into()),
            mobile_number: Some("+32 475 11 11 11".into()),
            e_mail: Some("anna@example.com".into()),
            department: Some("Sales".into()),
            site: Some("Gent".into()),
            ..Default::default()
        }
    }

    /// A filter in RFC 4515's text form; `_` stands for a space (the parser takes none).
    fn filter(text: &str) -> LdapFilter {
        fn spaces(filter: LdapFilter) -> LdapFilter {
            let text = |s: String| s.replace('_', " ");
            match filter {
                LdapFilter::And(all) => LdapFilter::And(all.into_iter().map(spaces).collect()),
                LdapFilter::Or(any) => LdapFilter::Or(any.into_iter().map(spaces).collect()),
                LdapFilter::Not(inner) => LdapFilter::Not(Box::new(spaces(*inner))),
                LdapFilter::Equality(a, v) => LdapFilter::Equality(a, text(v)),
                LdapFilter::Substring(a, parts) => LdapFilter::Substring(
                    a,
                    LdapSubstringFilter {
                        initial: parts.initial.map(text),
                        any: parts.any.into_iter().map(text).collect(),
                        final_: parts.final_.map(text),
                    },
                ),
                other => other,
            }
        }
        spaces(ldap3_proto::parse_ldap_filter_str(text).unwrap())
    }

    fn matches(row: &ContactRow, text: &str) -> bool {
        let plan = NumberPlan::new(Some("BE")).unwrap();
        let style = EntryStyle {
            name_style: NameStyle::FirstLast,
            organization: Some("Example"),
            numbers: &plan,
        };
        row.matches(&filter(text), &style)
    }

    /// Hardening 3: LDAP values carried ESC, VT, DEL and CR LF to the phones as they were.
    #[test]
    fn every_value_an_entry_answers_is_one_line_of_printable_text() {
        let row = ContactRow {
            first_name: Some("Ext<b> One\r\nX-Injected: 1".into()),
            last_name: Some("\u{1b}[31mRed\u{b}\u{7f}".into()),
            department: Some("Sales\nDept".into()),
            ..anna()
        };
        let plan = NumberPlan::new(Some("BE")).unwrap();
        let style = EntryStyle {
            name_style: NameStyle::FirstLast,
            organization: Some("Example"),
            numbers: &plan,
        };
        let attributes = row.attributes(&Wanted::of(&[]), false, &style);
        let value = |name: &str| {
            let attribute = attributes.iter().find(|a| a.atype == name).unwrap();
            String::from_utf8(attribute.vals[0].clone()).unwrap()
        };
        assert_eq!(value("cn"), "Ext<b> One X-Injected: 1 [31mRed");
        assert_eq!(value("givenName"), "Ext<b> One X-Injected: 1");
        assert_eq!(value("sn"), "[31mRed");
        assert_eq!(value("ou"), "Sales Dept");
        for attribute in &attributes {
            for v in &attribute.vals {
                let text = String::from_utf8(v.clone()).unwrap();
                assert!(
                    !text.chars().any(char::is_control),
                    "{}: {text:?}",
                    attribute.atype
                );
            }
        }
    }

    #[test]
    fn names_match_without_case_and_by_every_filter_kind() {
        let anna = anna();
        assert!(matches(&anna, "(cn=anna_peeters)"));
        assert!(matches(&anna, "(cn=ANN*)"));
        assert!(matches(&anna, "(sn=*eet*)"));
        assert!(matches(&anna, "(givenName=*na)"));
        assert!(matches(&anna, "(cn=a*pe*rs)"));
        assert!(!matches(&anna, "(cn=a*rs*pe)"));
        assert!(matches(
            &anna,
            "(&(objectClass=inetOrgPerson)(mail=anna@*))"
        ));
        assert!(matches(&anna, "(|(sn=jansen)(givenName=anna))"));
        assert!(matches(&anna, "(!(sn=jansen))"));
        assert!(!matches(&anna, "(homePhone=*)"));
        assert!(matches(&anna, "(telephoneNumber=*)"));
        assert!(matches(&anna, "(uid=dir-1001)"));
        assert!(!matches(&anna, "(uid=DIR-1001)"));
        assert!(matches(&anna, "(ou=sales)"));
        assert!(matches(&anna, "(l=gent)"));
        assert!(matches(&anna, "(o=example)"));
        // An attribute the directory does not have is undefined, and so is its negation.
        assert!(!matches(&anna, "(shoeSize=42)"));
        assert!(!matches(&anna, "(!(shoeSize=42))"));
        assert!(matches(&anna, "(|(shoeSize=42)(cn=anna*))"));
    }

    #[test]
    fn names_beyond_ascii_match_in_any_case() {
        let elodie = ContactRow {
            first_name: Some("Élodie".into()),
            last_name: Some("DUPRÉ".into()),
            department: Some("Ventes Île-de-France".into()),
            ..anna()
        };
        assert!(matches(&elodie, "(givenName=élodie)"));
        assert!(matches(&elodie, "(cn=ÉLODIE_dupré)"));
        assert!(matches(&elodie, "(sn=dupr*)"));
        assert!(matches(&elodie, "(sn=*pré)"));
        assert!(matches(&elodie, "(ou=*ÎLE*)"));
        assert!(matches(&elodie, "(sn>=dupré)"));
        // Case only: an accent is a letter of its own.
        assert!(!matches(&elodie, "(givenName=elodie)"));
    }

    #[test]
    fn numbers_match_in_any_spelling() {
        let anna = anna();
        for typed in [
            "(mobile=0475_11*)",
            "(mobile=+32475*)",
            "(mobile=0032_475_11_11_11)",
            "(mobile=0475111111)",
            "(mobile=*11_11)",
            "(mobile=*475*)",
            "(telephoneNumber=2001)",
            "(telephoneNumber=20*)",
        ] {
            assert!(matches(&anna, typed), "{typed}");
        }
        for typed in [
            "(mobile=0475_12*)",
            "(telephoneNumber=200)",
            "(mobile=*99*)",
        ] {
            assert!(!matches(&anna, typed), "{typed}");
        }
    }

    #[test]
    fn a_contact_without_names_is_named_by_its_mail_and_keeps_a_surname() {
        let row = ContactRow {
            id: 1,
            origin: "external".into(),
            match_key: Some("x@example.com".into()),
            e_mail: Some("x@example.com".into()),
            ..Default::default()
        };
        assert!(matches(&row, "(cn=x@example.com)"));
        assert!(matches(&row, "(sn=x@*)"));
        assert!(matches(&row, "(uid=ext-x@example.com)"));
        assert!(!matches(&row, "(givenName=*)"));
    }
}
