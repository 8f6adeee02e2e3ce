//! Places a client address may hold at once (its connections, its unindexed searches) and
//! the budget of unindexed searches: a scan of the table that has not found its entries in
//! its first rows (`(cn=*ann*)`, `(!(ou=sales))`: no index answers them, and they read the
//! whole table for a few entries) goes on in a place of this budget, out of the search lane
//! the typed-ahead searches and the API's contact search share. At most
//! `max_unindexed_searches` run at once (one more waits for a place until its time limit,
//! then is told busy) and at most `max_unindexed_searches_per_client` from one address (one
//! more is told busy at once).

use std::net::IpAddr;
use std::sync::Arc;

use crate::serve::throttle::client_key;

/// Places held per client address (IPv6 by its /64), at most `limit` each: connections, or
/// unindexed searches running.
pub(super) struct ClientPlaces {
    held: std::sync::Mutex<std::collections::HashMap<IpAddr, usize>>,
    limit: usize,
}

impl ClientPlaces {
    pub(super) fn new(limit: usize) -> ClientPlaces {
        ClientPlaces {
            held: std::sync::Mutex::default(),
            limit,
        }
    }

    /// A place for a connection from `ip`, given back when dropped; None when it holds its
    /// limit.
    pub(super) fn take(self: &Arc<Self>, ip: IpAddr) -> Option<ClientPlace> {
        let key = client_key(ip);
        let mut held = self.held.lock().expect("no poisoning");
        let count = held.entry(key).or_insert(0);
        if *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(ClientPlace {
            places: Arc::clone(self),
            key,
        })
    }
}

/// One place in its client's count, given back when dropped.
pub(super) struct ClientPlace {
    places: Arc<ClientPlaces>,
    key: IpAddr,
}

impl Drop for ClientPlace {
    fn drop(&mut self) {
        let mut held = self.places.held.lock().expect("no poisoning");
        if let Some(count) = held.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.key);
            }
        }
    }
}

/// The places unindexed searches take: a few in all, fewer per client address.
#[derive(Clone)]
pub struct ScanBudget {
    all: Arc<tokio::sync::Semaphore>,
    per_client: Arc<ClientPlaces>,
}

/// The places one running unindexed search holds.
pub(super) struct ScanPlace {
    _all: tokio::sync::OwnedSemaphorePermit,
    _client: ClientPlace,
}

/// Why an unindexed search got no place.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum NoScanPlace {
    /// Its client address runs its share already.
    Client,
    /// Every place stayed taken until the search's deadline.
    All,
}

impl ScanBudget {
    pub fn new(all: usize, per_client: usize) -> ScanBudget {
        ScanBudget {
            all: Arc::new(tokio::sync::Semaphore::new(all)),
            per_client: Arc::new(ClientPlaces::new(per_client)),
        }
    }

    /// A place for an unindexed search from `ip`: at once or never for its address, waiting
    /// until `deadline` for one of all.
    pub(super) async fn take(
        &self,
        ip: IpAddr,
        deadline: std::time::Instant,
    ) -> Result<ScanPlace, NoScanPlace> {
        let client = self.per_client.take(ip).ok_or(NoScanPlace::Client)?;
        let all = Arc::clone(&self.all).acquire_owned();
        match tokio::time::timeout_at(deadline.into(), all).await {
            Ok(Ok(permit)) => Ok(ScanPlace {
                _all: permit,
                _client: client,
            }),
            _ => Err(NoScanPlace::All),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[tokio::test]
    async fn an_address_runs_its_share_and_others_wait_for_a_place() {
        let budget = ScanBudget::new(1, 1);
        let (a, b) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let soon = || Instant::now() + Duration::from_millis(50);
        let held = budget.take(a, soon()).await.unwrap();
        assert_eq!(
            budget.take(a, soon()).await.err(),
            Some(NoScanPlace::Client)
        );
        assert_eq!(budget.take(b, soon()).await.err(), Some(NoScanPlace::All));
        drop(held);
        let _b = budget.take(b, soon()).await.unwrap();
        // A refused try gave its address's place back.
        assert_eq!(budget.take(a, soon()).await.err(), Some(NoScanPlace::All));
    }
}
