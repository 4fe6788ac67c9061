//! The slot tables' size: prime, from the configuration or the pool.

use steerer_common::limits::{MAX_HOPS, MAX_SLOT_COUNT};

use super::Config;

impl Config {
    /// Slots per class table, prime (Maglev's permutations only visit
    /// every slot of a prime table): `slot_count` rounded up to the next
    /// prime, with a note saying so when it was not one; by default the
    /// smallest prime >= 100 x hops (at least 101; the hops a table can
    /// name, at most `MAX_SLOT_COUNT`).
    pub fn effective_slot_count(&self) -> (u32, Option<String>) {
        match self.slot_count {
            Some(n) => {
                let p = next_prime(n).min(MAX_SLOT_COUNT);
                let note = (p != n).then(|| {
                    format!("slot_count {n} is not prime; using {p}, the next prime (a Maglev table needs a prime size)")
                });
                (p, note)
            }
            None => {
                // A table names at most MAX_HOPS hops; MAX_SLOT_COUNT is prime.
                let named = self.hops.len().min(MAX_HOPS as usize) as u32;
                (next_prime((named * 100).max(101)).min(MAX_SLOT_COUNT), None)
            }
        }
    }
}

/// Smallest prime >= n.
pub fn next_prime(n: u32) -> u32 {
    let is_prime = |x: u32| {
        if x < 2 {
            return false;
        }
        let mut d = 2u32;
        while d.saturating_mul(d) <= x {
            if x.is_multiple_of(d) {
                return false;
            }
            d += 1;
        }
        true
    };
    (n..).find(|&x| is_prime(x)).unwrap_or(n)
}
