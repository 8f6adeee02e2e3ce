//! The commands that read a source or change the merged table: `validate`, `fetch`, `merge`,
//! `run`, `import`, `apply` and `directory load`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::extract::ExtractError;
use crate::pipeline;
use crate::stage;
use crate::transform::directory as directory_csv;

use super::args::{Cli, RunOptions};
use super::context::{
    check_run_options, download_progress, load_config, load_contract, open_pipeline, open_store,
    print_report, print_run_report, run_progress, stage_options,
};
use super::formats::ReportFormat;

/// `ucm validate FILE`: exit 0 valid, 1 invalid (the errors on stderr).
pub fn validate(
    cli: &Cli,
    file: &Path,
    schema: Option<&Path>,
    max_errors: usize,
) -> anyhow::Result<ExitCode> {
    // With --schema, the file is ucm's XML; otherwise the pipeline's source says what it is.
    let config = match schema {
        Some(_) => None,
        None => Some(load_config(cli)?),
    };
    let source = config.as_ref().map(|c| &c.source);
    let mut contract = load_contract(schema.or(source.and_then(|s| s.schema.as_deref())))?;
    if let Some(source) = source {
        contract = contract.with_source(source.format().map_err(anyhow::Error::msg)?);
    }
    match contract.validate(file, max_errors) {
        Ok(v) => {
            if !cli.quiet {
                eprintln!(
                    "{}: valid ({} contacts, {} bytes)",
                    file.display(),
                    v.contacts,
                    v.bytes
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(ExtractError::Invalid(invalid)) => {
            eprintln!("{invalid}");
            eprintln!("{}: invalid", file.display());
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e.into()),
    }
}

/// `ucm directory load FILE`: replaces the directory in one transaction.
pub async fn load_directory(cli: &Cli, file: &Path) -> anyhow::Result<ExitCode> {
    let config = load_config(cli)?;
    let entries = directory_csv::read_csv(file)?;
    let store = open_store(cli, &config).await?;
    let count = entries.len();
    let writer = store.clone();
    tokio::task::spawn_blocking(move || {
        let mut run = writer.begin_run(crate::load::now())?;
        run.replace_directory(&entries)?;
        run.commit()
    })
    .await??;
    if !cli.quiet {
        eprintln!(
            "directory: {} entries loaded from {} into {}",
            count,
            file.display(),
            store.url()
        );
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

/// `ucm fetch`: the import stage (download, validate, stage).
pub async fn fetch(cli: &Cli, format: ReportFormat) -> anyhow::Result<ExitCode> {
    let config = load_config(cli)?;
    let (store, contract) = open_pipeline(cli, &config).await?;
    let report = stage::fetch_stage(&store, contract, &config, download_progress(cli)).await?;
    store.close().await;
    print_report(&report, format)
}

/// `ucm fetch --preview N`: the source's first contacts as mapped; nothing is written.
pub async fn preview(cli: &Cli, count: usize) -> anyhow::Result<ExitCode> {
    let config = load_config(cli)?;
    let format = config.source.format().map_err(anyhow::Error::msg)?;
    let contract = load_contract(config.source.schema.as_deref())?.with_source(format);
    let preview = stage::preview(std::sync::Arc::new(contract), &config, count.max(1)).await?;
    print!("{}", preview.to_text());
    Ok(if preview.error.is_some() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `ucm merge`: the merge stage, from the staged source.
pub async fn merge(cli: &Cli, options: &RunOptions) -> anyhow::Result<ExitCode> {
    check_run_options(options)?;
    let config = load_config(cli)?;
    let (store, contract) = open_pipeline(cli, &config).await?;
    let report = stage::merge_stage(
        &store,
        contract,
        &config,
        stage_options(options),
        run_progress(cli),
    )
    .await?;
    let code = print_run_report(&store, &report, options.format).await;
    store.close().await;
    code
}

/// `ucm run`: fetch, then merge.
pub async fn run(cli: &Cli, options: &RunOptions) -> anyhow::Result<ExitCode> {
    check_run_options(options)?;
    let config = load_config(cli)?;
    let (store, contract) = open_pipeline(cli, &config).await?;
    let report = stage::fetch_and_merge(
        &store,
        contract,
        &config,
        stage_options(options),
        download_progress(cli),
        run_progress(cli),
    )
    .await?;
    let code = print_run_report(&store, &report, options.format).await;
    store.close().await;
    code
}

/// `ucm import FILE`: an ad-hoc run of a local file, nothing staged.
pub async fn import(cli: &Cli, source: PathBuf, options: &RunOptions) -> anyhow::Result<ExitCode> {
    check_run_options(options)?;
    let config = load_config(cli)?;
    let mut request = stage::run_request(&config, "import", source, stage_options(options))?;
    // An ad-hoc import merges with the directory as the database holds it.
    request.directory_csv = None;
    let (store, contract) = open_pipeline(cli, &config).await?;
    let report = pipeline::execute(&store, contract, request, run_progress(cli)).await;
    let code = print_run_report(&store, &report, options.format).await;
    store.close().await;
    code
}

/// `ucm apply ID`: lands a stored plan exactly as reviewed.
pub async fn apply(cli: &Cli, id: i64, format: ReportFormat) -> anyhow::Result<ExitCode> {
    let config = load_config(cli)?;
    let policy = config
        .merge_policy()
        .map_err(|m| anyhow::anyhow!("config: {m}"))?;
    let store = open_store(cli, &config).await?;
    let request = crate::plan::ApplyRequest {
        pipeline: config.name.clone(),
        plan_id: id,
        policy,
    };
    let report = crate::plan::apply(&store, request).await;
    store.close().await;
    print_report(&report, format)
}
