//! Memory the server may spend on uploads, across all of them.
//!
//! Every upload charges what it holds (body, decompressed reports, parsed results)
//! against one budget (`--max-memory`) as it grows; the charge is returned when the
//! upload is stored or refused. A charge that does not fit is refused: 503 with
//! `Retry-After` when other uploads hold the budget, 413 when the upload alone would not
//! fit. See README "Limits" for the formula.

use std::collections::BTreeSet;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::model::TestCase;

/// How long the oldest upload waits for others to return memory before giving up.
const OLDEST_WAITS: Duration = Duration::from_secs(30);

/// The budget shared by every upload.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: u64,
    state: Mutex<Ledger>,
    freed: Condvar,
}

#[derive(Debug, Default)]
struct Ledger {
    used: u64,
    next_ticket: u64,
    /// Uploads holding a charge, by age.
    live: BTreeSet<u64>,
}

/// Why a charge was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exhausted {
    /// Other uploads hold the budget: retry later (503).
    Busy,
    /// This upload alone needs more than the whole budget (413).
    TooLarge,
}

impl MemoryBudget {
    pub fn new(limit: u64) -> Arc<MemoryBudget> {
        Arc::new(MemoryBudget {
            limit,
            state: Mutex::new(Ledger::default()),
            freed: Condvar::new(),
        })
    }

    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Bytes charged right now, by every upload.
    pub fn used(&self) -> u64 {
        self.ledger().used
    }

    /// An empty charge that grows with [`Charge::add`].
    pub fn charge(self: &Arc<Self>) -> Charge {
        let mut ledger = self.ledger();
        let ticket = ledger.next_ticket;
        ledger.next_ticket += 1;
        ledger.live.insert(ticket);
        Charge {
            budget: self.clone(),
            ticket,
            held: 0.into(),
        }
    }
}

/// What one upload holds of the budget; returned on drop.
#[derive(Debug)]
pub struct Charge {
    budget: Arc<MemoryBudget>,
    /// Its age: the oldest upload may wait for memory, the others are refused at once,
    /// so that uploads never starve each other half-way.
    ticket: u64,
    held: std::sync::atomic::AtomicU64,
}

impl Charge {
    /// Take `n` more bytes, or refuse without taking any. Never blocks (for async code).
    pub fn try_add(&self, n: u64) -> Result<(), Exhausted> {
        self.add_within(n, None)
    }

    /// Take `n` more bytes; the oldest upload waits a while for others to finish first.
    /// Blocks: call from blocking code only.
    pub fn add(&self, n: u64) -> Result<(), Exhausted> {
        self.add_within(n, Some(OLDEST_WAITS))
    }

    fn add_within(&self, n: u64, wait: Option<Duration>) -> Result<(), Exhausted> {
        use std::sync::atomic::Ordering;
        let budget = &*self.budget;
        if self.held().saturating_add(n) > budget.limit {
            return Err(Exhausted::TooLarge);
        }
        // Read the clock only once the budget is short (this runs once per parsed case).
        let mut deadline = None;
        let mut ledger = budget.ledger();
        loop {
            if ledger.used.saturating_add(n) <= budget.limit {
                ledger.used += n;
                self.held.fetch_add(n, Ordering::Relaxed);
                return Ok(());
            }
            let oldest = ledger.live.first() == Some(&self.ticket);
            let now = Instant::now();
            let deadline = *deadline.get_or_insert_with(|| wait.map(|w| now + w));
            let left = deadline.and_then(|d| d.checked_duration_since(now));
            match left {
                Some(left) if oldest && !left.is_zero() => {
                    ledger = budget
                        .freed
                        .wait_timeout(ledger, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
                _ => return Err(Exhausted::Busy),
            }
        }
    }

    /// The whole budget.
    pub fn limit(&self) -> u64 {
        self.budget.limit
    }

    /// Bytes this upload holds.
    pub fn held(&self) -> u64 {
        self.held.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        let held = *self.held.get_mut();
        let mut ledger = self.budget.ledger();
        ledger.used -= held;
        ledger.live.remove(&self.ticket);
        drop(ledger);
        self.budget.freed.notify_all();
    }
}

/// Bytes a parsed test case holds on the heap, near enough to budget by: its strings,
/// its attempts and the bookkeeping around it (the merge index, vectors' slack).
pub fn case_bytes(case: &TestCase) -> u64 {
    const OVERHEAD: u64 = 256;
    let strings = case.classname.len()
        + case.name.len()
        + case.file.as_ref().map_or(0, String::len)
        + case.suite.as_deref().map_or(0, str::len);
    let attempts: usize = case
        .attempts
        .iter()
        .map(|a| {
            std::mem::size_of::<crate::model::Attempt>()
                + a.failure.as_ref().map_or(0, |f| {
                    f.kind.as_ref().map_or(0, String::len)
                        + f.message.as_ref().map_or(0, String::len)
                        + f.body.as_ref().map_or(0, String::len)
                })
        })
        .sum();
    // The merge index holds a copy of the identity (classname and name).
    OVERHEAD
        + (std::mem::size_of::<TestCase>() + strings + attempts) as u64
        + (case.classname.len() + case.name.len()) as u64
}

/// Bytes a report's prepared rows hold (see [`crate::store::prepare_with_ids`]): a row per
/// test, and the strings of each failure's fingerprint.
pub fn prepared_bytes(prepared: &crate::store::Prepared) -> u64 {
    let rows = std::mem::size_of_val(prepared.rows.as_slice());
    let failures: usize = prepared
        .failures
        .iter()
        .map(|f| {
            std::mem::size_of_val(f)
                + f.normalized.len()
                + f.sample.len()
                + f.kind.as_ref().map_or(0, String::len)
                + f.message.as_ref().map_or(0, String::len)
        })
        .sum();
    (rows + failures) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_add_up_and_return_on_drop() {
        let budget = MemoryBudget::new(100);
        let a = budget.charge();
        let b = budget.charge();
        a.add(60).unwrap();
        // The younger one is refused at once; the oldest would wait, but not with try_add.
        assert_eq!(b.add(50), Err(Exhausted::Busy));
        b.add(30).unwrap();
        assert_eq!(a.try_add(20), Err(Exhausted::Busy));
        drop(b);
        let b = budget.charge();
        assert_eq!(b.add(101), Err(Exhausted::TooLarge));
        b.add(40).unwrap();
        assert_eq!(budget.used(), 100);
        drop(a);
        assert_eq!(budget.used(), 40);
        b.add(60).unwrap();
        drop(b);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn the_oldest_upload_waits_for_memory_others_give_back() {
        let budget = MemoryBudget::new(100);
        let old = budget.charge();
        let young = budget.charge();
        young.add(80).unwrap();
        let waiter = std::thread::spawn(move || {
            let r = old.add(50);
            (r, old.held())
        });
        std::thread::sleep(Duration::from_millis(100));
        drop(young);
        assert_eq!(waiter.join().unwrap(), (Ok(()), 50));
        assert_eq!(budget.used(), 0);
    }
}
