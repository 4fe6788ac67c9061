//! The one control loop both drivers run (quinn-proto style: `handle_*`
//! inputs with the time passed in, [`Decisions`] out). The daemon feeds it
//! from BPF maps and netlink, the simulator from its simulated network;
//! neither holds a rule of the policy.
//!
//! It owns the engine, the block list (per hop and destination, SPEC 5.5),
//! the fast-failover counters' baselines, the port sets and their table
//! indices, and the destination tables' indices. Hops are named; the data
//! plane's hop id of a name is its `IdTable`'s. Active probes come in
//! through `controller_probes`.

use std::collections::HashMap;

use steerer_common::{
    flow::{DestKey, FailoverKey},
    limits::MAX_HOPS,
    FlowKey, FlowValue,
};

use super::{
    blocked::BlockList,
    decisions::{Decisions, Event},
    dest_slots::DestSlots,
    engine::Engine,
    id_table::IdTable,
    params::{HopSpec, Params},
    port_outcomes::PortOutcomes,
    port_plan::PortPlan,
    probe_book::ProbeBook,
    report::FlowSample,
};
use crate::portsets::PortSet;

/// A hop as the controller is told about it.
#[derive(Debug, Clone)]
pub struct ControllerHop {
    pub spec: HopSpec,
    /// The data-plane id its name holds now (from the pins), if any. A
    /// hop without one gets one when a table first names it.
    pub id: Option<u32>,
    /// Destination ports its exit policy accepts.
    pub accepts: PortSet,
    /// Usable at start (link up, next hop resolved).
    pub usable: bool,
    /// What the operator allows (new flows, none, or no flows at all).
    pub admin: Admin,
}

/// The operator's word on a hop, besides its link state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Admin {
    #[default]
    Active,
    /// No new flows; established ones stay.
    Drain,
    /// No flows: out of every table and its flows reset at the next tick.
    Disabled,
}

pub struct Controller {
    pub(super) engine: Engine<FlowKey>,
    pub(super) hops: Vec<ControllerHop>,
    /// Data-plane ids of the hops tables name or flows point at.
    pub(super) ids: IdTable,
    /// Name -> engine index.
    pub(super) by_name: HashMap<String, u32>,
    /// Per (engine hop, destination id).
    pub(super) blocks: BlockList<u64>,
    /// Excluded (engine hop, destination id) pairs at the last tick.
    pub(super) excluded: Vec<(u32, u64)>,
    /// Keys of destinations the controller may have to name to the data
    /// plane (blocked or windowed ones).
    pub(super) dest_keys: HashMap<u64, DestKey>,
    pub(super) failovers_seen: HashMap<FailoverKey, u64>,
    /// Destinations some flow got a first reply from within L, and when:
    /// a flow of weak evidence blocks its hop for a destination only if
    /// the destination answers through another hop.
    pub(super) answered_dests: HashMap<u64, u64>,
    /// How each hop's flows to each port ended: the port fallback's
    /// evidence that a hop blocks a port.
    pub(super) port_outcomes: PortOutcomes,
    pub(super) ports: PortPlan,
    pub(super) dests: DestSlots,
    /// Hops whose link went down since the last tick: their flows are
    /// reset at the next flow-table reading.
    pub(super) pending_resets: Vec<u32>,
    /// Hops (engine index) whose link came back, and when their hold-down
    /// ends.
    pub(super) rejoin_at: Vec<(u32, u64)>,
    /// What the probes through each hop said.
    pub(super) probes: ProbeBook,
    /// The share each hop's weight was last logged at, for the
    /// weight-change events.
    pub(super) logged_shares: super::controller_weights::LoggedShares,
    /// Hops declared disappeared while their probes were lost: re-tested
    /// as soon as a probe round is answered.
    pub(super) retest: std::collections::HashSet<u32>,
    /// When `handle_start` was called, and the last tick.
    pub(super) started_ns: Option<u64>,
    pub(super) last_tick_ns: Option<u64>,
}

impl Controller {
    pub fn new(hops: Vec<ControllerHop>, params: Params) -> Controller {
        let specs: Vec<HopSpec> = hops.iter().map(|h| h.spec.clone()).collect();
        let id_capacity = params.hop_ids.min(MAX_HOPS);
        let probes = ProbeBook::new(params.probe.clone());
        let blocks = BlockList::with_failover_exclusion(params.failover_exclusion_ns);
        let port_outcomes = PortOutcomes::new(params.memory_ns);
        let mut engine = Engine::new(specs, params);
        let held: Vec<Option<u32>> = hops.iter().map(|h| h.id).collect();
        let ids = IdTable::new(id_capacity, &held);
        let by_name = hops
            .iter()
            .enumerate()
            .map(|(i, h)| (h.spec.name.clone(), i as u32))
            .collect();
        engine.set_usable_many(
            hops.iter()
                .enumerate()
                .map(|(i, h)| (i, h.usable && h.admin == Admin::Active)),
        );
        let pending_resets = (0..hops.len() as u32)
            .filter(|&i| hops[i as usize].admin == Admin::Disabled)
            .collect();
        let ports = PortPlan::new(
            hops.iter().map(|h| h.accepts.clone()).collect(),
            hops.iter().map(|h| h.spec.initial_estimate).collect(),
        );
        Controller {
            engine,
            hops,
            ids,
            by_name,
            blocks,
            excluded: Vec::new(),
            dest_keys: HashMap::new(),
            failovers_seen: HashMap::new(),
            answered_dests: HashMap::new(),
            port_outcomes,
            ports,
            dests: DestSlots::default(),
            pending_resets,
            rejoin_at: Vec::new(),
            probes,
            logged_shares: Default::default(),
            retest: Default::default(),
            started_ns: None,
            last_tick_ns: None,
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
    pub fn initial(&mut self) -> Decisions {
        self.decide(Vec::new(), None, false)
    }

    /// Flows point at `id` but its name (if known: `HOP_NAMES`) is not in
    /// the pool: the id stays theirs while they drain (before `initial`).
    pub fn hold_draining(&mut self, id: u32, name: Option<String>) {
        self.ids.hold_draining(id, name);
    }

    /// The data-plane id hop `name` holds now, if any.
    pub fn id_of(&self, name: &str) -> Option<u32> {
        self.ids.id(*self.by_name.get(name)?)
    }

    /// Steering starts at `now_ns` on the flows and failover counters the
    /// maps hold (an earlier run's, or none): what they say so far is not
    /// this run's measurement.
    pub fn handle_start(
        &mut self,
        now_ns: u64,
        flows: &[(FlowKey, FlowValue)],
        failovers: &[(FailoverKey, u64)],
    ) {
        self.started_ns = Some(now_ns);
        self.ids.count_flows(flows.iter().map(|(_, v)| v.hop));
        let samples: Vec<FlowSample<FlowKey>> = flows
            .iter()
            .filter_map(|(k, v)| self.sample(k, v))
            .collect();
        self.engine.baseline(now_ns, samples);
        self.failovers_seen = failovers.iter().copied().collect();
    }

    /// Hop `name` became usable or unusable (link or carrier, next hop
    /// resolution), at any time between ticks. Unusable
    /// takes effect at once: the hop leaves every table; its flows are
    /// reset at the next tick. Usable again takes effect once the link
    /// hold-down has passed without another down (`handle_timeout`).
    pub fn handle_link(&mut self, now_ns: u64, name: &str, usable: bool) -> Decisions {
        let mut events = Vec::new();
        if let Some(&i) = self.by_name.get(name) {
            let hop = self.hops[i as usize].spec.name.clone();
            let hold = self.engine.params().link_hold_down_ns;
            let waiting = self.rejoin_at.iter().any(|&(h, _)| h == i);
            if !usable {
                self.rejoin_at.retain(|&(h, _)| h != i);
                if self.hops[i as usize].usable {
                    self.set_usable(i, false);
                    events.push(Event::HopDown { hop });
                }
            } else if !self.hops[i as usize].usable && !waiting {
                if hold == 0 {
                    self.set_usable(i, true);
                    if self.hops[i as usize].admin == Admin::Active {
                        events.push(Event::HopUp { hop });
                    }
                } else {
                    self.rejoin_at.push((i, now_ns.saturating_add(hold)));
                    events.push(Event::HopHeldDown { hop, for_ns: hold });
                }
            }
        }
        self.decide(events, None, false)
    }

    /// Time passed without a tick being due (`poll_timeout` said so):
    /// hops whose hold-down has ended take new flows again.
    pub fn handle_timeout(&mut self, now_ns: u64) -> Decisions {
        let mut events = Vec::new();
        self.rejoin_due(now_ns, &mut events);
        self.probes_recovered(now_ns, &mut events);
        self.decide(events, None, false)
    }

    fn rejoin_due(&mut self, now_ns: u64, events: &mut Vec<Event>) {
        let (due, wait): (Vec<_>, Vec<_>) = self.rejoin_at.iter().partition(|&&(_, t)| t <= now_ns);
        self.rejoin_at = wait;
        for (i, _) in due {
            self.set_usable(i, true);
            // A drained or disabled hop stays out whatever its link does
            // (and one whose probes are lost, whatever its link does).
            if self.hops[i as usize].admin == Admin::Active && self.hop_usable(i) {
                events.push(Event::HopUp {
                    hop: self.hops[i as usize].spec.name.clone(),
                });
            }
        }
    }

    /// The link's word on hop `i` (the probes' word is in `probes`).
    fn set_usable(&mut self, i: u32, usable: bool) {
        self.hops[i as usize].usable = usable;
        self.refresh_usable(i);
    }

    /// Link up and not lost by its probes.
    pub(super) fn hop_usable(&self, i: u32) -> bool {
        self.hops[i as usize].usable && !self.probes.is_down(i)
    }

    /// The engine and the pending resets follow hop `i`'s link, probes
    /// and admin state.
    pub(super) fn refresh_usable(&mut self, i: u32) {
        let usable = self.hop_usable(i);
        let admin = self.hops[i as usize].admin;
        self.engine
            .set_usable(i as usize, usable && admin == Admin::Active);
        if usable && admin != Admin::Disabled {
            self.pending_resets.retain(|&h| h != i);
        } else if !self.pending_resets.contains(&i) {
            self.pending_resets.push(i);
        }
    }

    /// When the controller wants to be called next (quinn-proto's
    /// `poll_timeout`): the next tick (K after the last; the first one
    /// `first_tick_ns` after the start, sooner than K: until it, new flows
    /// go to the hops by their claims alone) or the end of a link
    /// hold-down, whichever is first. At or after [`Self::next_tick`] call
    /// `handle_tick`, before it `handle_timeout`.
    pub fn poll_timeout(&self) -> u64 {
        let rejoin = self.rejoin_at.iter().map(|&(_, t)| t).min();
        [rejoin, self.probes.next_wake()]
            .into_iter()
            .flatten()
            .fold(self.next_tick(), u64::min)
    }

    /// When the next tick is due.
    pub fn next_tick(&self) -> u64 {
        let p = self.engine.params();
        match (self.last_tick_ns, self.started_ns) {
            (Some(t), _) => t.saturating_add(p.tick_ns),
            (None, Some(s)) => s.saturating_add(p.first_tick_ns.min(p.tick_ns)),
            (None, None) => p.first_tick_ns.min(p.tick_ns),
        }
    }

    /// One tick: every flow of the table and every fast-failover counter,
    /// as read at `now_ns`.
    pub fn handle_tick(
        &mut self,
        now_ns: u64,
        flows: &[(FlowKey, FlowValue)],
        failovers: &[(FailoverKey, u64)],
    ) -> Decisions {
        self.last_tick_ns = Some(now_ns);
        let mut events = Vec::new();
        self.rejoin_due(now_ns, &mut events);
        self.probes_recovered(now_ns, &mut events);
        self.ids.count_flows(flows.iter().map(|(_, v)| v.hop));
        self.port_outcomes.decay_to(now_ns);
        self.feed_failovers(now_ns, failovers);
        let samples: Vec<FlowSample<FlowKey>> = flows
            .iter()
            .filter_map(|(k, v)| self.sample(k, v))
            .collect();
        let observed = self.engine.observe(now_ns, samples);
        let memory = self.engine.params().memory_ns;
        self.answered_dests
            .retain(|_, &mut t| now_ns.saturating_sub(t) < memory);
        for ev in &observed.newly_answered {
            self.answered_dests.insert(ev.destination, now_ns);
        }
        for ev in &observed.newly_failed {
            // A one-way flow (UDP to a destination nobody hears from)
            // says nothing about this hop.
            if ev.weak && !self.answered_dests.contains_key(&ev.destination) {
                continue;
            }
            self.dest_keys
                .entry(ev.destination)
                .or_insert_with(|| DestKey::of(&ev.key));
            self.blocks.flow_failed(ev.hop, ev.destination, now_ns);
            let port = DestKey::port_of(ev.destination);
            self.port_outcomes.failed(ev.hop, port, 1);
        }
        for ev in &observed.newly_answered {
            self.blocks.flow_answered(ev.hop, ev.destination);
            let port = DestKey::port_of(ev.destination);
            self.port_outcomes.answered(ev.hop, port);
        }
        let excluded = self.update_exclusions(now_ns, &mut events);
        let mut pinned: Vec<u64> = excluded.iter().map(|&(_, d)| d).collect();
        pinned.sort_unstable();
        pinned.dedup();
        // Asked for every (destination, hop) the windows look at: the
        // excluded hops of each destination at hand in one lookup.
        let mut blocked_for: HashMap<u64, Vec<u32>, ahash::RandomState> = HashMap::default();
        for &(h, d) in &excluded {
            blocked_for.entry(d).or_default().push(h);
        }
        let ports = &self.ports;
        let allowed = |d: u64, h: u32| {
            ports.accepts(h, DestKey::port_of(d))
                && blocked_for.get(&d).is_none_or(|hops| !hops.contains(&h))
        };
        let report = self.engine.plan(observed, &allowed, &pinned);
        self.weight_events(&report, &mut events);
        for &h in &report.disappeared {
            // Its per-destination history is moot; a re-test starts clean.
            self.blocks.forget_hop(h);
            self.note_disappeared(h);
            events.push(Event::HopDisappeared {
                hop: self.hops[h as usize].spec.name.clone(),
                failed: report.hops[h as usize].newly_failed,
            });
        }
        self.fall_back_to_ports(&excluded, &report, &mut events);
        self.learn_keys(&report, flows);
        let resets = self.resets(&report, flows, &mut events);
        let expired = self.expired(now_ns, flows, &resets);
        let decisions = self.decide(events, Some(report), true);
        self.forget_keys();
        decisions.with_resets(resets).with_expired(expired)
    }
}

impl Decisions {
    fn with_resets(mut self, resets: Vec<FlowKey>) -> Decisions {
        self.reset_flows = resets;
        self
    }

    fn with_expired(mut self, expired: Vec<FlowKey>) -> Decisions {
        self.expired_flows = expired;
        self
    }
}
