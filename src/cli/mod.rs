//! The `ucm` command line: argument definitions (a contract other tools rely on) and the
//! commands they run. Errors are `anyhow` here, at the edge, and typed everywhere below.

mod client;
mod plans;
mod progress;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{DEFAULT_CONFIG, PipelineConfig};
use crate::extract::fetch::{DownloadProgress, Silent};
use crate::extract::{Contract, ExtractError};
use crate::fields::FIELD_NAMES;
use crate::generate::{self, GenerateSpec};
use crate::load::contacts::for_each_row;
use crate::load::{Store, runs};
use crate::pipeline::{self, NoProgress, Progress, RunRequest};
use crate::report::RunReport;
use crate::stage::{self, MergeOptions};
use crate::transform::directory as directory_csv;

/// ucm keeps a phone system's contact directory merged with an external contacts source.
///
/// It validates the external XML against the XSD while streaming it, matches each contact to
/// the directory on one field, merges per-field by priority, and loads the merged table in one
/// transaction: a run lands whole or not at all.
#[derive(Debug, Parser)]
#[command(name = "ucm", version, about, long_about)]
pub struct Cli {
    /// Pipeline config file.
    #[arg(short, long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Database URL, overriding the config's [database] url (sqlite://ucm.db, or
    /// postgres://USER:PASSWORD@HOST:PORT/DATABASE).
    #[arg(long, global = true, value_name = "URL")]
    pub db: Option<String>,
    /// Data directory for staged sources, overriding the config's data_dir.
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Only errors on stderr: no progress bar, no log lines.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate an external contacts XML against the XSD (exit 0 valid, 1 invalid).
    Validate {
        /// The XML file.
        file: PathBuf,
        /// The XSD to validate against (default: the config's source.schema, else the
        /// built-in schemas/contacts.xsd).
        #[arg(long, value_name = "XSD")]
        schema: Option<PathBuf>,
        /// Stop after this many errors.
        #[arg(long, default_value_t = 20, value_name = "N")]
        max_errors: usize,
    },
    /// Manage the internal directory.
    #[command(subcommand)]
    Directory(DirectoryCommand),
    /// Import an XML file ad hoc, with the pipeline config's merge settings.
    Import {
        /// The external contacts XML.
        file: PathBuf,
        #[command(flatten)]
        options: RunOptions,
    },
    /// The import stage: download source.url, validate it, and stage it as the last known
    /// good source (a failed or invalid download leaves the staged source untouched).
    Fetch {
        #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
        format: ReportFormat,
    },
    /// The merge stage: merge the staged source with the directory and load the result.
    Merge {
        #[command(flatten)]
        options: RunOptions,
    },
    /// Fetch, then merge: the configured pipeline once. With --dry-run, the download goes to a
    /// temporary file that is discarded and nothing is staged or written.
    Run {
        #[command(flatten)]
        options: RunOptions,
    },
    /// Print the merged table.
    Export {
        #[arg(long, value_enum, default_value_t = ExportFormat::Csv)]
        format: ExportFormat,
    },
    /// Show the staged source (the last known good download) and its metadata.
    Staged {
        #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
        format: ReportFormat,
    },
    /// List the stored plans (what dry runs and refused runs would change), newest first.
    Plans {
        #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
        format: ReportFormat,
    },
    /// Show or discard a stored plan.
    #[command(subcommand)]
    Plan(plans::PlanCommand),
    /// Apply plan ID: exactly its changes, without merging again, in one transaction; refused
    /// (nothing changed) if the table, the directory or the merge policy moved since it was
    /// computed, or if it was applied, discarded or expired. Applying the plan of a run a guard
    /// refused is the reviewed override of that guard.
    Apply {
        id: i64,
        #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
        format: ReportFormat,
    },
    /// Show the run history, newest first.
    Runs {
        /// How many runs to show.
        #[arg(long, default_value_t = 20, value_name = "N")]
        limit: i64,
        #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
        format: ReportFormat,
    },
    /// Run the resident service: fire each pipeline's import and merge crons, and serve
    /// /health, /ready, /api/..., /metrics and a status page over HTTP (127.0.0.1:8080 by
    /// default). Stops on SIGTERM or SIGINT after a running load finishes.
    Serve {
        /// The service config (listen address, pipelines, credentials). Default:
        /// ucm-service.toml when it exists, else every pipelines/*.toml on 127.0.0.1:8080.
        #[arg(long, value_name = "FILE")]
        service: Option<PathBuf>,
        /// The address to listen on, overriding the service config (127.0.0.1:0: any free
        /// port, printed at start).
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
    },
    /// Search the merged directory through a running `ucm serve`: each contact with its live
    /// status and profile.
    #[command(subcommand)]
    Contacts(ContactsCommand),
    /// Change a contact's routing profile through a running `ucm serve`.
    #[command(subcommand)]
    Profile(ProfileCommand),
    /// The active/active pair, through a running `ucm serve`: its health, or a full sync.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Explain a cron expression (the original product's dialect: Minutes Hours Day-of-month
    /// Month Day-of-week, 1 = Sunday, "?" in exactly one day field) and list its next fire
    /// times.
    Cron {
        /// The expression, quoted: e.g. "0 23 ? * *".
        expression: String,
        /// How many fire times to list.
        #[arg(long, default_value_t = 5, value_name = "N")]
        count: usize,
        /// The time zone (IANA name, e.g. Europe/Brussels; default: the system's).
        #[arg(long, value_name = "ZONE")]
        tz: Option<String>,
    },
    /// Write seeded synthetic test data: an external XML and optionally a directory CSV.
    Generate {
        /// Number of external contacts.
        #[arg(long, value_name = "N")]
        contacts: u64,
        /// Number of directory entries (with --csv).
        #[arg(long, default_value_t = 0, value_name = "M")]
        directory: u64,
        /// Share of directory entries that match an external contact (0.0-1.0).
        #[arg(long, default_value_t = 0.3)]
        overlap: f64,
        /// Random seed: the same seed writes the same files.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Where to write the XML.
        #[arg(long, value_name = "FILE")]
        xml: PathBuf,
        /// Where to write the directory CSV.
        #[arg(long, value_name = "FILE")]
        csv: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ContactsCommand {
    /// Contacts whose name or e-mail contains QUERY (any case), or one of whose numbers
    /// contains its digits.
    Search {
        query: String,
        #[arg(long, default_value_t = 20, value_name = "N")]
        limit: i64,
        #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
        format: ReportFormat,
        #[command(flatten)]
        access: client::ServiceAccess,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProfileCommand {
    /// Set contact ID's profile (one of the service's profiles). IDs are `dir:DIRECTORY_ID`
    /// or `ext:MATCH_KEY`, as `ucm contacts search` shows them.
    Set {
        id: String,
        profile: String,
        #[command(flatten)]
        access: client::ServiceAccess,
    },
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// This node, whether profile sync is on, and each peer: reachable, outbox depth, last
    /// successful sync, failures.
    Status {
        #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
        format: ReportFormat,
        #[command(flatten)]
        access: client::ServiceAccess,
    },
    /// Send this node's whole state to its peers now; each keeps what is newer.
    Sync {
        /// Required: a full sync is a deliberate act.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        access: client::ServiceAccess,
    },
}

#[derive(Debug, Subcommand)]
pub enum DirectoryCommand {
    /// Replace the directory with the entries of a CSV file (header: id and any of the 22
    /// field names), in one transaction.
    Load {
        /// The CSV file.
        file: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct RunOptions {
    /// Show what the run would change (field by field) without writing anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Run even if a guard refuses it (an empty source, too many deletions).
    #[arg(long)]
    pub force: bool,
    /// Report format on stdout: text, json, or for a dry run also csv (one row per changed
    /// field) and html (one self-contained file with colours and filters).
    #[arg(long, value_enum, default_value_t = RunFormat::Text)]
    pub format: RunFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RunFormat {
    Text,
    Json,
    Csv,
    Html,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Csv,
    Json,
}

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

/// The config named by `-c`, or the default one when it exists, or built-in defaults; with
/// `--db` and `--data-dir` applied, so that everything derived from the config (the staged
/// files' folder included) follows the overrides.
fn load_config(cli: &Cli) -> anyhow::Result<PipelineConfig> {
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

fn load_contract(schema: Option<&Path>) -> anyhow::Result<Contract> {
    Ok(match schema {
        Some(path) => Contract::load(path)?,
        None => Contract::builtin(),
    })
}

async fn open_store(cli: &Cli, config: &PipelineConfig) -> anyhow::Result<Store> {
    let url = cli.db.as_deref().unwrap_or(&config.database.url);
    let wait = std::time::Duration::from_secs(config.database.lock_wait_secs);
    let numbers = config.lookup.number_plan().map_err(anyhow::Error::msg)?;
    Ok(Store::open(url)
        .await?
        .with_lock_wait(wait)
        .with_numbers(numbers))
}

async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match &cli.command {
        Command::Validate {
            file,
            schema,
            max_errors,
        } => {
            let config_schema = match schema {
                Some(_) => None,
                None => load_config(&cli)?.source.schema,
            };
            let contract = load_contract(schema.as_deref().or(config_schema.as_deref()))?;
            match contract.validate(file, *max_errors) {
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
        Command::Serve { service, listen } => {
            if cli.db.is_some() || cli.data_dir.is_some() {
                anyhow::bail!(
                    "ucm serve runs each pipeline with its own [database] url and data_dir: \
                     set them in the pipeline configs, not with --db or --data-dir"
                );
            }
            let mut config = match service {
                Some(path) => {
                    crate::serve::ServiceConfig::load(path).map_err(anyhow::Error::msg)?
                }
                None if std::path::Path::new("ucm-service.toml").exists() => {
                    crate::serve::ServiceConfig::load(std::path::Path::new("ucm-service.toml"))
                        .map_err(anyhow::Error::msg)?
                }
                None => crate::serve::ServiceConfig::default(),
            };
            if let Some(listen) = listen {
                config.listen = listen.clone();
            }
            if config.pipelines.is_empty()
                && let Some(path) = &cli.config
            {
                config.pipelines = vec![path.clone()];
            }
            crate::serve::serve(config).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Contacts(ContactsCommand::Search {
            query,
            limit,
            format,
            access,
        }) => {
            client::search(access, query, *limit, *format).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Profile(ProfileCommand::Set {
            id,
            profile,
            access,
        }) => {
            client::set_profile(access, id, profile).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Cluster(ClusterCommand::Status { format, access }) => {
            client::cluster_status(access, *format).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Cluster(ClusterCommand::Sync { force, access }) => {
            if !force {
                anyhow::bail!(
                    "ucm cluster sync sends this node's whole state to its peers: add --force to do it"
                );
            }
            client::cluster_sync(access).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Cron {
            expression,
            count,
            tz,
        } => {
            let expr = crate::schedule::CronExpr::parse(expression)?;
            let zone = crate::schedule::time_zone(tz.as_deref()).map_err(anyhow::Error::msg)?;
            let now = jiff::Timestamp::now().to_zoned(zone.clone());
            println!("\"{}\": {}", expr.as_str(), expr.explain());
            for warning in expr.warnings() {
                eprintln!("warning: {warning}");
            }
            let name = zone.iana_name().unwrap_or("the system's time zone");
            println!("next {count} fire times ({name}):");
            for time in expr.upcoming(&now, *count) {
                println!("  {}", time.strftime("%a %Y-%m-%d %H:%M %Z"));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Directory(DirectoryCommand::Load { file }) => {
            let config = load_config(&cli)?;
            let entries = directory_csv::read_csv(file)?;
            let store = open_store(&cli, &config).await?;
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
        Command::Import { file, options } => {
            check_run_options(options)?;
            let config = load_config(&cli)?;
            import(&cli, &config, file.clone(), options).await
        }
        Command::Fetch { format } => {
            let config = load_config(&cli)?;
            let (store, contract) = open_pipeline(&cli, &config).await?;
            let report =
                stage::fetch_stage(&store, contract, &config, download_progress(&cli)).await?;
            store.close().await;
            print_report(&report, *format)
        }
        Command::Merge { options } => {
            check_run_options(options)?;
            let config = load_config(&cli)?;
            let (store, contract) = open_pipeline(&cli, &config).await?;
            let report = stage::merge_stage(
                &store,
                contract,
                &config,
                stage_options(options),
                run_progress(&cli),
            )
            .await?;
            let code = print_run_report(&store, &report, options.format).await;
            store.close().await;
            code
        }
        Command::Run { options } => {
            check_run_options(options)?;
            let config = load_config(&cli)?;
            let (store, contract) = open_pipeline(&cli, &config).await?;
            let report = stage::fetch_and_merge(
                &store,
                contract,
                &config,
                stage_options(options),
                download_progress(&cli),
                run_progress(&cli),
            )
            .await?;
            let code = print_run_report(&store, &report, options.format).await;
            store.close().await;
            code
        }
        Command::Staged { format } => {
            let config = load_config(&cli)?;
            let store = open_store(&cli, &config).await?;
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
        Command::Export { format } => {
            let config = load_config(&cli)?;
            let store = open_store(&cli, &config).await?;
            export(&store, *format).await?;
            store.close().await;
            Ok(ExitCode::SUCCESS)
        }
        Command::Plans { format } => {
            let config = load_config(&cli)?;
            let store = open_store(&cli, &config).await?;
            let code = plans::list(&store, &config.name, *format == ReportFormat::Json).await?;
            store.close().await;
            Ok(code)
        }
        Command::Plan(plans::PlanCommand::Show { id, format }) => {
            let config = load_config(&cli)?;
            let store = open_store(&cli, &config).await?;
            let code = plans::show(&store, *id, (*format).into()).await;
            store.close().await;
            code
        }
        Command::Plan(plans::PlanCommand::Discard { id }) => {
            let config = load_config(&cli)?;
            let store = open_store(&cli, &config).await?;
            let code = plans::discard(&store, *id).await;
            store.close().await;
            code
        }
        Command::Apply { id, format } => {
            let config = load_config(&cli)?;
            let policy = config
                .merge_policy()
                .map_err(|m| anyhow::anyhow!("config: {m}"))?;
            let store = open_store(&cli, &config).await?;
            let request = crate::plan::ApplyRequest {
                pipeline: config.name.clone(),
                plan_id: *id,
                policy,
            };
            let report = crate::plan::apply(&store, request).await;
            store.close().await;
            print_report(&report, *format)
        }
        Command::Runs { limit, format } => {
            let config = load_config(&cli)?;
            let store = open_store(&cli, &config).await?;
            let records = runs::latest(&store, *limit).await?;
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
            store.close().await;
            Ok(ExitCode::SUCCESS)
        }
        Command::Generate {
            contacts,
            directory,
            overlap,
            seed,
            xml,
            csv,
        } => {
            let spec = GenerateSpec {
                contacts: *contacts,
                directory: *directory,
                overlap: *overlap,
                seed: *seed,
            };
            generate::write_xml(&spec, xml)
                .with_context(|| format!("cannot write {}", xml.display()))?;
            if let Some(csv) = csv {
                generate::write_csv(&spec, csv)
                    .with_context(|| format!("cannot write {}", csv.display()))?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Refuses option combinations before anything runs.
fn check_run_options(options: &RunOptions) -> anyhow::Result<()> {
    if matches!(options.format, RunFormat::Csv | RunFormat::Html) && !options.dry_run {
        anyhow::bail!(
            "--format csv and html show the changes of a dry run: add --dry-run (nothing was run)"
        );
    }
    Ok(())
}

fn stage_options(options: &RunOptions) -> MergeOptions {
    MergeOptions {
        dry_run: options.dry_run,
        force: options.force,
    }
}

fn run_progress(cli: &Cli) -> Arc<dyn Progress> {
    if !cli.quiet && std::io::stderr().is_terminal() {
        Arc::new(progress::TerminalProgress::new())
    } else {
        Arc::new(NoProgress)
    }
}

fn download_progress(cli: &Cli) -> Arc<dyn DownloadProgress> {
    if !cli.quiet && std::io::stderr().is_terminal() {
        Arc::new(progress::DownloadBar::new())
    } else {
        Arc::new(Silent)
    }
}

/// The store and the contract a pipeline command needs.
async fn open_pipeline(
    cli: &Cli,
    config: &PipelineConfig,
) -> anyhow::Result<(Store, Arc<Contract>)> {
    let contract = Arc::new(load_contract(config.source.schema.as_deref())?);
    let store = open_store(cli, config).await?;
    Ok((store, contract))
}

/// Prints a run's report: text or JSON, or a dry run's plan as CSV or HTML.
async fn print_run_report(
    store: &Store,
    report: &RunReport,
    format: RunFormat,
) -> anyhow::Result<ExitCode> {
    let plan_format = match format {
        RunFormat::Text => return print_report(report, ReportFormat::Text),
        RunFormat::Json => return print_report(report, ReportFormat::Json),
        RunFormat::Csv => crate::plan::render::PlanFormat::Csv,
        RunFormat::Html => crate::plan::render::PlanFormat::Html,
    };
    match report
        .plan_id
        .filter(|_| report.status == crate::report::RunStatus::DryRun)
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
fn print_report(report: &RunReport, format: ReportFormat) -> anyhow::Result<ExitCode> {
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

async fn import(
    cli: &Cli,
    config: &PipelineConfig,
    source: PathBuf,
    options: &RunOptions,
) -> anyhow::Result<ExitCode> {
    let policy = config
        .merge_policy()
        .map_err(|m| anyhow::anyhow!("config: {m}"))?;
    let (store, contract) = open_pipeline(cli, config).await?;
    let request = RunRequest {
        pipeline: config.name.clone(),
        command: "import".to_owned(),
        source,
        policy,
        directory_csv: None,
        max_delete_ratio: config.merge.max_delete_ratio,
        plan_ttl_hours: config.merge.plan_ttl_hours,
        run_changes_kept: config.merge.run_changes_kept,
        run_changes_ttl_hours: config.merge.run_changes_ttl_hours,
        dry_run: options.dry_run,
        force: options.force,
    };
    let report = pipeline::execute(&store, contract, request, run_progress(cli)).await;
    let code = print_run_report(&store, &report, options.format).await;
    store.close().await;
    code
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
                let side_of = crate::load::run::sides_of(provenance.sides);
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
