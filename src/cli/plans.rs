//! `ucm plans`, `ucm plan show|discard` and `ucm apply`: reviewing the stored plans of dry runs
//! and refused runs, and landing one exactly as reviewed.

use std::io::Write;
use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};

use crate::load::{Store, plans};
use crate::plan;
use crate::plan::render::{PlanFormat, write_plan};

/// Changes read from the database at a time while a plan is printed.
const PAGE: i64 = 1000;

#[derive(Debug, Subcommand)]
pub enum PlanCommand {
    /// Show plan ID: its summary, what it was computed against, its rejections and every
    /// change (per field: old -> new and the side the new value came from).
    Show {
        id: i64,
        /// text (as a dry run prints it), json, csv (one row per changed field) or html (one
        /// self-contained file with colours and filters: `> plan.html`, open it in a browser).
        #[arg(long, value_enum, default_value_t = ShowFormat::Text)]
        format: ShowFormat,
    },
    /// Discard plan ID: it can no longer be applied.
    Discard { id: i64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ShowFormat {
    Text,
    Json,
    Csv,
    Html,
}

impl From<ShowFormat> for PlanFormat {
    fn from(f: ShowFormat) -> PlanFormat {
        match f {
            ShowFormat::Text => PlanFormat::Text,
            ShowFormat::Json => PlanFormat::Json,
            ShowFormat::Csv => PlanFormat::Csv,
            ShowFormat::Html => PlanFormat::Html,
        }
    }
}

/// `ucm plans`: the pipeline's plans, newest first.
pub async fn list(store: &Store, pipeline: &str, json: bool) -> anyhow::Result<ExitCode> {
    let all = plans::list(store, pipeline, &crate::load::now()).await?;
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&all)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    if all.is_empty() {
        writeln!(
            out,
            "pipeline {pipeline}: no plans (a dry run, or a run a guard refuses, stores one)"
        )?;
    }
    for p in &all {
        writeln!(
            out,
            "#{:<5} {:<18} {}  +{} ~{} -{}  expires {}{}",
            p.id,
            p.status.replace('_', " "),
            p.created_at,
            p.inserted,
            p.updated,
            p.deleted,
            p.expires_at,
            p.reason
                .as_deref()
                .map(|r| format!("\n       {r}"))
                .unwrap_or_default()
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `ucm plan show ID`.
pub async fn show(store: &Store, id: i64, format: PlanFormat) -> anyhow::Result<ExitCode> {
    let Some(record) = plans::get(store, id).await? else {
        anyhow::bail!(
            "there is no plan #{id} in {} (expired plans are pruned; `ucm plans` lists them)",
            store.url()
        );
    };
    let mut after = 0;
    let handle = tokio::runtime::Handle::current();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    tokio::task::block_in_place(|| {
        write_plan(&mut out, &record, format, || -> anyhow::Result<_> {
            let page = handle.block_on(plan::changes(
                store,
                crate::load::plans::ChangeList::Plan(id),
                after,
                PAGE,
            ))?;
            if let Some((last, _)) = page.last() {
                after = *last;
            }
            Ok(page.into_iter().map(|(_, c)| c).collect())
        })
    })?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// `ucm plan discard ID`.
pub async fn discard(store: &Store, id: i64) -> anyhow::Result<ExitCode> {
    if plans::discard(store, id).await? {
        eprintln!("plan #{id} discarded");
        return Ok(ExitCode::SUCCESS);
    }
    match plans::get(store, id).await? {
        None => anyhow::bail!("there is no plan #{id} in {}", store.url()),
        Some(p) => anyhow::bail!("plan #{id} is {} and cannot be discarded", p.status),
    }
}
