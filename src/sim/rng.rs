//! Keyed randomness: every draw is a pure function of (seed, purpose, indices).
//!
//! Outcomes never come from a sequential stream, so a replay with one test made
//! non-flaky sees every other draw unchanged: only that test's own failures, and what
//! follows from them (a job passing, a retry not happening), differ.

/// SplitMix64's finaliser: a fast, well-mixed 64-bit bijection.
#[inline]
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// What a draw is for. Distinct purposes give independent draws for the same indices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum Purpose {
    Flake = 1,
    GroupEvent,
    GroupMember,
    Infra,
    InfraReport,
    Retry,
    RetryDelay,
    Duration,
    Queue,
    Message,
    TestTime,
    BreakMessage,
    World,
    Schedule,
    Breakage,
}

/// A keyed hash of the seed, a purpose and up to a handful of indices.
#[inline]
pub fn key(seed: u64, purpose: Purpose, parts: &[u64]) -> u64 {
    let mut h = mix(seed ^ (purpose as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93));
    for &p in parts {
        h = mix(h ^ p);
    }
    h
}

/// A uniform draw in [0, 1) from a hash.
#[inline]
pub fn unit(h: u64) -> f64 {
    (h >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A keyed uniform draw in [0, 1).
#[inline]
pub fn u(seed: u64, purpose: Purpose, parts: &[u64]) -> f64 {
    unit(key(seed, purpose, parts))
}

/// A standard normal draw from two uniforms of one hash (Box–Muller).
#[inline]
pub fn normal(h: u64) -> f64 {
    let a = unit(mix(h ^ 0x5151)).max(1e-300);
    let b = unit(mix(h ^ 0xA2A2));
    (-2.0 * a.ln()).sqrt() * (std::f64::consts::TAU * b).cos()
}

/// Multiplicative noise with median 1: `exp(sigma * N(0, 1))`.
#[inline]
pub fn lognormal(h: u64, sigma: f64) -> f64 {
    (sigma * normal(h)).exp()
}

/// A sequential generator for building the world (test set, schedule), which never
/// depends on outcomes. Each purpose gets its own stream so that, for example, a change
/// to the test generator does not shift the commit schedule.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64, purpose: Purpose, sub: u64) -> Self {
        Rng(key(seed, purpose, &[sub]))
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    #[inline]
    pub fn f64(&mut self) -> f64 {
        unit(self.next_u64())
    }

    /// Uniform integer in `lo..=hi`.
    #[inline]
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        debug_assert!(lo <= hi);
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// Uniform index below `n` (n > 0).
    #[inline]
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }

    pub fn normal(&mut self) -> f64 {
        normal(self.next_u64())
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// Log-uniform in [lo, hi].
    pub fn log_uniform(&mut self, lo: f64, hi: f64) -> f64 {
        let (a, b) = (lo.max(1e-12).ln(), hi.max(lo).max(1e-12).ln());
        (a + self.f64() * (b - a)).exp()
    }

    /// Poisson-distributed count (Knuth; fine for the small means used here).
    pub fn poisson(&mut self, mean: f64) -> u64 {
        if mean <= 0.0 {
            return 0;
        }
        if mean > 60.0 {
            // Normal approximation keeps this loop short for big means.
            return (mean + mean.sqrt() * self.normal()).round().max(0.0) as u64;
        }
        let limit = (-mean).exp();
        let mut k = 0;
        let mut p = self.f64();
        while p > limit {
            k += 1;
            p *= self.f64();
        }
        k
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_draws_are_stable_and_distinct() {
        assert_eq!(
            key(1, Purpose::Flake, &[1, 2]),
            key(1, Purpose::Flake, &[1, 2])
        );
        assert_ne!(
            key(1, Purpose::Flake, &[1, 2]),
            key(1, Purpose::Flake, &[2, 1])
        );
        assert_ne!(key(1, Purpose::Flake, &[1]), key(1, Purpose::Retry, &[1]));
        assert_ne!(key(1, Purpose::Flake, &[1]), key(2, Purpose::Flake, &[1]));
    }

    #[test]
    fn uniform_mean_and_poisson_mean() {
        let n = 20_000;
        let mean: f64 = (0..n).map(|i| u(7, Purpose::Flake, &[i])).sum::<f64>() / n as f64;
        assert!((mean - 0.5).abs() < 0.01, "{mean}");
        let mut rng = Rng::new(7, Purpose::Schedule, 0);
        let pm: f64 = (0..n).map(|_| rng.poisson(4.0) as f64).sum::<f64>() / n as f64;
        assert!((pm - 4.0).abs() < 0.1, "{pm}");
    }
}
