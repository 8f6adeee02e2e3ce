//! The rows a phonebook feed lists: the table read in the feed's order, and a row (or a
//! contact the contact search found) as the feed's entry, or left out by the feed's
//! origins, sites and departments.

use sqlx::Row;

use super::feeds_config::{FeedSort, PhonebookConfig};
use crate::phonebook::{Entry, Number, NumberKind};

/// The feed's query in each order.
pub(super) fn sort_sql(sort: FeedSort) -> &'static str {
    match sort {
        FeedSort::LastName => FEED_BY_LAST_NAME_SQL,
        FeedSort::FirstName => FEED_BY_FIRST_NAME_SQL,
    }
}

/// The columns a feed reads, in [`entry_of`]'s order, by last name then first name.
const FEED_BY_LAST_NAME_SQL: &str = "SELECT first_name, last_name, e_mail, department, site, \
     extension, mobile_number, home_number, fax_number, origin FROM contacts \
     ORDER BY lower(coalesce(last_name, first_name, '')), lower(coalesce(first_name, '')), id";
/// The same by first name then last name.
const FEED_BY_FIRST_NAME_SQL: &str = "SELECT first_name, last_name, e_mail, department, site, \
     extension, mobile_number, home_number, fax_number, origin FROM contacts \
     ORDER BY lower(coalesce(first_name, last_name, '')), lower(coalesce(last_name, '')), id";

/// A row as the feed lists it, or None when the feed leaves it out.
pub(super) fn entry_of<R: Row>(
    row: &R,
    config: &PhonebookConfig,
) -> Result<Option<Entry>, sqlx::Error>
where
    usize: sqlx::ColumnIndex<R>,
    for<'a> Option<String>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let text = |i: usize| row.try_get::<Option<String>, _>(i);
    let row = FeedRow {
        first_name: text(0)?,
        last_name: text(1)?,
        e_mail: text(2)?,
        department: text(3)?,
        site: text(4)?,
        numbers: [text(5)?, text(6)?, text(7)?, text(8)?],
        origin: row.try_get(9)?,
    };
    Ok(row.entry(config))
}

/// The values of a contact a feed lists, as the table holds them.
pub(super) struct FeedRow {
    first_name: Option<String>,
    last_name: Option<String>,
    e_mail: Option<String>,
    department: Option<String>,
    site: Option<String>,
    /// Work (the extension), mobile, home, fax.
    numbers: [Option<String>; 4],
    origin: String,
}

impl FeedRow {
    pub(super) fn of_contact(contact: crate::directory::Contact) -> FeedRow {
        FeedRow {
            first_name: contact.first_name,
            last_name: contact.last_name,
            e_mail: contact.e_mail,
            department: contact.department,
            site: contact.site,
            numbers: [
                contact.extension,
                contact.mobile_number,
                contact.home_number,
                contact.fax_number,
            ],
            origin: contact.origin,
        }
    }

    /// The entry the feed lists, or None when it leaves the contact out (its origin, site or
    /// department); blank values are left out.
    pub(super) fn entry(self, config: &PhonebookConfig) -> Option<Entry> {
        let value = |v: Option<String>| v.filter(|v| !v.trim().is_empty());
        let (site, department) = (value(self.site), value(self.department));
        let wanted = |list: &[String], value: &Option<String>| {
            list.is_empty() || value.as_ref().is_some_and(|v| list.contains(v))
        };
        if !(config.origins.is_empty() || config.origins.contains(&self.origin))
            || !wanted(&config.sites, &site)
            || !wanted(&config.departments, &department)
        {
            return None;
        }
        let [work, mobile, home, fax] = &self.numbers;
        let mut numbers = Vec::new();
        for kind in &config.numbers {
            let number = match kind {
                NumberKind::Work => work,
                NumberKind::Mobile => mobile,
                NumberKind::Home => home,
                NumberKind::Fax => fax,
            };
            if let Some(value) = value(number.clone()) {
                numbers.push(Number { kind: *kind, value });
            }
        }
        Some(Entry {
            first_name: value(self.first_name),
            last_name: value(self.last_name),
            e_mail: value(self.e_mail),
            department,
            site,
            numbers,
        })
    }
}
