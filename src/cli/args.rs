//! The command line's arguments: every command, its options and their help (a contract other
//! tools rely on). Parsing only; the commands are run by [`super::run`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use super::client::ServiceAccess;
use super::formats::{ExportFormat, ReportFormat, RunFormat};
use super::plans::PlanCommand;

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
        /// Print the first N contacts of the source as the pipeline maps them (each value
        /// with the column, property or element it comes from, and what no field reads);
        /// nothing is staged or recorded.
        #[arg(long, value_name = "N")]
        preview: Option<usize>,
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
    Plan(PlanCommand),
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
    /// Print an Argon2 hash of a password (a PHC string) for the service config's
    /// `password_hash` ([auth], [[phonebooks]], [[lookups]], [ldap]). The password is read from
    /// standard input: typed without echo on a terminal, or piped (`printf '%s' "$PW" | ucm
    /// hash-password`); the hash is printed on standard output.
    HashPassword,
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
        /// Where to write the same external contacts as a CSV source (`kind = "csv"`, the
        /// header `ucm export` writes).
        #[arg(long, value_name = "FILE")]
        source_csv: Option<PathBuf>,
        /// Where to write the same external contacts as vCards 3.0 (`kind = "vcard"`; map
        /// `office = "X-OFFICE"` and `source = "X-SOURCE"` to land every field).
        #[arg(long, value_name = "FILE")]
        vcard: Option<PathBuf>,
        /// Data shaped like real directories: accented and non-Latin names (Greek, Cyrillic,
        /// Chinese, Arabic), numbers in E.164 and in national spellings with separators,
        /// random-looking e-mail keys in several domains, some fields empty.
        #[arg(long)]
        realistic: bool,
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
        access: ServiceAccess,
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
        access: ServiceAccess,
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
        access: ServiceAccess,
    },
    /// Send this node's whole state to its peers now; each keeps what is newer.
    Sync {
        /// Required: a full sync is a deliberate act.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        access: ServiceAccess,
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
