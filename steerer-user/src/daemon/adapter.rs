//! The daemon's adapter: BPF maps -> [`Controller`] -> BPF maps. Every rule
//! is the controller's; this reads the flow table and the failover
//! counters, hands them over with the time, and writes the decisions with
//! the shared `apply`.

use std::collections::HashMap;

use steerer_common::{flow::DestKey, hop::HOP_ENABLED, stats::StatReason, FlowKey, HopEntry};

use super::evictions::EvictionCount;

use crate::{
    apply::{apply, Applied, ApplyOutcome, DataplaneWriter},
    dataplane::{Dataplane, DataplaneError},
    policy::{Controller, Decisions},
};

/// The controller with what the adapter knows of the data plane.
pub struct Adapter {
    pub controller: Controller,
    pub applied: Applied,
    /// How each hop name is reached (interface, MACs, mark); the
    /// controller decides which id it holds and whether it is enabled.
    pub entries: HashMap<String, HopEntry>,
    /// The flood guard's refusals at the last tick (all CPUs, cumulative).
    refused_seen: Option<u64>,
    evictions: EvictionCount,
}

/// One tick's result.
pub struct TickOutcome {
    pub decisions: Decisions,
    pub applied: ApplyOutcome,
    /// Entries of the flow table read this tick.
    pub flows: usize,
    /// New flows the flood guard steered without an entry since the last
    /// tick.
    pub refused_new_flows: u64,
    /// Per hop id: the `FAILOVERS` counters summed over destinations.
    pub failovers_by_hop: Vec<(u32, u64)>,
    /// The data plane's counters by reason (all CPUs, cumulative), read
    /// before the flow table; empty if they could not be read.
    pub stats: Vec<(StatReason, u64)>,
    /// Flows the flow table's LRU evicted since the last tick, and since
    /// the daemon started (estimated: see `evictions.rs`).
    pub evicted_flows: u64,
    pub evicted_flows_total: u64,
}

impl Adapter {
    pub fn new(controller: Controller, entries: HashMap<String, HopEntry>) -> Adapter {
        Adapter {
            controller,
            applied: Applied::default(),
            entries,
            refused_seen: None,
            evictions: EvictionCount::default(),
        }
    }

    /// Read the maps at `now_ns`, let the controller decide, write. A map
    /// that cannot be read fails the tick (the caller logs it and tries
    /// again at the next); failed writes are in the outcome and are
    /// written again next time.
    pub fn tick(&mut self, dp: &mut Dataplane, now_ns: u64) -> Result<TickOutcome, DataplaneError> {
        // The counters before the table: see `EvictionCount`.
        let stats = dp.stats().unwrap_or_default();
        let flows = dp.flows()?;
        let inserted = stats.iter().find(|(r, _)| *r == StatReason::NewFlow);
        let evicted_flows = match inserted {
            Some(&(_, n)) => self.evictions.observe(n, flows.len()),
            None => 0,
        };
        let failovers = dp.failovers()?;
        let decisions = self.controller.handle_tick(now_ns, &flows, &failovers);
        let applied = self.apply(dp, &decisions);
        // A counter that cannot be read is no reason to fail the tick.
        let refused = dp.new_flows_refused().unwrap_or(0);
        let since = refused.saturating_sub(self.refused_seen.unwrap_or(refused));
        self.refused_seen = Some(refused);
        let mut by_hop: std::collections::BTreeMap<u32, u64> = Default::default();
        for (k, n) in &failovers {
            *by_hop.entry(k.hop).or_default() += n;
        }
        Ok(TickOutcome {
            decisions,
            applied,
            flows: flows.len(),
            refused_new_flows: since,
            failovers_by_hop: by_hop.into_iter().collect(),
            stats,
            evicted_flows,
            evicted_flows_total: self.evictions.total(),
        })
    }

    /// Hop `name` became usable or not (its entry in `entries` is current).
    pub fn link(
        &mut self,
        dp: &mut Dataplane,
        name: &str,
        usable: bool,
        now_ns: u64,
    ) -> (Decisions, ApplyOutcome) {
        let decisions = self.controller.handle_link(now_ns, name, usable);
        // The entry itself changed (index, MACs): write it whatever the
        // enabled flag was.
        if let Some(id) = self.controller.id_of(name) {
            self.applied.forget_hop(id);
        }
        let out = self.apply(dp, &decisions);
        (decisions, out)
    }

    /// The controller's timeout passed with no tick due (a hold-down ended).
    pub fn timeout(&mut self, dp: &mut Dataplane, now_ns: u64) -> (Decisions, ApplyOutcome) {
        let decisions = self.controller.handle_timeout(now_ns);
        let out = self.apply(dp, &decisions);
        (decisions, out)
    }

    pub fn apply(&mut self, dp: &mut Dataplane, d: &Decisions) -> ApplyOutcome {
        let mut w = MapWriter {
            dp,
            entries: &self.entries,
        };
        let out = apply(&mut w, &mut self.applied, d);
        self.evictions.deleted(out.flows_reset + out.flows_expired);
        out
    }
}

/// [`DataplaneWriter`] over the real maps.
pub struct MapWriter<'a> {
    pub dp: &'a mut Dataplane,
    pub entries: &'a HashMap<String, HopEntry>,
}

impl DataplaneWriter for MapWriter<'_> {
    type Error = DataplaneError;

    fn set_hop(&mut self, id: u32, name: &str, enabled: bool) -> Result<(), DataplaneError> {
        // A pool hop always has an entry; without one it stays disabled.
        let known = self.entries.get(name).copied();
        let mut e = known.unwrap_or_default();
        if enabled && known.is_some() {
            e.flags |= HOP_ENABLED;
        } else {
            e.flags &= !HOP_ENABLED;
        }
        // The name first: a flow made on the id is then listed by name.
        self.dp.set_hop_name(id, Some(name))?;
        self.dp.set_hop(id, &e)
    }

    fn clear_hop(&mut self, id: u32) -> Result<(), DataplaneError> {
        self.dp.set_hop(id, &HopEntry::default())?;
        self.dp.set_hop_name(id, None)
    }

    fn write_slots(
        &mut self,
        base: u32,
        table: &[u32],
        previous: Option<&[u32]>,
    ) -> Result<usize, DataplaneError> {
        self.dp.write_slot_range(base, table, previous)
    }

    fn write_port_sets(
        &mut self,
        map: &[u8],
        previous: Option<&[u8]>,
    ) -> Result<(), DataplaneError> {
        self.dp.set_port_sets(map, previous)
    }

    fn point_destination(&mut self, dest: &DestKey, index: u32) -> Result<(), DataplaneError> {
        self.dp.point_destination(dest, index)
    }

    fn remove_destination(&mut self, dest: &DestKey) -> Result<(), DataplaneError> {
        self.dp.remove_destination(dest)
    }

    fn remove_flows(&mut self, keys: &[FlowKey]) -> Result<usize, DataplaneError> {
        self.dp.remove_flows(keys)
    }
}
