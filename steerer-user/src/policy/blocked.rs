//! Blocked hops per destination (SPEC 5.5, "blocked"): a hop that
//! blackholes some destinations is excluded for those destinations only,
//! with an expiry and a re-test, never for everything.
//!
//! Sans-IO: fed with flow outcomes and fast-failover counts stamped with
//! time; asked once per tick which (hop, destination) pairs are excluded.

use std::{collections::HashMap, hash::Hash};

/// How long a first exclusion lasts; each failed re-test doubles it, up to
/// `MAX_EXCLUSION_NS`.
pub const FIRST_EXCLUSION_NS: u64 = 60_000_000_000;
pub const MAX_EXCLUSION_NS: u64 = 3_600_000_000_000;
/// Failed flows from a hop to a destination, with none answered, that
/// block it for `FIRST_EXCLUSION_NS`. One flow that merely went quiet is
/// not enough.
pub const FAILURES_TO_BLOCK: u32 = 2;
/// A single fast failover (the data plane saw a SYN repeated after no
/// answer for a second: strong evidence, read at the next tick) blocks at
/// once, but by default for this shorter time, so a SYN lost on a good hop
/// costs little: the re-test after it offers the hop again, and a second
/// failure excludes it for `FIRST_EXCLUSION_NS` (issue 17: waiting for a
/// second failure let a blackhole live 47-70 s median in the simulator).
pub const FIRST_FAILOVER_EXCLUSION_NS: u64 = 20_000_000_000;

#[derive(Debug, Clone, Default)]
struct Entry {
    /// Failures since the last answered flow.
    failures: u32,
    excluded_until: Option<u64>,
    /// Length of the current (or last) exclusion.
    exclusion_ns: u64,
    /// The exclusion expired and the hop is offered the destination again;
    /// its next failure excludes it twice as long.
    retesting: bool,
}

/// Per (hop, destination) exclusions. `D` is whatever identifies a
/// destination to the caller (address and port, or a port set).
#[derive(Debug, Clone)]
pub struct BlockList<D> {
    entries: HashMap<(u32, D), Entry>,
    /// How long one fast failover excludes (0: a failover is one of the
    /// `FAILURES_TO_BLOCK` failures, like a flow that went unanswered).
    failover_exclusion_ns: u64,
}

impl<D: Hash + Eq + Clone> BlockList<D> {
    /// A block list where one fast failover excludes for `ns` (0: it
    /// counts as one failure of `FAILURES_TO_BLOCK`); the default is
    /// `FIRST_FAILOVER_EXCLUSION_NS` (`Params::default`).
    pub fn with_failover_exclusion(ns: u64) -> Self {
        BlockList {
            entries: HashMap::new(),
            failover_exclusion_ns: ns,
        }
    }

    /// The same entries, one fast failover now excluding for `ns` (a
    /// reload may change it).
    pub fn with_failover_exclusion_of(self, ns: u64) -> Self {
        BlockList {
            failover_exclusion_ns: ns,
            ..self
        }
    }

    /// A flow from `hop` to `dest` sent and got nothing back for T seconds.
    pub fn flow_failed(&mut self, hop: u32, dest: D, now_ns: u64) {
        let e = self.entries.entry((hop, dest)).or_default();
        e.failures += 1;
        if e.retesting {
            // The re-test failed: exclude again, twice as long.
            e.retesting = false;
            e.exclusion_ns = (e.exclusion_ns * 2).clamp(FIRST_EXCLUSION_NS, MAX_EXCLUSION_NS);
            e.excluded_until = Some(now_ns + e.exclusion_ns);
        } else if e.excluded_until.is_none() && e.failures >= FAILURES_TO_BLOCK {
            e.exclusion_ns = FIRST_EXCLUSION_NS;
            e.excluded_until = Some(now_ns + e.exclusion_ns);
        }
    }

    /// The data plane moved `n` flows off `hop` for `dest` by fast failover
    /// (each one a SYN that went unanswered).
    pub fn failovers(&mut self, hop: u32, dest: D, n: u64, now_ns: u64) {
        if n == 0 {
            return;
        }
        let e = self.entries.entry((hop, dest.clone())).or_default();
        let first = !e.retesting && e.excluded_until.is_none();
        let brief = self.failover_exclusion_ns;
        if brief > 0 && first && e.failures as u64 + n < FAILURES_TO_BLOCK as u64 {
            e.failures += 1;
            e.exclusion_ns = brief;
            e.excluded_until = Some(now_ns + e.exclusion_ns);
            return;
        }
        for _ in 0..n.min(FAILURES_TO_BLOCK as u64) {
            self.flow_failed(hop, dest.clone(), now_ns);
        }
    }

    /// A flow from `hop` to `dest` got replies: the hop reaches it.
    pub fn flow_answered(&mut self, hop: u32, dest: D) {
        self.entries.remove(&(hop, dest));
    }

    /// Every (hop, destination) excluded at `now_ns`. An exclusion that has
    /// expired turns into a re-test: the hop is offered the destination
    /// again, and the next failure excludes it twice as long (the next
    /// answered flow lifts it). The controller asks once per tick and
    /// builds the destinations' tables from the answer.
    pub fn excluded_now(&mut self, now_ns: u64) -> Vec<(u32, D)> {
        let mut out = Vec::new();
        for ((hop, dest), e) in self.entries.iter_mut() {
            match e.excluded_until {
                Some(until) if now_ns < until => out.push((*hop, dest.clone())),
                Some(_) => e.retesting = true,
                None => {}
            }
        }
        out
    }

    /// When the exclusion of `hop` for `dest` ends, if it is excluded.
    pub fn excluded_until(&self, hop: u32, dest: &D) -> Option<u64> {
        self.entries
            .get(&(hop, dest.clone()))
            .and_then(|e| e.excluded_until)
    }

    /// Every destination with an entry (a failure or an exclusion).
    pub fn destinations(&self) -> impl Iterator<Item = &D> + '_ {
        self.entries.keys().map(|(_, d)| d)
    }

    /// Forget everything about a hop (it disappeared, SPEC 5.5).
    pub fn forget_hop(&mut self, hop: u32) {
        self.entries.retain(|(h, _), _| *h != hop);
    }

    /// The same blocks for a renumbered pool: hop `h` becomes `new(h)`;
    /// the entries of hops without a new number are dropped.
    pub fn renumbered(self, new: impl Fn(u32) -> Option<u32>) -> BlockList<D> {
        BlockList {
            entries: self
                .entries
                .into_iter()
                .filter_map(|((h, d), e)| Some(((new(h)?, d), e)))
                .collect(),
            failover_exclusion_ns: self.failover_exclusion_ns,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const S: u64 = 1_000_000_000;
    type Dest = (u32, u16);
    const D443: Dest = (1, 443);
    const D80: Dest = (1, 80);

    /// The block list with the shipped fast-failover exclusion.
    fn default_list() -> BlockList<Dest> {
        BlockList::with_failover_exclusion(FIRST_FAILOVER_EXCLUSION_NS)
    }

    #[test]
    fn a_blackholing_hop_is_excluded_for_that_destination_only() {
        // SPEC 5.5: "h is excluded for D (with expiry and re-test), not for
        // everything".
        let mut b = default_list();
        b.flow_failed(0, D443, 10 * S);
        assert!(
            b.excluded_now(11 * S).is_empty(),
            "one lost SYN is not a block"
        );
        b.flow_failed(0, D443, 12 * S);
        assert_eq!(
            b.excluded_now(13 * S),
            vec![(0, D443)],
            "not D80, not hop 1"
        );
        assert_eq!(
            b.excluded_until(0, &D443),
            Some(12 * S + FIRST_EXCLUSION_NS)
        );
    }

    #[test]
    fn expiry_leads_to_a_retest_and_a_failed_retest_doubles_the_exclusion() {
        let mut b = default_list();
        b.flow_failed(0, D443, 0);
        b.flow_failed(0, D443, 0);
        let until = FIRST_EXCLUSION_NS;
        assert_eq!(b.excluded_now(until - 1), vec![(0, D443)]);
        assert!(b.excluded_now(until).is_empty(), "expired: offered again");
        b.flow_failed(0, D443, until + 5 * S);
        assert_eq!(b.excluded_now(until + 5 * S + 1), vec![(0, D443)]);
        assert_eq!(
            b.excluded_until(0, &D443),
            Some(until + 5 * S + 2 * FIRST_EXCLUSION_NS),
            "twice as long"
        );
    }

    #[test]
    fn an_answered_flow_lifts_the_exclusion() {
        let mut b = default_list();
        b.failovers(0, D443, 5, 0);
        assert_eq!(b.excluded_now(1), vec![(0, D443)]);
        b.flow_answered(0, D443);
        assert!(b.excluded_now(2).is_empty());
        assert!(b.destinations().next().is_none(), "nothing kept");
    }

    #[test]
    fn a_disappeared_hop_is_forgotten() {
        let mut b = default_list();
        b.failovers(3, D443, 2, 0);
        b.failovers(4, D443, 2, 0);
        b.forget_hop(3);
        assert_eq!(b.excluded_now(1), vec![(4, D443)]);
    }

    proptest! {
        /// "a hop blocked for D is never chosen for D before its expiry";
        /// exclusions stay within their bounds.
        #[test]
        fn never_allowed_before_expiry(events in proptest::collection::vec((0u8..3, 0u64..200), 1..60)) {
            let mut b = default_list();
            let mut now = 0u64;
            let mut blocked_until: Option<u64> = None;
            for (kind, dt) in events {
                now += dt * S;
                match kind {
                    0 => b.flow_failed(0, D443, now),
                    1 => { b.flow_answered(0, D443); blocked_until = None; }
                    _ => {
                        let excluded = b.excluded_now(now).contains(&(0, D443));
                        if let Some(u) = blocked_until {
                            prop_assert_eq!(excluded, now < u, "at {} with the block until {}", now, u);
                        }
                    }
                }
                if let Some(u) = b.excluded_until(0, &D443) {
                    blocked_until = Some(u);
                }
                prop_assert!(b.entries.get(&(0, D443)).is_none_or(|e| e.exclusion_ns <= MAX_EXCLUSION_NS));
            }
        }
    }

    #[test]
    fn other_destinations_and_a_single_quiet_flow_block_nothing() {
        let mut b = default_list();
        b.failovers(0, D443, 2, 0);
        b.flow_failed(1, D80, 0);
        assert_eq!(b.excluded_now(S), vec![(0, D443)]);
    }

    #[test]
    fn one_failover_blocks_briefly_and_a_failed_retest_blocks_for_long() {
        let mut b = default_list();
        b.failovers(0, D443, 1, 10 * S);
        assert_eq!(b.excluded_now(11 * S), vec![(0, D443)], "blocked at once");
        let short_end = 10 * S + FIRST_FAILOVER_EXCLUSION_NS;
        assert_eq!(b.excluded_until(0, &D443), Some(short_end));
        assert!(b.excluded_now(short_end).is_empty(), "then re-tested");
        // The re-test fails: twice the short time, at least the first
        // exclusion of two failures.
        b.failovers(0, D443, 1, short_end + S);
        let want = (2 * FIRST_FAILOVER_EXCLUSION_NS).max(FIRST_EXCLUSION_NS);
        assert_eq!(b.excluded_until(0, &D443), Some(short_end + S + want));
    }

    #[test]
    fn without_the_brief_exclusion_a_failover_is_one_of_two_failures() {
        let mut b = BlockList::with_failover_exclusion(0);
        b.failovers(0, D443, 1, 0);
        assert!(b.excluded_now(S).is_empty());
        b.failovers(0, D443, 1, 2 * S);
        assert_eq!(b.excluded_until(0, &D443), Some(2 * S + FIRST_EXCLUSION_NS));
    }

    #[test]
    fn a_failover_after_a_quiet_flow_is_the_second_failure() {
        let mut b = default_list();
        b.flow_failed(0, D443, 0);
        b.failovers(0, D443, 1, S);
        assert_eq!(b.excluded_until(0, &D443), Some(S + FIRST_EXCLUSION_NS));
    }
}
