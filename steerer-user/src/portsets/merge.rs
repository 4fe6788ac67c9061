//! Exact port classes and their greedy merging (SPEC 6).
//!
//! A set S of ports "supports" a hop when the hop accepts every port of S.
//! Merging classes into S loses the (port, hop) pairs whose hop accepts the
//! port but not all of S. With `a_S(h)` = ports of S that h accepts and
//! `n_S` = ports in S, the loss is `sum over h with a_S(h) < n_S of
//! a_S(h) * w(h)`, where w is the hop's bandwidth weight (or 1 when
//! counting). Greedy: always merge the two sets whose union adds the least
//! loss, until K sets remain. Only pairs involving the new set change after
//! a merge, so a heap with versioned entries keeps each step at O(sets x
//! hops).

use std::{
    cmp::{Ordering, Reverse},
    collections::{BinaryHeap, HashMap},
};

use super::ports::PortSet;

/// Ports accepted by exactly the same hops.
#[derive(Debug, Clone)]
pub struct PortClass {
    pub ports: PortSet,
    pub count: u32,
    /// Bitset over hop indices.
    pub hops: Vec<u64>,
}

/// Group ports 1-65535 by the identical set of hops accepting them.
/// `accepts[h]` is hop h's accepted ports. Classes come out ordered by
/// their lowest port.
pub fn exact_classes(accepts: &[&PortSet]) -> Vec<PortClass> {
    // Hops that accept the same ports always share their classes: the
    // per-port table is built over the distinct sets only (a gateway's
    // hops mostly accept everything), then each class's mask is spread
    // back over the hops.
    let mut distinct: Vec<&PortSet> = Vec::new();
    let mut of_set: HashMap<&PortSet, usize> = HashMap::new();
    let set_of_hop: Vec<usize> = accepts
        .iter()
        .map(|&set| {
            *of_set.entry(set).or_insert_with(|| {
                distinct.push(set);
                distinct.len() - 1
            })
        })
        .collect();
    let words = distinct.len().div_ceil(64).max(1);
    let mut per_port = vec![0u64; 65536 * words];
    for (d, set) in distinct.iter().enumerate() {
        for p in set.ports() {
            per_port[p as usize * words + d / 64] |= 1 << (d % 64);
        }
    }
    let hop_words = accepts.len().div_ceil(64).max(1);
    let mut index: HashMap<&[u64], usize> = HashMap::new();
    let mut classes: Vec<PortClass> = Vec::new();
    for p in 1..=65535u16 {
        let key = &per_port[p as usize * words..(p as usize + 1) * words];
        let i = *index.entry(key).or_insert_with(|| {
            let mut hops = vec![0u64; hop_words];
            for (h, &d) in set_of_hop.iter().enumerate() {
                if key[d / 64] & (1 << (d % 64)) != 0 {
                    hops[h / 64] |= 1 << (h % 64);
                }
            }
            classes.push(PortClass {
                ports: PortSet::empty(),
                count: 0,
                hops,
            });
            classes.len() - 1
        });
        classes[i].ports.insert(p);
        classes[i].count += 1;
    }
    classes
}

/// What a merge minimises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Lost (port, hop) pairs weighted by the hop's bandwidth.
    Bandwidth,
    /// Lost (port, hop) pairs counted.
    Count,
}

/// The result: `sets[i]` lists the classes merged into set i.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merged {
    pub sets: Vec<Vec<usize>>,
}

impl Merged {
    pub fn ports(&self, classes: &[PortClass]) -> Vec<PortSet> {
        self.sets
            .iter()
            .map(|s| {
                let mut p = PortSet::empty();
                for &c in s {
                    for port in classes[c].ports.ports() {
                        p.insert(port);
                    }
                }
                p
            })
            .collect()
    }

    /// Per set, the hops supporting all of it (the intersection).
    pub fn supporters(&self, classes: &[PortClass]) -> Vec<Vec<u64>> {
        self.sets
            .iter()
            .map(|s| {
                let mut acc = classes[s[0]].hops.clone();
                for &c in &s[1..] {
                    for (a, b) in acc.iter_mut().zip(&classes[c].hops) {
                        *a &= b;
                    }
                }
                acc
            })
            .collect()
    }

    /// Loss and total support under `weights` (one per hop).
    pub fn loss(&self, classes: &[PortClass], weights: &[f64]) -> (f64, f64) {
        let total: f64 = classes
            .iter()
            .map(|c| c.count as f64 * weight_of(&c.hops, weights))
            .sum();
        let loss = self
            .sets
            .iter()
            .map(|s| Acc::of(s, classes, weights.len()).loss(weights))
            .sum();
        (loss, total)
    }
}

fn weight_of(bits: &[u64], weights: &[f64]) -> f64 {
    weights
        .iter()
        .enumerate()
        .filter(|(h, _)| has_bit(bits, *h))
        .map(|(_, w)| w)
        .sum()
}

/// Per hop, how many ports of the set it accepts.
#[derive(Clone)]
struct Acc {
    ports: u32,
    accepted: Vec<u32>,
}

impl Acc {
    fn of(set: &[usize], classes: &[PortClass], hops: usize) -> Acc {
        let mut a = Acc {
            ports: 0,
            accepted: vec![0; hops],
        };
        for &c in set {
            a.add(&classes[c]);
        }
        a
    }

    fn add(&mut self, c: &PortClass) {
        self.ports += c.count;
        for (h, n) in self.accepted.iter_mut().enumerate() {
            if has_bit(&c.hops, h) {
                *n += c.count;
            }
        }
    }

    fn loss(&self, weights: &[f64]) -> f64 {
        self.accepted
            .iter()
            .zip(weights)
            .filter(|(&a, _)| a < self.ports)
            .map(|(&a, &w)| a as f64 * w)
            .sum()
    }

    fn merged_loss(&self, other: &Acc, weights: &[f64]) -> f64 {
        let ports = self.ports + other.ports;
        self.accepted
            .iter()
            .zip(&other.accepted)
            .zip(weights)
            .map(|((&a, &b), &w)| {
                let n = a + b;
                if n < ports {
                    n as f64 * w
                } else {
                    0.0
                }
            })
            .sum()
    }
}

/// A set being built: its classes, per-hop acceptance, loss, and a
/// version that invalidates heap entries computed before its last merge.
struct Group {
    members: Vec<usize>,
    acc: Acc,
    loss: f64,
    version: u32,
}

#[derive(PartialEq)]
struct Cost(f64);
impl Eq for Cost {}
impl PartialOrd for Cost {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Cost {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// Greedily merge `classes` into at most `k` sets minimising the loss under
/// `metric` (`bandwidth[h]`: hop h's weight). Deterministic: ties go to the
/// pair with the lower class indices.
pub fn merge(classes: &[PortClass], bandwidth: &[f64], k: usize, metric: Metric) -> Merged {
    merge_to_each(classes, bandwidth, &[k], metric)
        .pop()
        .unwrap_or(Merged { sets: Vec::new() })
}

/// `merge` for several K in one greedy run: the sets for a smaller K are the
/// same run carried further. Results in the order of `ks`.
pub fn merge_to_each(
    classes: &[PortClass],
    bandwidth: &[f64],
    ks: &[usize],
    metric: Metric,
) -> Vec<Merged> {
    let weights: Vec<f64> = match metric {
        Metric::Bandwidth => bandwidth.to_vec(),
        Metric::Count => vec![1.0; bandwidth.len()],
    };
    let hops = weights.len();
    let mut sets: Vec<Option<Group>> = classes
        .iter()
        .enumerate()
        .map(|(i, _)| {
            let acc = Acc::of(&[i], classes, hops);
            let loss = acc.loss(&weights);
            Some(Group {
                members: vec![i],
                acc,
                loss,
                version: 0,
            })
        })
        .collect();
    let mut live = sets.len();
    let mut heap = BinaryHeap::new();
    let push = |heap: &mut BinaryHeap<_>, sets: &[Option<Group>], i: usize, j: usize| {
        let (lo, hi) = (i.min(j), i.max(j));
        let (Some(a), Some(b)) = (&sets[lo], &sets[hi]) else {
            return;
        };
        let delta = a.acc.merged_loss(&b.acc, &weights) - a.loss - b.loss;
        heap.push(Reverse((Cost(delta), lo, hi, a.version, b.version)));
    };
    for i in 0..sets.len() {
        for j in i + 1..sets.len() {
            push(&mut heap, &sets, i, j);
        }
    }
    // Targets largest first; each is recorded when the run gets down to it.
    let mut targets: Vec<usize> = ks.iter().map(|&k| k.max(1)).collect();
    targets.sort_unstable_by(|a, b| b.cmp(a));
    targets.dedup();
    let mut snapshots: HashMap<usize, Merged> = HashMap::new();
    let smallest = targets.last().copied().unwrap_or(1);
    loop {
        while let Some(&t) = targets.first() {
            if live > t {
                break;
            }
            snapshots.insert(t, snapshot(&sets));
            targets.remove(0);
        }
        if live <= smallest {
            break;
        }
        let Some(Reverse((_, i, j, vi, vj))) = heap.pop() else {
            break;
        };
        let fresh = matches!((&sets[i], &sets[j]), (Some(a), Some(b)) if a.version == vi && b.version == vj);
        if !fresh {
            continue;
        }
        let Some(gone) = sets[j].take() else { continue };
        let Some(g) = sets[i].as_mut() else { continue };
        g.members.extend(gone.members);
        g.acc.ports += gone.acc.ports;
        for (a, b) in g.acc.accepted.iter_mut().zip(&gone.acc.accepted) {
            *a += b;
        }
        g.version += 1;
        g.loss = g.acc.loss(&weights);
        live -= 1;
        for other in 0..sets.len() {
            if other != i {
                push(&mut heap, &sets, i, other);
            }
        }
    }
    for t in targets {
        // The heap ran dry (fewer classes than asked for): what is left.
        snapshots.insert(t, snapshot(&sets));
    }
    ks.iter()
        .map(|k| {
            snapshots
                .get(&(*k).max(1))
                .cloned()
                .unwrap_or_else(|| snapshot(&sets))
        })
        .collect()
}

fn snapshot(sets: &[Option<Group>]) -> Merged {
    let mut out: Vec<Vec<usize>> = sets
        .iter()
        .flatten()
        .map(|g| {
            let mut m = g.members.clone();
            m.sort_unstable();
            m
        })
        .collect();
    out.sort();
    Merged { sets: out }
}

/// Is bit `i` set in a bitset of u64 words (hop membership)?
#[inline]
pub fn has_bit(bits: &[u64], i: usize) -> bool {
    bits[i / 64] & (1 << (i % 64)) != 0
}

#[cfg(test)]
#[path = "merge_tests.rs"]
mod tests;
