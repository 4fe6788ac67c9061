//! The data plane's packet counters by outcome, as user space shows them.

use steerer_common::StatReason;

/// `stats` with `established` worked out: the data plane does not count
/// it (one per-CPU add less on every steered packet, BENCHMARKS.md), since
/// every packet it steers is counted to its hop (`to_hops`: the hops'
/// packets, all CPUs) and is a new flow inserted, a new flow over the flood
/// guard's limit (`refused`), or a packet of an established flow.
pub fn with_established(
    mut stats: Vec<(StatReason, u64)>,
    to_hops: u64,
    refused: u64,
) -> Vec<(StatReason, u64)> {
    let new = stats
        .iter()
        .find(|(r, _)| *r == StatReason::NewFlow)
        .map_or(0, |&(_, n)| n);
    // A new flow whose racing twin was inserted on a hop that is no longer
    // usable is counted new and not to a hop: never below zero.
    let established = to_hops.saturating_sub(new).saturating_sub(refused);
    for (r, n) in &mut stats {
        if *r == StatReason::Established {
            *n = established;
        }
    }
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(new: u64, established_slot: u64) -> Vec<(StatReason, u64)> {
        vec![
            (StatReason::NewFlow, new),
            (StatReason::Established, established_slot),
            (StatReason::PassTtl, 7),
        ]
    }

    fn established(s: &[(StatReason, u64)]) -> u64 {
        s.iter()
            .find(|(r, _)| *r == StatReason::Established)
            .map(|&(_, n)| n)
            .unwrap()
    }

    #[test]
    fn established_is_what_the_hops_got_beyond_new_flows() {
        // 1,000 packets to hops: 30 opened a flow, 20 were new flows over
        // the flood guard's limit, so 950 belonged to established flows.
        let s = with_established(stats(30, 0), 1_000, 20);
        assert_eq!(established(&s), 1_000 - 30 - 20);
        // Any old value in the slot (pins of a build that counted it) is
        // replaced, the other reasons are left as they are.
        let s = with_established(stats(30, 123_456), 1_000, 20);
        assert_eq!(established(&s), 950);
        assert!(s.contains(&(StatReason::PassTtl, 7)));
        assert!(s.contains(&(StatReason::NewFlow, 30)));
    }

    #[test]
    fn established_never_goes_below_zero() {
        assert_eq!(established(&with_established(stats(5, 0), 3, 1)), 0);
    }
}
