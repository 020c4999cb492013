//! Read connections of a process, kept open between requests: `serve` answers every
//! query, dashboard page and gate check on one of them instead of connecting (and
//! checking the schema) each time. The writer has its own connection, never one of
//! these, so reads cannot hold up uploads. At most `size` read connections per database
//! are open at once (`serve --pg-read-pool`); a read beyond that waits for one.

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::PgStore;
use crate::error::{Error, Result};

/// Read connections per database unless `set_size` says otherwise.
pub const DEFAULT_SIZE: usize = 8;

/// How long a read waits for a connection before it is refused as busy.
const WAIT: Duration = Duration::from_secs(10);

/// How long a kept connection may take to answer the check before it is replaced.
const CHECK: Duration = Duration::from_secs(2);

static SIZE: AtomicUsize = AtomicUsize::new(DEFAULT_SIZE);
static POOLS: Mutex<Option<HashMap<PathBuf, Slots>>> = Mutex::new(None);
static FREED: Condvar = Condvar::new();

#[derive(Default)]
struct Slots {
    idle: Vec<PgStore>,
    in_use: usize,
}

/// Set the number of read connections per database (at least one).
pub fn set_size(n: usize) {
    SIZE.store(n.max(1), Ordering::Relaxed);
}

fn pools() -> MutexGuard<'static, Option<HashMap<PathBuf, Slots>>> {
    POOLS.lock().unwrap_or_else(|e| e.into_inner())
}

/// A store that is either owned (a writer) or lent from the read pool (returned to it
/// when dropped).
pub struct Handle {
    store: Option<Box<PgStore>>,
    /// The pool it goes back to, if lent.
    pool: Option<PathBuf>,
}

impl Handle {
    pub fn owned(store: PgStore) -> Handle {
        Handle {
            store: Some(Box::new(store)),
            pool: None,
        }
    }

    /// A read-only store from the pool of `url`: a kept connection that still answers,
    /// or a new one.
    pub fn read(url: &Path) -> Result<Handle> {
        let size = SIZE.load(Ordering::Relaxed);
        let deadline = Instant::now() + WAIT;
        let kept = {
            let mut guard = pools();
            loop {
                let slots = guard
                    .get_or_insert_with(HashMap::new)
                    .entry(url.to_path_buf())
                    .or_default();
                if slots.in_use < size {
                    slots.in_use += 1;
                    break slots.idle.pop();
                }
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(Error::Other(format!(
                        "all {size} PostgreSQL read connections stayed busy for {}s (--pg-read-pool)",
                        WAIT.as_secs()
                    )));
                }
                guard = FREED
                    .wait_timeout(guard, left)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        };
        // From here the slot is ours: give it back if no store comes of it.
        let mut handle = Handle {
            store: None,
            pool: Some(url.to_path_buf()),
        };
        // A connection kept across a server restart is dead: replace it.
        let kept = kept.filter(|s| s.client.borrow_mut().is_valid(CHECK).is_ok());
        handle.store = Some(Box::new(match kept {
            Some(s) => s,
            None => PgStore::open(url, false)?,
        }));
        Ok(handle)
    }
}

impl Deref for Handle {
    type Target = PgStore;
    fn deref(&self) -> &PgStore {
        self.store
            .as_deref()
            .expect("a handle holds its store until dropped")
    }
}

impl DerefMut for Handle {
    fn deref_mut(&mut self) -> &mut PgStore {
        self.store
            .as_deref_mut()
            .expect("a handle holds its store until dropped")
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        let Some(url) = self.pool.take() else {
            return;
        };
        let store = self.store.take();
        let size = SIZE.load(Ordering::Relaxed);
        let mut guard = pools();
        if let Some(slots) = guard.as_mut().and_then(|p| p.get_mut(&url)) {
            slots.in_use = slots.in_use.saturating_sub(1);
            if let Some(store) = store {
                if !store.client.borrow().is_closed() && slots.idle.len() < size {
                    slots.idle.push(*store);
                }
            }
        }
        drop(guard);
        FREED.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pool of one: the second reader waits until the first is done, then gets the
    /// same (kept) connection rather than a new one.
    #[test]
    fn readers_share_kept_connections_up_to_the_pool_size() {
        let Some(url) = super::super::test_server("readers_share_kept_connections") else {
            return;
        };
        let db = super::super::scratch_database(&url).unwrap();
        drop(crate::store::Store::open(&db).unwrap());
        let pid = |h: &Handle| -> i32 {
            h.client
                .borrow_mut()
                .query_one("SELECT pg_backend_pid()", &[])
                .unwrap()
                .get(0)
        };
        // Sizes are per process; this test only needs its own database's slots.
        let first = Handle::read(&db).unwrap();
        let first_pid = pid(&first);
        drop(first);
        let again = Handle::read(&db).unwrap();
        assert_eq!(pid(&again), first_pid, "the kept connection is reused");
        // Its server process gone (as after a restart): the next reader gets a new one.
        {
            let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            admin
                .execute("SELECT pg_terminate_backend($1)", &[&first_pid])
                .unwrap();
        }
        drop(again);
        std::thread::sleep(Duration::from_millis(200));
        let fresh = Handle::read(&db).unwrap();
        assert_ne!(pid(&fresh), first_pid, "a dead connection is replaced");
        assert_eq!(fresh.jobs().unwrap(), Vec::<String>::new());
    }
}
