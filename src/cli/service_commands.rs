//! `ucm serve` (the resident service), and the commands that talk to a running one:
//! `contacts search`, `profile set`, `cluster status|sync` (through [`super::client`]).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::serve::ServiceConfig;

use super::args::{Cli, ClusterCommand, ContactsCommand, ProfileCommand};
use super::client;

/// The service config file read when `--service` is not given and it exists.
const DEFAULT_SERVICE_CONFIG: &str = "ucm-service.toml";

/// `ucm serve`: runs until SIGTERM or SIGINT.
pub async fn serve(
    cli: &Cli,
    service: Option<&Path>,
    listen: Option<&String>,
) -> anyhow::Result<ExitCode> {
    if cli.db.is_some() || cli.data_dir.is_some() {
        anyhow::bail!(
            "ucm serve runs each pipeline with its own [database] url and data_dir: \
             set them in the pipeline configs, not with --db or --data-dir"
        );
    }
    let mut config = match service {
        Some(path) => ServiceConfig::load(path).map_err(anyhow::Error::msg)?,
        None if Path::new(DEFAULT_SERVICE_CONFIG).exists() => {
            ServiceConfig::load(Path::new(DEFAULT_SERVICE_CONFIG)).map_err(anyhow::Error::msg)?
        }
        None => ServiceConfig::default(),
    };
    if let Some(listen) = listen {
        config.listen = listen.clone();
    }
    if config.pipelines.is_empty()
        && let Some(path) = &cli.config
    {
        config.pipelines = vec![PathBuf::from(path)];
    }
    crate::serve::serve(config).await?;
    Ok(ExitCode::SUCCESS)
}

/// `ucm contacts search`.
pub async fn contacts(command: &ContactsCommand) -> anyhow::Result<ExitCode> {
    let ContactsCommand::Search {
        query,
        limit,
        format,
        access,
    } = command;
    client::search(access, query, *limit, *format).await?;
    Ok(ExitCode::SUCCESS)
}

/// `ucm profile set`.
pub async fn profile(command: &ProfileCommand) -> anyhow::Result<ExitCode> {
    let ProfileCommand::Set {
        id,
        profile,
        access,
    } = command;
    client::set_profile(access, id, profile).await?;
    Ok(ExitCode::SUCCESS)
}

/// `ucm cluster status` and `ucm cluster sync --force`.
pub async fn cluster(command: &ClusterCommand) -> anyhow::Result<ExitCode> {
    match command {
        ClusterCommand::Status { format, access } => {
            client::cluster_status(access, *format).await?
        }
        ClusterCommand::Sync { force, access } => {
            if !force {
                anyhow::bail!(
                    "ucm cluster sync sends this node's whole state to its peers: add --force to do it"
                );
            }
            client::cluster_sync(access).await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
