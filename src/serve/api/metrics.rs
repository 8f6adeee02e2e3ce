//! `GET /metrics`: the service's Prometheus metrics, encoded by `prometheus-client` (its
//! Prometheus text format 0.0.4 escapes label values, so a pipeline or peer name cannot
//! forge a series): what the service counted ([`crate::serve::metrics::RunMetrics`]) and
//! what is read at scrape time (pipelines loaded, contacts by origin, connections, the
//! cluster), in a registry built for each scrape.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::prometheus_text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::load::runs;

type FloatGauge = Gauge<f64, AtomicU64>;
use crate::serve::metrics::{Labels, pipeline};
use crate::serve::state::Service;

/// `GET /metrics`.
pub async fn metrics(State(service): State<Arc<Service>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        render(&service).await,
    )
        .into_response()
}

/// A family filled with `values` for this scrape.
fn gauges(values: impl IntoIterator<Item = (Labels, i64)>) -> Family<Labels, Gauge> {
    let family = Family::<Labels, Gauge>::default();
    for (labels, value) in values {
        family.get_or_create(&labels).set(value);
    }
    family
}

fn counters(values: impl IntoIterator<Item = (Labels, u64)>) -> Family<Labels, Counter> {
    let family = Family::<Labels, Counter>::default();
    for (labels, value) in values {
        family.get_or_create(&labels).inc_by(value);
    }
    family
}

/// The metrics text for one scrape.
pub async fn render(service: &Service) -> String {
    let m = &service.metrics;
    let mut registry = Registry::default();
    registry.register(
        "ucm_pipeline_loaded",
        "Whether the pipeline's config, schema and database loaded (1) or not (0)",
        gauges(
            service
                .pipelines
                .iter()
                .map(|p| (pipeline(&p.name), i64::from(p.loaded.is_ok()))),
        ),
    );
    registry.register(
        "ucm_runs",
        "Runs this service finished, by pipeline and status",
        m.runs.clone(),
    );
    registry.register(
        "ucm_last_success_timestamp_seconds",
        "When the pipeline's last successful run finished",
        m.last_success.clone(),
    );
    registry.register(
        "ucm_rows",
        "Rows the service's runs inserted, updated and deleted",
        m.rows.clone(),
    );
    registry.register(
        "ucm_fetch_bytes",
        "Bytes the fetch stage downloaded",
        m.fetch_bytes.clone(),
    );
    registry.register(
        "ucm_run_duration_seconds",
        "How long the service's runs took",
        m.durations.clone(),
    );
    register_tables(&mut registry, service).await;
    let c = &service.connections;
    registry.register(
        "ucm_http_connections_open",
        "HTTP connections open now",
        gauges([(Labels::new(), c.open.load(Ordering::Relaxed) as i64)]),
    );
    registry.register(
        "ucm_http_connections_shed",
        "HTTP connections answered 503 and closed at once, by the limit they hit",
        counters([
            (
                vec![("limit", "max_connections".to_owned())],
                c.shed_full.load(Ordering::Relaxed),
            ),
            (
                vec![("limit", "max_connections_per_client".to_owned())],
                c.shed_per_client.load(Ordering::Relaxed),
            ),
        ]),
    );
    registry.register(
        "ucm_http_refusals",
        "HTTP requests refused, by reason",
        m.refusals.clone(),
    );
    registry.register(
        "ucm_lookups",
        "Caller-ID lookups answered, by pipeline and result (found, unknown)",
        m.lookups.clone(),
    );
    registry.register(
        "ucm_ldap_requests",
        "LDAP requests by operation and result (the LDAP result code's name); op connect: \
         connections refused (busy, network), op malformed: messages that could not be read",
        m.ldap.clone(),
    );
    if let Some(cluster) = &service.cluster {
        register_cluster(&mut registry, cluster);
    }
    let mut out = String::new();
    let _ = encode(&mut out, &registry);
    out
}

/// What the databases hold now: the merged table's rows by origin, plans awaiting approval.
async fn register_tables(registry: &mut Registry, service: &Service) {
    let mut contacts = Vec::new();
    for p in &service.pipelines {
        if let Ok(l) = &p.loaded
            && let Ok(by_origin) = runs::contacts_by_origin(&l.store).await
        {
            for (origin, n) in by_origin {
                contacts.push((vec![("pipeline", p.name.clone()), ("origin", origin)], n));
            }
        }
    }
    registry.register(
        "ucm_contacts",
        "Rows of the merged table by origin",
        gauges(contacts),
    );
    let now = crate::load::now();
    let mut awaiting = Vec::new();
    for p in &service.pipelines {
        if let Ok(l) = &p.loaded {
            let count = crate::load::plans::awaiting(&l.store, &p.name, &now)
                .await
                .unwrap_or_default();
            awaiting.push((pipeline(&p.name), count));
        }
    }
    registry.register(
        "ucm_plans_awaiting",
        "Plans of runs a guard refused, awaiting approval (ucm plan show ID, ucm apply ID)",
        gauges(awaiting),
    );
}

fn register_cluster(registry: &mut Registry, cluster: &crate::cluster::Cluster) {
    let node = vec![("node", cluster.node.clone())];
    registry.register(
        "ucm_cluster_profile_sync",
        "Whether profile synchronisation is on (1) or off (0)",
        gauges([(node, i64::from(cluster.profile_sync))]),
    );
    let peers = cluster.peer_snapshot();
    let per_peer = |value: &dyn Fn(&crate::cluster::PeerState) -> i64| {
        gauges(
            peers
                .iter()
                .map(|p| (vec![("peer", p.url.clone())], value(p))),
        )
    };
    registry.register(
        "ucm_cluster_outbox_depth",
        "Changes not yet delivered to the peer",
        per_peer(&|p| p.outbox_depth as i64),
    );
    registry.register(
        "ucm_cluster_peer_reachable",
        "Whether the last request to the peer succeeded",
        per_peer(&|p| i64::from(p.reachable)),
    );
    registry.register(
        "ucm_cluster_sync_failures",
        "Failed requests to the peer",
        counters(
            peers
                .iter()
                .map(|p| (vec![("peer", p.url.clone())], p.failures)),
        ),
    );
    let last_sync = Family::<Labels, FloatGauge>::default();
    for p in &peers {
        if let Some(t) = p
            .last_success
            .as_deref()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        {
            last_sync
                .get_or_create(&vec![("peer", p.url.clone())])
                .set(t.as_millisecond() as f64 / 1000.0);
        }
    }
    registry.register(
        "ucm_cluster_last_sync_timestamp_seconds",
        "When a request to the peer last succeeded",
        last_sync,
    );
    let received = cluster.received.lock().expect("no poisoning").clone();
    registry.register(
        "ucm_cluster_received",
        "Changes received from peers, by kind",
        counters(["status", "profile"].map(|kind| {
            (
                vec![("kind", kind.to_owned())],
                received.get(kind).copied().unwrap_or(0),
            )
        })),
    );
    let mut refused: std::collections::BTreeMap<&str, u64> = crate::cluster::REFUSAL_REASONS
        .iter()
        .map(|reason| (*reason, 0))
        .collect();
    refused.extend(cluster.refused.lock().expect("no poisoning").iter());
    let dropped = cluster.dropped.lock().expect("no poisoning").clone();
    registry.register(
        "ucm_cluster_dropped",
        "Changes a peer refused, dropped from the outbox, by peer and reason",
        counters(
            dropped
                .into_iter()
                .map(|((peer, reason), n)| (vec![("peer", peer), ("reason", reason)], n)),
        ),
    );
    registry.register(
        "ucm_cluster_refused",
        "Peer requests or changes refused, by reason",
        counters(
            refused
                .into_iter()
                .map(|(reason, n)| (vec![("reason", reason.to_owned())], n)),
        ),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped_so_a_name_cannot_forge_a_series() {
        let mut registry = Registry::default();
        registry.register(
            "ucm_pipeline_loaded",
            "x",
            gauges([(pipeline("evil\"} 1\nucm_fake{a=\"b"), 1)]),
        );
        let mut out = String::new();
        encode(&mut out, &registry).unwrap();
        let samples: Vec<&str> = out.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(samples.len(), 1, "{out}");
        assert!(
            samples[0].starts_with("ucm_pipeline_loaded{pipeline=\"evil\\\"} 1\\nucm_fake"),
            "{out}"
        );
    }
}
