//! From per-hop speeds to shares of the slot table.

/// Share of new flows each hop should get.
///
/// * unusable hops and hops with no positive speed get 0;
/// * `exploration` (SPEC 5.7, "exploration keeps a small share of new
///   flows on fresh hops"): each `fresh` hop (never measured, or one the
///   load rule leaves out: the caller marks them) gets at least
///   `exploration / n` of the n usable hops' flows, so it gets measured; a fresh hop whose speed already earns more is not raised
///   (a claim never outweighs a measurement); a measured hop is weighted
///   by its speed alone;
/// * with 2+ usable hops, none exceeds `max_share` (SPEC 5.6); the excess is
///   handed to the others in proportion to their shares (water-filling).
pub fn shares(
    speeds: &[f64],
    usable: &[bool],
    fresh: &[bool],
    max_share: f64,
    exploration: f64,
) -> Vec<f64> {
    let live: Vec<usize> = (0..speeds.len())
        .filter(|&i| usable[i] && speeds[i].is_finite() && speeds[i] > 0.0)
        .collect();
    let mut out = vec![0.0; speeds.len()];
    match live.len() {
        0 => return out,
        1 => {
            out[live[0]] = 1.0;
            return out;
        }
        _ => {}
    }
    let n = live.len() as f64;
    let floor = exploration.clamp(0.0, 1.0) / n;
    let is_fresh = |i: usize| fresh.get(i).copied().unwrap_or(false);
    // Fresh hops whose share by speed would fall below the floor are held
    // at it; the rest share what is left by speed. Holding one hop can push
    // another below the floor, so repeat until no new hop is held.
    let mut held = vec![false; speeds.len()];
    loop {
        let left = 1.0 - floor * held.iter().filter(|&&h| h).count() as f64;
        let total: f64 = live.iter().filter(|&&i| !held[i]).map(|&i| speeds[i]).sum();
        let mut changed = false;
        for &i in &live {
            out[i] = if held[i] || total <= 0.0 {
                floor
            } else {
                left * speeds[i] / total
            };
            if !held[i] && is_fresh(i) && out[i] < floor {
                held[i] = true;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    // A cap below 1/n cannot be met; the best possible is an even split.
    let cap = max_share.max(1.0 / n);
    let mut capped = vec![false; speeds.len()];
    loop {
        let excess: f64 = live.iter().map(|&i| (out[i] - cap).max(0.0)).sum();
        if excess <= 1e-12 {
            break;
        }
        for &i in &live {
            if out[i] > cap {
                out[i] = cap;
                capped[i] = true;
            }
        }
        let free: f64 = live.iter().filter(|&&i| !capped[i]).map(|&i| out[i]).sum();
        if free <= 0.0 {
            break;
        }
        for &i in &live {
            if !capped[i] {
                out[i] += excess * out[i] / free;
            }
        }
    }
    out
}

/// Each hop's part of its speed that new flows should fill at `load`
/// (bytes/s offered to the hops together), in [0, 1]: the rate assignment
/// that minimises the mean completion time over processor-sharing hops
/// (each hop i of capacity C_i carries l_i = C_i - sqrt(C_i) x k, k such
/// that the l_i sum to the load; a hop whose l_i would be negative carries
/// nothing and k is found again without it). At low load the fast hops
/// take nearly everything, since a flow on them still finishes sooner than
/// alone on a slow hop; as the load nears the capacity it tends to shares
/// by speed. Hops of speed 0 are left out (factor 1); with no load, or a
/// load the hops cannot carry, every factor is 1 (shares by speed).
pub fn load_factors(speeds: &[f64], load: f64) -> Vec<f64> {
    let mut out = vec![1.0; speeds.len()];
    let mut active: Vec<usize> = (0..speeds.len())
        .filter(|&i| speeds[i].is_finite() && speeds[i] > 0.0)
        .collect();
    let capacity: f64 = active.iter().map(|&i| speeds[i]).sum();
    if !(load.is_finite() && load > 0.0 && load < capacity) {
        return out;
    }
    let k = loop {
        let cap: f64 = active.iter().map(|&i| speeds[i]).sum();
        let roots: f64 = active.iter().map(|&i| speeds[i].sqrt()).sum();
        let k = (cap - load) / roots;
        let before = active.len();
        active.retain(|&i| speeds[i] > speeds[i].sqrt() * k);
        if active.len() == before {
            break k;
        }
    };
    let mut carries = vec![false; speeds.len()];
    for &i in &active {
        carries[i] = true;
    }
    for (i, f) in out.iter_mut().enumerate() {
        if speeds[i] > 0.0 {
            *f = if carries[i] {
                1.0 - k / speeds[i].sqrt()
            } else {
                0.0
            };
        }
    }
    out
}

/// Cap the total share of each group (an operator tag, SPEC 5.6 "max
/// share per hop and per operator tag") at `cap` while at least two groups
/// hold a share; the excess goes to the uncapped groups in proportion to
/// their shares (water-filling). `group_of[i]`: hop i's group, `None` for a
/// hop without a tag (a group of its own). Shares keep their sum.
pub fn cap_groups(shares: &mut [f64], group_of: &[Option<u64>], cap: f64) {
    // Group key: the tag, or a unique key per untagged hop.
    let key = |i: usize| match group_of.get(i).copied().flatten() {
        Some(g) => (0u8, g),
        None => (1u8, i as u64),
    };
    let mut groups: Vec<(u8, u64)> = (0..shares.len())
        .filter(|&i| shares[i] > 0.0)
        .map(key)
        .collect();
    groups.sort_unstable();
    groups.dedup();
    if groups.len() < 2 {
        return;
    }
    let cap = cap.max(1.0 / groups.len() as f64);
    let mut capped: Vec<(u8, u64)> = Vec::new();
    for _ in 0..groups.len() {
        let total = |g: (u8, u64), s: &[f64]| -> f64 {
            (0..s.len()).filter(|&i| key(i) == g).map(|i| s[i]).sum()
        };
        let mut excess = 0.0;
        // Untagged hops are their own groups for the two-groups rule, but
        // only `max_share` (per hop) limits them.
        for &g in groups.iter().filter(|g| g.0 == 0) {
            let t = total(g, shares);
            if t > cap + 1e-12 {
                let scale = cap / t;
                for (i, x) in shares.iter_mut().enumerate() {
                    if key(i) == g {
                        *x *= scale;
                    }
                }
                excess += t - cap;
                if !capped.contains(&g) {
                    capped.push(g);
                }
            }
        }
        if excess <= 1e-12 {
            break;
        }
        let free: f64 = (0..shares.len())
            .filter(|&i| !capped.contains(&key(i)))
            .map(|i| shares[i])
            .sum();
        if free <= 0.0 {
            break;
        }
        for (i, x) in shares.iter_mut().enumerate() {
            if !capped.contains(&key(i)) {
                *x += excess * *x / free;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn at_low_load_the_fast_hops_carry_it_and_the_slow_ones_nothing() {
        // The lab demo's hops (Mbit/s) at 130 Mbit/s offered.
        let speeds = [200.0, 100.0, 50.0, 10.0];
        let f = load_factors(&speeds, 130.0);
        // With all four, the 10 Mbit/s hop's load would be negative; k again
        // from the other three leaves the 50 a trace.
        let all = (360.0 - 130.0) / (200f64.sqrt() + 10.0 + 50f64.sqrt() + 10f64.sqrt());
        assert!(10.0 < 10f64.sqrt() * all, "the 10 is out by the rule");
        let k = (350.0 - 130.0) / (200f64.sqrt() + 10.0 + 50f64.sqrt());
        assert!((f[0] - (1.0 - k / 200f64.sqrt())).abs() < 1e-12);
        assert!((f[1] - (1.0 - k / 10.0)).abs() < 1e-12);
        assert!((f[2] - (1.0 - k / 50f64.sqrt())).abs() < 1e-12);
        assert!(
            f[2] > 0.0 && f[2] < 0.01,
            "the 50 carries a trace: {}",
            f[2]
        );
        assert_eq!(f[3], 0.0);
        // The fast hop runs at about half its capacity, where capacity
        // shares would have put it at 36%.
        assert!((0.45..0.55).contains(&f[0]), "{}", f[0]);
        let carried: f64 = speeds.iter().zip(&f).map(|(s, f)| s * f).sum();
        assert!(
            (carried - 130.0).abs() < 1e-9,
            "the loads add up to the load"
        );
    }

    #[test]
    fn without_load_or_past_capacity_shares_stay_by_speed() {
        let speeds = [200.0, 10.0];
        assert_eq!(load_factors(&speeds, 0.0), vec![1.0; 2]);
        assert_eq!(load_factors(&speeds, 210.0), vec![1.0; 2]);
        // A hop of speed 0 is not counted in the capacity: 150 of 200.
        let f = load_factors(&[200.0, 0.0], 150.0);
        assert!((f[0] - 0.75).abs() < 1e-12 && f[1] == 1.0);
    }

    proptest! {
        #[test]
        fn load_factors_conserve_the_load_and_favour_speed(
            speeds in proptest::collection::vec(1.0f64..1000.0, 1..30),
            util in 0.01f64..0.99,
        ) {
            let load = util * speeds.iter().sum::<f64>();
            let f = load_factors(&speeds, load);
            let carried: f64 = speeds.iter().zip(&f).map(|(s, f)| s * f).sum();
            prop_assert!((carried - load).abs() <= 1e-6 * load);
            for i in 0..speeds.len() {
                prop_assert!((0.0..=1.0).contains(&f[i]));
                for j in 0..speeds.len() {
                    if speeds[i] > speeds[j] {
                        prop_assert!(f[i] >= f[j] - 1e-12);
                    }
                }
            }
        }
    }

    #[test]
    fn proportional_without_cap_or_floor() {
        let s = shares(&[100.0, 50.0, 50.0], &[true; 3], &[false; 3], 1.0, 0.0);
        assert!((s[0] - 0.5).abs() < 1e-9 && (s[1] - 0.25).abs() < 1e-9);
    }

    #[test]
    fn only_fresh_hops_keep_an_exploration_floor() {
        // SPEC 5.7: "exploration keeps a small share of new flows on fresh
        // hops": hop 2 was never measured, hops 0 and 1 were.
        let s = shares(
            &[100.0, 100.0, 0.001],
            &[true; 3],
            &[false, false, true],
            1.0,
            0.06,
        );
        // Floor 0.06 / 3 = 0.02 for hop 2; the other 0.98 by speed.
        assert!((s[2] - 0.02).abs() < 1e-12, "{s:?}");
        assert!((s[0] - 0.98 * 100.0 / 200.0).abs() < 1e-12, "{s:?}");
        // A fresh hop whose speed earns more than the floor is not raised.
        let s = shares(&[100.0, 100.0], &[true; 2], &[false, true], 1.0, 0.06);
        assert!(
            (s[0] - 0.5).abs() < 1e-12 && (s[1] - 0.5).abs() < 1e-12,
            "{s:?}"
        );
    }

    #[test]
    fn max_share_caps_a_dominant_hop() {
        // "no hop gets more than this fraction of a window's weight while the
        // window has 2 or more hops" (SPEC 3, max share 0.5).
        let s = shares(&[1000.0, 10.0, 10.0], &[true; 3], &[false; 3], 0.5, 0.0);
        assert!((s[0] - 0.5).abs() < 1e-9, "{s:?}");
        assert!((s.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn unusable_hop_gets_nothing() {
        let s = shares(&[100.0, 100.0], &[true, false], &[true, true], 0.5, 0.01);
        assert_eq!(s, vec![1.0, 0.0]);
    }

    #[test]
    fn one_operator_gets_at_most_the_operator_cap() {
        // "max share per hop and per operator tag" (SPEC 5.6): three hops of
        // operator 7 would hold 90%; capped at 50%, the rest goes to the
        // untagged hop.
        let mut s = vec![0.3, 0.3, 0.3, 0.1];
        cap_groups(&mut s, &[Some(7), Some(7), Some(7), None], 0.5);
        assert!((s[0] + s[1] + s[2] - 0.5).abs() < 1e-9, "{s:?}");
        assert!((s[3] - 0.5).abs() < 1e-9);
        assert!((s.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    }

    proptest! {
        #[test]
        fn operator_cap_holds_and_keeps_the_sum(
            s in proptest::collection::vec(0.01f64..1.0, 2..10),
            tags in proptest::collection::vec(0u64..3, 10),
        ) {
            let total: f64 = s.iter().sum();
            let mut s: Vec<f64> = s.iter().map(|x| x / total).collect();
            let groups: Vec<Option<u64>> = (0..s.len()).map(|i| Some(tags[i])).collect();
            cap_groups(&mut s, &groups, 0.5);
            prop_assert!((s.iter().sum::<f64>() - 1.0).abs() < 1e-6);
            let mut distinct: Vec<u64> = groups.iter().flatten().copied().collect();
            distinct.sort_unstable();
            distinct.dedup();
            let cap = 0.5f64.max(1.0 / distinct.len() as f64);
            if distinct.len() >= 2 {
                for g in distinct {
                    let t: f64 = (0..s.len()).filter(|&i| groups[i] == Some(g)).map(|i| s[i]).sum();
                    prop_assert!(t <= cap + 1e-6, "group {} holds {}", g, t);
                }
            }
        }

        #[test]
        fn shares_sum_to_one_and_respect_the_cap(
            speeds in proptest::collection::vec(0.0f64..1e9, 2..10),
            cap in 0.3f64..1.0,
        ) {
            let usable = vec![true; speeds.len()];
            let fresh: Vec<bool> = (0..speeds.len()).map(|i| i % 2 == 0).collect();
            let s = shares(&speeds, &usable, &fresh, cap, 0.01);
            let live = speeds.iter().filter(|&&x| x > 0.0).count();
            if live > 0 {
                prop_assert!((s.iter().sum::<f64>() - 1.0).abs() < 1e-6);
            }
            if live >= 2 {
                let eff = cap.max(1.0 / live as f64);
                prop_assert!(s.iter().all(|&x| x <= eff + 1e-9), "{:?}", s);
            }
        }
    }
}
