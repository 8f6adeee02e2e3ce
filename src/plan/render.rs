//! A plan written for people and tools: text (as a dry run prints it), JSON, CSV (one row per
//! changed field, for spreadsheets) and HTML (one self-contained file: no external assets,
//! opens from disk, filters by action and field).
//!
//! Changes are written page by page as they are read, so a plan of a million changes is
//! shown in bounded memory.

use std::io::Write;

use crate::load::plans::PlanRecord;
use maud::{DOCTYPE, PreEscaped, html};

use crate::report::{Change, write_changes};

/// The output formats of `ucm plan show`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlanFormat {
    Text,
    Json,
    Csv,
    Html,
}

/// The identity of a changed row as the rest of ucm writes it: `dir:ID` or `ext:KEY`.
pub fn identity(change: &Change) -> String {
    match (&change.directory_id, &change.key) {
        (Some(id), _) => format!("dir:{id}"),
        (None, Some(key)) => format!("ext:{key}"),
        (None, None) => "-".to_owned(),
    }
}

/// The rejections recorded in the plan's report, one line each.
fn rejections(plan: &PlanRecord) -> (u64, Vec<String>) {
    let report: serde_json::Value = serde_json::from_str(&plan.report).unwrap_or_default();
    rejection_lines(&report)
}

/// The rejections a run report (as JSON) records: how many, and the listed ones as lines
/// ("line 37: ambiguous key \"shared@example.com\"").
pub fn rejection_lines(report: &serde_json::Value) -> (u64, Vec<String>) {
    let total = report["rejected"].as_u64().unwrap_or(0);
    let lines = report["rejections"]
        .as_array()
        .map(|all| {
            all.iter()
                .map(|r| {
                    let mut line = format!(
                        "line {}: {}",
                        r["line"].as_u64().unwrap_or(0),
                        r["reason"].as_str().unwrap_or("rejected").replace('_', " ")
                    );
                    if let Some(key) = r["key"].as_str() {
                        line.push_str(&format!(" \"{key}\""));
                    }
                    if let Some(first) = r["first_line"].as_u64() {
                        line.push_str(&format!(" (first at line {first})"));
                    }
                    if let Some(field) = r["field"].as_str() {
                        line.push_str(&format!(" ({field})"));
                    }
                    line
                })
                .collect()
        })
        .unwrap_or_default();
    (total, lines)
}

/// Writes a plan in `format`: the header, then each page `next_page` returns until it
/// returns an empty one.
pub fn write_plan<W: Write, E>(
    out: &mut W,
    plan: &PlanRecord,
    format: PlanFormat,
    next_page: impl FnMut() -> Result<Vec<Change>, E>,
) -> Result<(), E>
where
    E: From<std::io::Error>,
{
    match format {
        PlanFormat::Text => write_text(out, plan, next_page),
        PlanFormat::Json => write_json(out, plan, next_page),
        PlanFormat::Csv => write_csv(out, next_page),
        PlanFormat::Html => write_html(out, plan, next_page),
    }
}

/// The pages `next_page` returns, until it returns an empty one (or fails).
fn pages<E>(
    mut next_page: impl FnMut() -> Result<Vec<Change>, E>,
) -> impl Iterator<Item = Result<Vec<Change>, E>> {
    std::iter::from_fn(move || match next_page() {
        Ok(page) if page.is_empty() => None,
        other => Some(other),
    })
}

/// The text report: the header, then the changes as a dry run prints them.
fn write_text<W: Write, E>(
    out: &mut W,
    plan: &PlanRecord,
    next_page: impl FnMut() -> Result<Vec<Change>, E>,
) -> Result<(), E>
where
    E: From<std::io::Error>,
{
    out.write_all(header_text(plan).as_bytes())?;
    let mut any = false;
    for page in pages(next_page) {
        let page = page?;
        if !any {
            writeln!(out, "changes:")?;
            any = true;
        }
        let mut text = String::new();
        write_changes(&mut text, &page);
        out.write_all(text.as_bytes())?;
    }
    if !any {
        writeln!(out, "no changes")?;
    }
    Ok(())
}

/// One JSON object: the plan, its rejections, its changes.
fn write_json<W: Write, E>(
    out: &mut W,
    plan: &PlanRecord,
    next_page: impl FnMut() -> Result<Vec<Change>, E>,
) -> Result<(), E>
where
    E: From<std::io::Error>,
{
    let (rejected, _) = rejections(plan);
    let report: serde_json::Value = serde_json::from_str(&plan.report).unwrap_or_default();
    write!(
        out,
        "{{\"plan\":{},\"rejected\":{rejected},\"rejections\":{},\"changes\":[",
        serde_json::to_string(plan).expect("plans serialise"),
        report["rejections"]
    )?;
    let mut first = true;
    for page in pages(next_page) {
        let page = page?;
        for change in &page {
            if !first {
                out.write_all(b",")?;
            }
            first = false;
            out.write_all(
                serde_json::to_string(change)
                    .expect("changes serialise")
                    .as_bytes(),
            )?;
        }
    }
    writeln!(out, "]}}")?;
    Ok(())
}

/// One CSV row per changed field.
fn write_csv<W: Write, E>(
    out: &mut W,
    next_page: impl FnMut() -> Result<Vec<Change>, E>,
) -> Result<(), E>
where
    E: From<std::io::Error>,
{
    let mut csv = csv::Writer::from_writer(out);
    let io = |e: csv::Error| std::io::Error::other(e.to_string());
    csv.write_record(["action", "identity", "field", "old", "new", "side"])
        .map_err(io)?;
    for page in pages(next_page) {
        let page = page?;
        for change in &page {
            let id = identity(change);
            for f in &change.fields {
                csv.write_record([
                    change.action.as_str(),
                    &id,
                    f.field,
                    f.old.as_deref().unwrap_or(""),
                    f.new.as_deref().unwrap_or(""),
                    f.side.as_str(),
                ])
                .map_err(io)?;
            }
        }
    }
    csv.flush()?;
    Ok(())
}

/// One self-contained HTML page with colours and filters.
fn write_html<W: Write, E>(
    out: &mut W,
    plan: &PlanRecord,
    next_page: impl FnMut() -> Result<Vec<Change>, E>,
) -> Result<(), E>
where
    E: From<std::io::Error>,
{
    out.write_all(html_head(plan).as_bytes())?;
    let mut fields = std::collections::BTreeSet::new();
    for page in pages(next_page) {
        let page = page?;
        let mut rows = String::new();
        for change in &page {
            html_change(&mut rows, change);
            fields.extend(change.fields.iter().map(|f| f.field));
        }
        out.write_all(rows.as_bytes())?;
    }
    out.write_all(html_tail(&fields).as_bytes())?;
    Ok(())
}

fn header_text(plan: &PlanRecord) -> String {
    let mut out = format!(
        "plan #{} of pipeline {}: {}\n  created {}, expires {}\n  source {} (sha256 {})\n  \
         would insert {}, update {}, delete {}\n  computed against: table {}; directory {}; {}\n",
        plan.id,
        plan.pipeline,
        plan.status.replace('_', " "),
        plan.created_at,
        plan.expires_at,
        plan.source.as_deref().unwrap_or("-"),
        plan.source_sha256.as_deref().unwrap_or("-"),
        plan.inserted,
        plan.updated,
        plan.deleted,
        plan.base_table,
        plan.base_directory,
        plan.base_policy,
    );
    if let Some(reason) = &plan.reason {
        out.push_str(&format!("  the run was {reason}\n"));
    }
    if let Some(run) = plan.applied_run_id {
        out.push_str(&format!("  applied by run #{run}\n"));
    } else if matches!(plan.status.as_str(), "pending" | "awaiting_approval") {
        out.push_str(&format!(
            "  land exactly these changes: ucm apply {}; drop it: ucm plan discard {}\n",
            plan.id, plan.id
        ));
    }
    let (total, lines) = rejections(plan);
    if total > 0 {
        out.push_str("rejected contacts:\n");
        for line in &lines {
            out.push_str(&format!("  {line}\n"));
        }
        if total > lines.len() as u64 {
            out.push_str(&format!("  ... and {} more\n", total - lines.len() as u64));
        }
    }
    out
}

/// The HTML file's stylesheet and script: constants (no data), inline so that the file is
/// self-contained and opens from disk.
const HTML_STYLE: &str = "
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; width: 100%; }
th, td { border-bottom: 1px solid #ddd; padding: .25em .5em; text-align: left; vertical-align: top; }
td.value { font-family: ui-monospace, monospace; white-space: pre-wrap; word-break: break-all; }
tr.insert td.action { background: #e6f4ea; color: #137333; }
tr.update td.action { background: #fef7e0; color: #8a5a00; }
tr.delete td.action { background: #fce8e6; color: #a50e0e; }
.null { color: #999; font-style: italic; }
.counts span { display: inline-block; margin-right: 1.5em; font-size: 1.2em; }
.counts .insert { color: #137333; } .counts .update { color: #8a5a00; } .counts .delete { color: #a50e0e; }
.filters { margin: 1em 0; } .reason { color: #a50e0e; }
";

const HTML_SCRIPT: &str = "
(function () {
  var action = document.getElementById('filter-action');
  var field = document.getElementById('filter-field');
  field.insertAdjacentHTML('beforeend', document.getElementById('field-options').innerHTML);
  var rows = document.querySelectorAll('#changes tbody tr');
  function apply() {
    var shown = 0;
    rows.forEach(function (row) {
      var ok = (!action.value || row.dataset.action === action.value) &&
               (!field.value || row.dataset.field === field.value);
      row.hidden = !ok;
      if (ok) shown++;
    });
    document.getElementById('shown').textContent = shown + ' of ' + rows.length + ' changed fields shown';
  }
  action.addEventListener('change', apply);
  field.addEventListener('change', apply);
  apply();
})();
";

/// The table's opening, written before its rows arrive page by page (structure only).
const HTML_TABLE_OPEN: &str = "<table id=\"changes\"><thead><tr><th>Action</th><th>Contact</th>\
<th>Field</th><th>Old</th><th>New</th><th>Side</th></tr></thead><tbody>\n";
const HTML_TABLE_CLOSE: &str = "</tbody></table>\n";

/// The start of the HTML file, up to the table of changes (a maud template: every value is
/// escaped).
fn html_head(plan: &PlanRecord) -> String {
    let (total, lines) = rejections(plan);
    let markup = html! {
        (DOCTYPE)
        meta charset="utf-8";
        meta name="viewport" content="width=device-width, initial-scale=1";
        title { "ucm plan #" (plan.id) " (" (plan.pipeline) ")" }
        style { (PreEscaped(HTML_STYLE)) }
        h1 { "Plan #" (plan.id) " of pipeline " (plan.pipeline) }
        p { "Status: " strong #status { (plan.status.replace('_', " ")) } ". Created " (plan.created_at) ", expires " (plan.expires_at) "." }
        @if let Some(reason) = &plan.reason { p.reason { "The run was " (reason) } }
        p.counts {
            span.insert { "Insert " strong #count-insert { (plan.inserted) } }
            span.update { "Update " strong #count-update { (plan.updated) } }
            span.delete { "Delete " strong #count-delete { (plan.deleted) } }
        }
        p {
            "Source " code { (plan.source.as_deref().unwrap_or("-")) }
            " (sha256 " code { (plan.source_sha256.as_deref().unwrap_or("-")) } ")." br;
            "Computed against: table " (plan.base_table) "; directory " (plan.base_directory) "; " (plan.base_policy) "."
        }
        @if total > 0 {
            h2 { "Rejected contacts (" (total) ")" }
            ul.rejections {
                @for line in &lines { li { (line) } }
                @if total > lines.len() as u64 { li { "… and " (total - lines.len() as u64) " more" } }
            }
        }
        h2 { "Changes" }
        div.filters {
            label { "Action " select #filter-action {
                option value="" { "all" } option { "insert" } option { "update" } option { "delete" }
            } }
            " "
            label { "Field " select #filter-field { option value="" { "all" } } }
            " "
            span #shown {}
        }
    };
    markup.into_string() + HTML_TABLE_OPEN
}

/// One table row per changed field of `change`.
fn html_change(out: &mut String, change: &Change) {
    let action = change.action.as_str();
    let who = identity(change);
    let value = |v: &Option<String>| match v {
        None => html! { span.null { "NULL" } },
        Some(s) => html! { (s) },
    };
    for f in &change.fields {
        let row = html! {
            tr class=(action) data-action=(action) data-field=(f.field) {
                td.action { (action) }
                td { (who) }
                td { (f.field) }
                td.value { (value(&f.old)) }
                td.value { (value(&f.new)) }
                td { (f.side.as_str()) }
            }
        };
        out.push_str(&row.into_string());
        out.push('\n');
    }
}

/// The end of the HTML file: the field filter's options and the filtering script.
fn html_tail(fields: &std::collections::BTreeSet<&'static str>) -> String {
    let markup = html! {
        template #field-options { @for f in fields { option { (f) } } }
        script { (PreEscaped(HTML_SCRIPT)) }
    };
    HTML_TABLE_CLOSE.to_owned() + &markup.into_string() + "\n"
}
