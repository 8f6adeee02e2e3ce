//! Runs a parsed command line: logging, the async runtime, and one call per command.

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Context;

use crate::generate::GenerateSpec;

use super::args::{Cli, Command, DirectoryCommand};
use super::formats::ReportFormat;
use super::{inspect, pipeline_commands as pipeline, service_commands as service, tools};

/// Runs a parsed command line; the exit code follows the contract (0 success, 1 failure or
/// refusal; usage errors exit 2 from clap).
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    init_logging(cli.quiet, matches!(cli.command, Command::Serve { .. }));
    // TLS for https sources: ring as rustls' crypto provider (no OpenSSL).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(dispatch(cli))
}

fn init_logging(quiet: bool, service: bool) {
    // The service logs its fires and runs; commands only warnings.
    let default = match (quiet, service) {
        (true, _) => "error",
        (false, true) => "ucm=info,warn",
        (false, false) => "warn",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("UCM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let cli = &cli;
    match &cli.command {
        Command::Validate {
            file,
            schema,
            max_errors,
        } => pipeline::validate(cli, file, schema.as_deref(), *max_errors),
        Command::Directory(DirectoryCommand::Load { file }) => {
            pipeline::load_directory(cli, file).await
        }
        Command::Import { file, options } => pipeline::import(cli, file.clone(), options).await,
        Command::Fetch { format, preview } => match preview {
            Some(count) => pipeline::preview(cli, *count).await,
            None => pipeline::fetch(cli, *format).await,
        },
        Command::Merge { options } => pipeline::merge(cli, options).await,
        Command::Run { options } => pipeline::run(cli, options).await,
        Command::Apply { id, format } => pipeline::apply(cli, *id, *format).await,
        Command::Staged { format } => inspect::staged(cli, *format).await,
        Command::Export { format } => inspect::export_command(cli, *format).await,
        Command::Plans { format } => inspect::plans(cli, None, *format == ReportFormat::Json).await,
        Command::Plan(command) => inspect::plans(cli, Some(command), false).await,
        Command::Runs { limit, format } => inspect::runs(cli, *limit, *format).await,
        Command::Serve { service, listen } => {
            service::serve(cli, service.as_deref(), listen.as_ref()).await
        }
        Command::Contacts(command) => service::contacts(command).await,
        Command::Profile(command) => service::profile(command).await,
        Command::Cluster(command) => service::cluster(command).await,
        Command::HashPassword => tools::hash_password(),
        Command::Cron {
            expression,
            count,
            tz,
        } => tools::cron(expression, *count, tz.as_deref()),
        Command::Generate {
            contacts,
            directory,
            overlap,
            seed,
            xml,
            csv,
            source_csv,
            vcard,
            realistic,
        } => {
            let spec = GenerateSpec {
                contacts: *contacts,
                directory: *directory,
                overlap: *overlap,
                seed: *seed,
                realistic: *realistic,
            };
            let outputs = tools::GenerateOutputs {
                xml,
                directory_csv: csv.as_ref(),
                source_csv: source_csv.as_ref(),
                vcard: vcard.as_ref(),
            };
            tools::generate(&spec, outputs)
        }
    }
}
