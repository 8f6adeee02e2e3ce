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

/// `ucm generate`: sample contacts XML (and optionally a directory CSV).
pub fn generate(
    spec: &GenerateSpec,
    xml: &Path,
    csv: Option<&PathBuf>,
) -> anyhow::Result<ExitCode> {
    generate::write_xml(spec, xml).with_context(|| format!("cannot write {}", xml.display()))?;
    if let Some(csv) = csv {
        generate::write_csv(spec, csv)
            .with_context(|| format!("cannot write {}", csv.display()))?;
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
