//! SQLite read connections for the directory's reads (searches, caller-ID lookups, LDAP):
//! rusqlite on a blocking thread, connections kept for the next read.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use crate::load::{LoadError, Store};

/// Read connections to SQLite databases for searches, each used by one blocking thread at a
/// time (at most as many as searches run at once: the service's search lane).
static SQLITE_READERS: Mutex<Vec<(PathBuf, rusqlite::Connection)>> = Mutex::new(Vec::new());

/// Runs `work` on a blocking thread with a read connection to the SQLite database at `path`
/// (an idle one, or a new one), then keeps the connection for the next search. Searches use
/// rusqlite on a thread of their own rather than sqlx: one hand-off from the async runtime
/// instead of sqlx's per-connection worker thread and a channel message per row (a search
/// under 50 clients spent about 30% of its time switching threads).
pub async fn on_sqlite_reader<T: Send + 'static>(
    store: &Store,
    path: &Path,
    work: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T> + Send + 'static,
) -> Result<T, LoadError> {
    let path = path.to_owned();
    let done = tokio::task::spawn_blocking(move || {
        let idle = {
            let mut idle = SQLITE_READERS.lock().expect("no poisoning");
            idle.iter()
                .position(|(p, _)| *p == path)
                .map(|i| idle.swap_remove(i).1)
        };
        let conn = match idle {
            Some(conn) => conn,
            None => {
                let conn = rusqlite::Connection::open_with_flags(
                    &path,
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                        | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                conn.busy_timeout(Duration::from_secs(30))?;
                conn.pragma_update(None, "cache_size", -8192)?;
                conn
            }
        };
        let done = work(&conn);
        SQLITE_READERS
            .lock()
            .expect("no poisoning")
            .push((path, conn));
        done
    })
    .await
    .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    done.map_err(|e| crate::load::run_error(store.url(), e))
}
