//! The process: `serve(config)` starts the service (its state, the schedules, the number
//! indexes the phone endpoints read, the cluster's pushers, the LDAP listeners and the HTTP
//! server) and runs it until SIGTERM or SIGINT, which stops the firing, lets running loads
//! finish (or roll back), gives their HTTP clients their answers, and exits 0.

use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::config::ServiceConfig;
use super::connections;
use super::phones::ldap;
use super::router::app;
use super::scheduler::{log_missed, schedule_loop};
use super::state::Service;
use crate::schedule::Clock;

/// Runs the service until SIGTERM or SIGINT: schedules and HTTP. Prints the address it
/// listens on (with the port the system chose, for `:0`) on stdout.
pub async fn serve(config: ServiceConfig) -> anyhow::Result<()> {
    let clock = Clock::from_env();
    if clock.speed() != 1.0 {
        tracing::warn!(
            speed = clock.speed(),
            "UCM_CLOCK_SPEED is set: the schedule clock runs fast (tests only)"
        );
    }
    let service = Arc::new(
        Service::start(&config, clock)
            .await
            .map_err(anyhow::Error::msg)?,
    );
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
    let address = listener.local_addr()?;
    println!("ucm serve: listening on http://{address}");
    use std::io::Write as _;
    let _ = std::io::stdout().flush();

    log_missed(&service).await;
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut loops = spawn_schedules(&service, &stop_rx);
    build_number_indexes(&service);
    loops.extend(spawn_cluster(&service, &stop_rx));
    let max_connections = connections::effective_max_connections(
        &service.limits,
        connections::raise_open_file_limit(),
    );
    tracing::info!(
        max_connections,
        max_connections_per_client = service.limits.max_connections_per_client,
        header_read_timeout_secs = service.limits.header_read_timeout_secs,
        "HTTP limits"
    );
    loops.extend(ldap::listen(Arc::clone(&service), stop_rx.clone()).await?);
    let (drained_tx, drained) = watch::channel(false);
    let server = tokio::spawn({
        let (service, stop) = (Arc::clone(&service), stop_rx.clone());
        let app = app(Arc::clone(&service));
        async move {
            let limits = service.limits.clone();
            let stats = Arc::clone(&service.connections);
            connections::serve(
                listener,
                app,
                &limits,
                max_connections,
                stats,
                stop,
                drained,
            )
            .await
        }
    });

    shutdown_signal().await;
    shut_down(&service, stop_tx, loops, drained_tx, server).await;
    Ok(())
}

/// One task per pipeline stage schedule.
fn spawn_schedules(service: &Arc<Service>, stop: &watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    let mut loops = Vec::new();
    for pipeline in &service.pipelines {
        if let Ok(loaded) = &pipeline.loaded {
            for index in 0..loaded.schedules.len() {
                loops.push(tokio::spawn(schedule_loop(
                    Arc::clone(service),
                    Arc::clone(pipeline),
                    index,
                    stop.clone(),
                )));
            }
        }
    }
    loops
}

/// Caller-ID lookup and the LDAP directory's number searches read the number index: built
/// now when a table predates it or its region changed, rather than at the next scheduled run.
fn build_number_indexes(service: &Arc<Service>) {
    let mut indexed: Vec<&str> = service
        .lookups
        .iter()
        .map(|l| l.config.pipeline.as_str())
        .collect();
    indexed.extend(service.ldap.iter().map(|l| l.config.pipeline.as_str()));
    indexed.sort_unstable();
    indexed.dedup();
    for name in indexed {
        let Some(pipeline) = service.pipeline(name).cloned() else {
            continue;
        };
        tokio::spawn(async move {
            let Ok(loaded) = &pipeline.loaded else { return };
            // Not under the pipeline's busy lock: a run asked for meanwhile waits for the
            // database's run lock instead of being refused.
            match crate::load::numbers::ensure(&loaded.store).await {
                Ok(true) => tracing::info!(pipeline = %pipeline.name, "number index built"),
                Ok(false) => {}
                Err(e) => tracing::warn!(
                    pipeline = %pipeline.name,
                    "cannot build the number index now (the next run will): {e}"
                ),
            }
        });
    }
}

/// With a cluster: one pusher per peer and the anti-entropy pass.
fn spawn_cluster(service: &Arc<Service>, stop: &watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    let mut loops = Vec::new();
    if let (Some(cluster), Some(store)) = (&service.cluster, service.objects_store()) {
        for peer in &cluster.peers {
            loops.push(tokio::spawn(crate::cluster::push_loop(
                Arc::clone(cluster),
                store.clone(),
                peer.clone(),
                stop.clone(),
            )));
        }
        loops.push(tokio::spawn(crate::cluster::anti_entropy_loop(
            Arc::clone(cluster),
            store.clone(),
            stop.clone(),
        )));
        tracing::info!(
            node = %cluster.node,
            peers = ?cluster.peers,
            profile_sync = cluster.profile_sync,
            "cluster"
        );
    }
    loops
}

/// Stops the firing, waits for the loops and the runs in flight, then lets the connections
/// drain (their grace period starts once the runs are done) and closes the databases.
async fn shut_down(
    service: &Arc<Service>,
    stop_tx: watch::Sender<bool>,
    loops: Vec<JoinHandle<()>>,
    drained_tx: watch::Sender<bool>,
    server: JoinHandle<()>,
) {
    tracing::info!("stopping: no new runs; waiting for running ones to finish");
    service
        .stopping
        .store(true, std::sync::atomic::Ordering::Release);
    let _ = stop_tx.send(true);
    for handle in loops {
        let _ = handle.await;
    }
    // A running load finishes (or rolls back) before the process exits.
    let in_flight = std::mem::take(&mut *service.in_flight.lock().expect("no poisoning"));
    for handle in in_flight {
        let _ = handle.await;
    }
    for pipeline in &service.pipelines {
        let _idle = pipeline.busy.lock().await;
    }
    // The runs are done: their HTTP clients get their reports within the grace period.
    let _ = drained_tx.send(true);
    let _ = server.await;
    for pipeline in &service.pipelines {
        if let Ok(loaded) = &pipeline.loaded {
            loaded.store.close().await;
        }
    }
    tracing::info!("stopped");
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
