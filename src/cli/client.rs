//! Commands that talk to a running `ucm serve` over HTTP: `ucm contacts search` and
//! `ucm profile set`. The service owns the live state (and tells its event stream), so
//! these go through its API with a bearer token rather than to the database.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use serde_json::Value;

use super::formats::ReportFormat;

/// Where the service is and how to authenticate.
#[derive(Debug, Args)]
pub struct ServiceAccess {
    /// The service's base URL.
    #[arg(
        long,
        env = "UCM_SERVICE_URL",
        default_value = "http://127.0.0.1:8080",
        value_name = "URL"
    )]
    pub service_url: String,
    /// A file holding the bearer token (the service's static token, or one from
    /// POST /api/login); the UCM_TOKEN environment variable works too.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
}

impl ServiceAccess {
    fn token(&self) -> anyhow::Result<String> {
        if let Some(path) = &self.token_file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the token file {}", path.display()))?;
            return Ok(text.trim_end_matches(['\n', '\r']).to_owned());
        }
        match std::env::var("UCM_TOKEN") {
            Ok(token) if !token.is_empty() => Ok(token),
            _ => bail!(
                "no token for {}: set UCM_TOKEN or --token-file (the service's [auth] token, or one from POST /api/login)",
                self.service_url
            ),
        }
    }

    /// Sends a request; the JSON answer, or an error that says what the service said.
    async fn send(&self, request: reqwest::RequestBuilder, what: &str) -> anyhow::Result<Value> {
        let response = request
            .bearer_auth(self.token()?)
            .send()
            .await
            .with_context(|| {
                format!("cannot reach the service at {} ({what})", self.service_url)
            })?;
        let status = response.status();
        let bytes = response.bytes().await.unwrap_or_default();
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if !status.is_success() {
            let reason = body["error"].as_str().unwrap_or("no reason given");
            bail!("{what}: the service answered {status}: {reason}");
        }
        Ok(body)
    }
}

fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()?)
}

/// `ucm contacts search QUERY`.
pub async fn search(
    access: &ServiceAccess,
    query: &str,
    limit: i64,
    format: ReportFormat,
) -> anyhow::Result<()> {
    let url = reqwest::Url::parse_with_params(
        &format!("{}/api/contacts", access.service_url.trim_end_matches('/')),
        &[("q", query), ("limit", &limit.to_string())],
    )
    .with_context(|| format!("the service URL {} is not a URL", access.service_url))?;
    let request = client()?.get(url);
    let found = access
        .send(request, &format!("search for \"{query}\""))
        .await?;
    let mut out = std::io::stdout().lock();
    if format == ReportFormat::Json {
        writeln!(out, "{}", serde_json::to_string_pretty(&found)?)?;
        return Ok(());
    }
    // Contact data is untrusted: control characters are shown escaped, never sent raw to
    // the terminal.
    let text = |v: &Value| crate::redact::printable(v.as_str().unwrap_or(""), 200);
    for c in found.as_array().into_iter().flatten() {
        let s = &c["state"];
        let name = format!("{} {}", text(&c["first_name"]), text(&c["last_name"]));
        let number = [&c["extension"], &c["mobile_number"]]
            .into_iter()
            .map(text)
            .find(|n| !n.is_empty())
            .unwrap_or_default();
        writeln!(
            out,
            "{:<28} {:<24} {:<32} {:<18} {}{}, {}, profile {}{}",
            text(&c["id"]),
            name.trim(),
            text(&c["e_mail"]),
            number,
            if s["registered"] == true {
                "registered, "
            } else {
                ""
            },
            text(&s["presence"]),
            text(&s["call_state"]),
            s["profile"].as_str().unwrap_or("-"),
            s["note"]
                .as_str()
                .map(|n| format!(" — {}", crate::redact::printable(n, 200)))
                .unwrap_or_default()
        )?;
    }
    if found.as_array().is_none_or(|a| a.is_empty()) {
        eprintln!("no contact matches \"{query}\"");
    }
    Ok(())
}

/// `ucm profile set ID PROFILE`.
pub async fn set_profile(access: &ServiceAccess, id: &str, profile: &str) -> anyhow::Result<()> {
    let mut url = reqwest::Url::parse(&access.service_url)
        .with_context(|| format!("the service URL {} is not a URL", access.service_url))?;
    url.path_segments_mut()
        .map_err(|_| anyhow::anyhow!("the service URL {} cannot take a path", access.service_url))?
        .pop_if_empty()
        .extend(["api", "contacts", id, "profile"]);
    let request = client()?
        .put(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(serde_json::json!({ "profile": profile }).to_string());
    let contact = access
        .send(request, &format!("set the profile of {id}"))
        .await?;
    println!(
        "{}: profile {} (version {})",
        contact["id"].as_str().unwrap_or(id),
        contact["state"]["profile"].as_str().unwrap_or(profile),
        contact["state"]["profile_version"].as_str().unwrap_or("-")
    );
    Ok(())
}

/// `ucm cluster status`: this node, profile sync, and each peer's health.
pub async fn cluster_status(access: &ServiceAccess, format: ReportFormat) -> anyhow::Result<()> {
    let url = format!("{}/api/cluster", access.service_url.trim_end_matches('/'));
    let status = access.send(client()?.get(url), "cluster status").await?;
    if format == ReportFormat::Json {
        println!("{}", serde_json::to_string_pretty(&status)?);
        return Ok(());
    }
    println!(
        "node {} · profile sync {}",
        status["node"].as_str().unwrap_or("?"),
        if status["profile_sync"] == true {
            "on"
        } else {
            "off"
        }
    );
    for p in status["peers"].as_array().into_iter().flatten() {
        println!(
            "  {}  {}  outbox {}  last sync {}  failures {}{}",
            p["url"].as_str().unwrap_or("?"),
            if p["reachable"] == true {
                "reachable"
            } else {
                "unreachable"
            },
            p["outbox_depth"],
            p["last_success"].as_str().unwrap_or("never"),
            p["failures"],
            p["last_error"]
                .as_str()
                .map(|e| format!("  last error: {e}"))
                .unwrap_or_default()
        );
    }
    Ok(())
}

/// `ucm cluster sync --force`: sends this node's whole state to its peers now.
pub async fn cluster_sync(access: &ServiceAccess) -> anyhow::Result<()> {
    let url = format!(
        "{}/api/cluster/sync",
        access.service_url.trim_end_matches('/')
    );
    let outcome = access.send(client()?.post(url), "cluster sync").await?;
    for (peer, result) in outcome["peers"].as_object().into_iter().flatten() {
        println!("{peer}: {}", result.as_str().unwrap_or("?"));
    }
    Ok(())
}
