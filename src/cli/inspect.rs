//! The commands that read what runs left: `staged`, `runs`, `export`, `plans` and `plan
//! show|discard`.

use std::io::Write;
use std::process::ExitCode;

use crate::fields::FIELD_NAMES;
use crate::load::contacts::for_each_row;
use crate::load::{Store, runs};

use super::args::Cli;
use super::context::{load_config, open_store};
use super::formats::{ExportFormat, ReportFormat};
use super::plans::{self, PlanCommand};

/// `ucm staged`: what the fetch stage last staged.
pub async fn staged(cli: &Cli, format: ReportFormat) -> anyhow::Result<ExitCode> {
    let config = load_config(cli)?;
    let store = open_store(cli, &config).await?;
    let staged = crate::load::staged::get(&store, &config.name).await?;
    store.close().await;
    let mut out = std::io::stdout().lock();
    match (format, staged) {
        (ReportFormat::Json, staged) => {
            writeln!(out, "{}", serde_json::to_string_pretty(&staged)?)?
        }
        (ReportFormat::Text, None) => writeln!(
            out,
            "pipeline {}: nothing staged yet (run `ucm fetch`)",
            config.name
        )?,
        (ReportFormat::Text, Some(s)) => writeln!(
            out,
            "pipeline {}: {} ({} bytes, {} contacts)\n  from {} at {}\n  sha256 {}\n  etag {}, last-modified {}",
            s.pipeline,
            s.path,
            s.size,
            s.contacts,
            s.url,
            s.fetched_at,
            s.sha256,
            s.etag.as_deref().unwrap_or("-"),
            s.last_modified.as_deref().unwrap_or("-")
        )?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `ucm runs`: the latest runs, newest first.
pub async fn runs(cli: &Cli, limit: i64, format: ReportFormat) -> anyhow::Result<ExitCode> {
    let config = load_config(cli)?;
    let store = open_store(cli, &config).await?;
    let records = runs::latest(&store, limit).await?;
    store.close().await;
    let mut out = std::io::stdout().lock();
    match format {
        ReportFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&records)?)?,
        ReportFormat::Text => {
            for r in &records {
                writeln!(
                    out,
                    "#{:<4} {}  {:<9} {:<10} {:<6} read {:>8} rejected {:>6}  +{} ~{} -{} ={}  {} ms  {}{}",
                    r.id,
                    r.started_at,
                    r.status,
                    r.pipeline,
                    r.command,
                    r.contacts_read,
                    r.rejected,
                    r.inserted,
                    r.updated,
                    r.deleted,
                    r.unchanged,
                    r.duration_ms,
                    r.source.as_deref().unwrap_or("-"),
                    r.error
                        .as_deref()
                        .map(|e| format!("\n      {}", e.replace('\n', "\n      ")))
                        .unwrap_or_default()
                )?;
            }
            if records.is_empty() {
                writeln!(out, "no runs yet")?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `ucm plans` (`command` None; JSON or text), `ucm plan show ID` and `ucm plan discard ID`.
pub async fn plans(
    cli: &Cli,
    command: Option<&PlanCommand>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let config = load_config(cli)?;
    let store = open_store(cli, &config).await?;
    let code = match command {
        None => plans::list(&store, &config.name, json).await,
        Some(PlanCommand::Show { id, format }) => plans::show(&store, *id, (*format).into()).await,
        Some(PlanCommand::Discard { id }) => plans::discard(&store, *id).await,
    };
    store.close().await;
    code
}

/// `ucm export`: the merged table on stdout.
pub async fn export_command(cli: &Cli, format: ExportFormat) -> anyhow::Result<ExitCode> {
    let config = load_config(cli)?;
    let store = open_store(cli, &config).await?;
    export(&store, format).await?;
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

async fn export(store: &Store, format: ExportFormat) -> anyhow::Result<()> {
    let stdout = std::io::stdout().lock();
    match format {
        ExportFormat::Csv => {
            let mut w = csv::Writer::from_writer(std::io::BufWriter::new(stdout));
            let mut header = vec!["origin", "directory_id", "match_key"];
            header.extend(FIELD_NAMES);
            w.write_record(&header)?;
            for_each_row(store, |row, _| -> anyhow::Result<()> {
                let mut record = vec![
                    row.origin.as_str().to_owned(),
                    row.directory_id.unwrap_or_default(),
                    row.match_key.unwrap_or_default(),
                ];
                record.extend(row.values.into_iter().map(Option::unwrap_or_default));
                w.write_record(&record)?;
                Ok(())
            })
            .await?;
            w.flush()?;
        }
        ExportFormat::Json => {
            let mut w = std::io::BufWriter::new(stdout);
            let mut count = 0u64;
            for_each_row(store, |row, provenance| -> anyhow::Result<()> {
                let mut object = serde_json::Map::new();
                object.insert("origin".into(), row.origin.as_str().into());
                object.insert("directory_id".into(), row.directory_id.into());
                object.insert("match_key".into(), row.match_key.into());
                let mut sides = serde_json::Map::new();
                let side_of = crate::load::sides_of(provenance.sides);
                for (i, (name, value)) in FIELD_NAMES.iter().zip(row.values).enumerate() {
                    if value.is_some() {
                        sides.insert((*name).into(), side_of[i].as_str().into());
                    }
                    object.insert((*name).into(), value.into());
                }
                object.insert("provenance".into(), sides.into());
                object.insert("changed_by_run".into(), provenance.changed_by_run.into());
                w.write_all(if count == 0 { b"[\n  " } else { b",\n  " })?;
                serde_json::to_writer(&mut w, &object)?;
                count += 1;
                Ok(())
            })
            .await?;
            w.write_all(if count == 0 { b"[]\n" } else { b"\n]\n" })?;
            w.flush()?;
        }
    }
    Ok(())
}
