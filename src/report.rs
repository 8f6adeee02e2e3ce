//! Run reports: what a run read, rejected and changed, as JSON for tools and as readable text
//! for people, including the field-by-field change list of a dry run.

use std::fmt::Write as _;

use serde::Serialize;

use crate::transform::{Origin, Rejection, Side};

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Succeeded,
    Failed,
    Refused,
    DryRun,
    /// The fetch stage found nothing new (304 Not Modified, or the same sha256).
    Unchanged,
    /// Another run held the database's run lock for the whole lock wait: nothing was done.
    Skipped,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Refused => "refused",
            RunStatus::DryRun => "dry_run",
            RunStatus::Unchanged => "unchanged",
            RunStatus::Skipped => "skipped",
        }
    }

    /// Whether the command that ran it should exit 0.
    pub fn is_success(self) -> bool {
        matches!(
            self,
            RunStatus::Succeeded | RunStatus::DryRun | RunStatus::Unchanged
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Insert,
    Update,
    Delete,
}

impl Action {
    /// The name reports and stored plans use (as serialised).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Insert => "insert",
            Action::Update => "update",
            Action::Delete => "delete",
        }
    }

    pub fn parse(name: &str) -> Option<Action> {
        [Action::Insert, Action::Update, Action::Delete]
            .into_iter()
            .find(|a| a.as_str() == name)
    }
}

/// One field of a changed row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    pub field: &'static str,
    pub old: Option<String>,
    pub new: Option<String>,
    /// The side the new value came from (for deletes: the side the old one came from).
    pub side: Side,
}

/// One row a run inserts, updates or deletes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Change {
    pub action: Action,
    pub origin: Origin,
    pub directory_id: Option<String>,
    /// The row's match key.
    pub key: Option<String>,
    /// For updates: the origin the row had before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_origin: Option<Origin>,
    /// The merged table's row updated or deleted (its `id`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row_id: Option<i64>,
    pub fields: Vec<FieldChange>,
    /// The side of each of the row's 22 values after the change (bit i set: field i's value
    /// came from the external source), unchanged fields included: what a plan applies.
    #[serde(skip)]
    pub sides: u32,
}

/// What the fetch stage did.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct FetchDetails {
    /// The source URL, password masked.
    pub url: String,
    /// HTTP status of the last try (none for files or when no answer came).
    pub http_status: Option<u16>,
    /// Tries made.
    pub tries: u32,
    /// Bytes of the source (after decompression).
    pub bytes: u64,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// Why nothing was staged when the status is `unchanged`.
    pub unchanged_reason: Option<String>,
    /// Where the staged copy is.
    pub staged_path: Option<String>,
}

/// What a run did. `--format json` prints exactly this.
#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    /// The run's id in `ucm runs` (absent only if recording the run itself failed).
    pub run_id: Option<i64>,
    pub pipeline: String,
    /// `import` or `run`.
    pub command: String,
    pub status: RunStatus,
    pub dry_run: bool,
    pub source: Option<String>,
    pub source_sha256: Option<String>,
    pub started_at: String,
    pub finished_at: String,
    /// `<contact>` elements read from the source.
    pub contacts_read: u64,
    /// Contacts not loaded (no key, duplicate key, ambiguous key).
    pub rejected: u64,
    /// The first rejections with their lines.
    pub rejections: Vec<Rejection>,
    pub inserted: u64,
    pub updated: u64,
    pub deleted: u64,
    pub unchanged: u64,
    pub duration_ms: u64,
    /// Why the run failed or was refused.
    pub error: Option<String>,
    /// The fetch stage's details (`fetch`, and `run` which fetches first).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fetch: Option<FetchDetails>,
    /// The plan a dry run or a refused run stored (`ucm plan show ID`), or the plan an
    /// `apply` run applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan_id: Option<i64>,
    /// Dry runs only: the changes the run would make (the first 1,000: its plan holds
    /// them all).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changes: Option<Vec<Change>>,
    /// Dry runs only: changes the plan holds beyond those listed in `changes`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changes_omitted: Option<u64>,
    /// Runs that landed: how many of their changes their change list keeps (the first ones,
    /// up to `[merge] run_changes_kept`), shown on the console's run page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changes_kept: Option<u64>,
}

impl RunReport {
    /// The report of a run starting now, with status `failed` until it ends otherwise.
    pub fn begin(pipeline: &str, command: &str, source: &str, dry_run: bool) -> RunReport {
        RunReport {
            run_id: None,
            pipeline: pipeline.to_owned(),
            command: command.to_owned(),
            status: RunStatus::Failed,
            dry_run,
            source: Some(source.to_owned()),
            source_sha256: None,
            started_at: crate::load::now(),
            finished_at: String::new(),
            contacts_read: 0,
            rejected: 0,
            rejections: Vec::new(),
            inserted: 0,
            updated: 0,
            deleted: 0,
            unchanged: 0,
            duration_ms: 0,
            error: None,
            fetch: None,
            plan_id: None,
            changes: None,
            changes_omitted: None,
            changes_kept: None,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("reports serialise")
    }

    /// The readable summary, then the changes field by field.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let what = if self.dry_run {
            "dry run"
        } else {
            self.command.as_str()
        };
        let mut source = self.source.as_deref().unwrap_or("-").to_owned();
        if let (Some(plan), "apply") = (self.plan_id, self.command.as_str()) {
            source = format!("plan #{plan} (source {source})");
        }
        let _ = writeln!(
            out,
            "{what} of {source} (pipeline {}): {}",
            self.pipeline,
            self.status.as_str()
        );
        if let Some(error) = &self.error {
            for line in error.lines() {
                let _ = writeln!(out, "  error: {line}");
            }
        }
        if self.command == "fetch" {
            let _ = writeln!(
                out,
                "  {} contacts ({} ms)",
                self.contacts_read, self.duration_ms
            );
        } else {
            let _ = writeln!(
                out,
                "  contacts read {}, rejected {}; rows inserted {}, updated {}, deleted {}, unchanged {} ({} ms)",
                self.contacts_read,
                self.rejected,
                self.inserted,
                self.updated,
                self.deleted,
                self.unchanged,
                self.duration_ms
            );
        }
        if let Some(f) = &self.fetch {
            write_fetch(&mut out, f);
        }
        if let Some(run_id) = self.run_id {
            let _ = writeln!(
                out,
                "  run #{run_id}, source sha256 {}",
                self.source_sha256.as_deref().unwrap_or("-")
            );
        }
        if let Some(plan) = self.plan_id {
            if self.command == "apply" {
                if self.status == RunStatus::Succeeded {
                    let _ = writeln!(out, "  applied plan #{plan}: exactly its changes");
                }
            } else {
                let _ = writeln!(
                    out,
                    "  stored as plan #{plan}: review it with `ucm plan show {plan}`, land exactly \
                     these changes with `ucm apply {plan}`"
                );
            }
        }
        self.write_rejections(&mut out);
        if let Some(changes) = &self.changes {
            if changes.is_empty() {
                let _ = writeln!(out, "no changes");
            } else {
                let _ = writeln!(out, "changes:");
            }
            write_changes(&mut out, changes);
            if let (Some(more), Some(plan)) = (self.changes_omitted, self.plan_id) {
                let _ = writeln!(
                    out,
                    "  ... and {more} more changes: `ucm plan show {plan}` lists them all"
                );
            }
        }
        out
    }

    /// The rejected contacts the report holds, and how many more there were.
    fn write_rejections(&self, out: &mut String) {
        if self.rejected == 0 {
            return;
        }
        let _ = writeln!(out, "rejected contacts:");
        for r in &self.rejections {
            let _ = writeln!(out, "  {r}");
        }
        if self.rejected > self.rejections.len() as u64 {
            let _ = writeln!(
                out,
                "  ... and {} more",
                self.rejected - self.rejections.len() as u64
            );
        }
    }
}

/// What the fetch stage did: bytes, tries, HTTP status, why nothing changed, where staged.
fn write_fetch(out: &mut String, f: &FetchDetails) {
    let _ = write!(
        out,
        "  fetched {} bytes from {} in {} tr{}",
        f.bytes,
        f.url,
        f.tries,
        if f.tries == 1 { "y" } else { "ies" }
    );
    if let Some(status) = f.http_status {
        let _ = write!(out, " (HTTP {status})");
    }
    let _ = writeln!(out);
    if let Some(reason) = &f.unchanged_reason {
        let _ = writeln!(out, "  unchanged: {reason}");
    }
    if let Some(path) = &f.staged_path {
        let _ = writeln!(out, "  staged as {path}");
    }
}

/// The changes, one block per row and a line per field, as the text report shows them.
pub fn write_changes(out: &mut String, changes: &[Change]) {
    for c in changes {
        let sign = match c.action {
            Action::Insert => "+ insert",
            Action::Update => "~ update",
            Action::Delete => "- delete",
        };
        let _ = write!(out, "  {sign} {} row", c.origin.as_str());
        if let Some(old) = c.old_origin.filter(|o| *o != c.origin) {
            let _ = write!(out, " (was {})", old.as_str());
        }
        if let Some(id) = &c.directory_id {
            let _ = write!(out, " directory id {id}");
        }
        if let Some(key) = &c.key {
            let _ = write!(out, " key \"{key}\"");
        }
        let _ = writeln!(out);
        for f in &c.fields {
            let show =
                |v: &Option<String>| v.as_ref().map_or("NULL".to_owned(), |s| format!("\"{s}\""));
            let _ = writeln!(
                out,
                "      {}: {} -> {}  ({})",
                f.field,
                show(&f.old),
                show(&f.new),
                f.side.as_str()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> RunReport {
        RunReport {
            run_id: Some(3),
            pipeline: "default".into(),
            command: "import".into(),
            status: RunStatus::DryRun,
            dry_run: true,
            source: Some("x.xml".into()),
            source_sha256: Some("ab".into()),
            started_at: "t0".into(),
            finished_at: "t1".into(),
            contacts_read: 2,
            rejected: 1,
            rejections: vec![Rejection::NoKey {
                line: 4,
                field: "e_mail".into(),
            }],
            inserted: 0,
            updated: 1,
            deleted: 0,
            unchanged: 0,
            duration_ms: 5,
            error: None,
            fetch: None,
            plan_id: None,
            changes_omitted: None,
            changes_kept: None,
            changes: Some(vec![Change {
                action: Action::Update,
                origin: Origin::Merged,
                directory_id: Some("7".into()),
                key: Some("a@x.com".into()),
                old_origin: Some(Origin::Directory),
                row_id: Some(7),
                sides: 0,
                fields: vec![FieldChange {
                    field: "site",
                    old: None,
                    new: Some("Gent".into()),
                    side: Side::External,
                }],
            }]),
        }
    }

    #[test]
    fn the_json_report_has_the_contract_fields() {
        let v: serde_json::Value = serde_json::from_str(&report().to_json()).unwrap();
        for key in [
            "status",
            "contacts_read",
            "rejected",
            "inserted",
            "updated",
            "deleted",
            "unchanged",
            "duration_ms",
            "changes",
        ] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        assert_eq!(v["status"], "dry_run");
        let change = &v["changes"][0];
        assert_eq!(change["action"], "update");
        assert_eq!(change["key"], "a@x.com");
        assert_eq!(change["fields"][0]["old"], serde_json::Value::Null);
        assert_eq!(change["fields"][0]["new"], "Gent");
        assert_eq!(change["fields"][0]["side"], "external");
    }

    #[test]
    fn the_text_report_lists_changes_field_by_field() {
        let text = report().to_text();
        assert!(
            text.contains("~ update merged row (was directory) directory id 7 key \"a@x.com\""),
            "{text}"
        );
        assert!(
            text.contains("site: NULL -> \"Gent\"  (external)"),
            "{text}"
        );
        assert!(text.contains("line 4: no e_mail"), "{text}");
    }
}
