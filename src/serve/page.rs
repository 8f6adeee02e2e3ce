//! The status page (`GET /`): each pipeline, its next fires, its last run, and a chart of
//! its last 30 runs (rows inserted, updated and deleted; duration), failures in red with
//! their reason. Plain server-rendered HTML with inline SVG; it reloads itself every 30 s.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::State;
use axum::response::Html;

use crate::load::runs::{self, RunRecord};
use crate::serve::Service;

/// Runs in a pipeline's chart.
const CHART_RUNS: i64 = 30;

use crate::report::html_escape as escape;

fn is_failure(status: &str) -> bool {
    matches!(status, "failed" | "refused")
}

/// The page. Without a login (a bearer token; the browser console comes with its own
/// sessions) it shows statuses only: no config paths, error texts or peer errors.
pub async fn status_page(
    State(service): State<Arc<Service>>,
    headers: axum::http::HeaderMap,
) -> Html<String> {
    let full = super::http::authorized(&service, &headers);
    let mut body = String::new();
    for p in &service.pipelines {
        let _ = write!(
            body,
            "<section class=\"pipeline\" id=\"pipeline-{0}\"><h2>{0}</h2>",
            escape(&p.name)
        );
        let loaded = match &p.loaded {
            Ok(l) => l,
            Err(e) => {
                if full {
                    let _ = write!(
                        body,
                        "<p class=\"failed\">not loaded ({}): {}</p></section>",
                        escape(&p.path.display().to_string()),
                        escape(e)
                    );
                } else {
                    body.push_str("<p class=\"failed\">not loaded</p></section>");
                }
                continue;
            }
        };
        let summary = super::http::describe(&service, p, full).await;
        let awaiting = crate::load::plans::awaiting(&loaded.store, &p.name, &crate::load::now())
            .await
            .unwrap_or_default();
        if awaiting > 0 {
            let _ = write!(
                body,
                "<p class=\"failed\" id=\"awaiting-{}\">{awaiting} plan{} awaiting approval: a guard \
                 refused a run (<code>ucm plans</code>, <code>ucm plan show ID</code>, <code>ucm apply ID</code>)</p>",
                escape(&p.name),
                if awaiting == 1 { "" } else { "s" }
            );
        }
        body.push_str("<table class=\"schedules\"><tr><th>stage</th><th>cron</th><th>meaning</th><th>next fire</th></tr>");
        for s in summary["schedules"].as_array().into_iter().flatten() {
            let _ = write!(
                body,
                "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                escape(s["stage"].as_str().unwrap_or_default()),
                escape(s["cron"].as_str().unwrap_or_default()),
                escape(s["explain"].as_str().unwrap_or_default()),
                escape(s["next_fire_local"].as_str().unwrap_or("none")),
            );
        }
        body.push_str("</table>");
        let history = runs::latest_of(&loaded.store, Some(&p.name), CHART_RUNS)
            .await
            .unwrap_or_default();
        match history.first() {
            Some(last) => {
                let _ = write!(
                    body,
                    "<p class=\"last-run\">last run: #{} {} <span class=\"status {}\">{}</span> at {} ({} ms): +{} ~{} -{}{}</p>",
                    last.id,
                    escape(&last.command),
                    escape(&last.status),
                    escape(&last.status),
                    escape(&last.started_at),
                    last.duration_ms,
                    last.inserted,
                    last.updated,
                    last.deleted,
                    last.error
                        .as_deref()
                        .filter(|_| full)
                        .map(|e| format!(" — <span class=\"failed\">{}</span>", escape(e)))
                        .unwrap_or_default()
                );
            }
            None => body.push_str("<p class=\"last-run\">no runs yet</p>"),
        }
        if p.busy.try_lock().is_err() {
            body.push_str("<p class=\"running\">running now</p>");
        }
        let mut oldest_first = history.clone();
        oldest_first.reverse();
        body.push_str(&chart(&p.name, &oldest_first, full));
        let failures: Vec<&RunRecord> = history.iter().filter(|r| is_failure(&r.status)).collect();
        if !failures.is_empty() {
            body.push_str("<ul class=\"failures\">");
            for r in failures {
                let _ = write!(
                    body,
                    "<li class=\"failed\">#{} {} {} at {}: {}</li>",
                    r.id,
                    escape(&r.command),
                    escape(&r.status),
                    escape(&r.started_at),
                    if full {
                        escape(r.error.as_deref().unwrap_or("no reason recorded"))
                    } else {
                        "log in to see the reason".into()
                    }
                );
            }
            body.push_str("</ul>");
        }
        body.push_str("</section>");
    }
    if let Some(cluster) = &service.cluster {
        body.push_str(&cluster_section(cluster, full));
    }
    Html(format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"30\"><title>ucm status</title>\
         <style>{STYLE}</style></head><body><h1>ucm status</h1>\
         <p class=\"host\">{} · {} pipeline(s)</p>{body}</body></html>\n",
        escape(&service.host),
        service.pipelines.len()
    ))
}

/// Cluster health: the node, profile sync, each peer's reachability, outbox and last sync.
fn cluster_section(cluster: &crate::serve::cluster::Cluster, full: bool) -> String {
    let mut out = format!(
        "<section class=\"cluster\" id=\"cluster\"><h2>cluster</h2><p>node {} · profile sync <b class=\"{}\">{}</b></p>\
         <table><tr><th>peer</th><th>reachable</th><th>outbox</th><th>last sync</th><th>failures</th><th>last error</th></tr>",
        escape(&cluster.node),
        if cluster.profile_sync {
            "status succeeded"
        } else {
            "failed"
        },
        if cluster.profile_sync { "on" } else { "off" },
    );
    for p in &cluster.peer_snapshot() {
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"failed\">{}</td></tr>",
            escape(&p.url),
            if p.reachable {
                "status succeeded"
            } else {
                "failed"
            },
            if p.reachable { "yes" } else { "no" },
            p.outbox_depth,
            escape(p.last_success.as_deref().unwrap_or("never")),
            p.failures,
            escape(p.last_error.as_deref().filter(|_| full).unwrap_or(""))
        );
    }
    out.push_str("</table></section>");
    out
}

const STYLE: &str = "body{font:14px system-ui,sans-serif;margin:2em;color:#222}\
h2{margin-bottom:.3em}table{border-collapse:collapse;margin:.5em 0}\
td,th{border:1px solid #ccc;padding:.2em .6em;text-align:left}\
.failed,.status.failed,.status.refused{color:#c00}.status.succeeded{color:#080}\
.status.skipped{color:#a60}.running{color:#06c}section{margin-bottom:2em}\
svg text{font:11px system-ui,sans-serif;fill:#444}";

/// Stacked bars of rows inserted (green), updated (blue) and deleted (orange) per run on a
/// square-root scale, a failed run as a full-height red bar with its reason as the tooltip,
/// and the duration as a grey line with dots.
fn chart(pipeline: &str, runs: &[RunRecord], full: bool) -> String {
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
    let mut svg = format!(
        "<svg class=\"runs-chart\" id=\"runs-chart-{}\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"last {} runs of {}\">\
         <line class=\"baseline\" x1=\"{left}\" y1=\"{baseline}\" x2=\"{width}\" y2=\"{baseline}\" stroke=\"#999\"/>",
        escape(pipeline),
        runs.len(),
        escape(pipeline),
    );
    let _ = write!(
        svg,
        "<text x=\"0\" y=\"{}\">rows</text><text x=\"0\" y=\"{}\">0</text>",
        top + 10.0,
        top + plot
    );
    let mut line = Vec::new();
    for (i, r) in runs.iter().enumerate() {
        let x = left + i as f64 * slot + 2.0;
        let w = (slot - 4.0).max(1.0);
        let tip = format!(
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
                .filter(|_| full)
                .map(|e| format!(" — {e}"))
                .unwrap_or_default()
        );
        if is_failure(&r.status) {
            let _ = write!(
                svg,
                "<rect class=\"bar failed\" x=\"{x:.1}\" y=\"{top}\" width=\"{w:.1}\" height=\"{plot}\" fill=\"#d33\"><title>{}</title></rect>",
                escape(&tip)
            );
        } else {
            let total = rows(r);
            let scale = if total > 0.0 {
                total.sqrt() / max_rows * plot / total
            } else {
                0.0
            };
            let mut y = top + plot;
            for (n, color) in [
                (r.inserted, "#3a3"),
                (r.updated, "#36c"),
                (r.deleted, "#e80"),
            ] {
                let h = n as f64 * scale;
                if h > 0.0 {
                    y -= h;
                    let _ = write!(
                        svg,
                        "<rect class=\"bar\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" fill=\"{color}\"><title>{}</title></rect>",
                        escape(&tip)
                    );
                }
            }
            if total == 0.0 {
                let _ = write!(
                    svg,
                    "<rect class=\"bar empty\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"2\" fill=\"#bbb\"><title>{}</title></rect>",
                    top + plot - 2.0,
                    escape(&tip)
                );
            }
        }
        let cy = top + plot - r.duration_ms as f64 / max_ms * plot;
        line.push(format!("{:.1},{cy:.1}", x + w / 2.0));
        let _ = write!(
            svg,
            "<circle cx=\"{:.1}\" cy=\"{cy:.1}\" r=\"2.5\" fill=\"#555\"/>",
            x + w / 2.0
        );
    }
    if line.len() > 1 {
        let _ = write!(
            svg,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"#777\" stroke-width=\"1\"/>",
            line.join(" ")
        );
    }
    let _ = write!(
        svg,
        "<text x=\"{left}\" y=\"{}\">oldest → newest · rows inserted (green), updated (blue), deleted (orange) · failed (red) · line: duration, longest {} ms</text></svg>",
        height - 4.0,
        max_ms as u64
    );
    svg
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
        let svg = chart("nightly", &[run(1, "succeeded", None)], true);
        assert!(
            svg.contains("class=\"baseline\" x1=\"40\" y1=\"140\" x2=\"760\" y2=\"140\""),
            "{svg}"
        );
        assert!(!svg.contains("y1=\"nightly\""), "{svg}");
    }

    #[test]
    fn a_failed_runs_reason_is_in_its_tooltip_only_with_a_login() {
        let runs = [run(2, "failed", Some("cannot connect to db.internal:5432"))];
        assert!(chart("p", &runs, true).contains("db.internal"));
        let public = chart("p", &runs, false);
        assert!(
            !public.contains("db.internal") && public.contains("bar failed"),
            "{public}"
        );
    }
}
