//! How a hop's flows to one destination port end: answered, or failed
//! (no reply within T, or moved off by a fast failover). The port fallback
//! (`Controller::fall_back_to_ports`) takes a port from a hop only when the
//! hop fails most of its flows to that port: a hop that blocks the port.
//! A hop that blackholes some destinations and answers the rest keeps the
//! port; its blocked destinations cost a fast failover each (issue 17: on
//! the `scale` scenario, 1,000 hops blackholing 1/10 of 20,000 destinations
//! on one port, the old rule took port 443 from half the hops, the busiest,
//! so the fastest, first).
//!
//! Sans-IO: fed counts per tick, decayed with time passed in.

use std::collections::HashMap;

/// Failed flows a hop needs on a port before it can lose the port: as
/// many as block it for one destination.
pub const MIN_FAILED: f64 = super::blocked::FAILURES_TO_BLOCK as f64;
/// The share of a hop's ended flows to a port that must have failed.
pub const FAILED_SHARE: f64 = 0.5;

/// Decayed counts of failed and answered flows per (hop, port).
#[derive(Debug, Clone, Default)]
pub struct PortOutcomes {
    counts: HashMap<(u32, u16), Outcomes>,
    /// Counts halve every this long (0: no decay).
    half_life_ns: u64,
    last_ns: Option<u64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Outcomes {
    failed: f64,
    answered: f64,
}

impl PortOutcomes {
    /// Counts that halve every `half_life_ns` (the controller's memory L).
    pub fn new(half_life_ns: u64) -> Self {
        PortOutcomes {
            half_life_ns,
            ..Default::default()
        }
    }

    /// Age every count to `now_ns`; counts that fell below a tenth of a
    /// flow are forgotten.
    pub fn decay_to(&mut self, now_ns: u64) {
        let last = self.last_ns.replace(now_ns);
        let (Some(last), true) = (last, self.half_life_ns > 0) else {
            return;
        };
        let dt = now_ns.saturating_sub(last) as f64;
        let keep = 0.5f64.powf(dt / self.half_life_ns as f64);
        self.counts.retain(|_, o| {
            o.failed *= keep;
            o.answered *= keep;
            o.failed + o.answered >= 0.1
        });
    }

    pub fn failed(&mut self, hop: u32, port: u16, n: u64) {
        self.counts.entry((hop, port)).or_default().failed += n as f64;
    }

    pub fn answered(&mut self, hop: u32, port: u16) {
        self.counts.entry((hop, port)).or_default().answered += 1.0;
    }

    /// Whether `hop` fails most of its flows to `port` (at least
    /// `MIN_FAILED` of them, and `FAILED_SHARE` of those that ended).
    pub fn fails_most(&self, hop: u32, port: u16) -> bool {
        self.counts.get(&(hop, port)).is_some_and(|o| {
            o.failed >= MIN_FAILED && o.failed >= FAILED_SHARE * (o.failed + o.answered)
        })
    }

    /// The same counts under a new hop list (`new_of`: old index -> new;
    /// a hop that left loses its counts), as at a reload.
    pub fn renumbered(self, new_of: impl Fn(u32) -> Option<u32>) -> Self {
        let counts = self
            .counts
            .into_iter()
            .filter_map(|((h, p), o)| Some(((new_of(h)?, p), o)))
            .collect();
        PortOutcomes { counts, ..self }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn a_hop_that_blocks_the_port_fails_most() {
        let mut o = PortOutcomes::new(60 * S);
        o.failed(1, 443, MIN_FAILED as u64);
        assert!(o.fails_most(1, 443));
        // Another port, another hop: no evidence.
        assert!(!o.fails_most(1, 80) && !o.fails_most(2, 443));
    }

    #[test]
    fn a_hop_that_answers_most_keeps_the_port() {
        // One destination in ten blackholed: 10 failed, 90 answered.
        let mut o = PortOutcomes::new(60 * S);
        o.failed(1, 443, 10);
        for _ in 0..90 {
            o.answered(1, 443);
        }
        assert!(!o.fails_most(1, 443));
        // Exactly half failed is enough.
        let mut o = PortOutcomes::new(60 * S);
        o.failed(1, 443, 4);
        for _ in 0..4 {
            o.answered(1, 443);
        }
        assert!(o.fails_most(1, 443));
    }

    #[test]
    fn too_few_failures_are_no_evidence() {
        let mut o = PortOutcomes::new(60 * S);
        o.failed(1, 443, (MIN_FAILED as u64) - 1);
        assert!(!o.fails_most(1, 443));
    }

    #[test]
    fn counts_halve_every_half_life_and_old_ones_go() {
        let mut o = PortOutcomes::new(60 * S);
        o.decay_to(0);
        o.failed(1, 443, 3);
        o.decay_to(60 * S);
        // 3 -> 1.5: under MIN_FAILED (2).
        assert!(!o.fails_most(1, 443));
        o.failed(1, 443, 1);
        assert!(o.fails_most(1, 443));
        o.decay_to(60 * S * 10);
        assert!(o.counts.is_empty());
    }

    #[test]
    fn renumbering_moves_the_counts_with_the_hop() {
        let mut o = PortOutcomes::new(60 * S);
        o.failed(0, 443, 5);
        o.failed(1, 443, 5);
        // Hop 0 left; hop 1 is now hop 0.
        let o = o.renumbered(|h| (h == 1).then_some(0));
        assert!(o.fails_most(0, 443) && !o.fails_most(1, 443));
        assert_eq!(o.counts.len(), 1);
    }
}
