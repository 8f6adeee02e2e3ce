//! The service's connections: the accept loop, with hyper serving each connection (HTTP/1.1)
//! and the limits of `[limits]` applied before a byte of a request is read.
//!
//! - A connection must send its request headers within `header_read_timeout_secs` of opening
//!   or of its previous answer (hyper's header-read timer): idle keep-alive connections,
//!   clients that never speak and slowloris clients are closed when it runs out.
//! - At most `max_connections` connections are open at once, and at most
//!   `max_connections_per_client` from one address: a connection beyond either is answered
//!   `503` with `Connection: close` at once and counted (load shedding, so the service keeps
//!   answering the clients it has instead of running out of descriptors).
//! - The process's soft open-file limit is raised to its hard limit at start, and the
//!   connection limit kept below it.
//! - At shutdown, connections finish their answers and close; a grace period after the runs
//!   in flight have finished, the rest (event streams) are dropped.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tower::ServiceExt as _;
use tower_http::timeout::TimeoutBody;

use super::delivery::MeteredStream;
use super::limits::Limits;

/// Descriptors kept for databases, sources and logs when the connection limit is derived
/// from the open-file limit.
const RESERVED_DESCRIPTORS: u64 = 64;
/// How long open connections get to finish at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// What the connection layer counts, for `/metrics`.
#[derive(Debug, Default)]
pub struct ConnectionStats {
    pub open: AtomicU64,
    pub accepted: AtomicU64,
    /// Shed because `max_connections` were open.
    pub shed_full: AtomicU64,
    /// Shed because the client held `max_connections_per_client`.
    pub shed_per_client: AtomicU64,
}

/// Connection slots: the global limit and the count per client address.
struct Slots {
    global: Arc<Semaphore>,
    per_client: Mutex<HashMap<IpAddr, usize>>,
    per_client_limit: usize,
}

/// A connection's slot, given back when the connection ends.
struct Slot {
    _global: OwnedSemaphorePermit,
    client: IpAddr,
    slots: Arc<Slots>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.slots.per_client.lock().expect("no poisoning");
        if let Some(n) = counts.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.client);
            }
        }
    }
}

enum Refusal {
    Full,
    PerClient,
}

impl Slots {
    fn take(self: &Arc<Self>, client: IpAddr) -> Result<Slot, Refusal> {
        let global = Arc::clone(&self.global)
            .try_acquire_owned()
            .map_err(|_| Refusal::Full)?;
        let mut counts = self.per_client.lock().expect("no poisoning");
        let n = counts.entry(client).or_default();
        if *n >= self.per_client_limit {
            return Err(Refusal::PerClient);
        }
        *n += 1;
        Ok(Slot {
            _global: global,
            client,
            slots: Arc::clone(self),
        })
    }
}

/// Raises the soft open-file limit to the hard limit; returns the soft limit in force.
pub fn raise_open_file_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed to them.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return None;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    Some(limit.rlim_cur)
}

/// The connection limit in force: `[limits] max_connections`, kept below the open-file
/// limit.
pub fn effective_max_connections(limits: &Limits, open_files: Option<u64>) -> usize {
    match open_files {
        Some(n) => {
            let room = n.saturating_sub(RESERVED_DESCRIPTORS).max(1) as usize;
            if room < limits.max_connections {
                tracing::warn!(
                    max_connections = limits.max_connections,
                    open_file_limit = n,
                    "the open-file limit allows only {room} connections: raise LimitNOFILE \
                     (deploy/ucm.service) to allow max_connections"
                );
            }
            limits.max_connections.min(room)
        }
        None => limits.max_connections,
    }
}

/// Serves `app` on `listener` until `stop` turns true; then lets open connections finish
/// their answers until `SHUTDOWN_GRACE` after `drained` turns true (the runs in flight have
/// finished: a client waiting for its run's report gets it, however long the run takes).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: &Limits,
    max_connections: usize,
    stats: Arc<ConnectionStats>,
    mut stop: watch::Receiver<bool>,
    mut drained: watch::Receiver<bool>,
) {
    let slots = Arc::new(Slots {
        global: Arc::new(Semaphore::new(max_connections)),
        per_client: Mutex::new(HashMap::new()),
        per_client_limit: limits.max_connections_per_client,
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout())
        .max_header_size(limits.max_header_bytes)
        .max_buf_size(limits.max_header_bytes.max(8192) * 2);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut last_accept_error = None::<std::time::Instant>;
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of descriptors (EMFILE/ENFILE) or a connection reset while queued:
                    // say so at most once a second and let the backlog wait a moment.
                    if last_accept_error.is_none_or(|t| t.elapsed() > Duration::from_secs(1)) {
                        tracing::warn!("cannot accept a connection: {e}");
                        last_accept_error = Some(std::time::Instant::now());
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stopped(&mut stop) => break,
        };
        stats.accepted.fetch_add(1, Ordering::Relaxed);
        let slot = match slots.take(peer.ip()) {
            Ok(slot) => slot,
            Err(refusal) => {
                let counter = match refusal {
                    Refusal::Full => &stats.shed_full,
                    Refusal::PerClient => &stats.shed_per_client,
                };
                if counter.fetch_add(1, Ordering::Relaxed) % 1000 == 0 {
                    tracing::warn!(
                        client = %peer.ip(),
                        reason = match refusal {
                            Refusal::Full => "max_connections",
                            Refusal::PerClient => "max_connections_per_client",
                        },
                        "connection shed (503); logged once per 1000"
                    );
                }
                shed(stream);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (stream, delivery) = MeteredStream::new(stream);
        let body_idle = limits.body_idle_timeout();
        let service =
            app.clone()
                .map_request(move |request: axum::http::Request<hyper::body::Incoming>| {
                    // A body that pauses longer than body_idle_timeout_secs fails to read.
                    let mut request = request
                        .map(|body| axum::body::Body::new(TimeoutBody::new(body_idle, body)));
                    request.extensions_mut().insert(ConnectInfo(peer));
                    request.extensions_mut().insert(Arc::clone(&delivery));
                    request
                });
        let connection =
            builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        let stats = Arc::clone(&stats);
        stats.open.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let _slot = slot;
            if let Err(e) = connection.await {
                tracing::debug!(client = %peer, "connection ended: {e}");
            }
            stats.open.fetch_sub(1, Ordering::Relaxed);
        });
    }
    drop(listener);
    let grace_over = async {
        stopped(&mut drained).await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        () = graceful.shutdown() => {}
        () = grace_over => {
            tracing::info!("connections still open after the shutdown grace period are dropped");
        }
    }
}

/// Returns when `stop` turns true.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// Answers a connection the service has no room for: 503, then closes it. Written without
/// waiting (a client that does not read gets nothing).
fn shed(stream: TcpStream) {
    let _ = stream.try_write(SHED_ANSWER);
}

const SHED_ANSWER: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n\
    Content-Type: application/json\r\nContent-Length: 33\r\nConnection: close\r\n\r\n\
    {\"error\":\"too many connections\"}\n";

/// The client address of a request (set by [`serve`]).
pub fn client_of(request: &axum::http::Extensions) -> Option<SocketAddr> {
    request
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| *addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shed_answer_is_a_complete_http_response() {
        let text = std::str::from_utf8(SHED_ANSWER).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(length, body.len());
        assert!(serde_json::from_str::<serde_json::Value>(body).is_ok());
    }

    #[test]
    fn a_client_gets_its_slots_back_when_its_connections_end() {
        let slots = Arc::new(Slots {
            global: Arc::new(Semaphore::new(3)),
            per_client: Mutex::new(HashMap::new()),
            per_client_limit: 2,
        });
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let first = slots.take(a).ok().unwrap();
        let _second = slots.take(a).ok().unwrap();
        assert!(matches!(slots.take(a), Err(Refusal::PerClient)));
        let _third = slots.take(b).ok().unwrap();
        assert!(matches!(slots.take(b), Err(Refusal::Full)));
        drop(first);
        assert!(slots.take(a).is_ok());
        assert!(slots.per_client.lock().unwrap().len() <= 2);
    }
}
