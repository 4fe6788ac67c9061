//! A new configuration while steering (SIGHUP): the controller of the new
//! hop list takes over what the running one learned, hop by hop by name
//! (SPEC 5: a hop is its name), so a reload forgets nothing about the hops
//! it keeps: their speeds over L, failure counts, disappearance re-tests,
//! held-down links, blocks per destination and the failover baselines.
//! A hop no longer configured takes its history with it; a new one starts
//! as at start-up.

use std::collections::HashMap;

use super::{controller::Controller, decisions::Decisions};

/// What a reload changed in the pool, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadSummary {
    pub kept: Vec<String>,
    pub added: Vec<String>,
    pub removed: Vec<String>,
}

impl Controller {
    /// A reload: this controller (just made with `new` from the new
    /// configuration, no `handle_start`) takes over `old`'s learned state
    /// (see the module) and says what the data plane should hold now.
    /// Flows keep their hops: a hop no longer configured is in no table
    /// and not in `hops` (its entry and flows are left as they are, to
    /// drain); the next tick measures as if no reload had happened.
    pub fn handle_reload(&mut self, old: Controller) -> (ReloadSummary, Decisions) {
        let summary = self.inherit(old);
        (summary, self.decide(Vec::new(), None, false))
    }

    fn inherit(&mut self, old: Controller) -> ReloadSummary {
        let new_index: HashMap<&str, u32> = self
            .hops
            .iter()
            .enumerate()
            .map(|(i, h)| (h.spec.name.as_str(), i as u32))
            .collect();
        let mapping: Vec<Option<u32>> = old
            .hops
            .iter()
            .map(|h| new_index.get(h.spec.name.as_str()).copied())
            .collect();
        let mut summary = ReloadSummary::default();
        for (j, h) in old.hops.iter().enumerate() {
            match mapping[j] {
                Some(_) => summary.kept.push(h.spec.name.clone()),
                None => summary.removed.push(h.spec.name.clone()),
            }
        }
        let old_names: std::collections::HashSet<&str> =
            old.hops.iter().map(|h| h.spec.name.as_str()).collect();
        summary.added = self
            .hops
            .iter()
            .filter(|h| !old_names.contains(h.spec.name.as_str()))
            .map(|h| h.spec.name.clone())
            .collect();
        let mut old_engine = old.engine;
        for (j, new) in mapping.iter().enumerate() {
            let Some(i) = *new else { continue };
            let (i, j) = (i as usize, j);
            let usable = self.engine.state[i].usable;
            self.engine.state[i] = old_engine.state[j].clone();
            // Link state is the adapter's word now, not the old one's.
            self.engine.state[i].usable = usable;
            self.engine.pending_failovers[i] = old_engine.pending_failovers[j];
        }
        // The per-flow memo: flows keep their counters' history (their
        // hop index changes with the list, their key does not).
        self.engine.flows = std::mem::take(&mut old_engine.flows);
        self.engine.tick_count = old_engine.tick_count;
        self.engine.last_tick_ns = old_engine.last_tick_ns;
        let new_of = |h: u32| mapping.get(h as usize).copied().flatten();
        self.inherit_windows(&mut old_engine, &new_of);
        self.blocks = old
            .blocks
            .renumbered(new_of)
            .with_failover_exclusion_of(self.engine.params().failover_exclusion_ns);
        self.dest_keys = old.dest_keys;
        self.answered_dests = old.answered_dests;
        self.port_outcomes = old.port_outcomes.renumbered(new_of);
        self.failovers_seen = old.failovers_seen;
        self.rejoin_at = old
            .rejoin_at
            .into_iter()
            .filter_map(|(h, t)| Some((new_of(h)?, t)))
            .collect();
        self.dests = old.dests;
        self.logged_shares = old.logged_shares;
        let probe_params = self.engine.params().probe.clone();
        self.probes = old.probes.renumbered(probe_params, new_of);
        self.retest = old.retest.into_iter().filter_map(new_of).collect();
        for i in 0..self.hops.len() as u32 {
            if let Some(ms) = self.probes.rtt_ms(i) {
                self.engine.set_latency(i as usize, Some(ms));
            }
            // A hop lost by its probes stays out under the new list.
            if self.probes.is_down(i) {
                self.refresh_usable(i);
            }
        }
        let old_names: Vec<&str> = old.hops.iter().map(|h| h.spec.name.as_str()).collect();
        let names: Vec<&str> = self.hops.iter().map(|h| h.spec.name.as_str()).collect();
        self.ids = old.ids.renamed(&old_names, &names);
        self.started_ns = old.started_ns;
        self.last_tick_ns = old.last_tick_ns;
        summary
    }

    /// The class window keeps its members that stay (new ones fill it up),
    /// destination windows likewise; every table is rebuilt from the
    /// inherited speeds.
    fn inherit_windows(
        &mut self,
        old: &mut super::engine::Engine<steerer_common::FlowKey>,
        new_of: &dyn Fn(u32) -> Option<u32>,
    ) {
        let e = &mut self.engine;
        let (speeds, sources) = e.speeds();
        e.last_speeds = speeds;
        e.last_sources = sources;
        for (j, &slow) in old.slow.iter().enumerate() {
            if let Some(i) = new_of(j as u32) {
                e.slow[i as usize] = slow;
            }
        }
        e.window_size = old.window_size;
        e.window.members = old
            .window
            .members
            .iter()
            .filter_map(|&h| new_of(h))
            .collect();
        e.destinations = std::mem::take(&mut old.destinations);
        for d in e.destinations.values_mut() {
            d.window.members = d.window.members.iter().filter_map(|&h| new_of(h)).collect();
        }
        // Members that cannot be used now (a hop whose link is down in the
        // new adapter's view) leave, as they would by `set_usable`.
        let unusable: Vec<u32> = (0..e.state.len() as u32)
            .filter(|&h| !e.usable_now(h as usize))
            .collect();
        for h in unusable {
            e.window.remove(h);
            for d in e.destinations.values_mut() {
                d.window.remove(h);
            }
        }
        e.refill_and_rebuild();
    }
}
