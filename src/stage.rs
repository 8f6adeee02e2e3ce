//! The two stages of a pipeline, as the original product ran them on two crons: the import
//! stage (`ucm fetch`: download, validate, stage as last known good) and the merge stage
//! (`ucm merge`: merge the staged source with the directory and load it).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::PipelineConfig;
use crate::extract::Contract;
use crate::extract::fetch::{self, DownloadProgress, FetchOptions, Fetched};
use crate::load::staged::{self, StagedSource};
use crate::load::{Store, runs};
use crate::pipeline::{self, Progress, RunRequest};
use crate::report::{FetchDetails, RunReport, RunStatus};

/// Errors of validation in a fetched file are listed up to this many in the run's error.
const FETCH_MAX_ERRORS: usize = 10;

/// Why a stage could not start.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error(
        "pipeline {pipeline}: no source.url in its config; set it to the external contacts URL or path"
    )]
    NoSource { pipeline: String },
    #[error("pipeline {pipeline}: no staged source yet; run `ucm fetch` first")]
    NothingStaged { pipeline: String },
    #[error("pipeline {pipeline}: the staged source {path} is missing; run `ucm fetch` again")]
    StagedFileMissing { pipeline: String, path: String },
    #[error("config: {0}")]
    Config(String),
    /// The source could not be read (a preview's download).
    #[error("{0}")]
    Source(String),
    #[error(transparent)]
    Load(#[from] crate::load::LoadError),
}

/// The configured source URL, required by the fetch stage.
fn source_url(config: &PipelineConfig) -> Result<String, StageError> {
    config
        .source
        .url
        .clone()
        .ok_or_else(|| StageError::NoSource {
            pipeline: config.name.clone(),
        })
}

/// The folder of a pipeline's staged sources and downloads: `data_dir/<name>/db-<key>`, where
/// the key is derived from the pipeline's database URL (its password masked first). Two
/// pipelines with the same name and `data_dir` but different databases (a test and a
/// production config run from one folder) each keep their own last-known-good copy: a fetch
/// deletes the copy its own database superseded, never the other's.
pub fn pipeline_dir(config: &PipelineConfig) -> PathBuf {
    use sha2::{Digest, Sha256};
    let database = crate::redact::mask_url(&config.database.url);
    let digest = Sha256::digest(database.as_bytes());
    let key: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    config.data_dir.join(&config.name).join(format!("db-{key}"))
}

fn fetch_options(
    config: &PipelineConfig,
    previous: Option<&StagedSource>,
) -> Result<FetchOptions, StageError> {
    let s = &config.source;
    Ok(FetchOptions {
        connect_timeout: Duration::from_secs(s.connect_timeout_secs),
        read_timeout: Duration::from_secs(s.read_timeout_secs),
        max_bytes: s.max_bytes,
        tries: s.tries,
        backoff: Duration::from_millis(s.backoff_ms),
        auth: s.auth.resolve().map_err(StageError::Config)?,
        etag: previous.and_then(|p| p.etag.clone()),
        last_modified: previous.and_then(|p| p.last_modified.clone()),
        ldap: s.ldap_search(false).map_err(StageError::Config)?,
        carddav: s.kind == crate::extract::mapping::SourceKind::Carddav,
        staged: previous.map(|p| PathBuf::from(&p.path)),
    })
}

fn empty_report(config: &PipelineConfig, command: &str, url: &str) -> RunReport {
    let mut report = RunReport::begin(&config.name, command, &fetch::mask_url(url), false);
    report.fetch = Some(FetchDetails {
        url: fetch::mask_url(url),
        http_status: None,
        tries: 0,
        bytes: 0,
        etag: None,
        last_modified: None,
        unchanged_reason: None,
        staged_path: None,
    });
    report
}

/// A downloaded and validated source, not staged yet.
pub struct Candidate {
    pub file: tempfile::NamedTempFile,
    pub sha256: String,
    pub contacts: u64,
}

/// Downloads and validates the source. `Ok(None)` when there is nothing new (the report says
/// why); the report is filled in either way.
async fn download_and_validate(
    config: &PipelineConfig,
    contract: &Arc<Contract>,
    previous: Option<&StagedSource>,
    report: &mut RunReport,
    progress: Arc<dyn DownloadProgress>,
) -> Result<Option<Candidate>, String> {
    let url = config.source.url.clone().unwrap_or_default();
    let options = fetch_options(config, previous).map_err(|e| e.to_string())?;
    let dir = pipeline_dir(config);
    let details = report.fetch.as_mut().expect("fetch reports have details");
    let download = match fetch::fetch(&url, &dir, &options, progress).await {
        Ok(Fetched::NotModified) => {
            details.http_status = Some(304);
            details.unchanged_reason = Some("the server answered 304 Not Modified".into());
            return Ok(None);
        }
        Ok(Fetched::Unchanged(reason)) => {
            details.unchanged_reason = Some(reason);
            return Ok(None);
        }
        Ok(Fetched::Downloaded(d)) => d,
        Err(e) => {
            details.tries = e.attempt;
            return Err(e.to_string());
        }
    };
    details.http_status = download.http_status;
    details.tries = download.tries;
    details.bytes = download.bytes;
    details.etag = download.etag.clone();
    details.last_modified = download.last_modified.clone();
    let path = download.file.path().to_owned();
    let checker = Arc::clone(contract);
    let validated = tokio::task::spawn_blocking(move || checker.validate(&path, FETCH_MAX_ERRORS))
        .await
        .map_err(|e| format!("validation thread: {e}"))?;
    let validated = match validated {
        Ok(v) => v,
        Err(e) => {
            return Err(format!(
                "{url} is not valid; the staged source is unchanged:\n{}",
                e.to_string().replace(
                    &download.file.path().display().to_string(),
                    &fetch::mask_url(&url),
                )
            ));
        }
    };
    report.source_sha256 = Some(validated.sha256.clone());
    report.contacts_read = validated.contacts;
    if previous.is_some_and(|p| p.sha256 == validated.sha256) {
        details.unchanged_reason =
            Some("the content has the same sha256 as the staged source".into());
        return Ok(None);
    }
    Ok(Some(Candidate {
        file: download.file,
        sha256: validated.sha256,
        contacts: validated.contacts,
    }))
}

/// The import stage: download, validate the whole file, and atomically stage it with its
/// metadata. A failed, truncated or invalid download leaves the previous staged source
/// untouched; every outcome is recorded as a run (`command` = `fetch`).
pub async fn fetch_stage(
    store: &Store,
    contract: Arc<Contract>,
    config: &PipelineConfig,
    progress: Arc<dyn DownloadProgress>,
) -> Result<RunReport, StageError> {
    let url = source_url(config)?;
    let clock = Instant::now();
    let mut report = empty_report(config, "fetch", &url);
    let previous = staged::get(store, &config.name).await?;
    match download_and_validate(config, &contract, previous.as_ref(), &mut report, progress).await {
        Err(message) => {
            report.status = RunStatus::Failed;
            report.error = Some(message);
        }
        Ok(None) => report.status = RunStatus::Unchanged,
        Ok(Some(candidate)) => {
            let name = format!(
                "source-{}.{}",
                candidate.sha256,
                contract.kind().extension()
            );
            let target = pipeline_dir(config).join(name);
            let details = report.fetch.as_mut().expect("fetch reports have details");
            // The new copy gets a name of its own, so the previous one stays intact until the
            // metadata points at the new one.
            match candidate.file.persist(&target) {
                Err(e) => {
                    report.status = RunStatus::Failed;
                    report.error = Some(format!(
                        "cannot move the download to {}: {}",
                        target.display(),
                        e.error
                    ));
                }
                Ok(_) => {
                    let staged = StagedSource {
                        pipeline: config.name.clone(),
                        url: fetch::mask_url(&url),
                        path: target.display().to_string(),
                        fetched_at: crate::load::now(),
                        sha256: candidate.sha256.clone(),
                        etag: details.etag.clone(),
                        last_modified: details.last_modified.clone(),
                        size: details.bytes as i64,
                        contacts: candidate.contacts as i64,
                    };
                    details.staged_path = Some(staged.path.clone());
                    report.status = RunStatus::Succeeded;
                    report.duration_ms = clock.elapsed().as_millis() as u64;
                    report.finished_at = crate::load::now();
                    report.run_id = Some(staged::stage(store, &staged, &report).await?);
                    if let Some(old) = previous.filter(|p| p.path != staged.path) {
                        let _ = std::fs::remove_file(&old.path);
                    }
                    return Ok(report);
                }
            }
        }
    }
    report.duration_ms = clock.elapsed().as_millis() as u64;
    report.finished_at = crate::load::now();
    report.run_id = Some(runs::record(store, &report).await?);
    Ok(report)
}

/// The staged source of the pipeline, checked to exist.
pub async fn staged_source(
    store: &Store,
    config: &PipelineConfig,
) -> Result<StagedSource, StageError> {
    let staged =
        staged::get(store, &config.name)
            .await?
            .ok_or_else(|| StageError::NothingStaged {
                pipeline: config.name.clone(),
            })?;
    if !Path::new(&staged.path).exists() {
        return Err(StageError::StagedFileMissing {
            pipeline: config.name.clone(),
            path: staged.path,
        });
    }
    Ok(staged)
}

/// Options of a merge.
#[derive(Clone, Copy, Debug, Default)]
pub struct MergeOptions {
    pub dry_run: bool,
    pub force: bool,
}

/// The request of a run of `config`'s pipeline: its rules, guards and plan settings.
pub fn run_request(
    config: &PipelineConfig,
    command: &str,
    source: PathBuf,
    options: MergeOptions,
) -> Result<RunRequest, StageError> {
    Ok(RunRequest {
        pipeline: config.name.clone(),
        command: command.to_owned(),
        source,
        policy: config.merge_policy().map_err(StageError::Config)?,
        directory_csv: config.directory.csv.clone(),
        max_delete_ratio: config.merge.max_delete_ratio,
        plan_ttl_hours: config.merge.plan_ttl_hours,
        run_changes_kept: config.merge.run_changes_kept,
        run_changes_ttl_hours: config.merge.run_changes_ttl_hours,
        dry_run: options.dry_run,
        force: options.force,
    })
}

/// An ad-hoc dry run of `source` (a sample file an administrator uploaded): validated and
/// merged like the pipeline's own source, its changes stored as a plan (`command` =
/// `import`); nothing else is written.
pub async fn sample_dry_run(
    store: &Store,
    contract: Arc<Contract>,
    config: &PipelineConfig,
    source: &Path,
    progress: Arc<dyn pipeline::Progress>,
) -> Result<RunReport, StageError> {
    let options = MergeOptions {
        dry_run: true,
        force: false,
    };
    let request = run_request(config, "import", source.to_owned(), options)?;
    Ok(pipeline::execute(store, contract, request, progress).await)
}

/// The merge stage: merges the staged source with the directory and loads it (`command` =
/// `merge`).
pub async fn merge_stage(
    store: &Store,
    contract: Arc<Contract>,
    config: &PipelineConfig,
    options: MergeOptions,
    progress: Arc<dyn Progress>,
) -> Result<RunReport, StageError> {
    let staged = staged_source(store, config).await?;
    let request = run_request(config, "merge", PathBuf::from(&staged.path), options)?;
    Ok(pipeline::execute(store, contract, request, progress).await)
}

/// `ucm run`: the fetch stage, then the merge stage. A failed fetch stops it (its report is
/// returned). A dry run downloads to a temporary file, merges against it without writing, and
/// discards it; nothing is staged.
pub async fn fetch_and_merge(
    store: &Store,
    contract: Arc<Contract>,
    config: &PipelineConfig,
    options: MergeOptions,
    download: Arc<dyn DownloadProgress>,
    progress: Arc<dyn Progress>,
) -> Result<RunReport, StageError> {
    if !options.dry_run {
        let fetched = fetch_stage(store, Arc::clone(&contract), config, download).await?;
        if fetched.status == RunStatus::Failed {
            return Ok(fetched);
        }
        let mut merged = merge_stage(store, contract, config, options, progress).await?;
        merged.command = "run".into();
        merged.source = Some(fetch::mask_url(
            &config.source.url.clone().unwrap_or_default(),
        ));
        merged.fetch = fetched.fetch;
        return Ok(merged);
    }
    let url = source_url(config)?;
    let mut fetch_report = empty_report(config, "fetch", &url);
    // No conditional GET and no sha256 comparison: a dry run compares the new content with the
    // table even if it equals the staged copy.
    let candidate =
        match download_and_validate(config, &contract, None, &mut fetch_report, download).await {
            Ok(Some(candidate)) => candidate,
            // Without validators sent, only a server that answers 304 regardless gets here.
            Ok(None) => {
                fetch_report.status = RunStatus::Unchanged;
                fetch_report.finished_at = crate::load::now();
                return Ok(fetch_report);
            }
            Err(message) => {
                fetch_report.error = Some(message);
                fetch_report.finished_at = crate::load::now();
                return Ok(fetch_report);
            }
        };
    let request = run_request(config, "run", candidate.file.path().to_owned(), options)?;
    let mut report = pipeline::execute(store, contract, request, progress).await;
    report.source = Some(fetch::mask_url(&url));
    report.fetch = fetch_report.fetch;
    drop(candidate);
    Ok(report)
}

/// `ucm fetch --preview N`: downloads the source to a temporary file (nothing is staged or
/// recorded) and reads its first `count` contacts as the pipeline maps them.
pub async fn preview(
    contract: Arc<Contract>,
    config: &PipelineConfig,
    count: usize,
) -> Result<crate::extract::preview::Preview, StageError> {
    let url = source_url(config)?;
    let mut options = fetch_options(config, None).map_err(|e| StageError::Source(e.to_string()))?;
    // A preview shows what the source has that no field reads: every attribute.
    options.ldap = (config.source.ldap_search(true)).map_err(StageError::Config)?;
    let dir = pipeline_dir(config);
    let download = match fetch::fetch(&url, &dir, &options, Arc::new(fetch::Silent)).await {
        Ok(Fetched::Downloaded(download)) => download,
        Ok(Fetched::NotModified | Fetched::Unchanged(_)) => {
            return Err(StageError::Source(format!(
                "{url} said nothing changed to a request that named no earlier copy"
            )));
        }
        Err(e) => return Err(StageError::Source(e.to_string())),
    };
    let path = download.file.path().to_owned();
    let mut preview = tokio::task::spawn_blocking(move || contract.preview(&path, count))
        .await
        .map_err(|e| StageError::Source(format!("preview thread: {e}")))?;
    if let Some(error) = &mut preview.error {
        *error = error.replace(
            &download.file.path().display().to_string(),
            &fetch::mask_url(&url),
        );
    }
    Ok(preview)
}
