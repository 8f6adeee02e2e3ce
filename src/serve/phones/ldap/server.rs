//! The listeners (plain and LDAPS) and each connection: TLS, the idle timeout, the connection
//! limit, StartTLS, and the loop that reads a message and writes its answers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use ldap3_proto::proto::LdapResultCode;
use tokio::sync::watch;
use tokio_util::codec::Framed;

use super::codec::{Connection, GuardedCodec, Io};
use super::config::LdapSettings;
use super::operations::answer;
use super::places::ClientPlaces;
use super::session::{Bound, Next, Session, disconnection};
use crate::serve::state::Service;

/// Binds the listeners `[ldap]` asks for and serves them until `stop`; logs where.
pub async fn listen(
    service: Arc<Service>,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let Some(settings) = service.ldap.clone() else {
        return Ok(Vec::new());
    };
    let settings = Arc::new(settings);
    let open = Places {
        all: Arc::new(tokio::sync::Semaphore::new(settings.config.max_connections)),
        per_client: Arc::new(ClientPlaces::new(
            settings.config.max_connections_per_client,
        )),
    };
    let mut tasks = Vec::new();
    for (address, tls_now) in [
        (settings.config.listen.clone(), false),
        (settings.config.listen_tls.clone(), true),
    ] {
        let Some(address) = address else { continue };
        let listener = tokio::net::TcpListener::bind(&address)
            .await
            .map_err(|e| anyhow::anyhow!("[ldap] cannot listen on {address}: {e}"))?;
        let local = listener.local_addr()?;
        let scheme = if tls_now { "ldaps" } else { "ldap" };
        tracing::info!(
            pipeline = %settings.config.pipeline,
            base_dn = %settings.config.base_dn,
            start_tls = settings.tls.is_some() && !tls_now,
            "LDAP directory listening on {scheme}://{local}"
        );
        tasks.push(tokio::spawn(accept_loop(
            Arc::clone(&service),
            Arc::clone(&settings),
            listener,
            tls_now,
            open.clone(),
            stop.clone(),
        )));
    }
    Ok(tasks)
}

async fn accept_loop(
    service: Arc<Service>,
    settings: Arc<LdapSettings>,
    listener: tokio::net::TcpListener,
    tls_now: bool,
    open: Places,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.changed() => return,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors, most likely: let some close.
                tracing::warn!("LDAP: cannot accept a connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if !crate::serve::phones::access::network_allows(&settings.allow, Some(peer.ip())) {
            service.metrics.ldap("connect", "network_not_allowed");
            continue;
        }
        let _ = stream.set_nodelay(true);
        let Some(client_place) = open.per_client.take(peer.ip()) else {
            service.metrics.ldap("connect", "busy_client");
            tell_busy(stream, "too many open connections from this address");
            continue;
        };
        let Ok(permit) = Arc::clone(&open.all).try_acquire_owned() else {
            service.metrics.ldap("connect", "busy");
            tell_busy(stream, "too many open connections");
            continue;
        };
        let (service, settings, stop) = (Arc::clone(&service), Arc::clone(&settings), stop.clone());
        tokio::spawn(async move {
            serve_connection(service, settings, stream, peer, tls_now, stop).await;
            drop((permit, client_place));
        });
    }
}

/// The places connections hold: `max_connections` in all, `max_connections_per_client` for
/// each client address.
#[derive(Clone)]
struct Places {
    all: Arc<tokio::sync::Semaphore>,
    per_client: Arc<ClientPlaces>,
}

/// Tells a connection there is no place for it (a notice of disconnection, `busy`), then
/// closes it.
fn tell_busy(stream: tokio::net::TcpStream, message: &'static str) {
    tokio::spawn(async move {
        let mut connection: Connection = Framed::new(Box::new(stream), GuardedCodec::new(1024));
        let notice = disconnection(LdapResultCode::Busy, message);
        let _ = tokio::time::timeout(Duration::from_secs(5), connection.send(notice)).await;
    });
}

async fn serve_connection(
    service: Arc<Service>,
    settings: Arc<LdapSettings>,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    tls_now: bool,
    mut stop: watch::Receiver<bool>,
) {
    let idle = Duration::from_secs(settings.config.idle_timeout_secs);
    let codec = || GuardedCodec::new(settings.config.max_request_bytes);
    let stream: Box<dyn Io> = if tls_now {
        let Some(tls) = &settings.tls else { return };
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(tls));
        match tokio::time::timeout(idle, acceptor.accept(stream)).await {
            Ok(Ok(tls)) => Box::new(tls),
            _ => {
                service.metrics.ldap("connect", "tls_handshake_failed");
                return;
            }
        }
    } else {
        Box::new(stream)
    };
    let mut connection: Connection = Framed::new(stream, codec());
    let mut session = Session {
        bound: Bound::Anonymous,
        tls: tls_now,
        peer,
    };
    loop {
        let message = tokio::select! {
            message = tokio::time::timeout(idle, connection.next()) => message,
            _ = stop.changed() => {
                let notice = disconnection(LdapResultCode::Unavailable, "the service is stopping");
                let _ = tokio::time::timeout(Duration::from_secs(1), connection.send(notice)).await;
                return;
            }
        };
        let message = match message {
            Err(_) => {
                tracing::debug!(%peer, "LDAP connection idle for {idle:?}: closed");
                return;
            }
            Ok(None) => return,
            Ok(Some(Err(e))) => {
                tracing::warn!(%peer, "LDAP: a message that could not be read ({e}): connection closed");
                service.metrics.ldap("malformed", "protocol_error");
                let notice = disconnection(LdapResultCode::ProtocolError, "malformed LDAP message");
                let _ = tokio::time::timeout(Duration::from_secs(1), connection.send(notice)).await;
                return;
            }
            Ok(Some(Ok(message))) => message,
        };
        let (answers, next) = answer(&service, &settings, &mut session, message).await;
        let sent = tokio::time::timeout(idle, async {
            for message in answers {
                connection.feed(message).await?;
            }
            connection.flush().await
        })
        .await;
        if !matches!(sent, Ok(Ok(()))) {
            tracing::debug!(%peer, "LDAP client not reading its answers: connection closed");
            return;
        }
        match next {
            Next::Continue => {}
            Next::Close => return,
            Next::StartTls => {
                let parts = connection.into_parts();
                if !parts.read_buf.is_empty() {
                    // RFC 4511 §4.14.1: nothing may follow the request before the answer.
                    service.metrics.ldap("malformed", "protocol_error");
                    return;
                }
                let Some(tls) = &settings.tls else { return };
                let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(tls));
                match tokio::time::timeout(idle, acceptor.accept(parts.io)).await {
                    Ok(Ok(tls)) => {
                        connection = Framed::new(Box::new(tls), codec());
                        session.tls = true;
                        // RFC 4513 §3.1.3: the client binds again over TLS if it wants.
                        session.bound = Bound::Anonymous;
                    }
                    _ => {
                        service.metrics.ldap("start_tls", "tls_handshake_failed");
                        return;
                    }
                }
            }
        }
    }
}
