//! Exit port sets (SPEC section 6, from the Walking Onions notes): group
//! ports 1-65535 by the exact set of hops accepting them, then merge those
//! classes into a short list of sets, losing as little bandwidth-weighted
//! support as possible.

pub mod directory;
pub mod merge;
pub mod plan;
pub mod ports;

pub use merge::{exact_classes, has_bit, merge, merge_to_each, Merged, Metric, PortClass};
pub use ports::PortSet;

use serde::Serialize;

use directory::Exit;

/// Loss of one merge at one K, under both metrics, as fractions of the
/// total support.
#[derive(Debug, Clone, Serialize)]
pub struct LossRow {
    pub k: usize,
    /// Which greedy objective produced the sets.
    pub merged_by: &'static str,
    pub sets: usize,
    pub loss_by_count: f64,
    pub loss_by_bandwidth: f64,
}

/// `ranges` cut to `max` characters with `...`, for one-line output.
pub fn abbreviate(ranges: &str, max: usize) -> String {
    match ranges.char_indices().nth(max) {
        Some((at, _)) => format!("{}...", &ranges[..at]),
        None => ranges.to_string(),
    }
}

/// One published port set.
#[derive(Debug, Clone, Serialize)]
pub struct SetReport {
    pub ports: String,
    pub port_count: u32,
    /// Exits supporting every port of the set.
    pub exits: usize,
    /// Their share of all exit weight.
    pub weight_share: f64,
}

/// Everything `steerer port-sets` prints.
#[derive(Debug, Clone, Serialize)]
pub struct Analysis {
    pub exits: usize,
    pub exact_classes: usize,
    pub losses: Vec<LossRow>,
    pub k: usize,
    pub sets: Vec<SetReport>,
    /// Per exit (identity, nickname): bit i set when it supports set i.
    pub exit_bits: Vec<(String, String, u64)>,
}

/// Classes, the loss table for K = 4, 8, 16, 32 (and `k`), and the sets of
/// the bandwidth-weighted merge at `k`.
pub fn analyse(exits: &[Exit], k: usize) -> Analysis {
    let accepts: Vec<&PortSet> = exits.iter().map(|e| &e.ports).collect();
    let weights: Vec<f64> = exits.iter().map(|e| e.weight).collect();
    let classes = exact_classes(&accepts);
    let mut ks = vec![4, 8, 16, 32];
    if !ks.contains(&k) {
        ks.push(k);
        ks.sort_unstable();
    }
    let ones = vec![1.0; exits.len()];
    let mut losses = Vec::new();
    let mut chosen = None;
    for (metric, name) in [(Metric::Bandwidth, "bandwidth"), (Metric::Count, "count")] {
        for (&kk, m) in ks
            .iter()
            .zip(merge_to_each(&classes, &weights, &ks, metric))
        {
            let (lc, tc) = m.loss(&classes, &ones);
            let (lb, tb) = m.loss(&classes, &weights);
            losses.push(LossRow {
                k: kk,
                merged_by: name,
                sets: m.sets.len(),
                loss_by_count: if tc > 0.0 { lc / tc } else { 0.0 },
                loss_by_bandwidth: if tb > 0.0 { lb / tb } else { 0.0 },
            });
            if kk == k && metric == Metric::Bandwidth {
                chosen = Some(m);
            }
        }
    }
    // The table reads by K, the bandwidth merge first.
    losses.sort_by_key(|r| (r.k, r.merged_by != "bandwidth"));
    let chosen = chosen.unwrap_or(Merged { sets: vec![] });
    let total_weight: f64 = weights.iter().sum();
    let ports = chosen.ports(&classes);
    let supporters = chosen.supporters(&classes);
    let sets = ports
        .iter()
        .zip(&supporters)
        .map(|(p, s)| {
            let members: Vec<usize> = (0..exits.len()).filter(|&h| has_bit(s, h)).collect();
            SetReport {
                ports: p.to_ranges(),
                port_count: p.len(),
                exits: members.len(),
                weight_share: members.iter().map(|&h| weights[h]).sum::<f64>()
                    / total_weight.max(1e-9),
            }
        })
        .collect();
    let exit_bits = exits
        .iter()
        .enumerate()
        .map(|(h, e)| {
            let bits = supporters
                .iter()
                .enumerate()
                .filter(|(_, s)| has_bit(s, h))
                .fold(0u64, |acc, (i, _)| acc | (1 << i));
            (e.identity.clone(), e.nickname.clone(), bits)
        })
        .collect();
    Analysis {
        exits: exits.len(),
        exact_classes: classes.len(),
        losses,
        k,
        sets,
        exit_bits,
    }
}
