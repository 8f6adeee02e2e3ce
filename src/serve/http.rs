//! The service's HTTP side: `app(service)` is the whole router. Liveness and readiness, the
//! pipelines and their runs as JSON, runs started over HTTP (authenticated), Prometheus
//! metrics, and the status page.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::extract::fetch::Silent;
use crate::load::{Store, runs};
use crate::pipeline::NoProgress;
use crate::serve::{Pipeline, Service};
use crate::stage::{self, MergeOptions};

type Shared = State<Arc<Service>>;

/// The service's routes.
pub fn app(service: Arc<Service>) -> Router {
    Router::new()
        .route("/", get(super::page::status_page))
        .route("/health", get(|| async { "ok\n" }))
        .route("/ready", get(ready))
        .route("/api/pipelines", get(pipelines))
        .route("/api/runs", get(list_runs))
        .route("/api/runs/{id}", get(one_run))
        .route("/api/pipelines/{name}/run", post(start_run))
        .route("/api/login", post(login))
        .route("/metrics", get(metrics))
        .route("/api/contacts", get(super::live::search))
        .route("/api/contacts/{id}", get(super::live::contact))
        .route(
            "/api/contacts/{id}/status",
            axum::routing::put(super::live::put_status),
        )
        .route(
            "/api/contacts/{id}/profile",
            axum::routing::put(super::live::put_profile),
        )
        .route("/api/events", get(super::live::events))
        .route("/api/parameters", get(super::live::parameters))
        .route("/api/cluster", get(super::live::cluster_status))
        .route("/api/cluster/sync", post(super::live::cluster_sync))
        .route("/api/cluster/changes", post(super::live::receive))
        .with_state(service)
}

pub(super) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

/// The distinct databases of the loaded pipelines.
pub(super) fn stores(service: &Service) -> Vec<&Store> {
    let mut stores: Vec<&Store> = Vec::new();
    for p in &service.pipelines {
        if let Ok(l) = &p.loaded
            && !stores.iter().any(|s| s.url() == l.store.url())
        {
            stores.push(&l.store);
        }
    }
    stores
}

async fn ready(State(service): Shared) -> Response {
    let mut problems = Vec::new();
    for p in &service.pipelines {
        match &p.loaded {
            Err(e) => problems.push(format!("pipeline {}: {e}", p.name)),
            Ok(l) => {
                if let Err(e) = runs::ping(&l.store).await {
                    problems.push(format!("pipeline {}: {e}", p.name));
                }
            }
        }
    }
    if problems.is_empty() {
        (StatusCode::OK, Json(json!({ "ready": true }))).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "ready": false, "problems": problems })),
        )
            .into_response()
    }
}

/// One pipeline as `/api/pipelines` and the status page show it.
pub(super) async fn describe(service: &Service, p: &Pipeline) -> Value {
    let Ok(l) = &p.loaded else {
        return json!({
            "name": p.name,
            "config": p.path.display().to_string(),
            "error": p.loaded.as_ref().err(),
        });
    };
    let schedules: Vec<Value> = l
        .schedules
        .iter()
        .map(|s| {
            let next = s
                .next
                .lock()
                .expect("no poisoning")
                .clone()
                .or_else(|| s.schedule.next_fire(service.clock.now()));
            json!({
                "stage": s.stage.as_str(),
                "cron": s.schedule.expr.as_str(),
                "explain": s.schedule.expr.explain(),
                "spread_offset_secs": s.schedule.offset.as_secs_f64(),
                "next_cron_time": next.as_ref().map(|f| f.cron_time.to_string()),
                "next_fire_at": next.as_ref().map(|f| f.at.to_string()),
                "next_fire_local": next.as_ref().map(|f| {
                    f.at.to_zoned(s.schedule.zone.clone())
                        .strftime("%a %Y-%m-%d %H:%M:%S %Z")
                        .to_string()
                }),
            })
        })
        .collect();
    let last = runs::latest_of(&l.store, Some(&p.name), 1)
        .await
        .ok()
        .and_then(|mut r| r.pop());
    json!({
        "name": p.name,
        "config": p.path.display().to_string(),
        "error": null,
        "database": l.store.url(),
        "time_zone": l.schedules.first().and_then(|s| s.schedule.zone.iana_name().map(str::to_owned)),
        "running": p.busy.try_lock().is_err(),
        "schedules": schedules,
        "last_run": last,
    })
}

async fn pipelines(State(service): Shared) -> Json<Vec<Value>> {
    let mut out = Vec::new();
    for p in &service.pipelines {
        out.push(describe(&service, p).await);
    }
    Json(out)
}

#[derive(Deserialize)]
struct RunsQuery {
    pipeline: Option<String>,
    limit: Option<i64>,
}

/// A recorded report as JSON, with its run id.
fn with_id(id: i64, report: &str) -> Option<Value> {
    let mut value: Value = serde_json::from_str(report).ok()?;
    value["run_id"] = json!(id);
    Some(value)
}

async fn report_json(store: &Store, id: i64) -> Option<Value> {
    with_id(id, &runs::report(store, id).await.ok()??)
}

async fn list_runs(State(service): Shared, Query(q): Query<RunsQuery>) -> Response {
    let limit = q.limit.unwrap_or(20).clamp(1, 1000);
    let mut found: Vec<(String, Value)> = Vec::new();
    for store in stores(&service) {
        let reports = match runs::reports_of(store, q.pipeline.as_deref(), limit).await {
            Ok(r) => r,
            Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        };
        found.extend(
            reports
                .into_iter()
                .filter_map(|(id, started_at, report)| Some((started_at, with_id(id, &report)?))),
        );
    }
    found.sort_by(|a, b| b.0.cmp(&a.0));
    found.truncate(limit as usize);
    Json(found.into_iter().map(|(_, r)| r).collect::<Vec<_>>()).into_response()
}

#[derive(Deserialize)]
struct RunQuery {
    pipeline: Option<String>,
}

async fn one_run(
    State(service): Shared,
    Path(id): Path<i64>,
    Query(q): Query<RunQuery>,
) -> Response {
    let stores: Vec<&Store> = match &q.pipeline {
        Some(name) => match service.pipeline(name).map(|p| &p.loaded) {
            Some(Ok(l)) => vec![&l.store],
            _ => return error(StatusCode::NOT_FOUND, format!("no pipeline {name}")),
        },
        None => stores(&service),
    };
    for store in stores {
        if let Some(report) = report_json(store, id).await {
            return Json(report).into_response();
        }
    }
    error(StatusCode::NOT_FOUND, format!("no run {id}"))
}

#[derive(Deserialize)]
struct StartQuery {
    #[serde(default)]
    dry_run: bool,
}

async fn start_run(
    State(service): Shared,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(q): Query<StartQuery>,
) -> Response {
    if !authorized(&service, &headers) {
        return unauthorized();
    }
    let Some(pipeline) = service.pipeline(&name) else {
        return error(StatusCode::NOT_FOUND, format!("no pipeline {name}"));
    };
    let loaded = match &pipeline.loaded {
        Ok(l) => l,
        Err(e) => {
            return error(
                StatusCode::CONFLICT,
                format!("pipeline {name} is not loaded: {e}"),
            );
        }
    };
    let Ok(_running) = pipeline.busy.try_lock() else {
        return error(
            StatusCode::CONFLICT,
            format!("pipeline {name} is running; try again when it has finished"),
        );
    };
    let options = MergeOptions {
        dry_run: q.dry_run,
        force: false,
    };
    let outcome = stage::fetch_and_merge(
        &loaded.store,
        Arc::clone(&loaded.contract),
        &loaded.config,
        options,
        Arc::new(Silent),
        Arc::new(NoProgress),
    )
    .await;
    match outcome {
        Ok(report) => {
            service.count(&report);
            let status = if report.status.is_success() {
                StatusCode::OK
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            let body: Value = serde_json::from_str(&report.to_json()).unwrap_or(Value::Null);
            (status, Json(body)).into_response()
        }
        Err(e) => error(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
    }
}

#[derive(Deserialize)]
struct Login {
    username: String,
    password: String,
}

/// `POST /api/login` with `{"username": ..., "password": ...}`: a bearer token for the write
/// endpoints. Wrong credentials get 401 and nothing else.
async fn login(State(service): Shared, body: Option<Json<Login>>) -> Response {
    let (Some(Json(login)), Some((user, password))) = (body, &service.auth.login) else {
        return unauthorized();
    };
    // Both compared, whatever the first says: the time does not tell which was wrong.
    let user_ok = constant_time_eq(login.username.as_bytes(), user.as_bytes());
    let password_ok = constant_time_eq(login.password.as_bytes(), password.as_bytes());
    if !(user_ok & password_ok) {
        tracing::warn!("a login was refused");
        return unauthorized();
    }
    let Ok(token) = random_token() else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot read /dev/urandom",
        );
    };
    let minutes = service.auth.session_minutes.max(1) as i64;
    let expires = Timestamp::now() + jiff::SignedDuration::from_mins(minutes);
    let mut sessions = service.sessions.lock().expect("no poisoning");
    let now = Timestamp::now();
    sessions.retain(|_, until| *until > now);
    sessions.insert(token.clone(), expires);
    Json(json!({ "token": token, "expires_at": expires.to_string() })).into_response()
}

pub(super) fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        Json(json!({ "error": "unauthorized" })),
    )
        .into_response()
}

/// A static token from config, or a login token that has not expired.
pub(super) fn authorized(service: &Service, headers: &HeaderMap) -> bool {
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    if let Some(token) = &service.auth.token
        && constant_time_eq(given.as_bytes(), token.as_bytes())
    {
        return true;
    }
    let now = Timestamp::now();
    let sessions = service.sessions.lock().expect("no poisoning");
    // Every session compared, so the time does not depend on which one matches.
    sessions.iter().fold(false, |found, (token, until)| {
        found | (constant_time_eq(given.as_bytes(), token.as_bytes()) & (*until > now))
    })
}

/// Equality in time that depends only on the lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn random_token() -> std::io::Result<String> {
    use std::io::Read as _;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

async fn metrics(State(service): Shared) -> Response {
    let mut out = String::new();
    let mut contacts = Vec::new();
    for p in &service.pipelines {
        if let Ok(l) = &p.loaded
            && let Ok(by_origin) = runs::contacts_by_origin(&l.store).await
        {
            contacts.push((p.name.clone(), by_origin));
        }
    }
    let c = service.counters.lock().expect("no poisoning");
    let _ = writeln!(
        out,
        "# HELP ucm_pipeline_loaded Whether the pipeline's config, schema and database loaded (1) or not (0)."
    );
    let _ = writeln!(out, "# TYPE ucm_pipeline_loaded gauge");
    for p in &service.pipelines {
        let _ = writeln!(
            out,
            "ucm_pipeline_loaded{{pipeline=\"{}\"}} {}",
            p.name,
            u8::from(p.loaded.is_ok())
        );
    }
    let _ = writeln!(
        out,
        "# HELP ucm_runs_total Runs this service finished, by pipeline and status."
    );
    let _ = writeln!(out, "# TYPE ucm_runs_total counter");
    for ((p, status), n) in &c.runs {
        let _ = writeln!(
            out,
            "ucm_runs_total{{pipeline=\"{p}\",status=\"{status}\"}} {n}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP ucm_last_success_timestamp_seconds When the pipeline's last successful run finished."
    );
    let _ = writeln!(out, "# TYPE ucm_last_success_timestamp_seconds gauge");
    for (p, t) in &c.last_success {
        let _ = writeln!(
            out,
            "ucm_last_success_timestamp_seconds{{pipeline=\"{p}\"}} {t:.3}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP ucm_rows_total Rows the service's runs inserted, updated and deleted."
    );
    let _ = writeln!(out, "# TYPE ucm_rows_total counter");
    for ((p, action), n) in &c.rows {
        let _ = writeln!(
            out,
            "ucm_rows_total{{pipeline=\"{p}\",action=\"{action}\"}} {n}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP ucm_fetch_bytes_total Bytes the fetch stage downloaded."
    );
    let _ = writeln!(out, "# TYPE ucm_fetch_bytes_total counter");
    for (p, n) in &c.fetch_bytes {
        let _ = writeln!(out, "ucm_fetch_bytes_total{{pipeline=\"{p}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "# HELP ucm_run_duration_seconds How long the service's runs took."
    );
    let _ = writeln!(out, "# TYPE ucm_run_duration_seconds histogram");
    for (p, h) in &c.durations {
        for (bound, n) in super::DURATION_BUCKETS.iter().zip(h.buckets) {
            let _ = writeln!(
                out,
                "ucm_run_duration_seconds_bucket{{pipeline=\"{p}\",le=\"{bound}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "ucm_run_duration_seconds_bucket{{pipeline=\"{p}\",le=\"+Inf\"}} {}",
            h.count
        );
        let _ = writeln!(
            out,
            "ucm_run_duration_seconds_sum{{pipeline=\"{p}\"}} {:.3}",
            h.sum
        );
        let _ = writeln!(
            out,
            "ucm_run_duration_seconds_count{{pipeline=\"{p}\"}} {}",
            h.count
        );
    }
    let _ = writeln!(
        out,
        "# HELP ucm_contacts Rows of the merged table by origin."
    );
    let _ = writeln!(out, "# TYPE ucm_contacts gauge");
    for (p, by_origin) in &contacts {
        for (origin, n) in by_origin {
            let _ = writeln!(
                out,
                "ucm_contacts{{pipeline=\"{p}\",origin=\"{origin}\"}} {n}"
            );
        }
    }
    drop(c);
    if let Some(cluster) = &service.cluster {
        write_cluster_metrics(&mut out, cluster);
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}

fn write_cluster_metrics(out: &mut String, cluster: &super::cluster::Cluster) {
    let node = &cluster.node;
    let mut line = |text: String| {
        out.push_str(&text);
        out.push('\n');
    };
    line(
        "# HELP ucm_cluster_profile_sync Whether profile synchronisation is on (1) or off (0)."
            .into(),
    );
    line("# TYPE ucm_cluster_profile_sync gauge".into());
    line(format!(
        "ucm_cluster_profile_sync{{node=\"{node}\"}} {}",
        u8::from(cluster.profile_sync)
    ));
    let peers = cluster.peer_snapshot();
    line("# HELP ucm_cluster_outbox_depth Changes not yet delivered to the peer.".into());
    line("# TYPE ucm_cluster_outbox_depth gauge".into());
    for p in &peers {
        line(format!(
            "ucm_cluster_outbox_depth{{peer=\"{}\"}} {}",
            p.url, p.outbox_depth
        ));
    }
    line(
        "# HELP ucm_cluster_peer_reachable Whether the last request to the peer succeeded.".into(),
    );
    line("# TYPE ucm_cluster_peer_reachable gauge".into());
    for p in &peers {
        line(format!(
            "ucm_cluster_peer_reachable{{peer=\"{}\"}} {}",
            p.url,
            u8::from(p.reachable)
        ));
    }
    line("# HELP ucm_cluster_sync_failures_total Failed requests to the peer.".into());
    line("# TYPE ucm_cluster_sync_failures_total counter".into());
    for p in &peers {
        line(format!(
            "ucm_cluster_sync_failures_total{{peer=\"{}\"}} {}",
            p.url, p.failures
        ));
    }
    line(
        "# HELP ucm_cluster_last_sync_timestamp_seconds When a request to the peer last succeeded."
            .into(),
    );
    line("# TYPE ucm_cluster_last_sync_timestamp_seconds gauge".into());
    for p in &peers {
        if let Some(t) = p
            .last_success
            .as_deref()
            .and_then(|t| t.parse::<Timestamp>().ok())
        {
            line(format!(
                "ucm_cluster_last_sync_timestamp_seconds{{peer=\"{}\"}} {:.3}",
                p.url,
                t.as_millisecond() as f64 / 1000.0
            ));
        }
    }
    line("# HELP ucm_cluster_received_total Changes received from peers, by kind.".into());
    line("# TYPE ucm_cluster_received_total counter".into());
    for kind in ["status", "profile"] {
        let n = cluster
            .received
            .lock()
            .expect("no poisoning")
            .get(kind)
            .copied()
            .unwrap_or(0);
        line(format!("ucm_cluster_received_total{{kind=\"{kind}\"}} {n}"));
    }
    line("# HELP ucm_cluster_refused_total Peer requests refused, by reason.".into());
    line("# TYPE ucm_cluster_refused_total counter".into());
    for reason in ["signature", "profile_sync_off"] {
        let n = cluster
            .refused
            .lock()
            .expect("no poisoning")
            .get(reason)
            .copied()
            .unwrap_or(0);
        line(format!(
            "ucm_cluster_refused_total{{reason=\"{reason}\"}} {n}"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_equal_only_when_every_byte_is() {
        assert!(constant_time_eq(b"p:a@s%s", b"p:a@s%s"));
        assert!(!constant_time_eq(b"p:a@s%s", b"p:a@s%t"));
        assert!(!constant_time_eq(b"short", b"shorter"));
        assert!(constant_time_eq(b"", b""));
    }
}
