//! A change list as the run and plan pages show it: filtered by action, field or contact,
//! read a page at a time by its primary key (never the contacts table), and the rejections.

use maud::{Markup, html};
use serde::Deserialize;

use crate::load::Store;
use crate::load::plans::ChangeList;
use crate::plan::PlanError;
use crate::report::{Action, Change};

/// The filter of a change list (run and plan pages): by action, by field, by contact (a
/// piece of its identity or of any value, any case), from position `after`.
#[derive(Clone, Debug, Default, Deserialize, serde::Serialize)]
pub(super) struct ChangeFilter {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(super) action: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(super) field: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(super) contact: String,
    #[serde(default)]
    pub(super) after: i64,
}

impl ChangeFilter {
    fn matches(&self, change: &Change, needle: &str) -> bool {
        (self.action.is_empty() || change.action.as_str() == self.action)
            && (self.field.is_empty() || change.fields.iter().any(|f| f.field == self.field))
            && (needle.is_empty() || {
                let has = |v: Option<&str>| v.is_some_and(|v| v.to_lowercase().contains(needle));
                has(change.key.as_deref())
                    || has(change.directory_id.as_deref())
                    || change
                        .fields
                        .iter()
                        .any(|f| has(f.old.as_deref()) || has(f.new.as_deref()))
            })
    }

    /// The query string of the page after `after`, with the same filter.
    fn next(&self, after: i64) -> String {
        let mut next = self.clone();
        next.after = after;
        serde_urlencoded::to_string(&next).unwrap_or_default()
    }
}

/// Changes a page shows.
pub(super) const CHANGES_SHOWN: usize = 100;

/// Stored changes read per query while a filter looks for matches.
pub(super) const SCAN_CHUNK: i64 = 500;

/// Stored changes a page reads at most: a filter that matches little answers with what it
/// found so far and a link onwards, instead of reading a million-change list in one request.
pub(super) const SCAN_BUDGET: i64 = 20_000;

/// A page of a change list: up to [`CHANGES_SHOWN`] matching changes after `filter.after`,
/// and where the next page starts (none at the end of the list).
pub(super) struct ChangesPage {
    pub(super) changes: Vec<(i64, Change)>,
    pub(super) next_after: Option<i64>,
}

/// Reads a page of `list` by its primary key: only the rows shown (and, with a filter, at
/// most [`SCAN_BUDGET`] more); never the contacts table.
pub(super) async fn changes_page(
    store: &Store,
    list: ChangeList,
    filter: &ChangeFilter,
) -> Result<ChangesPage, PlanError> {
    let needle = filter.contact.trim().to_lowercase();
    let mut after = filter.after.max(0);
    let mut changes = Vec::new();
    let mut scanned = 0;
    loop {
        let chunk = crate::plan::changes(store, list, after, SCAN_CHUNK).await?;
        let full = chunk.len() as i64 == SCAN_CHUNK;
        for (seq, change) in chunk {
            after = seq;
            scanned += 1;
            if filter.matches(&change, &needle) {
                changes.push((seq, change));
                if changes.len() == CHANGES_SHOWN {
                    return Ok(ChangesPage {
                        changes,
                        next_after: Some(after),
                    });
                }
            }
        }
        if !full {
            return Ok(ChangesPage {
                changes,
                next_after: None,
            });
        }
        if scanned >= SCAN_BUDGET {
            return Ok(ChangesPage {
                changes,
                next_after: Some(after),
            });
        }
    }
}

/// The filter form, the changes as tables (one per contact: each changed field's old and new
/// value and the side the new one came from), and the link to the next page.
pub(super) fn changes_section(path: &str, filter: &ChangeFilter, page: &ChangesPage) -> Markup {
    let actions = ["insert", "update", "delete"];
    html! {
        form.filter method="get" action=(path) {
            label { "Action "
                select name="action" {
                    option value="" { "any" }
                    @for a in actions {
                        option value=(a) selected[filter.action == a] { (a) }
                    }
                }
            }
            label { "Field "
                select name="field" {
                    option value="" { "any" }
                    @for f in crate::fields::FIELD_NAMES {
                        option value=(f) selected[filter.field == f] { (f) }
                    }
                }
            }
            label { "Contact " input type="search" name="contact" value=(filter.contact) placeholder="name, e-mail, id"; }
            button type="submit" { "Filter" }
        }
        @if page.changes.is_empty() {
            p.empty { "No changes" @if filter.after > 0 { " after #" (filter.after) } " match." }
        }
        @for (seq, change) in &page.changes {
            table.change.(change.action.as_str()) id=(format!("change-{seq}")) {
                caption {
                    span.seq { "#" (seq) " " }
                    span.action { (change.action.as_str()) }
                    " " (crate::plan::render::identity(change))
                    " · " (change.origin.as_str())
                    @if let Some(old) = change.old_origin {
                        @if old != change.origin { " (was " (old.as_str()) ")" }
                    }
                }
                thead { tr { th { "field" } th { "old" } th { "new" } th { "from" } } }
                tbody {
                    @for f in &change.fields {
                        tr {
                            td.field { (f.field) }
                            td.old { (f.old.as_deref().unwrap_or("")) }
                            td.new { (f.new.as_deref().unwrap_or("")) }
                            td.side { @if change.action != Action::Delete { (f.side.as_str()) } }
                        }
                    }
                }
            }
        }
        @if let Some(next) = page.next_after {
            p.pager { a href=(format!("{path}?{}", filter.next(next))) { "Next changes →" } }
        }
    }
}

/// A report's rejections (contacts the source held that could not be merged), with their
/// line numbers, as `ucm plan show` words them.
pub(super) fn rejections_section(report: &serde_json::Value) -> Markup {
    let (rejected, lines) = crate::plan::render::rejection_lines(report);
    html! {
        @if rejected > 0 {
            h2 { "Rejections (" (rejected) ")" }
            ul.rejections {
                @for line in &lines { li { (line) } }
                @if (lines.len() as u64) < rejected { li { "… and " (rejected - lines.len() as u64) " more" } }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::FieldChange;
    use crate::transform::{Origin, Side};

    fn change(action: Action, key: &str, field: &'static str, new: &str) -> Change {
        Change {
            action,
            origin: Origin::External,
            directory_id: None,
            key: Some(key.into()),
            old_origin: None,
            row_id: None,
            sides: 0,
            fields: vec![FieldChange {
                field,
                old: None,
                new: Some(new.into()),
                side: Side::External,
            }],
        }
    }

    #[test]
    fn a_change_filter_matches_action_field_and_contact_in_any_case() {
        let c = change(Action::Insert, "ada@x.org", "site", "Gent");
        let filter = |action: &str, field: &str, contact: &str| ChangeFilter {
            action: action.into(),
            field: field.into(),
            contact: contact.into(),
            after: 0,
        };
        let matches = |f: ChangeFilter| {
            let needle = f.contact.to_lowercase();
            f.matches(&c, &needle)
        };
        assert!(matches(filter("", "", "")));
        assert!(matches(filter("insert", "site", "ADA@")));
        assert!(matches(filter("", "", "gent")));
        assert!(!matches(filter("delete", "", "")));
        assert!(!matches(filter("", "e_mail", "")));
        assert!(!matches(filter("", "", "bob")));
    }

    #[test]
    fn the_next_page_keeps_the_filter_and_encodes_it() {
        let f = ChangeFilter {
            action: "update".into(),
            field: String::new(),
            contact: "a&b c".into(),
            after: 3,
        };
        assert_eq!(f.next(700), "action=update&contact=a%26b+c&after=700");
    }

    #[test]
    fn a_value_with_markup_is_shown_as_text() {
        let page = ChangesPage {
            changes: vec![(
                1,
                change(Action::Insert, "x", "site", "<script>alert(1)</script>"),
            )],
            next_after: None,
        };
        let html = changes_section("/p", &ChangeFilter::default(), &page).into_string();
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(!html.contains("<script>"), "{html}");
    }
}
