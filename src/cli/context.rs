//! What the commands share: the pipeline config with the command line's overrides, the
//! contract, the store, progress displays, and printing a run's report with its exit code.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use crate::config::{DEFAULT_CONFIG, PipelineConfig};
use crate::extract::Contract;
use crate::extract::fetch::{DownloadProgress, Silent};
use crate::load::Store;
use crate::pipeline::{NoProgress, Progress};
use crate::plan::render::PlanFormat;
use crate::report::{RunReport, RunStatus};
use crate::stage::MergeOptions;

use super::args::{Cli, RunOptions};
use super::formats::{ReportFormat, RunFormat};
use super::{plans, progress};

/// The config named by `-c`, or the default one when it exists, or built-in defaults; with
/// `--db` and `--data-dir` applied, so that everything derived from the config (the staged
/// files' folder included) follows the overrides.
pub fn load_config(cli: &Cli) -> anyhow::Result<PipelineConfig> {
    let mut config = match &cli.config {
        Some(path) => PipelineConfig::load(path)?,
        None if Path::new(DEFAULT_CONFIG).exists() => {
            PipelineConfig::load(Path::new(DEFAULT_CONFIG))?
        }
        None => PipelineConfig::default(),
    };
    if let Some(db) = &cli.db {
        config.database.url = db.clone();
    }
    if let Some(dir) = &cli.data_dir {
        config.data_dir = dir.clone();
    }
    Ok(config)
}

pub fn load_contract(schema: Option<&Path>) -> anyhow::Result<Contract> {
    Ok(match schema {
        Some(path) => Contract::load(path)?,
        None => Contract::builtin(),
    })
}

pub async fn open_store(cli: &Cli, config: &PipelineConfig) -> anyhow::Result<Store> {
    let url = cli.db.as_deref().unwrap_or(&config.database.url);
    let wait = std::time::Duration::from_secs(config.database.lock_wait_secs);
    let numbers = config.lookup.number_plan().map_err(anyhow::Error::msg)?;
    Ok(Store::open(url)
        .await?
        .with_lock_wait(wait)
        .with_numbers(numbers))
}

/// The store and the contract a pipeline command needs.
pub async fn open_pipeline(
    cli: &Cli,
    config: &PipelineConfig,
) -> anyhow::Result<(Store, Arc<Contract>)> {
    let format = config.source.format().map_err(anyhow::Error::msg)?;
    let contract = Arc::new(load_contract(config.source.schema.as_deref())?.with_source(format));
    let store = open_store(cli, config).await?;
    Ok((store, contract))
}

/// Refuses option combinations before anything runs.
pub fn check_run_options(options: &RunOptions) -> anyhow::Result<()> {
    if matches!(options.format, RunFormat::Csv | RunFormat::Html) && !options.dry_run {
        anyhow::bail!(
            "--format csv and html show the changes of a dry run: add --dry-run (nothing was run)"
        );
    }
    Ok(())
}

pub fn stage_options(options: &RunOptions) -> MergeOptions {
    MergeOptions {
        dry_run: options.dry_run,
        force: options.force,
    }
}

pub fn run_progress(cli: &Cli) -> Arc<dyn Progress> {
    if !cli.quiet && std::io::stderr().is_terminal() {
        Arc::new(progress::TerminalProgress::new())
    } else {
        Arc::new(NoProgress)
    }
}

pub fn download_progress(cli: &Cli) -> Arc<dyn DownloadProgress> {
    if !cli.quiet && std::io::stderr().is_terminal() {
        Arc::new(progress::DownloadBar::new())
    } else {
        Arc::new(Silent)
    }
}

/// Prints a run's report: text or JSON, or a dry run's plan as CSV or HTML.
pub async fn print_run_report(
    store: &Store,
    report: &RunReport,
    format: RunFormat,
) -> anyhow::Result<ExitCode> {
    let plan_format = match format {
        RunFormat::Text => return print_report(report, ReportFormat::Text),
        RunFormat::Json => return print_report(report, ReportFormat::Json),
        RunFormat::Csv => PlanFormat::Csv,
        RunFormat::Html => PlanFormat::Html,
    };
    match report
        .plan_id
        .filter(|_| report.status == RunStatus::DryRun)
    {
        Some(plan) => {
            plans::show(store, plan, plan_format).await?;
            Ok(ExitCode::SUCCESS)
        }
        None => {
            // The dry run failed, or its plan could not be stored: the text report says so.
            eprint!("{}", report.to_text());
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Prints a run report; the exit code follows its status.
pub fn print_report(report: &RunReport, format: ReportFormat) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match format {
        ReportFormat::Json => writeln!(out, "{}", report.to_json())?,
        ReportFormat::Text => write!(out, "{}", report.to_text())?,
    }
    Ok(if report.status.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
