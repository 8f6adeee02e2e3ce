//! A plan written for people and tools: text (as a dry run prints it), JSON, CSV (one row per
//! changed field, for spreadsheets) and HTML (one self-contained file: no external assets,
//! opens from disk, filters by action and field).
//!
//! Changes are written page by page as they are read, so a plan of a million changes is
//! shown in bounded memory.

use std::io::Write;

use crate::load::plans::PlanRecord;
use crate::report::{Change, html_escape, write_changes};

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
    mut next_page: impl FnMut() -> Result<Vec<Change>, E>,
) -> Result<(), E>
where
    E: From<std::io::Error>,
{
    match format {
        PlanFormat::Text => {
            out.write_all(header_text(plan).as_bytes())?;
            let mut any = false;
            loop {
                let page = next_page()?;
                if page.is_empty() {
                    break;
                }
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
        }
        PlanFormat::Json => {
            let (rejected, _) = rejections(plan);
            let report: serde_json::Value = serde_json::from_str(&plan.report).unwrap_or_default();
            write!(
                out,
                "{{\"plan\":{},\"rejected\":{rejected},\"rejections\":{},\"changes\":[",
                serde_json::to_string(plan).expect("plans serialise"),
                report["rejections"]
            )?;
            let mut first = true;
            loop {
                let page = next_page()?;
                if page.is_empty() {
                    break;
                }
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
        }
        PlanFormat::Csv => {
            let mut csv = csv::Writer::from_writer(out);
            let io = |e: csv::Error| std::io::Error::other(e.to_string());
            csv.write_record(["action", "identity", "field", "old", "new", "side"])
                .map_err(io)?;
            loop {
                let page = next_page()?;
                if page.is_empty() {
                    break;
                }
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
        }
        PlanFormat::Html => {
            out.write_all(html_head(plan).as_bytes())?;
            let mut fields = std::collections::BTreeSet::new();
            loop {
                let page = next_page()?;
                if page.is_empty() {
                    break;
                }
                let mut rows = String::new();
                for change in &page {
                    html_change(&mut rows, change);
                    fields.extend(change.fields.iter().map(|f| f.field));
                }
                out.write_all(rows.as_bytes())?;
            }
            out.write_all(html_tail(&fields).as_bytes())?;
        }
    }
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

/// The start of the HTML file, up to the open table of changes.
fn html_head(plan: &PlanRecord) -> String {
    let e = |s: &str| html_escape(s);
    let (total, lines) = rejections(plan);
    let mut rejected = String::new();
    if total > 0 {
        rejected.push_str(&format!(
            "<h2>Rejected contacts ({total})</h2><ul class=\"rejections\">"
        ));
        for line in &lines {
            rejected.push_str(&format!("<li>{}</li>", e(line)));
        }
        if total > lines.len() as u64 {
            rejected.push_str(&format!(
                "<li>… and {} more</li>",
                total - lines.len() as u64
            ));
        }
        rejected.push_str("</ul>");
    }
    let reason = plan
        .reason
        .as_deref()
        .map(|r| format!("<p class=\"reason\">The run was {}</p>", e(r)))
        .unwrap_or_default();
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ucm plan #{id} ({pipeline})</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ border-bottom: 1px solid #ddd; padding: .25em .5em; text-align: left; vertical-align: top; }}
td.value {{ font-family: ui-monospace, monospace; white-space: pre-wrap; word-break: break-all; }}
tr.insert td.action {{ background: #e6f4ea; color: #137333; }}
tr.update td.action {{ background: #fef7e0; color: #8a5a00; }}
tr.delete td.action {{ background: #fce8e6; color: #a50e0e; }}
.null {{ color: #999; font-style: italic; }}
.counts span {{ display: inline-block; margin-right: 1.5em; font-size: 1.2em; }}
.counts .insert {{ color: #137333; }} .counts .update {{ color: #8a5a00; }} .counts .delete {{ color: #a50e0e; }}
.filters {{ margin: 1em 0; }} .reason {{ color: #a50e0e; }}
</style></head><body>
<h1>Plan #{id} of pipeline {pipeline}</h1>
<p>Status: <strong id="status">{status}</strong>. Created {created}, expires {expires}.</p>
{reason}
<p class="counts"><span class="insert">Insert <strong id="count-insert">{inserted}</strong></span><span class="update">Update <strong id="count-update">{updated}</strong></span><span class="delete">Delete <strong id="count-delete">{deleted}</strong></span></p>
<p>Source <code>{source}</code> (sha256 <code>{sha}</code>).<br>Computed against: table {table}; directory {directory}; {policy}.</p>
{rejected}
<h2>Changes</h2>
<div class="filters"><label>Action <select id="filter-action"><option value="">all</option><option>insert</option><option>update</option><option>delete</option></select></label>
<label>Field <select id="filter-field"><option value="">all</option></select></label>
<span id="shown"></span></div>
<table id="changes"><thead><tr><th>Action</th><th>Contact</th><th>Field</th><th>Old</th><th>New</th><th>Side</th></tr></thead><tbody>
"#,
        id = plan.id,
        pipeline = e(&plan.pipeline),
        status = e(&plan.status.replace('_', " ")),
        created = e(&plan.created_at),
        expires = e(&plan.expires_at),
        inserted = plan.inserted,
        updated = plan.updated,
        deleted = plan.deleted,
        source = e(plan.source.as_deref().unwrap_or("-")),
        sha = e(plan.source_sha256.as_deref().unwrap_or("-")),
        table = e(&plan.base_table),
        directory = e(&plan.base_directory),
        policy = e(&plan.base_policy),
    )
}

/// One table row per changed field of `change` (a row change without fields gets one).
fn html_change(out: &mut String, change: &Change) {
    let action = change.action.as_str();
    let who = html_escape(&identity(change));
    let value = |v: &Option<String>| match v {
        None => "<span class=\"null\">NULL</span>".to_owned(),
        Some(s) => html_escape(s),
    };
    for f in &change.fields {
        out.push_str(&format!(
            "<tr class=\"{action}\" data-action=\"{action}\" data-field=\"{field}\"><td class=\"action\">{action}</td><td>{who}</td><td>{field}</td><td class=\"value\">{old}</td><td class=\"value\">{new}</td><td>{side}</td></tr>\n",
            field = f.field,
            old = value(&f.old),
            new = value(&f.new),
            side = f.side.as_str(),
        ));
    }
}

/// The end of the HTML file: the field filter's options and the filtering script.
fn html_tail(fields: &std::collections::BTreeSet<&'static str>) -> String {
    let options: String = fields
        .iter()
        .map(|f| format!("<option>{f}</option>"))
        .collect();
    format!(
        r#"</tbody></table>
<template id="field-options">{options}</template>
<script>
(function () {{
  var action = document.getElementById('filter-action');
  var field = document.getElementById('filter-field');
  field.insertAdjacentHTML('beforeend', document.getElementById('field-options').innerHTML);
  var rows = document.querySelectorAll('#changes tbody tr');
  function apply() {{
    var shown = 0;
    rows.forEach(function (row) {{
      var ok = (!action.value || row.dataset.action === action.value) &&
               (!field.value || row.dataset.field === field.value);
      row.hidden = !ok;
      if (ok) shown++;
    }});
    document.getElementById('shown').textContent = shown + ' of ' + rows.length + ' changed fields shown';
  }}
  action.addEventListener('change', apply);
  field.addEventListener('change', apply);
  apply();
}})();
</script>
</body></html>
"#
    )
}
