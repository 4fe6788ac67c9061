//! From per-hop speeds to shares of the slot table.

/// Share of new flows each hop should get.
///
/// * unusable hops and hops with no positive speed get 0;
/// * `exploration` (SPEC 5.6, a small exploration share) is spread evenly
///   over the usable hops, so each keeps at least `exploration / n`: a hop
///   that gets no flows can never be measured again;
/// * with 2+ usable hops, none exceeds `max_share` (SPEC 5.6); the excess is
///   handed to the others in proportion to their shares (water-filling).
pub fn shares(speeds: &[f64], usable: &[bool], max_share: f64, exploration: f64) -> Vec<f64> {
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
    let total: f64 = live.iter().map(|&i| speeds[i]).sum();
    let floor = exploration.clamp(0.0, 1.0) / n;
    for &i in &live {
        out[i] = floor + (1.0 - n * floor) * speeds[i] / total;
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn proportional_without_cap_or_floor() {
        let s = shares(&[100.0, 50.0, 50.0], &[true; 3], 1.0, 0.0);
        assert!((s[0] - 0.5).abs() < 1e-9 && (s[1] - 0.25).abs() < 1e-9);
    }

    #[test]
    fn max_share_caps_a_dominant_hop() {
        // "no hop gets more than this fraction of a window's weight while the
        // window has 2 or more hops" (SPEC 3, max share 0.5).
        let s = shares(&[1000.0, 10.0, 10.0], &[true; 3], 0.5, 0.0);
        assert!((s[0] - 0.5).abs() < 1e-9, "{s:?}");
        assert!((s.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn unusable_hop_gets_nothing() {
        let s = shares(&[100.0, 100.0], &[true, false], 0.5, 0.01);
        assert_eq!(s, vec![1.0, 0.0]);
    }

    proptest! {
        #[test]
        fn shares_sum_to_one_and_respect_the_cap(
            speeds in proptest::collection::vec(0.0f64..1e9, 2..10),
            cap in 0.3f64..1.0,
        ) {
            let usable = vec![true; speeds.len()];
            let s = shares(&speeds, &usable, cap, 0.01);
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
