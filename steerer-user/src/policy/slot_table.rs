//! Weights -> slot table, Maglev-style (Eisenbud et al., NSDI 2016) with
//! quotas: every hop walks its own permutation of the slots and claims free
//! ones in turn until it holds its quota. Because each hop prefers the same
//! slots every time, a small weight change moves few slots.

/// Slot value meaning "no hop" (matches the kernel's `NO_HOP`).
pub const EMPTY: u32 = steerer_common::limits::NO_HOP;

/// Integer slot counts proportional to `weights`, summing to `slots`
/// (largest remainder method). All-zero weights give all-zero counts.
pub fn quotas(weights: &[f64], slots: u32) -> Vec<u32> {
    let total: f64 = weights.iter().filter(|w| w.is_finite() && **w > 0.0).sum();
    if total <= 0.0 {
        return vec![0; weights.len()];
    }
    let exact: Vec<f64> = weights
        .iter()
        .map(|&w| {
            if w.is_finite() && w > 0.0 {
                w / total * slots as f64
            } else {
                0.0
            }
        })
        .collect();
    let mut counts: Vec<u32> = exact.iter().map(|e| e.floor() as u32).collect();
    let assigned: u32 = counts.iter().sum();
    let mut order: Vec<usize> = (0..weights.len()).filter(|&i| exact[i] > 0.0).collect();
    // Largest fractional part first; ties by index for determinism.
    order.sort_by(|&a, &b| {
        let fa = exact[a] - exact[a].floor();
        let fb = exact[b] - exact[b].floor();
        fb.total_cmp(&fa).then(a.cmp(&b))
    });
    for &i in order
        .iter()
        .cycle()
        .take(slots.saturating_sub(assigned) as usize)
    {
        counts[i] += 1;
    }
    counts
}

/// A hop's preference order over `slots` (a prime): offset + j * skip.
fn permutation_params(seed: u64, slots: u32) -> (u64, u64) {
    let m = slots as u64;
    let offset = seed % m;
    let skip = if m > 1 {
        (seed.rotate_left(29) ^ 0x9e37_79b9_7f4a_7c15) % (m - 1) + 1
    } else {
        1
    };
    (offset, skip)
}

/// Stable 64-bit seed for a hop name.
pub fn hop_seed(name: &str) -> u64 {
    steerer_common::flow::fnv1a(name.bytes())
}

/// Build a table of `slots` entries (prime) holding hop ids `ids[i]` in
/// proportion to `weights[i]`. `seeds[i]` fixes hop i's preferences.
pub fn build(ids: &[u32], seeds: &[u64], weights: &[f64], slots: u32) -> Vec<u32> {
    let mut table = vec![EMPTY; slots as usize];
    let quota = quotas(weights, slots);
    let m = slots as u64;
    let params: Vec<(u64, u64)> = seeds
        .iter()
        .map(|&s| permutation_params(s, slots))
        .collect();
    let mut next = vec![0u64; ids.len()];
    let mut left = quota;
    // Hops that still have quota, in id order: each round visits only
    // these, so a table of 1,000 hops where one holds half the slots costs
    // O(slots), not O(slots x hops).
    let mut claiming: Vec<usize> = (0..ids.len()).filter(|&i| left[i] > 0).collect();
    let mut scan = 0usize;
    while !claiming.is_empty() {
        for &i in &claiming {
            let (offset, skip) = params[i];
            // In a prime table a hop's permutation visits every slot once
            // in m steps, and a free slot exists while quota remains. In a
            // table of another size the permutation may cycle through a
            // part of it only; after m steps the hop takes the next free
            // slot in order, so the builder ends for any size.
            let slot = loop {
                if next[i] >= m {
                    // Slots only ever fill, so the scan never goes back.
                    while scan < table.len() && table[scan] != EMPTY {
                        scan += 1;
                    }
                    break (scan < table.len()).then_some(scan);
                }
                let slot = ((offset + next[i] * skip) % m) as usize;
                next[i] += 1;
                if table[slot] == EMPTY {
                    break Some(slot);
                }
            };
            if let Some(slot) = slot {
                table[slot] = ids[i];
            }
            left[i] -= 1;
        }
        claiming.retain(|&i| left[i] > 0);
    }
    table
}

/// The fewest slots any table change from `old` to `new` must move: the
/// sum of the hops' gains in slot count (each gained slot was someone
/// else's). `moved / min_moved` is how close to minimal the builder is.
pub fn min_moved(old: &[u32], new: &[u32]) -> usize {
    if old.len() != new.len() {
        return new.len();
    }
    // Hop ids are small; EMPTY counts as a hop of its own (index 0).
    let index = |h: u32| if h == EMPTY { 0 } else { h as usize + 1 };
    let top = old.iter().chain(new).map(|&h| index(h)).max().unwrap_or(0);
    let mut count = vec![0i64; top + 1];
    for &h in old {
        count[index(h)] -= 1;
    }
    for &h in new {
        count[index(h)] += 1;
    }
    count.iter().filter(|&&d| d > 0).map(|&d| d as usize).sum()
}

/// Slots whose hop differs between two tables of the same size.
pub fn moved(old: &[u32], new: &[u32]) -> usize {
    old.iter().zip(new).filter(|(a, b)| a != b).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn quotas_are_proportional_and_sum_to_slots() {
        assert_eq!(quotas(&[1.0, 1.0, 2.0], 100), vec![25, 25, 50]);
        assert_eq!(quotas(&[1.0, 1.0, 1.0], 101).iter().sum::<u32>(), 101);
        assert_eq!(quotas(&[0.0, 0.0], 7), vec![0, 0]);
        assert_eq!(quotas(&[3.0, 0.0], 7), vec![7, 0]);
    }

    #[test]
    fn table_holds_each_hop_its_quota() {
        let ids = [10, 11, 12];
        let seeds: Vec<u64> = ["a", "b", "c"].iter().map(|n| hop_seed(n)).collect();
        let t = build(&ids, &seeds, &[200.0, 100.0, 50.0], 307);
        let count = |id| t.iter().filter(|&&x| x == id).count();
        assert_eq!(count(10) + count(11) + count(12), 307);
        assert_eq!(
            quotas(&[200.0, 100.0, 50.0], 307),
            vec![count(10) as u32, count(11) as u32, count(12) as u32]
        );
    }

    #[test]
    fn small_weight_change_moves_few_slots() {
        let ids = [0, 1, 2, 3];
        let seeds: Vec<u64> = ["h0", "h1", "h2", "h3"]
            .iter()
            .map(|n| hop_seed(n))
            .collect();
        let before = build(&ids, &seeds, &[1.0, 1.0, 1.0, 1.0], 1009);
        let after = build(&ids, &seeds, &[1.0, 1.0, 1.0, 0.8], 1009);
        let minimum =
            quotas(&[1.0, 1.0, 1.0, 1.0], 1009)[3] - quotas(&[1.0, 1.0, 1.0, 0.8], 1009)[3];
        let m = moved(&before, &after);
        assert!(m as u32 >= minimum);
        // Maglev is not perfectly minimal; allow a few times the minimum.
        assert!(m as u32 <= minimum * 4, "moved {m}, minimum {minimum}");
    }

    #[test]
    fn a_table_of_any_size_is_built_and_filled() {
        // 1000 = 2^3 x 5^3: permutations whose skip shares a factor with
        // it visit only part of the table (this hung the daemon before).
        for slots in [1000u32, 1024, 4, 1] {
            let ids: Vec<u32> = (0..7).collect();
            let seeds: Vec<u64> = ids.iter().map(|i| hop_seed(&format!("hop{i}"))).collect();
            let t = build(&ids, &seeds, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], slots);
            assert!(t.iter().all(|&h| h != EMPTY), "{slots} slots all filled");
            let q = quotas(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], slots);
            for (i, &want) in q.iter().enumerate() {
                assert_eq!(
                    t.iter().filter(|&&h| h == i as u32).count() as u32,
                    want,
                    "hop {i} of {slots}"
                );
            }
        }
    }

    proptest! {
        #[test]
        fn every_slot_is_filled_when_some_weight_is_positive(
            w in proptest::collection::vec(0.0f64..100.0, 1..8),
        ) {
            prop_assume!(w.iter().any(|&x| x > 0.0));
            let ids: Vec<u32> = (0..w.len() as u32).collect();
            let seeds: Vec<u64> = ids.iter().map(|i| hop_seed(&i.to_string())).collect();
            let t = build(&ids, &seeds, &w, 211);
            prop_assert!(t.iter().all(|&x| x != EMPTY));
            for (i, &wi) in w.iter().enumerate() {
                if wi == 0.0 {
                    prop_assert!(!t.contains(&(i as u32)));
                }
            }
        }
    }
}
