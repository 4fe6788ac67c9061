//! Hop windows (SPEC 5.4): the hops a new flow may be steered to. The
//! class window starts with N hops; a busy destination gets a window of its
//! own, grown by S hops per R connections over the L window, and shrunk by
//! one hop (the one that moved the least data) per tick when above that
//! size. New members come from a random enumeration of the pool, hops
//! never seen before first, another operator preferred (SPEC 5.6,
//! diversity).

/// Random enumeration of the hop pool, fixed by a seed: "get hops not seen
/// before" walks the permutation; once every hop was seen it starts over.
#[derive(Debug, Clone)]
pub struct Enumerator {
    order: Vec<u32>,
    cursor: usize,
    seen: Vec<bool>,
    /// Per hop: (0 for fresh directory data, else 1; probe latency
    /// bucket). Lower first; equal ranks keep the random order.
    rank: Vec<(u8, u32)>,
}

/// splitmix64's finaliser: a hop's place in the random order.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Probe latencies within this many milliseconds count as equal.
pub const LATENCY_BUCKET_MS: f64 = 10.0;

/// A hop's rank for the enumeration: fresh directory data first, then
/// lower probe latency (unknown latency last). (Claimed speeds do not
/// rank: hops that claim more than they have would take every window
/// first, see EXPERIMENTS.md "Pools larger than the data plane".)
pub fn enumeration_rank(fresh: bool, latency_ms: Option<f64>) -> (u8, u32) {
    let bucket = match latency_ms {
        Some(l) if l.is_finite() && l >= 0.0 => (l / LATENCY_BUCKET_MS) as u32,
        _ => u32::MAX,
    };
    (u8::from(!fresh), bucket)
}

impl Enumerator {
    /// `hop_seeds[h]`: a stable number of hop h (a hash of its name), so
    /// the order depends on the hops and the run's `seed`, not on the
    /// hops' places in the configuration.
    pub fn new(hop_seeds: &[u64], seed: u64) -> Enumerator {
        let hops = hop_seeds.len();
        let mut order: Vec<u32> = (0..hops as u32).collect();
        order.sort_by_key(|&h| (mix(hop_seeds[h as usize] ^ seed), h));
        Enumerator {
            order,
            cursor: 0,
            seen: vec![false; hops],
            rank: vec![(0, 0); hops],
        }
    }

    /// SPEC 5.4: "preferring fresh directory data; nearby hops (lower probe
    /// latency) are preferred among equals". `rank[h]` from
    /// [`enumeration_rank`].
    pub fn set_ranks(&mut self, rank: Vec<(u8, u32)>) {
        if rank.len() == self.order.len() {
            self.rank = rank;
        }
    }

    /// The next hop for which `eligible` holds: never-seen hops first (in
    /// enumeration order), then the others from the cursor on. Among
    /// eligible hops, one with `preferred` wins over one without within the
    /// same group (unseen / seen).
    pub fn next(
        &mut self,
        eligible: impl Fn(u32) -> bool,
        preferred: impl Fn(u32) -> bool,
    ) -> Option<u32> {
        let n = self.order.len();
        if n == 0 {
            return None;
        }
        // The best-ranked candidate of a group; among equal ranks the first
        // in enumeration order from the cursor.
        let walk = |want_unseen: bool, want_preferred: bool, me: &Self| {
            (0..n)
                .map(|i| (i, me.order[(me.cursor + i) % n]))
                .filter(|&(_, h)| {
                    me.seen[h as usize] != want_unseen
                        && eligible(h)
                        && (!want_preferred || preferred(h))
                })
                .min_by_key(|&(i, h)| (me.rank[h as usize], i))
                .map(|(_, h)| h)
        };
        let pick = walk(true, true, self)
            .or_else(|| walk(true, false, self))
            .or_else(|| walk(false, true, self))
            .or_else(|| walk(false, false, self))?;
        self.seen[pick as usize] = true;
        if let Some(pos) = self.order.iter().position(|&h| h == pick) {
            self.cursor = (pos + 1) % n;
        }
        Some(pick)
    }

    /// Hop `h`'s rank changed (new probe latency).
    pub fn set_rank(&mut self, h: u32, rank: (u8, u32)) {
        if let Some(r) = self.rank.get_mut(h as usize) {
            *r = rank;
        }
    }

    /// Hops in the pool.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Every hop in enumeration order (from the start; the cursor is not
    /// moved).
    pub fn order(&self) -> impl Iterator<Item = u32> + '_ {
        self.order.iter().copied()
    }
}

/// What makes two hops alike for diversity: (operator tag, subnet), each
/// as an id, `None` when unknown.
pub type Diversity = (Option<u64>, Option<u64>);

/// A window: its member hops, in the order they joined.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HopWindow {
    pub members: Vec<u32>,
}

impl HopWindow {
    pub fn contains(&self, hop: u32) -> bool {
        self.members.contains(&hop)
    }

    /// Add hops from `pool` until the window holds `size` (or the pool has
    /// nothing eligible left). `diversity_of` gives each hop's (operator
    /// tag, subnet); hops whose operator and subnet are not yet in the
    /// window are preferred (SPEC 5.6).
    pub fn fill(
        &mut self,
        size: usize,
        pool: &mut Enumerator,
        usable: impl Fn(u32) -> bool,
        diversity_of: impl Fn(u32) -> Diversity,
    ) {
        if self.members.len() >= size {
            return;
        }
        // Per fill, not per candidate: the pool may hold 100,000 hops and
        // each pick looks at all of them.
        let mut member = vec![false; pool.len()];
        let mut operators = std::collections::HashSet::new();
        let mut subnets = std::collections::HashSet::new();
        for &h in &self.members {
            if let Some(m) = member.get_mut(h as usize) {
                *m = true;
            }
            let (op, net) = diversity_of(h);
            operators.extend(op);
            subnets.extend(net);
        }
        while self.members.len() < size {
            let new_to_window = |h: u32| {
                let (op, net) = diversity_of(h);
                op.is_none_or(|o| !operators.contains(&o))
                    && net.is_none_or(|n| !subnets.contains(&n))
            };
            let not_member = |h: u32| !member.get(h as usize).copied().unwrap_or(false);
            match pool.next(|h| not_member(h) && usable(h), new_to_window) {
                Some(h) => {
                    self.members.push(h);
                    if let Some(m) = member.get_mut(h as usize) {
                        *m = true;
                    }
                    let (op, net) = diversity_of(h);
                    operators.extend(op);
                    subnets.extend(net);
                }
                None => break,
            }
        }
    }

    /// Remove `hop` if present.
    pub fn remove(&mut self, hop: u32) {
        self.members.retain(|&h| h != hop);
    }
}

/// Size a destination's window must have (SPEC 5.4): at least
/// N + (connections / R) * S, with the connections counted over L.
pub fn destination_window_size(
    base: usize,
    grow_after: u64,
    grow_by: usize,
    connections: u64,
) -> usize {
    if grow_after == 0 {
        return base;
    }
    base + (connections / grow_after) as usize * grow_by
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn seeds(n: usize) -> Vec<u64> {
        (0..n)
            .map(|i| crate::policy::slot_table::hop_seed(&format!("h{i}")))
            .collect()
    }

    #[test]
    fn enumeration_offers_every_hop_once_before_repeating() {
        // "get N hops not seen before" (SPEC 5.4).
        let mut e = Enumerator::new(&seeds(10), 7);
        let mut first: Vec<u32> = (0..10).filter_map(|_| e.next(|_| true, |_| true)).collect();
        first.sort_unstable();
        assert_eq!(first, (0..10).collect::<Vec<_>>());
        assert!(e.next(|_| true, |_| true).is_some(), "then it starts over");
    }

    #[test]
    fn fresh_directory_data_first_then_lower_latency() {
        // SPEC 5.4: "preferring fresh directory data; nearby hops (lower
        // probe latency) are preferred among equals".
        let mut e = Enumerator::new(&seeds(6), 3);
        e.set_ranks(vec![
            enumeration_rank(false, Some(1.0)),
            enumeration_rank(true, Some(80.0)),
            enumeration_rank(true, Some(20.0)),
            enumeration_rank(false, None),
            enumeration_rank(true, None),
            enumeration_rank(false, Some(5.0)),
        ]);
        let picks: Vec<u32> = (0..6).filter_map(|_| e.next(|_| true, |_| true)).collect();
        // Fresh: 2 (20 ms), 1 (80 ms), 4 (unknown); then 0 and 5 (both
        // under 10 ms: equals, random order), then 3.
        assert_eq!(&picks[..3], &[2, 1, 4]);
        let mut mid = picks[3..5].to_vec();
        mid.sort_unstable();
        assert_eq!(mid, vec![0, 5]);
        assert_eq!(picks[5], 3);
    }

    #[test]
    fn fill_prefers_another_operator() {
        // "windows drawn from diverse operators" (SPEC 5.6): hops 0-4 share
        // operator 1, hop 5 is operator 2; a window of two takes one of each.
        let op = |h: u32| Some(if h < 5 { 1 } else { 2 });
        for seed in 0..20 {
            let mut e = Enumerator::new(&seeds(6), seed);
            let mut w = HopWindow::default();
            w.fill(2, &mut e, |_| true, |h| (op(h), None));
            let ops: Vec<_> = w.members.iter().map(|&h| op(h)).collect();
            assert!(
                ops.contains(&Some(1)) && ops.contains(&Some(2)),
                "seed {seed}: {w:?}"
            );
        }
        // Subnets likewise: hops 0-4 in one /24, hop 5 in another.
        for seed in 0..20 {
            let mut e = Enumerator::new(&seeds(6), seed);
            let mut w = HopWindow::default();
            w.fill(2, &mut e, |_| true, |h| (None, op(h)));
            assert!(w.members.contains(&5), "seed {seed}: {w:?}");
        }
    }

    #[test]
    fn destination_window_grows_by_s_per_r_connections() {
        // "its size is at least N + (connections / R) * S" (SPEC 5.4).
        assert_eq!(destination_window_size(4, 8, 2, 7), 4);
        assert_eq!(destination_window_size(4, 8, 2, 8), 6);
        assert_eq!(destination_window_size(4, 8, 2, 40), 14);
    }

    proptest! {
        #[test]
        fn fill_reaches_the_size_when_enough_hops_are_usable(
            hops in 1usize..40, size in 1usize..12, seed in 0u64..1000,
            unusable in proptest::collection::vec(0u32..40, 0..10),
        ) {
            let mut e = Enumerator::new(&seeds(hops), seed);
            let mut w = HopWindow::default();
            let usable = |h: u32| !unusable.contains(&h);
            w.fill(size, &mut e, usable, |_| (None, None));
            let available = (0..hops as u32).filter(|h| usable(*h)).count();
            prop_assert_eq!(w.members.len(), size.min(available));
            let mut m = w.members.clone();
            m.sort_unstable();
            m.dedup();
            prop_assert_eq!(m.len(), w.members.len(), "no hop twice");
            prop_assert!(w.members.iter().all(|&h| usable(h)));
        }
    }
}
