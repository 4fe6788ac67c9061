//! Directory churn (issue 14): the hop pool as a directory publishes it,
//! changing over the run. At the start a random subset of the scenario's
//! hops is published (all but `unpublished`); every `every_secs` a
//! `fraction` of the published hops is retired (gone from the directory
//! and from the network) and as many hops not yet published appear. The
//! routers of the other policies know the published hops; steerer's
//! controller gets the new pool as the daemon gets a changed directory
//! file (`Controller::handle_reload`).

use rand::{seq::SliceRandom, Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChurnSpec {
    /// Seconds between directory changes.
    pub every_secs: f64,
    /// Share of the published hops retired at each change (as many new
    /// ones published).
    pub fraction: f64,
    /// Hops of the scenario not published at the start (they appear
    /// later, in a random order).
    pub unpublished: u32,
}

/// One directory change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolChange {
    pub retired: Vec<u32>,
    pub added: Vec<u32>,
}

pub struct Churn {
    every_ns: u64,
    fraction: f64,
    next_ns: u64,
    rng: ChaCha8Rng,
    published: Vec<u32>,
    waiting: Vec<u32>,
}

impl Churn {
    /// The churn of a pool of `hops` and which hops are published at the
    /// start.
    pub fn new(spec: &ChurnSpec, hops: usize, seed: u64) -> (Churn, Vec<bool>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xc4a2_11f0_d1e5_7e11);
        let mut order: Vec<u32> = (0..hops as u32).collect();
        order.shuffle(&mut rng);
        let waiting = order.split_off(hops.saturating_sub(spec.unpublished as usize));
        let mut published = vec![false; hops];
        for &h in &order {
            published[h as usize] = true;
        }
        let every_ns = (spec.every_secs * 1e9) as u64;
        let churn = Churn {
            every_ns,
            fraction: spec.fraction,
            next_ns: every_ns,
            rng,
            published: order,
            waiting,
        };
        (churn, published)
    }

    /// The change due by `now`, if any.
    pub fn due(&mut self, now_ns: u64) -> Option<PoolChange> {
        if now_ns < self.next_ns || self.every_ns == 0 {
            return None;
        }
        self.next_ns += self.every_ns;
        let k = ((self.published.len() as f64 * self.fraction).round() as usize)
            .min(self.waiting.len())
            .min(self.published.len().saturating_sub(1));
        let mut retired = Vec::with_capacity(k);
        for _ in 0..k {
            let i = self.rng.gen_range(0..self.published.len());
            retired.push(self.published.swap_remove(i));
        }
        let added: Vec<u32> = self.waiting.drain(..k).collect();
        self.published.extend(&added);
        Some(PoolChange { retired, added })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_change_retires_and_publishes_the_same_number_of_distinct_hops() {
        let spec = ChurnSpec {
            every_secs: 10.0,
            fraction: 0.1,
            unpublished: 30,
        };
        let (mut c, published) = Churn::new(&spec, 100, 7);
        assert_eq!(published.iter().filter(|&&p| p).count(), 70);
        assert!(c.due(9_999_999_999).is_none());
        let mut up = published.clone();
        let mut seen_added = Vec::new();
        for t in 1..=5u64 {
            let ch = c.due(t * 10_000_000_000).expect("a change every 10 s");
            // 10% of the 70 published hops, while hops remain to publish.
            let want = if t <= 4 { 7 } else { 30 - 28 };
            assert_eq!((ch.retired.len(), ch.added.len()), (want, want));
            for h in &ch.retired {
                assert!(up[*h as usize], "only a published hop retires");
                up[*h as usize] = false;
            }
            for h in &ch.added {
                assert!(!published[*h as usize] && !seen_added.contains(h));
                up[*h as usize] = true;
                seen_added.push(*h);
            }
            assert_eq!(up.iter().filter(|&&p| p).count(), 70);
        }
    }
}
