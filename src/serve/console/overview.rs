//! The overview (`GET /`), the page an administrator opens every morning: per pipeline its
//! health, contacts by origin, the staged source, the last success and its age, the next
//! fires, plans awaiting approval, and a chart of the last 30 runs (rows inserted, updated
//! and deleted; duration; failures in red with their reason). Without a login it shows each
//! pipeline's health and nothing else.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

use super::page::{age, csrf_field, layout};
use super::session::Session;
use crate::load::LoadError;
use crate::load::runs::{self, RunRecord};
use crate::load::staged::StagedSource;
use crate::serve::state::{Pipeline, Service};
use crate::serve::urls::encoded;

/// Runs in a pipeline's chart.
const CHART_RUNS: i64 = 30;

fn is_failure(status: &str) -> bool {
    matches!(status, "failed" | "refused")
}

/// A pipeline's latest `limit` runs, newest first; None when it is not loaded.
async fn history(p: &Pipeline, limit: i64) -> Option<Result<Vec<RunRecord>, LoadError>> {
    let loaded = p.loaded.as_ref().ok()?;
    Some(runs::latest_of(&loaded.store, Some(&p.name), limit).await)
}

/// A pipeline's health in a word, and its CSS class, from its history: `not loaded`,
/// `failing` (its last run failed or was refused), `ok`.
fn health(history: &Option<Result<Vec<RunRecord>, LoadError>>) -> (&'static str, &'static str) {
    match history {
        None => ("not loaded", "failed"),
        Some(Err(_)) => ("database unavailable", "failed"),
        Some(Ok(runs)) if runs.first().is_some_and(|r| is_failure(&r.status)) => {
            ("failing", "failed")
        }
        Some(Ok(_)) => ("ok", "status succeeded"),
    }
}

pub async fn page(State(service): State<Arc<Service>>, headers: HeaderMap) -> Response {
    let session = service.browser_sessions.of(&headers);
    // A bearer token (scripts, the cluster's checks) sees what a session sees.
    let full = session.is_some() || crate::serve::auth::authorized(&service, &headers);
    let mut sections = Vec::new();
    for p in &service.pipelines {
        // One read of the history per pipeline: the health and, logged in, the chart.
        let runs = history(p, if full { CHART_RUNS } else { 1 }).await;
        let (word, class) = health(&runs);
        sections.push(if full {
            let runs = runs.and_then(Result::ok).unwrap_or_default();
            pipeline_section(&service, p, session.as_ref(), (word, class), runs).await
        } else {
            html! {
                section.pipeline id=(format!("pipeline-{}", p.name)) {
                    h2 { (p.name) }
                    p.health { "health: " span class=(class) { (word) } }
                }
            }
        });
    }
    let body = html! {
        // Logged out, only each pipeline's health: not even the host's name.
        @if full {
            p.host { (service.host) " · " (service.pipelines.len()) " pipeline(s)" }
        } @else {
            p { a href="/login" { "Log in" } " to see the directory, runs and plans." }
        }
        @for s in &sections { (s) }
        @if full {
            @if let Some(cluster) = &service.cluster { (cluster_section(cluster)) }
        }
    };
    layout("Overview", session.as_ref(), body).into_response()
}

async fn pipeline_section(
    service: &Service,
    p: &Pipeline,
    session: Option<&Session>,
    (word, class): (&str, &str),
    history: Vec<RunRecord>,
) -> Markup {
    let Ok(loaded) = &p.loaded else {
        return html! {
            section.pipeline id=(format!("pipeline-{}", p.name)) {
                h2 { (p.name) }
                p.failed { "not loaded (" (p.path.display()) "): " (p.loaded.as_ref().err().map(String::as_str).unwrap_or_default()) }
            }
        };
    };
    let store = &loaded.store;
    let summary = crate::serve::status::describe(service, p, true).await;
    let now = crate::load::now();
    let awaiting = crate::load::plans::awaiting(store, &p.name, &now)
        .await
        .unwrap_or_default();
    let by_origin = runs::contacts_by_origin(store).await.unwrap_or_default();
    let staged = crate::load::staged::get(store, &p.name)
        .await
        .ok()
        .flatten();
    let failures: Vec<&RunRecord> = history.iter().filter(|r| is_failure(&r.status)).collect();
    let mut oldest_first = history.clone();
    oldest_first.reverse();
    html! {
        section.pipeline id=(format!("pipeline-{}", p.name)) {
            h2 { (p.name) }
            p.health { "health: " span class=(class) { (word) }
                @if p.busy.try_lock().is_err() { " · " span.running { "running now" } } }
            @if awaiting > 0 {
                p.failed.awaiting id=(format!("awaiting-{}", p.name)) {
                    a href="/plans" { (awaiting) " plan" @if awaiting != 1 { "s" } " awaiting approval" }
                    ": a guard refused a run; review and approve or discard it."
                }
            }
            (facts(p, &by_origin, staged.as_ref(), &history))
            table.schedules {
                tr { th { "stage" } th { "cron" } th { "meaning" } th { "next fire" } }
                @for s in summary["schedules"].as_array().into_iter().flatten() {
                    tr {
                        td { (s["stage"].as_str().unwrap_or_default()) }
                        td { code { (s["cron"].as_str().unwrap_or_default()) } }
                        td { (s["explain"].as_str().unwrap_or_default()) }
                        td { (s["next_fire_local"].as_str().unwrap_or("none")) }
                    }
                }
            }
            (chart(&p.name, &oldest_first))
            @if !failures.is_empty() {
                ul.failures {
                    @for r in failures {
                        li.failed { "#" (r.id) " " (r.command) " " (r.status) " at " (r.started_at) ": " (r.error.as_deref().unwrap_or("no reason recorded")) }
                    }
                }
            }
            @if let Some(session) = session {
                form.inline method="post" action=(format!("/pipelines/{}/dry-run", encoded(&p.name))) {
                    (csrf_field(session))
                    button type="submit" { "Dry run now" }
                }
                form.inline.test-source method="post" action=(format!("/pipelines/{}/test-source", encoded(&p.name))) {
                    (csrf_field(session))
                    button type="submit" { "Test the source" }
                }
            }
        }
    }
}

/// A pipeline's facts: contacts by origin, the staged source, the last success and run.
fn facts(
    p: &Pipeline,
    by_origin: &[(String, i64)],
    staged: Option<&StagedSource>,
    history: &[RunRecord],
) -> Markup {
    let last_success = history.iter().find(|r| r.status == "succeeded");
    html! {
    div.facts {
        table.origins {
            caption { "contacts by origin" }
            @for (origin, n) in by_origin { tr { th { (origin) } td.count { (n) } } }
            tr.total { th { "total" } td.count { (by_origin.iter().map(|(_, n)| n).sum::<i64>()) } }
        }
        table.staged {
            caption { "staged source" }
            @match staged {
                Some(s) => {
                    tr { th { "fetched" } td { (s.fetched_at) " (" (age(&s.fetched_at)) ")" } }
                    tr { th { "from" } td { (s.url) } }
                    tr { th { "size" } td { (s.size) " bytes" } }
                    tr { th { "contacts" } td { (s.contacts) } }
                    tr { th { "ETag" } td { (s.etag.as_deref().unwrap_or("none")) } }
                }
                None => { tr { td { "nothing fetched yet" } } }
            }
        }
        table.last {
            caption { "runs" }
            tr { th { "last success" } td {
                @match last_success {
                    Some(r) => { a href=(format!("/runs/{}/{}", encoded(&p.name), r.id)) { "#" (r.id) } " " (r.command) " at " (r.started_at) " (" (age(&r.started_at)) ")" }
                    None => { "none in the last " (CHART_RUNS) " runs" }
                }
            } }
            tr { th { "last run" } td.last-run {
                @match history.first() {
                    Some(last) => {
                        a href=(format!("/runs/{}/{}", encoded(&p.name), last.id)) { "#" (last.id) }
                        " " (last.command) " "
                        span class=(format!("status {}", last.status)) { (last.status) }
                        " at " (last.started_at) " (" (last.duration_ms) " ms): +" (last.inserted) " ~" (last.updated) " -" (last.deleted)
                        @if let Some(e) = &last.error { " — " span.failed { (e) } }
                    }
                    None => { "no runs yet" }
                }
            } }
        }
    }
    }
}

/// Cluster health: the node, profile sync, each peer's reachability, outbox and last sync.
fn cluster_section(cluster: &crate::cluster::Cluster) -> Markup {
    let ok = |yes: bool| if yes { "status succeeded" } else { "failed" };
    html! {
        section.cluster id="cluster" {
            h2 { "cluster" }
            p { "node " (cluster.node) " · profile sync "
                b class=(ok(cluster.profile_sync)) { @if cluster.profile_sync { "on" } @else { "off" } } }
            table {
                tr { th { "peer" } th { "reachable" } th { "outbox" } th { "last sync" } th { "failures" } th { "last error" } }
                @for p in &cluster.peer_snapshot() {
                    tr {
                        td { (p.url) }
                        td class=(ok(p.reachable)) { @if p.reachable { "yes" } @else { "no" } }
                        td { (p.outbox_depth) }
                        td { (p.last_success.as_deref().unwrap_or("never")) }
                        td { (p.failures) }
                        td.failed { (p.last_error.as_deref().unwrap_or("")) }
                    }
                }
            }
        }
    }
}

/// One bar of the chart.
struct Bar {
    class: &'static str,
    y: f64,
    h: f64,
    fill: &'static str,
}

/// A run's bar as its tooltip says it.
fn tooltip(r: &RunRecord) -> String {
    format!(
        "#{} {} {}: +{} ~{} -{}, {} ms{}",
        r.id,
        r.command,
        r.status,
        r.inserted,
        r.updated,
        r.deleted,
        r.duration_ms,
        r.error
            .as_deref()
            .map(|e| format!(" — {e}"))
            .unwrap_or_default()
    )
}

/// A run's bars: a failed run one full-height red bar; otherwise inserted, updated and
/// deleted rows stacked on a square-root scale (`max_rows` is the square root of the most
/// rows a run changed), or a thin grey bar when it changed nothing.
fn bars(r: &RunRecord, top: f64, plot: f64, max_rows: f64) -> Vec<Bar> {
    if is_failure(&r.status) {
        return vec![Bar {
            class: "bar failed",
            y: top,
            h: plot,
            fill: "#d33",
        }];
    }
    let mut bars = Vec::new();
    let total = (r.inserted + r.updated + r.deleted) as f64;
    let scale = if total > 0.0 {
        total.sqrt() / max_rows * plot / total
    } else {
        0.0
    };
    let mut y = top + plot;
    for (count, fill) in [
        (r.inserted, "#3a3"),
        (r.updated, "#36c"),
        (r.deleted, "#e80"),
    ] {
        let h = count as f64 * scale;
        if h > 0.0 {
            y -= h;
            bars.push(Bar {
                class: "bar",
                y,
                h,
                fill,
            });
        }
    }
    if total == 0.0 {
        bars.push(Bar {
            class: "bar empty",
            y: top + plot - 2.0,
            h: 2.0,
            fill: "#bbb",
        });
    }
    bars
}

/// Stacked bars of rows inserted (green), updated (blue) and deleted (orange) per run on a
/// square-root scale, a failed run as a full-height red bar with its reason as the tooltip,
/// and the duration as a grey line with dots. Every SVG element is closed explicitly (in
/// HTML, a foreign element without `/>` or an end tag swallows what follows).
fn chart(pipeline: &str, runs: &[RunRecord]) -> Markup {
    let (width, height, top, left) = (760.0_f64, 160.0_f64, 10.0_f64, 40.0_f64);
    let plot = height - top - 20.0;
    let slot = (width - left) / CHART_RUNS as f64;
    let rows = |r: &RunRecord| (r.inserted + r.updated + r.deleted) as f64;
    let max_rows = runs.iter().map(rows).fold(1.0, f64::max).sqrt();
    let max_ms = runs
        .iter()
        .map(|r| r.duration_ms as f64)
        .fold(1.0, f64::max);
    let baseline = top + plot;
    let n = |v: f64| format!("{v:.1}");
    let mut line = Vec::new();
    let mut slots = Vec::new();
    for (i, r) in runs.iter().enumerate() {
        let x = left + i as f64 * slot + 2.0;
        let w = (slot - 4.0).max(1.0);
        let tip = tooltip(r);
        let bars = bars(r, top, plot, max_rows);
        let cy = top + plot - r.duration_ms as f64 / max_ms * plot;
        line.push(format!("{:.1},{cy:.1}", x + w / 2.0));
        slots.push((x, w, cy, tip, bars));
    }
    html! {
        svg.runs-chart id=(format!("runs-chart-{pipeline}")) width=(width) height=(height)
            viewBox=(format!("0 0 {width} {height}")) role="img"
            aria-label=(format!("last {} runs of {pipeline}", runs.len())) {
            line.baseline x1=(left) y1=(baseline) x2=(width) y2=(baseline) stroke="#999" {}
            text x="0" y=(top + 10.0) { "rows" }
            text x="0" y=(top + plot) { "0" }
            @for (x, w, cy, tip, bars) in &slots {
                @for b in bars {
                    rect class=(b.class) x=(n(*x)) y=(n(b.y)) width=(n(*w)) height=(n(b.h)) fill=(b.fill) { title { (tip) } }
                }
                circle cx=(n(x + w / 2.0)) cy=(n(*cy)) r="2.5" fill="#555" {}
            }
            @if line.len() > 1 {
                polyline points=(line.join(" ")) fill="none" stroke="#777" stroke-width="1" {}
            }
            text x=(left) y=(height - 4.0) {
                "oldest → newest · rows inserted (green), updated (blue), deleted (orange) · failed (red) · line: duration, longest " (max_ms as u64) " ms"
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(id: i64, status: &str, error: Option<&str>) -> RunRecord {
        RunRecord {
            id,
            pipeline: "p".into(),
            command: "run".into(),
            started_at: "2026-12-02T10:00:00Z".into(),
            finished_at: "2026-12-02T10:00:01Z".into(),
            status: status.into(),
            source: None,
            source_sha256: None,
            contacts_read: 4,
            rejected: 0,
            inserted: 3,
            updated: 1,
            deleted: 0,
            unchanged: 0,
            duration_ms: 120,
            error: error.map(str::to_owned),
        }
    }

    #[test]
    fn the_charts_baseline_is_drawn_at_the_bottom_of_the_plot_not_at_the_pipeline_name() {
        let svg = chart("nightly", &[run(1, "succeeded", None)]).into_string();
        assert!(
            svg.contains("class=\"baseline\" x1=\"40\" y1=\"140\" x2=\"760\" y2=\"140\""),
            "{svg}"
        );
        assert!(!svg.contains("y1=\"nightly\""), "{svg}");
    }

    #[test]
    fn a_failed_run_is_a_red_bar_with_its_reason_escaped_in_the_tooltip() {
        let runs = [run(2, "failed", Some("cannot connect to <db>:5432"))];
        let svg = chart("p", &runs).into_string();
        assert!(svg.contains("class=\"bar failed\""), "{svg}");
        assert!(svg.contains("cannot connect to &lt;db&gt;:5432"), "{svg}");
    }

    #[test]
    fn every_svg_element_is_closed() {
        let svg = chart("p", &[run(1, "succeeded", None), run(2, "succeeded", None)]).into_string();
        for element in ["line", "circle", "polyline", "rect"] {
            let opened = svg.matches(&format!("<{element} ")).count();
            assert_eq!(
                opened,
                svg.matches(&format!("</{element}>")).count(),
                "{element}: {svg}"
            );
        }
    }
}
