//! Memory the server may spend on uploads, across all of them.
//!
//! Every upload charges what it holds (body, decompressed reports, parsed results)
//! against one budget (`--max-memory`) as it grows; the charge is returned when the
//! upload is stored or refused. A charge that does not fit is refused: 503 with
//! `Retry-After` when other uploads hold the budget, 413 when the upload alone would not
//! fit. See README "Limits" for the formula.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::model::TestCase;

/// The budget shared by every upload.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: u64,
    used: AtomicU64,
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
            used: AtomicU64::new(0),
        })
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Bytes charged right now, by every upload.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// An empty charge that grows with [`Charge::add`].
    pub fn charge(self: &Arc<Self>) -> Charge {
        Charge {
            budget: self.clone(),
            held: AtomicU64::new(0),
        }
    }
}

/// What one upload holds of the budget; returned on drop.
#[derive(Debug)]
pub struct Charge {
    budget: Arc<MemoryBudget>,
    held: AtomicU64,
}

impl Charge {
    /// Take `n` more bytes, or refuse without taking any.
    pub fn add(&self, n: u64) -> Result<(), Exhausted> {
        let held = self.held.load(Ordering::Relaxed);
        if held.saturating_add(n) > self.budget.limit {
            return Err(Exhausted::TooLarge);
        }
        let mut used = self.budget.used.load(Ordering::Relaxed);
        loop {
            let next = used.saturating_add(n);
            if next > self.budget.limit {
                return Err(Exhausted::Busy);
            }
            match self.budget.used.compare_exchange_weak(
                used,
                next,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(now) => used = now,
            }
        }
        self.held.fetch_add(n, Ordering::Relaxed);
        Ok(())
    }

    /// The whole budget.
    pub fn limit(&self) -> u64 {
        self.budget.limit
    }

    /// Bytes this upload holds.
    pub fn held(&self) -> u64 {
        self.held.load(Ordering::Relaxed)
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.budget
            .used
            .fetch_sub(*self.held.get_mut(), Ordering::AcqRel);
    }
}

/// Bytes a parsed test case holds on the heap, near enough to budget by: its strings,
/// its attempts and the bookkeeping around it (the merge index, vectors' slack).
pub fn case_bytes(case: &TestCase) -> u64 {
    const OVERHEAD: u64 = 256;
    let strings = case.classname.len()
        + case.name.len()
        + case.file.as_ref().map_or(0, String::len)
        + case.suite.as_ref().map_or(0, String::len);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_add_up_and_return_on_drop() {
        let budget = MemoryBudget::new(100);
        let a = budget.charge();
        let b = budget.charge();
        a.add(60).unwrap();
        assert_eq!(b.add(50), Err(Exhausted::Busy));
        assert_eq!(b.add(101), Err(Exhausted::TooLarge));
        b.add(40).unwrap();
        assert_eq!(budget.used(), 100);
        drop(a);
        assert_eq!(budget.used(), 40);
        b.add(60).unwrap();
        drop(b);
        assert_eq!(budget.used(), 0);
    }
}
