//! Port sets as the data plane holds them (SPEC 6): which hops accept
//! which ports, merged into at most `MAX_PLAN_SETS` sets, each with a class
//! table index. A change of the sets writes the new tables into indices no
//! port points at yet and moves the port map last, so no packet ever sees a
//! port pointing at a table that is half-written or holds a hop refusing
//! the port. Half the indices are always free for that: a plan has at
//! most `MAX_CLASSES / 2` sets.

use std::collections::BTreeSet;

use steerer_common::limits::MAX_CLASSES;

use crate::portsets::{plan::PortSetPlan, PortSet};

/// Sets a plan may have: the other half of the class tables stays free
/// for the next plan's new tables.
pub const MAX_PLAN_SETS: usize = (MAX_CLASSES / 2) as usize;

#[derive(Debug, Clone)]
pub struct PortPlan {
    /// Per engine hop: the ports its exit policy accepts.
    policies: Vec<PortSet>,
    weights: Vec<f64>,
    /// (engine hop, port) pairs taken out on top of the exit policies
    /// (the block list's fallback when destination tables run out).
    excluded: BTreeSet<(u32, u16)>,
    plan: PortSetPlan,
    /// Class table index of each set of `plan`.
    indices: Vec<u32>,
}

impl PortPlan {
    pub fn new(policies: Vec<PortSet>, weights: Vec<f64>) -> PortPlan {
        let plan = PortSetPlan::new(&policies, &weights, MAX_PLAN_SETS);
        let indices = (0..plan.sets.len() as u32).collect();
        PortPlan {
            policies,
            weights,
            excluded: BTreeSet::new(),
            plan,
            indices,
        }
    }

    /// Does hop `h` (engine index) accept `port` now?
    pub fn accepts(&self, h: u32, port: u16) -> bool {
        self.policies
            .get(h as usize)
            .is_some_and(|p| p.contains(port))
            && (self.excluded.is_empty() || !self.excluded.contains(&(h, port)))
    }

    /// Does hop `h`'s exit policy accept `port` (exclusions aside)?
    pub fn policy_accepts(&self, h: u32, port: u16) -> bool {
        self.policies
            .get(h as usize)
            .is_some_and(|p| p.contains(port))
    }

    pub fn excluded(&self) -> &BTreeSet<(u32, u16)> {
        &self.excluded
    }

    /// True when every hop accepts every port: one table, the class
    /// window's own.
    pub fn is_trivial(&self) -> bool {
        self.plan.is_trivial()
    }

    /// Per set: its class table index and which hops may serve it.
    pub fn sets(&self) -> impl Iterator<Item = (u32, &[bool])> + '_ {
        self.indices
            .iter()
            .zip(&self.plan.sets)
            .map(|(&i, (_, allowed))| (i, allowed.as_slice()))
    }

    /// The sets with their ports (for the log).
    pub fn set_ports(&self) -> impl Iterator<Item = (u32, &PortSet, &[bool])> + '_ {
        self.indices
            .iter()
            .zip(&self.plan.sets)
            .map(|(&i, (p, allowed))| (i, p, allowed.as_slice()))
    }

    /// Destination port -> class table index.
    pub fn port_map(&self) -> Vec<u8> {
        self.plan
            .port_to_set
            .iter()
            .map(|&s| self.indices[s as usize] as u8)
            .collect()
    }

    /// Take exactly `excluded` out on top of the exit policies. `true` when
    /// the sets changed: sets equal to one of the old plan keep its index,
    /// the others take indices the old plan does not use.
    pub fn set_excluded(&mut self, excluded: BTreeSet<(u32, u16)>) -> bool {
        if excluded == self.excluded {
            return false;
        }
        self.excluded = excluded;
        let mut accepts = self.policies.clone();
        for &(h, port) in &self.excluded {
            if let Some(a) = accepts.get_mut(h as usize) {
                a.remove(port);
            }
        }
        let plan = PortSetPlan::new(&accepts, &self.weights, MAX_PLAN_SETS);
        let old_used: BTreeSet<u32> = self.indices.iter().copied().collect();
        let mut taken = BTreeSet::new();
        let mut indices = Vec::with_capacity(plan.sets.len());
        for set in &plan.sets {
            let same = self
                .plan
                .sets
                .iter()
                .position(|old| old == set)
                .map(|i| self.indices[i])
                .filter(|i| !taken.contains(i));
            indices.push(same.unwrap_or(u32::MAX));
            if let Some(i) = same {
                taken.insert(i);
            }
        }
        let mut free = (0..MAX_CLASSES).filter(|i| !old_used.contains(i) && !taken.contains(i));
        for i in indices.iter_mut().filter(|i| **i == u32::MAX) {
            // A plan has at most MAX_CLASSES / 2 sets and so does the old
            // one: at least as many indices are free as new sets need.
            *i = free.next().unwrap_or(0);
        }
        self.plan = plan;
        self.indices = indices;
        true
    }

    pub fn len(&self) -> usize {
        self.indices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(p: &str) -> PortSet {
        PortSet::parse_policy(p).unwrap()
    }

    #[test]
    fn a_changed_set_moves_to_a_free_index_and_unchanged_ones_stay() {
        let mut p = PortPlan::new(
            vec![policy("accept 80,443"), PortSet::all()],
            vec![1.0, 1.0],
        );
        let before = p.port_map();
        let web = before[443];
        let rest = before[22];
        assert_ne!(web, rest);
        // Hop 1 excluded for port 22: the "rest" set loses hop 1, so its
        // table is new; the web set is unchanged and keeps its index.
        assert!(p.set_excluded([(1, 22)].into_iter().collect()));
        let after = p.port_map();
        assert_eq!(after[443], web, "the unchanged set keeps its table");
        let old_indices: BTreeSet<u8> = before.iter().copied().collect();
        assert!(
            !old_indices.contains(&after[22]),
            "port 22's new table is written where no port points yet"
        );
        assert!(!p.accepts(1, 22) && p.accepts(1, 23) && p.accepts(0, 443));
        assert!(
            !p.set_excluded([(1, 22)].into_iter().collect()),
            "no change"
        );
    }

    #[test]
    fn plans_never_hold_more_than_half_the_tables() {
        let policies: Vec<PortSet> = (0..40u16)
            .map(|i| policy(&format!("accept {}", 1000 + i)))
            .collect();
        let mut p = PortPlan::new(policies, vec![1.0; 40]);
        assert!(p.len() <= MAX_PLAN_SETS);
        for round in 0..5u16 {
            let before: Vec<(u32, PortSet, Vec<bool>)> = p
                .set_ports()
                .map(|(i, ports, a)| (i, ports.clone(), a.to_vec()))
                .collect();
            p.set_excluded([(round as u32, 1000 + round)].into_iter().collect());
            assert!(p.len() <= MAX_PLAN_SETS);
            let mut seen = BTreeSet::new();
            for (i, ports, allowed) in p.set_ports() {
                assert!(
                    i < MAX_CLASSES && seen.insert(i),
                    "index {i} twice or out of range"
                );
                // An index the old map used holds the very same set, so
                // rewriting it changes nothing a packet could see.
                if let Some((_, old_ports, old_allowed)) = before.iter().find(|b| b.0 == i) {
                    assert!(
                        old_ports == ports && old_allowed.as_slice() == allowed,
                        "index {i} reused for another set"
                    );
                }
            }
        }
    }
}
