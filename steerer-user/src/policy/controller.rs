//! The one control loop both drivers run (quinn-proto style: `handle_*`
//! inputs with the time passed in, [`Decisions`] out). The daemon feeds it
//! from BPF maps and netlink, the simulator from its simulated network;
//! neither holds a rule of the policy.
//!
//! It owns the engine, the block list (per hop and destination, SPEC 5.5),
//! the fast-failover counters' baselines, the port sets and their table
//! indices, and the destination tables' indices. Hops are named; the data
//! plane's hop id of a name is given to it (see `hop_ids`).

use std::collections::{BTreeSet, HashMap};

use steerer_common::{
    flow::{DestKey, FailoverKey},
    limits::MAX_HOPS,
    FlowKey, FlowValue,
};

use super::{
    blocked::BlockList,
    decisions::{ClassTable, Decisions, Event, HopDecision},
    dest_slots::DestSlots,
    engine::Engine,
    params::{HopSpec, Params},
    port_plan::PortPlan,
    report::{FlowSample, TickReport},
    slot_table::EMPTY,
};
use crate::portsets::PortSet;

/// A hop as the controller is told about it.
#[derive(Debug, Clone)]
pub struct ControllerHop {
    pub spec: HopSpec,
    /// Its data-plane id (stable for its name).
    pub id: u32,
    /// Destination ports its exit policy accepts.
    pub accepts: PortSet,
    /// Usable at start (link up, next hop resolved).
    pub usable: bool,
}

pub struct Controller {
    engine: Engine<FlowKey>,
    hops: Vec<ControllerHop>,
    /// Data-plane id -> engine index.
    index_of: Vec<Option<u32>>,
    /// Per (engine hop, destination id).
    blocks: BlockList<u64>,
    /// Excluded (engine hop, destination id) pairs at the last tick.
    excluded: Vec<(u32, u64)>,
    /// Keys of destinations the controller may have to name to the data
    /// plane (blocked or windowed ones).
    dest_keys: HashMap<u64, DestKey>,
    failovers_seen: HashMap<FailoverKey, u64>,
    ports: PortPlan,
    dests: DestSlots,
    /// Hops whose link went down since the last tick: their flows are
    /// reset at the next flow-table reading.
    pending_resets: Vec<u32>,
}

impl Controller {
    pub fn new(hops: Vec<ControllerHop>, params: Params) -> Controller {
        let specs: Vec<HopSpec> = hops.iter().map(|h| h.spec.clone()).collect();
        let mut engine = Engine::new(specs, params);
        let mut index_of = vec![None; MAX_HOPS as usize];
        for (i, h) in hops.iter().enumerate() {
            if let Some(slot) = index_of.get_mut(h.id as usize) {
                *slot = Some(i as u32);
            }
            engine.set_usable(i, h.usable);
        }
        let ports = PortPlan::new(
            hops.iter().map(|h| h.accepts.clone()).collect(),
            hops.iter().map(|h| h.spec.initial_estimate).collect(),
        );
        Controller {
            engine,
            hops,
            index_of,
            blocks: BlockList::new(),
            excluded: Vec::new(),
            dest_keys: HashMap::new(),
            failovers_seen: HashMap::new(),
            ports,
            dests: DestSlots::default(),
            pending_resets: Vec::new(),
        }
    }

    pub fn engine(&self) -> &Engine<FlowKey> {
        &self.engine
    }

    pub fn hops(&self) -> &[ControllerHop] {
        &self.hops
    }

    pub fn ports(&self) -> &PortPlan {
        &self.ports
    }

    /// The data plane's state before the first tick (to write before
    /// attaching).
    pub fn initial(&self) -> Decisions {
        self.state(Vec::new(), Vec::new(), None)
    }

    /// The daemon starts on maps an earlier run left: what their flows and
    /// failover counters say so far is not this run's measurement.
    pub fn handle_start(
        &mut self,
        now_ns: u64,
        flows: &[(FlowKey, FlowValue)],
        failovers: &[(FailoverKey, u64)],
    ) {
        let samples: Vec<FlowSample<FlowKey>> = flows
            .iter()
            .filter_map(|(k, v)| self.sample(k, v))
            .collect();
        self.engine.baseline(now_ns, samples);
        self.failovers_seen = failovers.iter().copied().collect();
    }

    /// The hop with data-plane id `id` became usable or unusable (link or
    /// carrier, next hop resolution). Takes effect at once: the hop leaves
    /// (or rejoins) every table; its flows are reset at the next tick.
    pub fn handle_link(&mut self, _now_ns: u64, id: u32, usable: bool) -> Decisions {
        let mut events = Vec::new();
        if let Some(i) = self.index(id) {
            if self.hops[i as usize].usable != usable {
                self.hops[i as usize].usable = usable;
                self.engine.set_usable(i as usize, usable);
                let hop = self.hops[i as usize].spec.name.clone();
                if usable {
                    self.pending_resets.retain(|&h| h != i);
                    events.push(Event::HopUp { hop });
                } else {
                    self.pending_resets.push(i);
                    events.push(Event::HopDown { hop });
                }
            }
        }
        let destinations = self.destination_decisions(&mut events, None);
        self.state(events, destinations, None)
    }

    /// One tick: every flow of the table and every fast-failover counter,
    /// as read at `now_ns`.
    pub fn handle_tick(
        &mut self,
        now_ns: u64,
        flows: &[(FlowKey, FlowValue)],
        failovers: &[(FailoverKey, u64)],
    ) -> Decisions {
        let mut events = Vec::new();
        self.feed_failovers(now_ns, failovers);
        let samples: Vec<FlowSample<FlowKey>> = flows
            .iter()
            .filter_map(|(k, v)| self.sample(k, v))
            .collect();
        let observed = self.engine.observe(now_ns, samples);
        for ev in &observed.newly_failed {
            self.dest_keys
                .entry(ev.destination)
                .or_insert_with(|| DestKey::of(&ev.key));
            self.blocks.flow_failed(ev.hop, ev.destination, now_ns);
        }
        for ev in &observed.newly_answered {
            self.blocks.flow_answered(ev.hop, ev.destination);
        }
        let excluded = self.update_exclusions(now_ns, &mut events);
        let mut pinned: Vec<u64> = excluded.iter().map(|&(_, d)| d).collect();
        pinned.sort_unstable();
        pinned.dedup();
        let ports = &self.ports;
        let allowed = |d: u64, h: u32| {
            ports.accepts(h, DestKey::port_of(d)) && excluded.binary_search(&(h, d)).is_err()
        };
        let report = self.engine.plan(observed, &allowed, &pinned);
        for &h in &report.disappeared {
            // Its per-destination history is moot; a re-test starts clean.
            self.blocks.forget_hop(h);
            events.push(Event::HopDisappeared {
                hop: self.hops[h as usize].spec.name.clone(),
                failed: report.hops[h as usize].newly_failed,
            });
        }
        self.fall_back_to_ports(&excluded, &report, &mut events);
        self.learn_keys(&report, flows);
        let destinations = self.destination_decisions(&mut events, Some(&report));
        let resets = self.resets(&report, flows, &mut events);
        self.forget_keys();
        self.state(events, destinations, Some(report))
            .with_resets(resets)
    }

    /// Per-tick deltas of the cumulative counters (a counter that went
    /// down was evicted and re-created: all of it is new).
    fn feed_failovers(&mut self, now_ns: u64, failovers: &[(FailoverKey, u64)]) {
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
    fn update_exclusions(&mut self, now_ns: u64, events: &mut Vec<Event>) -> Vec<(u32, u64)> {
        let mut now: Vec<(u32, u64)> = self.blocks.excluded_now(now_ns);
        now.sort_unstable();
        for &(h, d) in now
            .iter()
            .filter(|x| self.excluded.binary_search(x).is_err())
        {
            if let Some(&dest) = self.dest_keys.get(&d) {
                events.push(Event::Excluded {
                    hop: self.hops[h as usize].spec.name.clone(),
                    hop_index: h,
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
    /// sets (SPEC 5.5's per-destination rule needs a table per destination).
    fn fall_back_to_ports(
        &mut self,
        excluded: &[(u32, u64)],
        report: &TickReport<FlowKey>,
        events: &mut Vec<Event>,
    ) {
        let unplaced: BTreeSet<u64> = report.unplaced.iter().copied().collect();
        let wanted: BTreeSet<(u32, u16)> = excluded
            .iter()
            .filter(|(_, d)| unplaced.contains(d))
            .map(|&(h, d)| (h, DestKey::port_of(d)))
            .collect();
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

    /// Keys of newly windowed destinations, from the flows that made them.
    fn learn_keys(&mut self, report: &TickReport<FlowKey>, flows: &[(FlowKey, FlowValue)]) {
        let missing = report
            .destination_tables
            .iter()
            .any(|d| !self.dest_keys.contains_key(&d.destination));
        if !missing {
            return;
        }
        let wanted: BTreeSet<u64> = report
            .destination_tables
            .iter()
            .map(|d| d.destination)
            .filter(|d| !self.dest_keys.contains_key(d))
            .collect();
        for (k, _) in flows {
            let key = DestKey::of(k);
            let id = key.id();
            if wanted.contains(&id) {
                self.dest_keys.entry(id).or_insert(key);
            }
        }
    }

    /// Keys are kept while a destination is blocked or windowed.
    fn forget_keys(&mut self) {
        let blocked: BTreeSet<u64> = self.blocks.destinations().copied().collect();
        let dests = &self.dests;
        self.dest_keys
            .retain(|d, _| blocked.contains(d) || dests.holds(*d));
    }

    fn destination_decisions(
        &mut self,
        events: &mut Vec<Event>,
        report: Option<&TickReport<FlowKey>>,
    ) -> Vec<super::decisions::DestinationDecision> {
        let tables: Vec<(u64, Vec<u32>)> = match report {
            Some(r) => r
                .destination_tables
                .iter()
                .map(|d| (d.destination, self.to_ids(&d.table)))
                .collect(),
            None => self
                .dests
                .held()
                .filter_map(|(d, _, _)| {
                    self.engine
                        .table_for_destination(d)
                        .map(|t| (d, self.to_ids(t)))
                })
                .collect(),
        };
        let wanted: Vec<(u64, &[u32])> = tables.iter().map(|(d, t)| (*d, t.as_slice())).collect();
        let keys = &self.dest_keys;
        self.dests.sync(&wanted, |d| keys.get(&d).copied(), events)
    }

    /// Flows of hops that disappeared this tick or went down since the last.
    fn resets(
        &mut self,
        report: &TickReport<FlowKey>,
        flows: &[(FlowKey, FlowValue)],
        events: &mut Vec<Event>,
    ) -> Vec<FlowKey> {
        let mut out = Vec::new();
        let down = std::mem::take(&mut self.pending_resets);
        let why = |h: &u32| {
            if down.contains(h) {
                "its link went down"
            } else {
                "it answered no flow"
            }
        };
        let hops: BTreeSet<u32> = report.disappeared.iter().chain(&down).copied().collect();
        for h in &hops {
            let id = self.hops[*h as usize].id;
            let before = out.len();
            out.extend(flows.iter().filter(|(_, v)| v.hop == id).map(|(k, _)| *k));
            events.push(Event::FlowsReset {
                hop: self.hops[*h as usize].spec.name.clone(),
                flows: out.len() - before,
                why: why(h),
            });
        }
        out
    }

    /// The desired data-plane state.
    fn state(
        &self,
        events: Vec<Event>,
        destinations: Vec<super::decisions::DestinationDecision>,
        report: Option<TickReport<FlowKey>>,
    ) -> Decisions {
        Decisions {
            hops: self
                .hops
                .iter()
                .map(|h| HopDecision {
                    id: h.id,
                    name: h.spec.name.clone(),
                    enabled: h.usable,
                })
                .collect(),
            class_tables: self.class_tables(),
            port_sets: self.ports.port_map(),
            destinations,
            reset_flows: Vec::new(),
            events,
            report,
        }
    }

    fn class_tables(&self) -> Vec<ClassTable> {
        if self.ports.is_trivial() {
            let (index, _) = self.ports.sets().next().unwrap_or((0, &[]));
            return vec![ClassTable {
                index,
                table: self.to_ids(self.engine.table()),
            }];
        }
        self.ports
            .sets()
            .map(|(index, allowed)| ClassTable {
                index,
                table: self.to_ids(&self.engine.table_for(allowed)),
            })
            .collect()
    }

    /// Engine indices -> data-plane ids.
    fn to_ids(&self, table: &[u32]) -> Vec<u32> {
        table
            .iter()
            .map(|&h| match self.hops.get(h as usize) {
                Some(hop) if h != EMPTY => hop.id,
                _ => EMPTY,
            })
            .collect()
    }

    fn index(&self, id: u32) -> Option<u32> {
        self.index_of.get(id as usize).copied().flatten()
    }

    fn sample(&self, k: &FlowKey, v: &FlowValue) -> Option<FlowSample<FlowKey>> {
        Some(FlowSample {
            key: *k,
            destination: DestKey::of(k).id(),
            hop: self.index(v.hop)?,
            bytes: v.bytes,
            reply_bytes: v.reply_bytes,
            packets: v.packets,
            reply_packets: v.reply_packets,
            first_seen_ns: v.first_seen_ns,
            last_seen_ns: v.last_seen_ns,
        })
    }
}

impl Decisions {
    fn with_resets(mut self, resets: Vec<FlowKey>) -> Decisions {
        self.reset_flows = resets;
        self
    }
}
