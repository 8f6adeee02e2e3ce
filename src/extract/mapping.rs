//! How a source that is not ucm's XML maps onto the 22 fields: the kinds of source, the
//! presets (each a documented table of field -> column, attribute or property) and the
//! config's `[source.mapping]`, which overrides a preset field by field.
//!
//! A field lists the names it may come from, first match wins: Outlook's "E-mail Address",
//! Google's "First Name" (its newer export) or "Given Name" (its older one). Google's phone
//! columns come in pairs ("Phone 1 - Label" / "Phone 1 - Value"); the label decides the field
//! ([`phone_field`]).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::fields::{FIELD_COUNT, FIELD_NAMES, Field};

/// What a pipeline's source is.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// ucm's contacts XML, validated against the pipeline's XSD (the default).
    #[default]
    Xml,
    /// A CSV export (Outlook, Google Contacts, a CRM, Excel, `ucm export`).
    Csv,
    /// A file of vCards (2.1, 3.0, 4.0: a phone's, Nextcloud's or iCloud's export).
    Vcard,
    /// An LDAP directory or Active Directory (`ldap://`, `ldaps://`), staged as LDIF.
    Ldap,
    /// A CardDAV address book (Nextcloud, Radicale, SOGo, ...), staged as a vCard file.
    Carddav,
}

impl SourceKind {
    pub fn name(self) -> &'static str {
        match self {
            SourceKind::Xml => "xml",
            SourceKind::Csv => "csv",
            SourceKind::Vcard => "vcard",
            SourceKind::Ldap => "ldap",
            SourceKind::Carddav => "carddav",
        }
    }

    /// The file extension of a staged copy of such a source.
    pub fn extension(self) -> &'static str {
        match self {
            SourceKind::Xml => "xml",
            SourceKind::Csv => "csv",
            SourceKind::Vcard => "vcf",
            SourceKind::Ldap => "ldif",
            SourceKind::Carddav => "vcf",
        }
    }

    /// The preset a source of this kind uses when the config names none.
    pub fn default_preset(self) -> Option<Preset> {
        match self {
            SourceKind::Xml => None,
            SourceKind::Csv => Some(Preset::UcmCsv),
            SourceKind::Vcard | SourceKind::Carddav => Some(Preset::Vcard),
            SourceKind::Ldap => Some(Preset::InetOrgPerson),
        }
    }
}

/// A mapping preset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preset {
    /// The header `ucm export` writes: every field under its own name.
    UcmCsv,
    /// Outlook's "Export to a file" CSV (Outlook for Windows, Outlook.com).
    OutlookCsv,
    /// Google Contacts' CSV export ("Google CSV"), old and new column names.
    GoogleCsv,
    /// vCard properties (`extract::vcard_source::VcardSource` reads each name).
    Vcard,
    /// OpenLDAP's inetOrgPerson (RFC 2798) attributes.
    InetOrgPerson,
    /// Active Directory's user attributes (ipPhone, department, company, ...).
    ActiveDirectory,
}

/// Every preset, by the name the config gives it.
pub const PRESETS: [(&str, Preset); 6] = [
    ("ucm-csv", Preset::UcmCsv),
    ("outlook-csv", Preset::OutlookCsv),
    ("google-csv", Preset::GoogleCsv),
    ("vcard", Preset::Vcard),
    ("inetorgperson", Preset::InetOrgPerson),
    ("active-directory", Preset::ActiveDirectory),
];

/// Active Directory's people whose account is not disabled: users that are not computers
/// (a computer account is a `user` too), without bit 2 (ACCOUNTDISABLE) of
/// userAccountControl, tested with AD's bitwise-and matching rule (OpenLDAP knows it too).
const ACTIVE_DIRECTORY_FILTER: &str = "(&(objectClass=user)(!(objectClass=computer))\
(!(userAccountControl:1.2.840.113556.1.4.803:=2)))";

impl Preset {
    pub fn parse(name: &str) -> Option<Preset> {
        PRESETS.iter().find(|(n, _)| *n == name).map(|(_, p)| *p)
    }

    pub fn name(self) -> &'static str {
        PRESETS
            .iter()
            .find(|(_, p)| *p == self)
            .map(|(n, _)| *n)
            .expect("every preset is named")
    }

    /// The kind of source the preset reads.
    pub fn kind(self) -> SourceKind {
        match self {
            Preset::Vcard => SourceKind::Vcard,
            Preset::InetOrgPerson | Preset::ActiveDirectory => SourceKind::Ldap,
            _ => SourceKind::Csv,
        }
    }

    /// Whether the preset maps sources of `kind` (a vCard preset: files and CardDAV).
    pub fn reads(self, kind: SourceKind) -> bool {
        self.kind() == kind || (self.kind() == SourceKind::Vcard && kind == SourceKind::Carddav)
    }

    /// The LDAP filter a search uses when `[source.ldap]` names none (LDAP presets only).
    pub fn ldap_filter(self) -> Option<&'static str> {
        match self {
            Preset::InetOrgPerson => Some("(objectClass=inetOrgPerson)"),
            Preset::ActiveDirectory => Some(ACTIVE_DIRECTORY_FILTER),
            _ => None,
        }
    }

    /// The preset's table: each field and the names it may come from, first match wins.
    pub fn table(self) -> Vec<(Field, Vec<&'static str>)> {
        let rows: &[(&str, &[&str])] = match self {
            Preset::UcmCsv => return ucm_csv_table(),
            Preset::OutlookCsv => &[
                ("extension", &["Business Phone"]),
                ("first_name", &["First Name"]),
                ("last_name", &["Last Name"]),
                ("mobile_number", &["Mobile Phone"]),
                ("fax_number", &["Business Fax"]),
                ("home_number", &["Home Phone"]),
                ("e_mail", &["E-mail Address"]),
                ("site", &["Business City"]),
                ("department", &["Department"]),
                ("office", &["Office Location"]),
                ("user_1", &["Company"]),
                ("user_2", &["Job Title"]),
            ],
            Preset::GoogleCsv => &[
                ("first_name", &["First Name", "Given Name"]),
                ("last_name", &["Last Name", "Family Name"]),
                ("e_mail", &["E-mail 1 - Value"]),
                ("site", &["Address 1 - City"]),
                (
                    "department",
                    &["Organization Department", "Organization 1 - Department"],
                ),
                ("user_1", &["Organization Name", "Organization 1 - Name"]),
                ("user_2", &["Organization Title", "Organization 1 - Title"]),
            ],
            Preset::Vcard => &[
                ("extension", &["TEL;TYPE=WORK", "TEL"]),
                ("first_name", &["N.given", "FN"]),
                ("last_name", &["N.family"]),
                ("mobile_number", &["TEL;TYPE=CELL"]),
                ("fax_number", &["TEL;TYPE=FAX"]),
                ("home_number", &["TEL;TYPE=HOME"]),
                ("e_mail", &["EMAIL"]),
                ("site", &["ADR.locality"]),
                ("department", &["ORG.2"]),
                ("user_1", &["ORG.1"]),
                ("user_2", &["TITLE"]),
            ],
            Preset::InetOrgPerson => &[
                ("extension", &["telephoneNumber"]),
                ("first_name", &["givenName"]),
                ("last_name", &["sn"]),
                ("mobile_number", &["mobile"]),
                ("fax_number", &["facsimileTelephoneNumber"]),
                ("home_number", &["homePhone"]),
                ("e_mail", &["mail"]),
                ("site", &["l"]),
                ("department", &["departmentNumber", "ou"]),
                ("office", &["roomNumber"]),
                ("user_1", &["o"]),
                ("user_2", &["title"]),
            ],
            Preset::ActiveDirectory => &[
                ("extension", &["ipPhone", "telephoneNumber"]),
                ("first_name", &["givenName"]),
                ("last_name", &["sn"]),
                ("mobile_number", &["mobile"]),
                ("fax_number", &["facsimileTelephoneNumber"]),
                ("home_number", &["homePhone"]),
                ("e_mail", &["mail"]),
                ("site", &["l"]),
                ("department", &["department"]),
                ("office", &["physicalDeliveryOfficeName"]),
                ("user_1", &["company"]),
                ("user_2", &["title"]),
            ],
        };
        rows.iter()
            .map(|(field, names)| {
                let field = Field::from_name(field).expect("a preset names fields");
                (field, names.to_vec())
            })
            .collect()
    }

    /// Whether the preset reads phone numbers from Google's labelled pairs.
    pub fn labelled_phones(self) -> bool {
        self == Preset::GoogleCsv
    }
}

fn ucm_csv_table() -> Vec<(Field, Vec<&'static str>)> {
    FIELD_NAMES
        .iter()
        .enumerate()
        .map(|(i, name)| (Field::from_index(i), vec![*name]))
        .collect()
}

/// The field a Google phone label fills: "Mobile" -> mobile_number, "Home Fax" / "Work Fax"
/// -> fax_number, "Home" -> home_number, "Work" (and Google's "Main") -> extension; None for
/// the others (Pager, Other, a custom label). Google marks the primary number "* Mobile".
pub fn phone_field(label: &str) -> Option<Field> {
    let label = label
        .trim()
        .trim_start_matches('*')
        .trim()
        .to_ascii_lowercase();
    let name = if label.contains("fax") {
        "fax_number"
    } else if label.contains("mobile") || label.contains("cell") {
        "mobile_number"
    } else if label.contains("home") {
        "home_number"
    } else if label.contains("work") || label == "main" {
        "extension"
    } else {
        return None;
    };
    Field::from_name(name)
}

/// A source's mapping: for each field, the names it may come from (empty: not read).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub preset: Preset,
    pub names: [Vec<String>; FIELD_COUNT],
    /// The fields `[source.mapping]` set (they win over labelled phone pairs).
    pub overridden: [bool; FIELD_COUNT],
}

impl Mapping {
    /// The mapping of a `kind` source: `preset` (or the kind's default), then `overrides`
    /// (`field = "column"`; `field = ""` reads the field from nowhere). Err says which key is
    /// wrong and what it may be.
    pub fn resolve(
        kind: SourceKind,
        preset: Option<&str>,
        overrides: &BTreeMap<String, String>,
    ) -> Result<Option<Mapping>, String> {
        let preset = match preset {
            Some(name) => {
                let preset = Preset::parse(name).ok_or_else(|| {
                    let known: Vec<&str> = PRESETS.iter().map(|(n, _)| *n).collect();
                    format!(
                        "[source] preset = {name:?} is not a preset; presets: {}",
                        known.join(", ")
                    )
                })?;
                if !preset.reads(kind) {
                    return Err(format!(
                        "[source] preset = {name:?} reads {} sources, and kind = {:?}",
                        preset.kind().name(),
                        kind.name()
                    ));
                }
                Some(preset)
            }
            None => kind.default_preset(),
        };
        let Some(preset) = preset else {
            if let Some(key) = overrides.keys().next() {
                return Err(format!(
                    "[source.mapping] {key}: an XML source needs no mapping (its elements are \
                     the fields); set kind = \"csv\" for a CSV export"
                ));
            }
            return Ok(None);
        };
        let mut names: [Vec<String>; FIELD_COUNT] = Default::default();
        for (field, from) in preset.table() {
            names[field.index()] = from.iter().map(|n| n.to_string()).collect();
        }
        let mut overridden = [false; FIELD_COUNT];
        for (key, column) in overrides {
            let field = Field::from_name(key).ok_or_else(|| {
                format!(
                    "[source.mapping] {key} is not a field; fields: {}",
                    FIELD_NAMES.join(", ")
                )
            })?;
            let column = column.trim();
            names[field.index()] = if column.is_empty() {
                Vec::new()
            } else {
                vec![column.to_owned()]
            };
            overridden[field.index()] = true;
        }
        Ok(Some(Mapping {
            preset,
            names,
            overridden,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(name: &str) -> Field {
        Field::from_name(name).unwrap()
    }

    #[test]
    fn a_preset_is_overridden_field_by_field() {
        let overrides = BTreeMap::from([
            ("extension".to_owned(), "Other Phone".to_owned()),
            ("user_2".to_owned(), String::new()),
        ]);
        let mapping = Mapping::resolve(SourceKind::Csv, Some("outlook-csv"), &overrides)
            .unwrap()
            .unwrap();
        assert_eq!(mapping.names[field("extension").index()], ["Other Phone"]);
        assert!(mapping.names[field("user_2").index()].is_empty());
        assert_eq!(mapping.names[field("first_name").index()], ["First Name"]);
        assert!(mapping.overridden[field("extension").index()]);
    }

    #[test]
    fn a_csv_source_defaults_to_the_export_header_and_xml_has_no_mapping() {
        let none = BTreeMap::new();
        let mapping = Mapping::resolve(SourceKind::Csv, None, &none)
            .unwrap()
            .unwrap();
        assert_eq!(mapping.preset, Preset::UcmCsv);
        assert_eq!(mapping.names[field("e_mail").index()], ["e_mail"]);
        assert_eq!(
            Mapping::resolve(SourceKind::Xml, None, &none).unwrap(),
            None
        );
    }

    #[test]
    fn wrong_keys_say_what_they_may_be() {
        let none = BTreeMap::new();
        let unknown = Mapping::resolve(SourceKind::Csv, Some("excel"), &none).unwrap_err();
        assert!(unknown.contains("outlook-csv, google-csv"), "{unknown}");
        let bad_field = BTreeMap::from([("nickname".to_owned(), "Nick".to_owned())]);
        let wrong = Mapping::resolve(SourceKind::Csv, None, &bad_field).unwrap_err();
        assert!(
            wrong.starts_with("[source.mapping] nickname is not a field"),
            "{wrong}"
        );
        let on_xml = Mapping::resolve(SourceKind::Xml, None, &bad_field).unwrap_err();
        assert!(on_xml.contains("kind = \"csv\""), "{on_xml}");
    }

    #[test]
    fn google_phone_labels_choose_the_field() {
        assert_eq!(phone_field("* Mobile"), Some(field("mobile_number")));
        assert_eq!(phone_field("Work Fax"), Some(field("fax_number")));
        assert_eq!(phone_field("Home"), Some(field("home_number")));
        assert_eq!(phone_field("Work"), Some(field("extension")));
        assert_eq!(phone_field("Pager"), None);
    }
}
