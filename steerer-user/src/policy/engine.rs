//! The policy engine: per-hop measurement, hop windows, weights and slot
//! tables. A tick is two steps: [`Engine::observe`] turns the flow table
//! into per-hop and per-destination figures and flow events, and
//! [`Engine::plan`] turns them into windows and tables. The controller
//! (`controller.rs`) feeds the flow events to its block list between the
//! two, so a block learned in a tick shapes that tick's tables.

use std::{collections::BTreeMap, hash::Hash};

use super::{
    dest_window::DestinationWindow,
    hop_window::{self, Enumerator, HopWindow},
    measure::{FlowMemo, Observed},
    params::{HopSpec, Params},
    report::{DestinationTable, FlowSample, HopReport, SpeedSource, TickReport},
    slot_table,
    window::WindowSequence,
};

/// What the engine remembers of one hop.
#[derive(Debug, Clone)]
pub(super) struct HopState {
    /// Usable by link state (the caller's word: link up, next hop resolved).
    pub usable: bool,
    /// Declared disappeared (no reply on any flow) until this time, when
    /// it is offered flows again as a re-test.
    pub silent_until: Option<u64>,
    /// Since when the hop has had failed flows and not one reply (None
    /// once anything answers): weak evidence declares it disappeared only
    /// after L of this.
    pub quiet_since: Option<u64>,
    /// The hop's data over the L window, K seconds per sub-window (SPEC
    /// 5.2): this tick's speed, its speed over L, its peak within L.
    pub sequence: WindowSequence,
    pub failed_total: u64,
    /// Probes through the hop are configured and their last round was
    /// answered: failed flows alone do not declare it disappeared (it
    /// must also have answered nothing over L).
    pub probes_answer: bool,
}

/// The policy engine. `K` identifies a flow (the daemon's `FlowKey`).
pub struct Engine<K> {
    pub(super) hops: Vec<HopSpec>,
    pub(super) seeds: Vec<u64>,
    pub(super) operators: Vec<Option<u64>>,
    pub(super) subnets: Vec<Option<u64>>,
    pub(super) state: Vec<HopState>,
    pub(super) params: Params,
    /// What each flow's counters said at the previous tick. The hasher is
    /// aHash, randomly keyed per process: flow keys come from the network,
    /// and SipHash (std's) costs a third of a tick at a million flows.
    pub(super) flows: std::collections::HashMap<K, FlowMemo, ahash::RandomState>,
    /// Ticks so far; flows not seen in the current tick are forgotten.
    pub(super) tick_count: u64,
    pub(super) pool: Enumerator,
    pub(super) window: HopWindow,
    /// The class window's size now (N, or more while saturated).
    pub(super) window_size: usize,
    pub(super) destinations: BTreeMap<u64, DestinationWindow>,
    pub(super) table: Vec<u32>,
    pub(super) last_tick_ns: Option<u64>,
    /// Speeds the last table was built from (for per-port-set tables).
    pub(super) last_speeds: Vec<f64>,
    pub(super) last_sources: Vec<SpeedSource>,
    /// Flows the data plane moved off each hop by fast failover since the
    /// last tick (each an unanswered SYN).
    pub(super) pending_failovers: Vec<u64>,
    /// Hops far slower than the class window's best measured member
    /// (SPEC 5.5 "bad": low weight, then replaced), judged on their global
    /// speeds each tick; every table weights them low.
    pub(super) slow: Vec<bool>,
    /// Per hop, bytes/s it carried, smoothed over ticks, and its capacity
    /// as far as measured (the best of its speed and its peak within L):
    /// the load rule's inputs (`Params::load_aware`); empty before the
    /// first tick.
    pub(super) carried: Vec<f64>,
    pub(super) capacity: Vec<f64>,
}

impl<K: Hash + Eq + Copy> Engine<K> {
    pub fn new(hops: Vec<HopSpec>, params: Params) -> Self {
        let n = hops.len();
        let seeds: Vec<u64> = hops.iter().map(|h| slot_table::hop_seed(&h.name)).collect();
        let tag = |t: &Option<String>| t.as_deref().map(slot_table::hop_seed);
        let operators = hops.iter().map(|h| tag(&h.operator)).collect();
        let subnets = hops.iter().map(|h| tag(&h.subnet)).collect();
        let state = (0..n)
            .map(|_| HopState {
                usable: true,
                silent_until: None,
                quiet_since: None,
                sequence: WindowSequence::new(
                    params.tick_ns,
                    params.memory_ns,
                    params.group_tolerance_ns,
                    0,
                ),
                failed_total: 0,
                probes_answer: false,
            })
            .collect();
        // The enumeration follows the hops' names, not their places in the
        // configuration: reordering the config changes no window.
        let mut pool = Enumerator::new(&seeds, params.seed);
        pool.set_ranks(
            hops.iter()
                .map(|h| hop_window::enumeration_rank(h.fresh, h.latency_ms))
                .collect(),
        );
        let mut engine = Engine {
            pool,
            window_size: params.window_base.clamp(1, params.class_window_cap()),
            hops,
            seeds,
            operators,
            subnets,
            state,
            params,
            flows: Default::default(),
            tick_count: 0,
            window: HopWindow::default(),
            destinations: BTreeMap::new(),
            table: Vec::new(),
            last_tick_ns: None,
            last_speeds: Vec::new(),
            last_sources: Vec::new(),
            pending_failovers: vec![0; n],
            slow: vec![false; n],
            carried: Vec::new(),
            capacity: Vec::new(),
        };
        let (speeds, sources) = engine.speeds();
        engine.fill_window();
        engine.table = engine.class_table(&speeds, &sources, None).1;
        engine.last_speeds = speeds;
        engine.last_sources = sources;
        engine
    }

    pub fn params(&self) -> &Params {
        &self.params
    }

    pub fn hops(&self) -> &[HopSpec] {
        &self.hops
    }

    /// The current class slot table.
    pub fn table(&self) -> &[u32] {
        &self.table
    }

    /// The class window's members.
    pub fn window(&self) -> &[u32] {
        &self.window.members
    }

    /// The table of `destination`'s own window, if it has one.
    pub fn table_for_destination(&self, destination: u64) -> Option<&[u32]> {
        self.destinations
            .get(&destination)
            .map(|d| d.table.as_slice())
    }

    /// The members of `destination`'s own window, if it has one.
    pub fn destination_window(&self, destination: u64) -> Option<&[u32]> {
        self.destinations
            .get(&destination)
            .map(|d| d.window.members.as_slice())
    }

    /// The data plane failed `n` flows over from `hop` (unanswered SYNs)
    /// since the last tick. Such flows end up on another hop, so the flow
    /// table alone would never show the old hop failing.
    pub fn record_failovers(&mut self, hop: u32, n: u64) {
        if let Some(c) = self.pending_failovers.get_mut(hop as usize) {
            *c += n;
        }
    }

    /// Start from flows that were already in the table (pins of an earlier
    /// run): their counters so far are not this run's measurement, and a
    /// flow failed or answered before now was judged by the earlier run.
    /// The first tick then measures what moved since `now_ns`.
    pub fn baseline(&mut self, now_ns: u64, flows: impl IntoIterator<Item = FlowSample<K>>) {
        for f in flows {
            let failed = f.packets > 0
                && f.reply_packets == 0
                && now_ns.saturating_sub(f.first_seen_ns) >= self.params.fail_after_ns;
            self.flows.insert(
                f.key,
                FlowMemo {
                    total: f.bytes + f.reply_bytes,
                    reply: f.reply_bytes,
                    seen_tick: self.tick_count,
                    failed,
                    answered: f.reply_packets > 0,
                },
            );
        }
        self.last_tick_ns = Some(now_ns);
    }

    /// One control-plane cycle at `now_ns` over every flow in the table.
    pub fn tick(
        &mut self,
        now_ns: u64,
        flows: impl IntoIterator<Item = FlowSample<K>>,
    ) -> TickReport<K> {
        self.tick_with(now_ns, flows, &|_, _| true)
    }

    /// [`Engine::tick`], where `allowed(destination, hop)` says whether a
    /// hop may serve a destination at all (see [`Engine::plan`]).
    pub fn tick_with(
        &mut self,
        now_ns: u64,
        flows: impl IntoIterator<Item = FlowSample<K>>,
        allowed: &dyn Fn(u64, u32) -> bool,
    ) -> TickReport<K> {
        let observed = self.observe(now_ns, flows);
        self.plan(observed, allowed, &[])
    }

    /// The second half of a tick: windows and tables from what `observe`
    /// measured. `allowed(destination, hop)`: the hop may serve the
    /// destination (exit policy, block list); a destination's own window
    /// and table only ever hold allowed hops. `pinned`: destinations that
    /// must hold a window of their own (a hop is blocked for them), never
    /// evicted or closed while listed.
    pub fn plan(
        &mut self,
        o: Observed<K>,
        allowed: &dyn Fn(u64, u32) -> bool,
        pinned: &[u64],
    ) -> TickReport<K> {
        let n = self.hops.len();
        let now_ns = o.now_ns;
        for h in 0..n {
            self.state[h].failed_total += o.m.newly_failed[h] + o.m.weak_failed[h];
        }
        let mut unanswered = std::mem::replace(&mut self.pending_failovers, vec![0; n]);
        for (u, failed) in unanswered.iter_mut().zip(&o.m.newly_failed) {
            *u += failed;
        }
        let disappeared = self.judge_silence(now_ns, &unanswered, &o.m);
        let (speeds, sources) = self.speeds();
        self.judge_slow(&speeds, &sources);
        let tick_len = now_ns.saturating_sub(o.window_start).max(1);
        self.follow_load(&o.m.bytes, tick_len, &speeds);
        self.maintain_window(&o.m, &speeds, &sources, &unanswered, tick_len);
        let unplaced =
            self.maintain_destinations(&o.m, o.window_start, allowed, pinned, (&speeds, &sources));

        let (shares, table) = self.class_table(&speeds, &sources, None);
        let moved_slots = slot_table::moved(&self.table, &table);
        let min_moved_slots = slot_table::min_moved(&self.table, &table);
        self.table = table;
        self.build_destination_tables(&o.m, &speeds, &sources, allowed);
        self.last_speeds = speeds.clone();
        self.last_sources = sources.clone();
        self.last_tick_ns = Some(now_ns);
        for s in &mut self.state {
            s.sequence.roll(now_ns);
        }
        for w in self.destinations.values_mut() {
            w.sequence.roll(now_ns);
        }
        let hops = self.hop_reports(&o, &shares, &speeds, &sources);
        TickReport {
            now_ns,
            hops,
            window: self.window.members.clone(),
            table: self.table.clone(),
            moved_slots,
            min_moved_slots,
            newly_failed_flows: o.newly_failed,
            newly_answered_flows: o.newly_answered,
            disappeared,
            unplaced,
            destination_tables: self
                .destinations
                .iter()
                .map(|(&d, w)| DestinationTable {
                    destination: d,
                    members: w.window.members.clone(),
                    table: w.table.clone(),
                })
                .collect(),
        }
    }

    fn hop_reports(
        &self,
        o: &Observed<K>,
        shares: &[f64],
        speeds: &[f64],
        sources: &[SpeedSource],
    ) -> Vec<HopReport> {
        let mut slots = vec![0u32; self.hops.len()];
        for &h in &self.table {
            if let Some(c) = slots.get_mut(h as usize) {
                *c += 1;
            }
        }
        (0..self.hops.len())
            .map(|h| HopReport {
                name: self.hops[h].name.clone(),
                usable: self.usable_now(h),
                in_window: self.window.contains(h as u32),
                share: shares[h],
                slots: slots[h],
                active_flows: o.m.active[h],
                bytes: o.m.bytes[h],
                speed: speeds[h],
                speed_source: sources[h],
                newly_failed: o.m.newly_failed[h] + o.m.weak_failed[h],
                failed_total: self.state[h].failed_total,
            })
            .collect()
    }
}
