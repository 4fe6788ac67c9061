//! Port sets for steerer's own hops (issue 6, item 5): from each hop's exit
//! policy to the data plane's port -> set array and, per set, the hops that
//! accept every port of it. A flow is only ever steered to a hop of its
//! port's set; a set no hop accepts gets an empty table, so its flows pass
//! unsteered (and are counted).

use steerer_common::limits::MAX_CLASSES;

use super::{exact_classes, has_bit, merge, Metric, PortSet};

#[derive(Debug, Clone)]
pub struct PortSetPlan {
    /// `port_to_set[p]`: the set of destination port p (entry 0 unused).
    pub port_to_set: Vec<u8>,
    /// Per set: its ports and which hops accept all of them.
    pub sets: Vec<(PortSet, Vec<bool>)>,
}

impl PortSetPlan {
    /// `accepts[h]`: the ports hop h accepts; `weights[h]`: its weight for
    /// the merge when there are more exact classes than `max_sets` (at
    /// most `MAX_CLASSES`).
    pub fn new(accepts: &[PortSet], weights: &[f64], max_sets: usize) -> PortSetPlan {
        let refs: Vec<&PortSet> = accepts.iter().collect();
        let classes = exact_classes(&refs);
        let k = max_sets.clamp(1, MAX_CLASSES as usize);
        let merged = merge(&classes, weights, k, Metric::Bandwidth);
        let ports = merged.ports(&classes);
        let supporters = merged.supporters(&classes);
        let mut port_to_set = vec![0u8; 65536];
        let mut sets = Vec::with_capacity(ports.len());
        for (i, (p, s)) in ports.into_iter().zip(supporters).enumerate() {
            for port in p.ports() {
                port_to_set[port as usize] = i as u8;
            }
            let allowed = (0..accepts.len()).map(|h| has_bit(&s, h)).collect();
            sets.push((p, allowed));
        }
        PortSetPlan { port_to_set, sets }
    }

    /// True when every hop accepts every port: one set, nothing to restrict.
    pub fn is_trivial(&self) -> bool {
        self.sets.len() == 1 && self.sets[0].1.iter().all(|&a| a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_a_web_only_and_hop_b_everything() {
        let a = PortSet::parse_policy("accept 80,443").unwrap();
        let b = PortSet::all();
        let plan = PortSetPlan::new(&[a, b], &[100.0, 100.0], 16);
        assert_eq!(plan.sets.len(), 2);
        let web = plan.port_to_set[443] as usize;
        let ssh = plan.port_to_set[22] as usize;
        assert_ne!(web, ssh);
        assert_eq!(plan.port_to_set[80] as usize, web);
        assert_eq!(plan.sets[web].1, vec![true, true]);
        assert_eq!(plan.sets[ssh].1, vec![false, true], "port 22 only via B");
        assert!(!plan.is_trivial());
    }

    #[test]
    fn no_policies_means_one_set_for_everyone() {
        let plan = PortSetPlan::new(&[PortSet::all(), PortSet::all()], &[1.0, 1.0], 16);
        assert!(plan.is_trivial());
        assert!(plan.port_to_set.iter().all(|&s| s == 0));
    }

    #[test]
    fn ports_nobody_accepts_get_a_set_without_hops() {
        let a = PortSet::parse_policy("reject 25").unwrap();
        let plan = PortSetPlan::new(&[a.clone(), a], &[1.0, 1.0], 16);
        let smtp = plan.port_to_set[25] as usize;
        assert_eq!(plan.sets[smtp].1, vec![false, false]);
    }

    #[test]
    fn more_classes_than_tables_are_merged_safely() {
        // 40 hops each accepting a different single port: 41 classes.
        let accepts: Vec<PortSet> = (0..40u16)
            .map(|i| PortSet::parse_policy(&format!("accept {}", 1000 + i)).unwrap())
            .collect();
        let plan = PortSetPlan::new(&accepts, &vec![1.0; 40], 16);
        assert!(plan.sets.len() <= 16);
        // Safety after merging: an allowed hop accepts every port of its set.
        for (ports, allowed) in &plan.sets {
            for (h, &ok) in allowed.iter().enumerate() {
                if ok {
                    assert!(ports.ports().all(|p| accepts[h].contains(p)));
                }
            }
        }
    }
}
