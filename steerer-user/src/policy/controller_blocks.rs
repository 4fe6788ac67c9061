//! The controller's block list at work (SPEC 5.5): failover counters and
//! failed flows become exclusions per (hop, destination), with events; a
//! blocked destination without a table of its own falls back to the port.

use std::collections::{BTreeMap, BTreeSet};

use steerer_common::{
    flow::{DestKey, FailoverKey},
    FlowKey,
};

use super::{controller::Controller, decisions::Event, report::TickReport};

impl Controller {
    /// Per-tick deltas of the cumulative counters (a counter that went
    /// down was evicted and re-created: all of it is new).
    pub(super) fn feed_failovers(&mut self, now_ns: u64, failovers: &[(FailoverKey, u64)]) {
        for &(k, n) in failovers {
            let seen = self.failovers_seen.insert(k, n).unwrap_or(0);
            let delta = if n >= seen { n - seen } else { n };
            let Some(i) = self.index(k.hop) else { continue };
            if delta == 0 {
                continue;
            }
            let d = k.dest.id();
            self.dest_keys.entry(d).or_insert(k.dest);
            self.blocks.failovers(i, d, delta, now_ns);
            self.port_outcomes.failed(i, k.dest.port, delta);
            self.engine.record_failovers(i, delta);
        }
        // Counters the data plane no longer holds (LRU) are forgotten.
        if self.failovers_seen.len() > failovers.len() {
            let live: BTreeSet<FailoverKey> = failovers.iter().map(|(k, _)| *k).collect();
            self.failovers_seen.retain(|k, _| live.contains(k));
        }
    }

    /// The excluded (hop, destination) pairs now, sorted; events for
    /// pairs that came or went.
    pub(super) fn update_exclusions(
        &mut self,
        now_ns: u64,
        events: &mut Vec<Event>,
    ) -> Vec<(u32, u64)> {
        let mut now: Vec<(u32, u64)> = self.blocks.excluded_now(now_ns);
        now.sort_unstable();
        for &(h, d) in now
            .iter()
            .filter(|x| self.excluded.binary_search(x).is_err())
        {
            if let Some(&dest) = self.dest_keys.get(&d) {
                events.push(Event::Excluded {
                    hop: self.hops[h as usize].spec.name.clone(),
                    dest,
                    for_ns: self
                        .blocks
                        .excluded_until(h, &d)
                        .unwrap_or(now_ns)
                        .saturating_sub(now_ns),
                });
            }
        }
        for &(h, d) in self
            .excluded
            .iter()
            .filter(|x| now.binary_search(x).is_err())
        {
            if let Some(&dest) = self.dest_keys.get(&d) {
                events.push(Event::ExclusionLifted {
                    hop: self.hops[h as usize].spec.name.clone(),
                    dest,
                });
            }
        }
        self.excluded = now.clone();
        now
    }

    /// A blocked destination that found no table of its own: its hop is
    /// excluded for the destination's whole port instead, through the port
    /// sets (SPEC 5.5's per-destination rule needs a table per
    /// destination), if the hop fails most of its flows to that port
    /// (`PortOutcomes::fails_most`: it blocks the port; a hop that
    /// blackholes some destinations and answers the others keeps the port,
    /// and its blocked destinations cost a fast failover each). At most
    /// half of the hops accepting a port lose it this way, those blocked for
    /// the most such destinations first: one hop's blackholes never take a
    /// port from every hop (SPEC 5.6).
    pub(super) fn fall_back_to_ports(
        &mut self,
        excluded: &[(u32, u64)],
        report: &TickReport<FlowKey>,
        events: &mut Vec<Event>,
    ) {
        let unplaced: BTreeSet<u64> = report.unplaced.iter().copied().collect();
        let mut evidence: BTreeMap<u16, BTreeMap<u32, usize>> = BTreeMap::new();
        let outcomes = &self.port_outcomes;
        for &(h, d) in excluded
            .iter()
            .filter(|&&(h, d)| unplaced.contains(&d) && outcomes.fails_most(h, DestKey::port_of(d)))
        {
            *evidence
                .entry(DestKey::port_of(d))
                .or_default()
                .entry(h)
                .or_default() += 1;
        }
        let mut wanted: BTreeSet<(u32, u16)> = BTreeSet::new();
        for (port, hops) in evidence {
            let accepting = (0..self.hops.len() as u32)
                .filter(|&h| self.ports.policy_accepts(h, port))
                .count();
            let mut by_evidence: Vec<(usize, u32)> =
                hops.into_iter().map(|(h, n)| (n, h)).collect();
            by_evidence.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            wanted.extend(
                by_evidence
                    .into_iter()
                    .take(accepting / 2)
                    .map(|(_, h)| (h, port)),
            );
        }
        let before = self.ports.excluded().clone();
        if !self.ports.set_excluded(wanted.clone()) {
            return;
        }
        let name = |h: u32| self.hops[h as usize].spec.name.clone();
        for &(h, port) in wanted.difference(&before) {
            events.push(Event::PortExcluded { hop: name(h), port });
        }
        for &(h, port) in before.difference(&wanted) {
            events.push(Event::PortReadmitted { hop: name(h), port });
        }
        events.push(Event::PortSetsChanged {
            sets: self.ports.len(),
        });
    }
}
