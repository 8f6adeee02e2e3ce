//! Commands that need no pipeline: `cron` (explains a schedule and lists its next fire
//! times), `hash-password` (a password hash for the service config) and `generate` (writes
//! sample data).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use crate::generate::{self, GenerateSpec};

/// `ucm cron EXPRESSION`.
pub fn cron(expression: &str, count: usize, tz: Option<&str>) -> anyhow::Result<ExitCode> {
    let expr = crate::schedule::CronExpr::parse(expression)?;
    let zone = crate::schedule::time_zone(tz).map_err(anyhow::Error::msg)?;
    let now = jiff::Timestamp::now().to_zoned(zone.clone());
    println!("\"{}\": {}", expr.as_str(), expr.explain());
    for warning in expr.warnings() {
        eprintln!("warning: {warning}");
    }
    let name = zone.iana_name().unwrap_or("the system's time zone");
    println!("next {count} fire times ({name}):");
    for time in expr.upcoming(&now, count) {
        println!("  {}", time.strftime("%a %Y-%m-%d %H:%M %Z"));
    }
    Ok(ExitCode::SUCCESS)
}

/// Where `ucm generate` writes: the XML, and optionally the directory CSV and the same
/// contacts as a CSV source and as vCards.
pub struct GenerateOutputs<'o> {
    pub xml: &'o Path,
    pub directory_csv: Option<&'o PathBuf>,
    pub source_csv: Option<&'o PathBuf>,
    pub vcard: Option<&'o PathBuf>,
}

/// `ucm generate`: sample contacts XML (and optionally a directory CSV, the same contacts as
/// a CSV source and as vCards).
pub fn generate(spec: &GenerateSpec, out: GenerateOutputs<'_>) -> anyhow::Result<ExitCode> {
    let xml = out.xml;
    generate::write_xml(spec, xml).with_context(|| format!("cannot write {}", xml.display()))?;
    type Writer = fn(&GenerateSpec, &Path) -> std::io::Result<()>;
    let extra: [(Option<&PathBuf>, Writer); 3] = [
        (out.directory_csv, generate::write_csv),
        (out.source_csv, generate::write_source_csv),
        (out.vcard, generate::write_vcard),
    ];
    for (path, write) in extra {
        if let Some(path) = path {
            write(spec, path).with_context(|| format!("cannot write {}", path.display()))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `ucm hash-password`: reads a password from standard input (without echo on a terminal) and
/// prints its Argon2id hash.
pub fn hash_password() -> anyhow::Result<ExitCode> {
    use std::io::IsTerminal as _;
    let password = if std::io::stdin().is_terminal() {
        rpassword::prompt_password("password: ").context("cannot read the password")?
    } else {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        line.strip_suffix('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .unwrap_or(&line)
            .to_owned()
    };
    if password.is_empty() {
        anyhow::bail!("the password is empty: give one on standard input");
    }
    println!(
        "{}",
        crate::secrets::hash_password(&password).map_err(anyhow::Error::msg)?
    );
    Ok(ExitCode::SUCCESS)
}
