//! The control-plane policy, sans-IO: it never reads a clock, a socket or a
//! map. The daemon (from BPF maps) and the simulator feed it flow samples
//! stamped with time; it answers with hop windows, weights and slot tables.
//!
//! Per tick (SPEC 5): per-flow deltas give each hop's speed over its busy
//! time (5.1, 5.2); hops that answer nothing are declared disappeared
//! (5.5); the class window of N hops replaces a bad member and grows while
//! its hops are saturated; a destination with more than R new connections
//! in a tick gets a window of its own of N + (connections over L / R) * S
//! hops, weighted by what its hops moved to it where there is enough data
//! and by their global speed otherwise (5.3, 5.4); shares are capped per
//! hop and per operator and keep an exploration share (5.6); tables are
//! built Maglev-like (`slot_table`).

pub mod blocked;
pub mod busy_time;
pub mod choice;
pub mod hop_window;
pub mod slot_table;
pub mod weights;
pub mod window;

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

use hop_window::{destination_window_size, Enumerator, HopWindow};
use window::{PacketInterval, WindowSequence};

/// One configured hop as the policy sees it.
#[derive(Debug, Clone)]
pub struct HopSpec {
    pub name: String,
    /// min(estimated speed, estimated capacity), bytes per second.
    pub initial_estimate: f64,
    /// Operator tag (SPEC 2): hops of one operator share the operator's
    /// max share, and windows prefer operators they do not hold yet.
    pub operator: Option<String>,
    /// The hop's network (e.g. the /24 of its address): windows prefer
    /// subnets they do not hold yet (SPEC 5.6).
    pub subnet: Option<String>,
    /// The directory published fresh data about this hop (preferred when
    /// windows take new members).
    pub fresh: bool,
    /// Probe latency, milliseconds (lower preferred among equals).
    pub latency_ms: Option<f64>,
}

/// Tunables (SPEC section 3); `Params::default()` holds the SPEC defaults.
#[derive(Debug, Clone)]
pub struct Params {
    /// K, nanoseconds.
    pub tick_ns: u64,
    /// L: the sequence window; also how long a measured speed is remembered
    /// and how long a disappeared hop stays out before a re-test.
    pub memory_ns: u64,
    /// T: no reply after this long marks a flow failed.
    pub fail_after_ns: u64,
    pub max_share: f64,
    /// Largest share of one operator's hops together (SPEC 5.6).
    pub max_operator_share: f64,
    /// Share of new flows spread evenly over every usable hop, so that each
    /// can be measured again (SPEC 5.6).
    pub exploration_share: f64,
    /// Slots per class table (prime).
    pub slot_count: u32,
    /// N: baseline window size.
    pub window_base: usize,
    /// R: new connections to one destination in one tick before it gets a
    /// window of its own.
    pub grow_after: u64,
    /// S: hops added per R connections.
    pub grow_by: usize,
    /// Largest destination window: a destination table of 1021 slots still
    /// gives each of 32 hops about 32 slots of resolution. (The class
    /// window grows with load up to the whole pool.)
    pub max_window: usize,
    /// Destination windows held at most (the data plane's table count); the
    /// least recently used destination gives way.
    pub max_destination_windows: usize,
    /// Slots per destination table (prime).
    pub destination_slot_count: u32,
    /// M: grouping tolerance of the window sequences (SPEC 5.2).
    pub group_tolerance_ns: u64,
    /// Seed of the pool enumeration (random, fixed per run).
    pub seed: u64,
}

impl Default for Params {
    fn default() -> Params {
        Params {
            tick_ns: 5_000_000_000,
            memory_ns: 60_000_000_000,
            fail_after_ns: 3_000_000_000,
            max_share: 0.5,
            max_operator_share: 0.5,
            exploration_share: 0.05,
            slot_count: 401,
            window_base: 4,
            grow_after: 8,
            grow_by: 2,
            max_window: 32,
            max_destination_windows: steerer_common::limits::MAX_DEST_TABLES as usize,
            destination_slot_count: steerer_common::limits::DEST_SLOT_COUNT,
            group_tolerance_ns: 50_000_000,
            seed: 0,
        }
    }
}

/// What a flow's counters said at one instant. Times share the clock of
/// `now` passed to [`Engine::tick`] (the daemon uses CLOCK_MONOTONIC).
#[derive(Debug, Clone, Copy)]
pub struct FlowSample<K> {
    pub key: K,
    /// The flow's destination (dst ip, dst port, proto) as an opaque id.
    pub destination: u64,
    pub hop: u32,
    /// Forward bytes since the flow started.
    pub bytes: u64,
    /// Reply bytes since the flow started.
    pub reply_bytes: u64,
    pub packets: u64,
    pub reply_packets: u64,
    pub first_seen_ns: u64,
    pub last_seen_ns: u64,
}

/// Where a hop's speed figure came from this tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpeedSource {
    /// Measured from data in the past K seconds.
    Measured,
    /// No data this tick; last measurement (within L) reused.
    Remembered,
    /// Never measured (or too long ago): min(estimated speed, capacity),
    /// and never above the best measured hop of its window.
    Estimated,
}

impl SpeedSource {
    pub fn label(self) -> &'static str {
        match self {
            SpeedSource::Measured => "measured",
            SpeedSource::Remembered => "remembered",
            SpeedSource::Estimated => "estimate",
        }
    }
}

/// Per-hop line of a tick report.
#[derive(Debug, Clone)]
pub struct HopReport {
    pub name: String,
    pub usable: bool,
    /// Member of the class window.
    pub in_window: bool,
    /// Share of new flows in the class table (0..=1).
    pub share: f64,
    /// Slots held in the class table.
    pub slots: u32,
    /// Flows with a packet in the past K seconds.
    pub active_flows: u64,
    /// Bytes (both directions) moved in the past K seconds.
    pub bytes: u64,
    /// Bytes per second over the hop's busy time in the past K seconds.
    pub speed: f64,
    pub speed_source: SpeedSource,
    /// Flows that became failed (no reply after T) during this tick.
    pub newly_failed: u64,
    /// Failed flows since start.
    pub failed_total: u64,
}

/// A destination's own window and table.
#[derive(Debug, Clone)]
pub struct DestinationTable {
    pub destination: u64,
    pub members: Vec<u32>,
    pub table: Vec<u32>,
}

#[derive(Debug, Clone)]
pub struct TickReport<K> {
    pub now_ns: u64,
    pub hops: Vec<HopReport>,
    /// The class window's members.
    pub window: Vec<u32>,
    /// The new class slot table (hop ids; `slot_table::EMPTY` when no hop
    /// is usable).
    pub table: Vec<u32>,
    /// Slots that changed hop compared with the previous table, and the
    /// least number that had to (sum of the hops' slot gains).
    pub moved_slots: usize,
    pub min_moved_slots: usize,
    /// The flows that became failed this tick, with their hop (input for
    /// per-destination blocking, SPEC 5.5).
    pub newly_failed_flows: Vec<(K, u32)>,
    /// Hops declared disappeared this tick (no reply on any flow): out of
    /// every table; the caller resets their flows so retries go elsewhere.
    pub disappeared: Vec<u32>,
    /// Every destination window, in destination order.
    pub destination_tables: Vec<DestinationTable>,
}

/// Failed flows in one tick, with no reply on any flow of the hop, that
/// declare a hop disappeared.
pub const SILENT_FAILURES: u64 = 3;
/// A window member slower than this fraction of the window's best is bad
/// (SPEC 5.5) and replaced.
pub const BAD_SPEED_FRACTION: f64 = 0.1;
/// A member whose flows fail more than this often (with at least
/// `SILENT_FAILURES` failures) is bad too.
pub const BAD_FAILURE_RATIO: f64 = 0.5;
/// Load (bytes over the whole tick / the hop's best speed within L) of the
/// window's members above which they are saturated and the class window
/// grows fourfold (at least S more) (SPEC is silent on load; an operator
/// expects a full window to widen).
pub const SATURATED_BUSY: f64 = 0.8;
/// ... and below which a grown class window may shrink again.
pub const IDLE_BUSY: f64 = 0.5;
/// Bytes from a hop to a destination in a tick before its per-destination
/// speed is used instead of the global one (SPEC 5.3 "enough data").
pub const DESTINATION_MIN_BYTES: u64 = 64 * 1024;

/// Bytes and busy intervals of one (destination, hop) in a tick.
type Intervals = (u64, Vec<(u64, u64)>);

/// The engine's memory of one flow between ticks (32 bytes plus the key).
#[derive(Debug, Clone, Copy, Default)]
struct FlowMemo {
    /// Bytes in both directions at the last tick.
    total: u64,
    /// Reply bytes at the last tick.
    reply: u64,
    seen_tick: u64,
    /// Already reported as failed.
    failed: bool,
}

#[derive(Debug, Clone, Default)]
struct HopState {
    usable: bool,
    /// Declared disappeared (no reply on any flow) until this time, when
    /// it is offered flows again as a re-test.
    silent_until: Option<u64>,
    last_measured: Option<(f64, u64)>,
    /// Highest speed measured within L, and when.
    peak: Option<(f64, u64)>,
    failed_total: u64,
}

#[derive(Debug, Clone)]
struct DestinationWindow {
    window: HopWindow,
    /// The destination's L window (SPEC 5.2): data, busy time and
    /// connections started, per K-second sub-window.
    sequence: WindowSequence,
    last_used_tick: u64,
    table: Vec<u32>,
}

/// What one tick measured, per hop (and per destination with a window).
struct TickMeasure {
    bytes: Vec<u64>,
    active: Vec<u64>,
    answered: Vec<u64>,
    newly_failed: Vec<u64>,
    /// Busy time in the tick, ns.
    busy: Vec<u64>,
    measured: Vec<Option<f64>>,
    /// (destination, hop) -> (bytes, speed if measurable).
    destination: HashMap<(u64, u32), (u64, Option<f64>)>,
    started: HashMap<u64, u64>,
}

/// The policy engine.
pub struct Engine<K> {
    hops: Vec<HopSpec>,
    seeds: Vec<u64>,
    operators: Vec<Option<u64>>,
    subnets: Vec<Option<u64>>,
    state: Vec<HopState>,
    params: Params,
    /// What each flow's counters said at the previous tick. The hasher is
    /// aHash, randomly keyed per process: flow keys come from the network,
    /// and SipHash (std's) costs a third of a tick at a million flows.
    flows: HashMap<K, FlowMemo, ahash::RandomState>,
    /// Ticks so far; flows not seen in the current tick are forgotten.
    tick_count: u64,
    pool: Enumerator,
    window: HopWindow,
    /// The class window's size now (N, or more while saturated).
    window_size: usize,
    destinations: BTreeMap<u64, DestinationWindow>,
    table: Vec<u32>,
    last_tick_ns: Option<u64>,
    /// Speeds the last table was built from (for per-port-set tables).
    last_speeds: Vec<f64>,
    last_sources: Vec<SpeedSource>,
    /// Flows the data plane moved off each hop by fast failover since the
    /// last tick (each an unanswered SYN).
    pending_failovers: Vec<u64>,
}

fn tag_id(tag: &str) -> u64 {
    slot_table::hop_seed(tag)
}

impl<K: Hash + Eq + Copy> Engine<K> {
    pub fn new(hops: Vec<HopSpec>, params: Params) -> Self {
        let n = hops.len();
        let seeds = hops.iter().map(|h| slot_table::hop_seed(&h.name)).collect();
        let operators = hops
            .iter()
            .map(|h| h.operator.as_deref().map(tag_id))
            .collect();
        let subnets = hops
            .iter()
            .map(|h| h.subnet.as_deref().map(tag_id))
            .collect();
        let state = hops
            .iter()
            .map(|_| HopState {
                usable: true,
                ..HopState::default()
            })
            .collect();
        let mut pool = Enumerator::new(n, params.seed);
        pool.set_ranks(
            hops.iter()
                .map(|h| hop_window::enumeration_rank(h.fresh, h.latency_ms))
                .collect(),
        );
        let mut engine = Engine {
            pool,
            window_size: params.window_base.max(1),
            hops,
            seeds,
            operators,
            subnets,
            state,
            params,
            flows: HashMap::default(),
            tick_count: 0,
            window: HopWindow::default(),
            destinations: BTreeMap::new(),
            table: Vec::new(),
            last_tick_ns: None,
            last_speeds: Vec::new(),
            last_sources: Vec::new(),
            pending_failovers: vec![0; n],
        };
        let (speeds, sources) = engine.speeds(&vec![None; n], 0);
        engine.fill_window();
        let (shares, table) = engine.class_table(&speeds, &sources, None);
        let _ = shares;
        engine.table = table;
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

    /// Mark a hop usable or not (e.g. its next hop stopped resolving). Takes
    /// effect at the next tick.
    pub fn set_usable(&mut self, hop: usize, usable: bool) {
        if let Some(s) = self.state.get_mut(hop) {
            s.usable = usable;
        }
    }

    pub fn is_usable(&self, hop: usize) -> bool {
        hop < self.state.len() && self.usable_now(hop)
    }

    /// The data plane failed `n` flows over from `hop` (unanswered SYNs)
    /// since the last tick. Such flows end up on another hop, so the flow
    /// table alone would never show the old hop failing.
    pub fn record_failovers(&mut self, hop: u32, n: u64) {
        if let Some(c) = self.pending_failovers.get_mut(hop as usize) {
            *c += n;
        }
    }

    /// One control-plane cycle at time `now_ns` over every flow currently in
    /// the flow table.
    pub fn tick(
        &mut self,
        now_ns: u64,
        flows: impl IntoIterator<Item = FlowSample<K>>,
    ) -> TickReport<K> {
        self.tick_with(now_ns, flows, &|_, _| true)
    }

    /// [`Engine::tick`], where `allowed(destination, hop)` says whether a
    /// hop may serve a destination at all (its exit policy accepts the
    /// port, the block list does not exclude it): a destination's own
    /// window and table only ever hold allowed hops.
    pub fn tick_with(
        &mut self,
        now_ns: u64,
        flows: impl IntoIterator<Item = FlowSample<K>>,
        allowed: &dyn Fn(u64, u32) -> bool,
    ) -> TickReport<K> {
        let n = self.hops.len();
        let window_start = match self.last_tick_ns {
            Some(t) if t < now_ns => t,
            _ => now_ns.saturating_sub(self.params.tick_ns),
        };
        let (m, newly_failed_flows) = self.measure(now_ns, window_start, flows);
        for h in 0..n {
            self.state[h].failed_total += m.newly_failed[h];
        }
        let mut unanswered = std::mem::replace(&mut self.pending_failovers, vec![0; n]);
        for (u, failed) in unanswered.iter_mut().zip(&m.newly_failed) {
            *u += failed;
        }
        let disappeared = self.judge_silence(now_ns, &unanswered, &m.answered);
        let (speeds, sources) = self.speeds(&m.measured, now_ns);
        let tick_len = now_ns.saturating_sub(window_start).max(1);
        self.maintain_window(&m, &speeds, &sources, &unanswered, tick_len);
        self.maintain_destinations(&m, window_start, allowed);

        let (shares, table) = self.class_table(&speeds, &sources, None);
        let moved_slots = slot_table::moved(&self.table, &table);
        let min_moved_slots = slot_table::min_moved(&self.table, &table);
        self.table = table;
        self.last_speeds = speeds.clone();
        self.last_sources = sources.clone();
        self.last_tick_ns = Some(now_ns);
        self.build_destination_tables(&m, &speeds, &sources, allowed);
        for w in self.destinations.values_mut() {
            w.sequence.roll(now_ns);
        }

        let mut slots = vec![0u32; n];
        for &h in &self.table {
            if let Some(c) = slots.get_mut(h as usize) {
                *c += 1;
            }
        }
        let hops = (0..n)
            .map(|h| HopReport {
                name: self.hops[h].name.clone(),
                usable: self.usable_now(h),
                in_window: self.window.contains(h as u32),
                share: shares[h],
                slots: slots[h],
                active_flows: m.active[h],
                bytes: m.bytes[h],
                speed: speeds[h],
                speed_source: sources[h],
                newly_failed: m.newly_failed[h],
                failed_total: self.state[h].failed_total,
            })
            .collect();
        TickReport {
            now_ns,
            hops,
            window: self.window.members.clone(),
            table: self.table.clone(),
            moved_slots,
            min_moved_slots,
            newly_failed_flows,
            disappeared,
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

    /// Per-flow deltas into per-hop and per-destination figures.
    fn measure(
        &mut self,
        now_ns: u64,
        window_start: u64,
        flows: impl IntoIterator<Item = FlowSample<K>>,
    ) -> (TickMeasure, Vec<(K, u32)>) {
        let n = self.hops.len();
        let mut m = TickMeasure {
            bytes: vec![0; n],
            active: vec![0; n],
            answered: vec![0; n],
            newly_failed: vec![0; n],
            busy: vec![0; n],
            measured: vec![None; n],
            destination: HashMap::new(),
            started: HashMap::new(),
        };
        let mut newly_failed_flows = Vec::new();
        let mut intervals: Vec<Vec<(u64, u64)>> = vec![Vec::new(); n];
        let mut dest_intervals: HashMap<(u64, u32), Intervals> = HashMap::new();
        self.tick_count += 1;
        let tick = self.tick_count;
        for f in flows {
            let h = f.hop as usize;
            if h >= n {
                continue; // left over from another configuration
            }
            let total = f.bytes + f.reply_bytes;
            let memo = self.flows.entry(f.key).or_default();
            let delta = total.saturating_sub(memo.total);
            if f.reply_bytes > memo.reply {
                m.answered[h] += 1;
            }
            memo.total = total;
            memo.reply = f.reply_bytes;
            memo.seen_tick = tick;
            if f.last_seen_ns >= window_start {
                m.active[h] += 1;
            }
            let started = f.first_seen_ns >= window_start;
            if started {
                *m.started.entry(f.destination).or_default() += 1;
            }
            if let Some(w) = self.destinations.get_mut(&f.destination) {
                let start = f.first_seen_ns.max(window_start);
                if delta > 0 && f.reply_packets > 0 {
                    let interval = PacketInterval {
                        start_ns: start,
                        end_ns: f.last_seen_ns.max(start),
                        bytes: delta,
                    };
                    w.sequence.record(interval, started);
                } else if started {
                    w.sequence.count_started(1);
                }
            }
            // A flow that never got an answer moved no data: its retried SYNs
            // would only stretch the hop's busy time (blackholes are judged
            // by failures and exclusions, not by speed).
            if delta > 0 && f.reply_packets > 0 {
                m.bytes[h] += delta;
                let start = f.first_seen_ns.max(window_start);
                let interval = (start, f.last_seen_ns.max(start));
                intervals[h].push(interval);
                if self.destinations.contains_key(&f.destination) {
                    let e = dest_intervals.entry((f.destination, f.hop)).or_default();
                    e.0 += delta;
                    e.1.push(interval);
                }
            }
            let failed = f.packets > 0
                && f.reply_packets == 0
                && now_ns.saturating_sub(f.first_seen_ns) >= self.params.fail_after_ns;
            if failed && !memo.failed {
                memo.failed = true;
                m.newly_failed[h] += 1;
                newly_failed_flows.push((f.key, f.hop));
            }
        }
        // Flows gone from the table (ended, evicted) are forgotten.
        self.flows.retain(|_, memo| memo.seen_tick == tick);
        for (h, iv) in intervals.iter_mut().enumerate() {
            m.busy[h] = busy_time::union_length(iv);
            m.measured[h] = speed_of(m.bytes[h], m.busy[h]);
        }
        for (k, (bytes, mut iv)) in dest_intervals {
            let busy = busy_time::union_length(&mut iv);
            let speed = if bytes >= DESTINATION_MIN_BYTES {
                speed_of(bytes, busy)
            } else {
                None
            };
            m.destination.insert(k, (bytes, speed));
        }
        (m, newly_failed_flows)
    }

    /// SPEC 5.5, disappeared: "no reply on any flow -> removed from every
    /// window within one tick". A hop with at least `SILENT_FAILURES` flows
    /// failing this tick and not one reply byte on any flow is taken out
    /// until `memory_ns` (L) has passed, then offered flows again; a hop
    /// that blackholes only some destinations still answers the others
    /// and is left to the block list. Returns the hops newly taken out.
    fn judge_silence(&mut self, now_ns: u64, failed: &[u64], answered: &[u64]) -> Vec<u32> {
        let mut out = Vec::new();
        for (h, s) in self.state.iter_mut().enumerate() {
            if s.silent_until.is_some_and(|t| now_ns >= t) {
                s.silent_until = None;
            }
            if s.silent_until.is_none() && failed[h] >= SILENT_FAILURES && answered[h] == 0 {
                s.silent_until = Some(now_ns + self.params.memory_ns);
                out.push(h as u32);
            }
        }
        out
    }

    /// Usable by configuration and not declared disappeared.
    fn usable_now(&self, h: usize) -> bool {
        self.state[h].usable && self.state[h].silent_until.is_none()
    }

    fn fill_window(&mut self) {
        let state = &self.state;
        let (operators, subnets) = (&self.operators, &self.subnets);
        self.window.fill(
            self.window_size,
            &mut self.pool,
            |h| state[h as usize].usable && state[h as usize].silent_until.is_none(),
            |h| (operators[h as usize], subnets[h as usize]),
        );
    }

    /// SPEC 5.4/5.5 for the class window: unusable members leave; one bad
    /// member (far slower than the best, or failing most of its flows) is
    /// replaced per tick; a saturated window grows by S, and a grown one
    /// that is no longer busy loses the member that moved the least data.
    fn maintain_window(
        &mut self,
        m: &TickMeasure,
        speeds: &[f64],
        sources: &[SpeedSource],
        unanswered: &[u64],
        tick_len: u64,
    ) {
        let usable: Vec<bool> = (0..self.hops.len()).map(|h| self.usable_now(h)).collect();
        self.window.members.retain(|&h| usable[h as usize]);
        let known = |h: u32| sources[h as usize] != SpeedSource::Estimated;
        let best = self
            .window
            .members
            .iter()
            .filter(|&&h| known(h))
            .map(|&h| speeds[h as usize])
            .fold(0.0, f64::max);
        let badness = |h: u32| -> Option<f64> {
            let i = h as usize;
            let failures = unanswered[i];
            let ratio = failures as f64 / (failures + m.answered[i]).max(1) as f64;
            if failures >= SILENT_FAILURES && ratio > BAD_FAILURE_RATIO {
                return Some(ratio);
            }
            if known(h) && best > 0.0 && speeds[i] < BAD_SPEED_FRACTION * best {
                return Some(1.0 - speeds[i] / best);
            }
            None
        };
        let worst = self
            .window
            .members
            .iter()
            .filter_map(|&h| badness(h).map(|b| (b, h)))
            .max_by(|a, b| a.0.total_cmp(&b.0).then(b.1.cmp(&a.1)));
        // Replace only if the pool has someone else to offer.
        let spare =
            (0..self.hops.len() as u32).any(|h| usable[h as usize] && !self.window.contains(h));
        if let (Some((_, h)), true) = (worst, spare) {
            self.window.remove(h);
        }
        // Saturated: each member moved, over the whole tick, close to the
        // best speed it showed within L (a hop with one idle long flow is
        // busy all the time, but far from its best).
        let members = &self.window.members;
        let load = |h: u32| -> Option<f64> {
            let i = h as usize;
            let peak = self.state[i].peak?.0;
            m.measured[i]?;
            (peak > 0.0).then(|| m.bytes[i] as f64 / (tick_len as f64 / 1e9) / peak)
        };
        let loads: Vec<f64> = members.iter().filter_map(|&h| load(h)).collect();
        // Judged on the members measured this tick (new ones have not
        // been yet), once at least half of them are.
        if !loads.is_empty() && 2 * loads.len() >= members.len() {
            let busy = loads.iter().sum::<f64>() / loads.len() as f64;
            if busy >= SATURATED_BUSY {
                // Four times (at least S more): a gateway whose load needs
                // hundreds of hops gets there in a few ticks, not hundreds.
                self.window_size = (members.len() + self.params.grow_by).max(members.len() * 4);
            } else if busy < IDLE_BUSY && self.window_size > self.params.window_base {
                self.window_size -= 1;
                // "a window above its baseline loses the one hop that routed
                // the least data in the past K seconds" (SPEC 5.4)
                if let Some(&least) = members.iter().min_by_key(|&&h| (m.bytes[h as usize], h)) {
                    self.window.remove(least);
                }
            }
        }
        self.window_size = self.window_size.max(self.params.window_base.max(1));
        self.fill_window();
    }

    /// SPEC 5.4 for destinations: more than R new connections in this tick
    /// give a destination its own window (the least recently used one gives
    /// way beyond `max_destination_windows`); its size follows
    /// N + (connections over L / R) * S; above that it loses its member
    /// that moved the least data to it; after L without connections it is
    /// dropped.
    fn maintain_destinations(
        &mut self,
        m: &TickMeasure,
        window_start: u64,
        allowed: &dyn Fn(u64, u32) -> bool,
    ) {
        let tick = self.tick_count;
        let mut fresh: Vec<(u64, u64)> = m
            .started
            .iter()
            .filter(|(d, &c)| c > self.params.grow_after && !self.destinations.contains_key(d))
            .map(|(&d, &c)| (d, c))
            .collect();
        fresh.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        for (d, w) in self.destinations.iter_mut() {
            if m.started.get(d).is_some_and(|&c| c > 0) {
                w.last_used_tick = tick;
            }
        }
        for (d, _) in fresh {
            if self.params.max_destination_windows == 0 {
                break;
            }
            if self.destinations.len() >= self.params.max_destination_windows {
                let lru = self
                    .destinations
                    .iter()
                    .min_by_key(|(&d, w)| (w.last_used_tick, d))
                    .map(|(&d, _)| d);
                if let Some(old) = lru {
                    self.destinations.remove(&old);
                }
            }
            let mut sequence = WindowSequence::new(
                self.params.tick_ns,
                self.params.memory_ns,
                self.params.group_tolerance_ns,
                window_start,
            );
            // The connections that earned it the window.
            sequence.count_started(m.started.get(&d).copied().unwrap_or(0));
            self.destinations.insert(
                d,
                DestinationWindow {
                    window: self.window.clone(),
                    sequence,
                    last_used_tick: tick,
                    table: Vec::new(),
                },
            );
        }
        let usable: Vec<bool> = (0..self.hops.len()).map(|h| self.usable_now(h)).collect();
        let available_all = usable.len();
        let (base, r, s) = (
            self.params.window_base.max(1),
            self.params.grow_after,
            self.params.grow_by,
        );
        let mut gone = Vec::new();
        for (&d, w) in self.destinations.iter_mut() {
            let over_l = w.sequence.connections_started();
            if over_l == 0 {
                gone.push(d);
                continue;
            }
            let eligible = |h: u32| usable[h as usize] && allowed(d, h);
            w.window.members.retain(|&h| eligible(h));
            let available = (0..available_all as u32).filter(|&h| eligible(h)).count();
            let size = destination_window_size(base, r, s, over_l)
                .min(self.params.max_window.max(base))
                .min(available);
            if w.window.members.len() > size {
                let least = w
                    .window
                    .members
                    .iter()
                    .min_by_key(|&&h| (m.destination.get(&(d, h)).map_or(0, |x| x.0), h))
                    .copied();
                if let Some(h) = least {
                    w.window.remove(h);
                }
            }
            let (operators, subnets) = (&self.operators, &self.subnets);
            w.window.fill(size, &mut self.pool, eligible, |h| {
                (operators[h as usize], subnets[h as usize])
            });
        }
        for d in gone {
            self.destinations.remove(&d);
        }
    }

    /// Speed per hop: this tick's measurement, else a remembered one, else the
    /// operator's estimate. Remembers new measurements.
    fn speeds(&mut self, measured: &[Option<f64>], now_ns: u64) -> (Vec<f64>, Vec<SpeedSource>) {
        let mut speeds = Vec::with_capacity(measured.len());
        let mut sources = Vec::with_capacity(measured.len());
        for (h, m) in measured.iter().enumerate() {
            let state = &mut self.state[h];
            if let Some(speed) = m {
                state.last_measured = Some((*speed, now_ns));
                let stale = state.peak.is_none_or(|(p, at)| {
                    *speed >= p || now_ns.saturating_sub(at) > self.params.memory_ns
                });
                if stale {
                    state.peak = Some((*speed, now_ns));
                }
                speeds.push(*speed);
                sources.push(SpeedSource::Measured);
            } else if let Some((speed, _)) = state
                .last_measured
                .filter(|(_, at)| now_ns.saturating_sub(*at) <= self.params.memory_ns)
            {
                speeds.push(speed);
                sources.push(SpeedSource::Remembered);
            } else {
                speeds.push(self.hops[h].initial_estimate);
                sources.push(SpeedSource::Estimated);
            }
        }
        (speeds, sources)
    }

    /// The slot table for a port set served only by the hops in `allowed`
    /// (those accepting every port of the set), from the speeds of the last
    /// tick: the class window's allowed members, topped up to N from the
    /// pool's enumeration order. No allowed usable hop: an empty table (the
    /// data plane passes such flows unsteered and counts them).
    pub fn table_for(&self, allowed: &[bool]) -> Vec<u32> {
        self.class_table(&self.last_speeds, &self.last_sources, Some(allowed))
            .1
    }

    /// Shares and table of the class window (restricted to `allowed`).
    fn class_table(
        &self,
        speeds: &[f64],
        sources: &[SpeedSource],
        allowed: Option<&[bool]>,
    ) -> (Vec<f64>, Vec<u32>) {
        let ok = |h: u32| {
            self.usable_now(h as usize)
                && allowed.is_none_or(|a| a.get(h as usize).copied().unwrap_or(false))
        };
        let mut members: Vec<u32> = self
            .window
            .members
            .iter()
            .copied()
            .filter(|&h| ok(h))
            .collect();
        if allowed.is_some() {
            for h in self.pool.order() {
                if members.len() >= self.params.window_base.max(1) {
                    break;
                }
                if ok(h) && !members.contains(&h) {
                    members.push(h);
                }
            }
        }
        self.window_table(&members, speeds, sources, self.params.slot_count)
    }

    /// Shares (over all hops, zero outside `members`) and the table of a
    /// window: weights by speed, estimates capped at the best measured
    /// member ("claimed figures never outweigh measured ones"), caps per
    /// hop and per operator, exploration share.
    fn window_table(
        &self,
        members: &[u32],
        speeds: &[f64],
        sources: &[SpeedSource],
        slots: u32,
    ) -> (Vec<f64>, Vec<u32>) {
        let n = self.hops.len();
        if members.is_empty() {
            return (vec![0.0; n], vec![slot_table::EMPTY; slots as usize]);
        }
        let best_known = members
            .iter()
            .filter(|&&h| sources[h as usize] != SpeedSource::Estimated)
            .map(|&h| speeds[h as usize])
            .fold(0.0, f64::max);
        let mut w = vec![0.0; n];
        let mut in_window = vec![false; n];
        for &h in members {
            let i = h as usize;
            in_window[i] = true;
            w[i] = if sources[i] == SpeedSource::Estimated && best_known > 0.0 {
                speeds[i].min(best_known)
            } else {
                speeds[i]
            };
        }
        let mut shares = weights::shares(
            &w,
            &in_window,
            self.params.max_share,
            self.params.exploration_share,
        );
        weights::cap_groups(&mut shares, &self.operators, self.params.max_operator_share);
        let ids: Vec<u32> = (0..n as u32).collect();
        let table = slot_table::build(&ids, &self.seeds, &shares, slots);
        (shares, table)
    }

    /// Dual weights (SPEC 5.3): in a destination's window, a hop's weight is
    /// its speed to that destination where it moved enough data there this
    /// tick, its global speed otherwise.
    fn build_destination_tables(
        &mut self,
        m: &TickMeasure,
        speeds: &[f64],
        sources: &[SpeedSource],
        allowed: &dyn Fn(u64, u32) -> bool,
    ) {
        let slots = self.params.destination_slot_count;
        let mut tables = Vec::with_capacity(self.destinations.len());
        for (&d, w) in &self.destinations {
            let mut sp = speeds.to_vec();
            let mut src = sources.to_vec();
            for &h in &w.window.members {
                if let Some((_, Some(s))) = m.destination.get(&(d, h)) {
                    sp[h as usize] = *s;
                    src[h as usize] = SpeedSource::Measured;
                }
            }
            let members: Vec<u32> = w
                .window
                .members
                .iter()
                .copied()
                .filter(|&h| self.usable_now(h as usize) && allowed(d, h))
                .collect();
            tables.push((d, self.window_table(&members, &sp, &src, slots).1));
        }
        for (d, t) in tables {
            if let Some(w) = self.destinations.get_mut(&d) {
                w.table = t;
            }
        }
    }
}

/// Bytes per second over `busy_ns`; below a millisecond of activity the
/// quotient is noise.
fn speed_of(bytes: u64, busy_ns: u64) -> Option<f64> {
    (bytes > 0 && busy_ns >= 1_000_000).then(|| bytes as f64 / (busy_ns as f64 / 1e9))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SEC: u64 = 1_000_000_000;

    fn params() -> Params {
        Params {
            tick_ns: SEC,
            memory_ns: 60 * SEC,
            fail_after_ns: 3 * SEC,
            slot_count: 307,
            ..Params::default()
        }
    }

    fn hops(estimates: &[f64]) -> Vec<HopSpec> {
        estimates
            .iter()
            .enumerate()
            .map(|(i, &e)| HopSpec {
                name: format!("h{i}"),
                initial_estimate: e,
                operator: None,
                subnet: None,
                fresh: false,
                latency_ms: None,
            })
            .collect()
    }

    fn sample(key: u32, hop: u32, bytes: u64, first: u64, last: u64) -> FlowSample<u32> {
        FlowSample {
            key,
            destination: 0,
            hop,
            bytes,
            reply_bytes: 0,
            packets: 1,
            reply_packets: 1,
            first_seen_ns: first,
            last_seen_ns: last,
        }
    }

    fn slots_of(table: &[u32], hop: u32) -> usize {
        table.iter().filter(|&&x| x == hop).count()
    }

    fn sample_to(
        key: u32,
        dest: u64,
        hop: u32,
        bytes: u64,
        first: u64,
        last: u64,
    ) -> FlowSample<u32> {
        FlowSample {
            destination: dest,
            ..sample(key, hop, bytes, first, last)
        }
    }

    fn members(e: &Engine<u32>) -> Vec<u32> {
        let mut m = e.window().to_vec();
        m.sort_unstable();
        m
    }

    #[test]
    fn the_class_window_starts_with_n_hops_and_only_they_get_slots() {
        // "Every class starts with a window of N hops" (SPEC 5.4).
        let e: Engine<u32> = Engine::new(hops(&[100.0; 10]), params());
        assert_eq!(e.window().len(), 4);
        for h in 0..10 {
            assert_eq!(
                slots_of(e.table(), h) > 0,
                e.window().contains(&h),
                "hop {h}"
            );
        }
    }

    #[test]
    fn a_bad_member_is_replaced_by_a_hop_not_seen_before() {
        // "bad: low measured speed ... -> low weight, then replaced" (SPEC 5.5).
        let mut e: Engine<u32> = Engine::new(hops(&[100.0; 10]), params());
        let before = members(&e);
        let slow = before[0];
        let flows: Vec<_> = before
            .iter()
            .enumerate()
            .map(|(i, &h)| {
                let bytes = if h == slow { 10_000 } else { 10_000_000 };
                // Busy a tenth of the tick: fast, not saturated.
                sample(i as u32, h, bytes, 0, SEC / 10)
            })
            .collect();
        let r = e.tick(SEC, flows);
        assert_eq!(r.window.len(), 4, "window stays at N");
        assert!(
            !r.window.contains(&slow),
            "slow hop {slow} replaced: {:?}",
            r.window
        );
        let newcomer: Vec<u32> = r
            .window
            .iter()
            .copied()
            .filter(|h| !before.contains(h))
            .collect();
        assert_eq!(newcomer.len(), 1);
        assert_eq!(slots_of(&r.table, slow), 0);
        assert!(slots_of(&r.table, newcomer[0]) > 0);
    }

    #[test]
    fn a_busy_destination_gets_its_own_window_of_n_plus_s_per_r() {
        // "If more than R connections to a destination D were tried in the
        // past K seconds, D gets its own window ... at least
        // N + (connections / R) * S" (SPEC 5.4; N 4, R 8, S 2).
        let mut e: Engine<u32> = Engine::new(hops(&[100.0; 12]), params());
        let flows: Vec<_> = (0..20)
            .map(|k| sample_to(k, 7, e.window()[0], 1000, SEC / 2, SEC))
            .collect();
        let r = e.tick(SEC, flows);
        let w = e.destination_window(7).expect("own window").to_vec();
        assert_eq!(w.len(), 4 + (20 / 8) * 2);
        let t = e.table_for_destination(7).unwrap();
        assert_eq!(t.len(), params().destination_slot_count as usize);
        assert!(t.iter().all(|h| w.contains(h)));
        assert_eq!(r.destination_tables.len(), 1);
        // Exactly R connections is not "more than R".
        let mut e2: Engine<u32> = Engine::new(hops(&[100.0; 12]), params());
        e2.tick(
            SEC,
            (0..8)
                .map(|k| sample_to(k, 9, 0, 1, SEC / 2, SEC))
                .collect::<Vec<_>>(),
        );
        assert!(e2.destination_window(9).is_none());
    }

    #[test]
    fn a_destination_window_shrinks_by_one_then_closes_after_l() {
        // "a window above its baseline loses the one hop that routed the
        // least data in the past K seconds" (SPEC 5.4).
        let mut e: Engine<u32> = Engine::new(hops(&[100.0; 12]), params());
        e.tick(
            SEC,
            (0..24)
                .map(|k| sample_to(k, 7, 0, 1, SEC / 2, SEC))
                .collect::<Vec<_>>(),
        );
        assert_eq!(e.destination_window(7).unwrap().len(), 4 + 3 * 2);
        // 9 more connections at 30 s; the first 24 leave the L window at 61 s.
        for t in 2..=60u64 {
            let flows: Vec<_> = if t == 30 {
                (100..109)
                    .map(|k| sample_to(k, 7, 0, 1, t * SEC - SEC / 2, t * SEC))
                    .collect()
            } else {
                Vec::new()
            };
            e.tick(t * SEC, flows);
        }
        // 33 connections over L: 4 + 4 * 2.
        assert_eq!(e.destination_window(7).unwrap().len(), 12);
        let sizes: Vec<usize> = (61..=68u64)
            .map(|t| {
                e.tick(t * SEC, Vec::new());
                e.destination_window(7).unwrap().len()
            })
            .collect();
        // 9 connections over L: size 4 + 1 * 2 = 6, one hop per tick.
        assert_eq!(sizes, vec![11, 10, 9, 8, 7, 6, 6, 6]);
        for t in 67..=95u64 {
            e.tick(t * SEC, Vec::new());
        }
        assert!(
            e.destination_window(7).is_none(),
            "closed after L without connections"
        );
    }

    #[test]
    fn destination_weights_use_per_destination_data_where_there_is_enough() {
        // SPEC 5.3: "(a) by all data through h, and (b) by data from h to D.
        // Per-destination data is used where there is enough of it".
        let mut p = params();
        p.window_base = 2;
        p.max_share = 1.0;
        let mut e: Engine<u32> = Engine::new(hops(&[100.0, 100.0]), p);
        // Tick 1: destination 5 gets its own window (both hops).
        e.tick(
            SEC,
            (0..10)
                .map(|k| sample_to(k, 5, k % 2, 1, SEC / 2, SEC))
                .collect::<Vec<_>>(),
        );
        assert!(e.destination_window(5).is_some());
        // Tick 2: hop 0 is fast overall (to destination 1) but slow to 5;
        // hop 1 is slow overall but fast to 5.
        let flows = vec![
            sample_to(20, 1, 0, 50_000_000, SEC, 2 * SEC),
            sample_to(21, 5, 0, 100_000, SEC, 2 * SEC),
            sample_to(22, 5, 1, 5_000_000, SEC, 2 * SEC),
        ];
        let r = e.tick(2 * SEC, flows);
        assert!(
            slots_of(&r.table, 0) > slots_of(&r.table, 1),
            "class table: hop 0 faster"
        );
        let d = e.table_for_destination(5).unwrap();
        assert!(
            slots_of(d, 1) > slots_of(d, 0),
            "destination 5: hop 1 faster to it"
        );
    }

    #[test]
    fn a_claimed_speed_never_outweighs_a_measured_one() {
        // "Claimed figures never outweigh measured ones" (SPEC 5.3).
        let mut p = params();
        p.max_share = 1.0;
        let mut e: Engine<u32> = Engine::new(hops(&[1e6, 1e12]), p);
        let r = e.tick(SEC, vec![sample(1, 0, 10_000_000, 0, SEC)]);
        assert_eq!(r.hops[1].speed_source, SpeedSource::Estimated);
        assert!(
            r.hops[1].share <= r.hops[0].share + 1e-9,
            "{} vs {}",
            r.hops[1].share,
            r.hops[0].share
        );
    }

    #[test]
    fn one_operator_holds_at_most_its_share_and_windows_mix_operators() {
        // SPEC 5.6: "max share per hop and per operator tag; windows drawn
        // from diverse operators".
        let mut hs = hops(&[100.0; 8]);
        for (i, h) in hs.iter_mut().enumerate() {
            h.operator = Some(if i < 6 {
                "big".into()
            } else {
                format!("small{i}")
            });
        }
        let e: Engine<u32> = Engine::new(hs.clone(), params());
        let w = e.window();
        assert!(
            w.iter().filter(|&&h| h >= 6).count() >= 2,
            "both small operators in {w:?}"
        );
        let big: usize = w
            .iter()
            .filter(|&&h| h < 6)
            .map(|&h| slots_of(e.table(), h))
            .sum();
        assert!(
            big as f64 <= 0.5 * 307.0 + 2.0,
            "operator big holds {big} of 307 slots"
        );
    }

    #[test]
    fn a_saturated_window_grows_and_an_idle_one_shrinks_back() {
        let mut e: Engine<u32> = Engine::new(hops(&[100.0; 40]), params());
        let w = e.window().to_vec();
        // Every member moving its best speed the whole tick: saturated.
        let flows: Vec<_> = w.iter().map(|&h| sample(h, h, 1_000_000, 0, SEC)).collect();
        let r = e.tick(SEC, flows);
        assert_eq!(r.window.len(), 16, "fourfold");
        // Then a tick at a tenth of that: one member fewer per tick, the
        // one that moved the least, down to N.
        let quiet = |t: u64, w: &[u32]| -> Vec<FlowSample<u32>> {
            w.iter()
                .map(|&h| {
                    sample(
                        1000 * t as u32 + h,
                        h,
                        100_000 + h as u64,
                        (t - 1) * SEC,
                        (t - 1) * SEC + SEC / 10,
                    )
                })
                .collect()
        };
        let r2 = e.tick(2 * SEC, quiet(2, &r.window));
        assert_eq!(r2.window.len(), 15);
        let least = *r.window.iter().min().unwrap();
        assert!(
            !r2.window.contains(&least),
            "the member with the least data left"
        );
        let mut last = r2;
        for t in 3..30 {
            last = e.tick(t * SEC, quiet(t, &last.window));
        }
        assert_eq!(last.window.len(), 4, "back to N");
    }

    #[test]
    fn a_destination_window_holds_only_hops_allowed_for_it() {
        // A hop blocked for D (or whose exit policy refuses D's port) never
        // enters D's own window or table.
        let mut e: Engine<u32> = Engine::new(hops(&[100.0; 6]), params());
        let blocked = e.window()[0];
        let not_blocked = |d: u64, h: u32| !(d == 7 && h == blocked);
        let flows: Vec<_> = (0..20)
            .map(|k| sample_to(k, 7, 1, 1, SEC / 2, SEC))
            .collect();
        let r = e.tick_with(SEC, flows, &not_blocked);
        let w = e.destination_window(7).unwrap();
        assert!(!w.contains(&blocked) && w.len() == 5, "{w:?}");
        assert_eq!(slots_of(e.table_for_destination(7).unwrap(), blocked), 0);
        assert!(r.window.contains(&blocked), "the class window keeps it");
    }

    #[test]
    fn the_least_recently_used_destination_window_gives_way() {
        let mut p = params();
        p.max_destination_windows = 2;
        let mut e: Engine<u32> = Engine::new(hops(&[100.0; 6]), p);
        let burst = |d: u64, base: u32, t: u64| -> Vec<FlowSample<u32>> {
            (0..9)
                .map(|k| sample_to(base + k, d, 0, 1, t * SEC - SEC / 2, t * SEC))
                .collect()
        };
        e.tick(SEC, burst(1, 0, 1));
        e.tick(2 * SEC, burst(2, 100, 2));
        let mut f = burst(1, 200, 3);
        f.extend(burst(3, 300, 3));
        e.tick(3 * SEC, f);
        assert!(e.destination_window(1).is_some(), "used at tick 3");
        assert!(e.destination_window(2).is_none(), "least recently used");
        assert!(e.destination_window(3).is_some());
    }

    #[test]
    fn moved_slots_are_reported_against_the_minimum() {
        let mut e: Engine<u32> = Engine::new(hops(&[100.0, 100.0, 100.0]), params());
        let r = e.tick(
            SEC,
            vec![
                sample(1, 0, 10_000_000, 0, SEC),
                sample(2, 1, 10_000_000, 0, SEC),
                sample(3, 2, 1_000_000, 0, SEC),
            ],
        );
        assert!(r.min_moved_slots > 0);
        assert!(r.moved_slots >= r.min_moved_slots);
        assert!(
            r.moved_slots <= 3 * r.min_moved_slots,
            "{} vs {}",
            r.moved_slots,
            r.min_moved_slots
        );
    }

    /// A random run: hop count, and per tick a list of (hop, destination,
    /// bytes, busy tenths of the tick, answered).
    /// (hop, destination, bytes, busy tenths, answered).
    type TraceFlow = (u32, u64, u64, u64, bool);

    fn arb_run() -> impl Strategy<Value = (usize, Vec<Vec<TraceFlow>>)> {
        (2usize..12).prop_flat_map(|n| {
            let flow = (
                0..n as u32,
                0u64..4,
                0u64..20_000_000,
                1u64..=10,
                proptest::bool::weighted(0.9),
            );
            (
                Just(n),
                proptest::collection::vec(proptest::collection::vec(flow, 0..40), 1..6),
            )
        })
    }

    /// Feed `run` to a fresh engine; returns every tick's report.
    fn replay(n: usize, run: &[Vec<TraceFlow>], seed: u64) -> Vec<TickReport<u32>> {
        let mut p = params();
        p.seed = seed;
        let mut e: Engine<u32> = Engine::new(hops(&vec![100.0; n]), p);
        let mut key = 0;
        run.iter()
            .enumerate()
            .map(|(t, flows)| {
                let t = t as u64 + 1;
                let samples: Vec<_> = flows
                    .iter()
                    .map(|&(hop, dest, bytes, busy, answered)| {
                        key += 1;
                        let mut f = sample_to(
                            key,
                            dest,
                            hop,
                            bytes,
                            (t - 1) * SEC,
                            (t - 1) * SEC + busy * SEC / 10,
                        );
                        if !answered {
                            f.reply_packets = 0;
                        }
                        f
                    })
                    .collect();
                e.tick(t * SEC, samples)
            })
            .collect()
    }

    proptest! {
        #[test]
        fn window_and_table_invariants_hold_on_every_tick((n, run) in arb_run(), seed in 0u64..1000) {
            let p = params();
            for r in replay(n, &run, seed) {
                // Window size never below N (every hop here is usable or
                // disappeared; count those left).
                let usable = r.hops.iter().filter(|h| h.usable).count();
                prop_assert!(r.window.len() >= p.window_base.min(usable), "window {:?}, {} usable", r.window, usable);
                // Weights of a window sum to its slot count: every slot
                // holds a member of the window.
                if !r.window.is_empty() {
                    prop_assert!(r.table.iter().all(|h| r.window.contains(h)));
                }
                // No hop above max share while the window has 2+ hops (one
                // slot of rounding).
                if r.window.len() >= 2 {
                    for &h in &r.window {
                        let slots = slots_of(&r.table, h) as f64;
                        prop_assert!(slots <= p.max_share * p.slot_count as f64 + 1.0, "hop {} holds {}", h, slots);
                    }
                }
                for d in &r.destination_tables {
                    prop_assert!(d.members.len() >= p.window_base.min(usable));
                    prop_assert!(d.table.iter().all(|h| d.members.contains(h)));
                }
            }
        }

        #[test]
        fn the_same_inputs_and_seed_give_the_same_decisions((n, run) in arb_run(), seed in 0u64..1000) {
            // Issue 4: "the same inputs and seed give the same decisions".
            let a = replay(n, &run, seed);
            let b = replay(n, &run, seed);
            for (x, y) in a.iter().zip(&b) {
                prop_assert_eq!(&x.window, &y.window);
                prop_assert_eq!(&x.table, &y.table);
                prop_assert_eq!(&x.disappeared, &y.disappeared);
                let dx: Vec<_> = x.destination_tables.iter().map(|d| (d.destination, &d.members, &d.table)).collect();
                let dy: Vec<_> = y.destination_tables.iter().map(|d| (d.destination, &d.members, &d.table)).collect();
                prop_assert_eq!(dx, dy);
            }
        }
    }

    #[test]
    fn a_port_set_table_uses_only_the_hops_accepting_it() {
        // SPEC 6 / issue 6: "a flow is never steered to a hop that does not
        // accept its destination port".
        let e: Engine<u32> = Engine::new(hops(&[100.0, 100.0, 100.0]), params());
        let t = e.table_for(&[false, true, true]);
        assert_eq!(slots_of(&t, 0), 0);
        assert!(slots_of(&t, 1) > 100 && slots_of(&t, 2) > 100);
        let nobody = e.table_for(&[false, false, false]);
        assert!(nobody.iter().all(|&h| h == slot_table::EMPTY));
        // One accepting hop takes the whole table (max share needs 2+ hops).
        let one = e.table_for(&[false, false, true]);
        assert_eq!(slots_of(&one, 2), 307);
    }

    #[test]
    fn initial_table_follows_min_of_estimates() {
        let e: Engine<u32> = Engine::new(hops(&[100.0, 100.0, 100.0]), params());
        for h in 0..3 {
            let s = slots_of(e.table(), h);
            assert!((101..=103).contains(&s), "hop {h}: {s}");
        }
    }

    #[test]
    fn slow_hop_loses_share_after_one_tick() {
        // "rewrites the slot table in proportion to each hop's measured speed
        // over the past K seconds" (issue 2).
        let mut e: Engine<u32> = Engine::new(hops(&[100.0, 100.0, 100.0]), params());
        let flows = vec![
            sample(1, 0, 100_000_000, 0, SEC),
            sample(2, 1, 100_000_000, 0, SEC),
            sample(3, 2, 10_000_000, 0, SEC),
        ];
        let r = e.tick(SEC, flows);
        assert_eq!(r.hops[2].speed_source, SpeedSource::Measured);
        assert!((r.hops[2].speed - 10e6).abs() < 1.0, "{}", r.hops[2].speed);
        let share = slots_of(&r.table, 2) as f64 / 307.0;
        assert!(share < 0.07, "slow hop keeps {share}");
        assert!(share > 0.0, "exploration floor keeps it measurable");
    }

    #[test]
    fn speed_uses_bytes_of_this_tick_only() {
        let mut e: Engine<u32> = Engine::new(hops(&[1.0]), params());
        e.tick(SEC, vec![sample(1, 0, 1_000, 0, SEC)]);
        let r = e.tick(2 * SEC, vec![sample(1, 0, 3_000, 0, 2 * SEC)]);
        assert_eq!(r.hops[0].bytes, 2_000);
        assert!((r.hops[0].speed - 2_000.0).abs() < 1e-6);
    }

    #[test]
    fn flow_without_reply_after_t_is_failed_once() {
        let mut e: Engine<u32> = Engine::new(hops(&[1.0, 1.0]), params());
        let mut f = sample(7, 1, 60, 0, 0);
        f.reply_packets = 0;
        assert_eq!(e.tick(SEC, vec![f]).hops[1].newly_failed, 0);
        assert_eq!(e.tick(4 * SEC, vec![f]).hops[1].newly_failed, 1);
        let r = e.tick(5 * SEC, vec![f]);
        assert_eq!(r.hops[1].newly_failed, 0);
        assert_eq!(r.hops[1].failed_total, 1);
    }

    #[test]
    fn unusable_hop_gets_no_slots() {
        let mut e: Engine<u32> = Engine::new(hops(&[1.0, 1.0]), params());
        e.set_usable(0, false);
        let r = e.tick(SEC, Vec::new());
        assert_eq!(slots_of(&r.table, 0), 0);
        assert_eq!(slots_of(&r.table, 1), 307);
    }

    #[test]
    fn a_hop_answering_nothing_is_out_of_the_table_within_one_tick() {
        // SPEC 5.5: "disappeared: ... no reply on any flow: removed from
        // every window within one tick".
        let mut e: Engine<u32> = Engine::new(hops(&[100.0, 100.0]), params());
        let mut flows: Vec<FlowSample<u32>> = (0..3)
            .map(|k| {
                let mut f = sample(k, 1, 60, 0, 0);
                f.reply_packets = 0;
                f
            })
            .collect();
        flows.push(sample(10, 0, 1_000_000, 0, SEC));
        let r = e.tick(4 * SEC, flows.clone());
        assert_eq!(r.disappeared, vec![1]);
        assert_eq!(slots_of(&r.table, 1), 0);
        assert!(!r.hops[1].usable && !e.is_usable(1));
        // Not declared twice; back for a re-test after L (60 s).
        assert!(e.tick(5 * SEC, Vec::new()).disappeared.is_empty());
        let later = e.tick(65 * SEC, Vec::new());
        assert!(later.hops[1].usable && slots_of(&later.table, 1) > 0);
    }

    #[test]
    fn a_hop_that_answers_some_flows_is_not_disappeared() {
        // Blocking some destinations is "blocked", not "disappeared".
        let mut e: Engine<u32> = Engine::new(hops(&[100.0, 100.0]), params());
        let mut flows: Vec<FlowSample<u32>> = (0..5)
            .map(|k| {
                let mut f = sample(k, 1, 60, 0, 0);
                f.reply_packets = 0;
                f
            })
            .collect();
        let mut ok = sample(10, 1, 1_000_000, 0, SEC);
        ok.reply_bytes = 50_000;
        flows.push(ok);
        let r = e.tick(4 * SEC, flows);
        assert!(r.disappeared.is_empty());
        assert_eq!(r.hops[1].newly_failed, 5);
        assert!(slots_of(&r.table, 1) > 0);
    }

    #[test]
    fn unanswered_flows_do_not_stretch_busy_time() {
        let mut e: Engine<u32> = Engine::new(hops(&[100.0, 100.0]), params());
        let answered = sample(1, 0, 1_000_000, 0, SEC / 2);
        let mut silent = sample(2, 0, 300, 0, SEC);
        silent.reply_packets = 0;
        let r = e.tick(SEC, vec![answered, silent]);
        // 1 MB over the answered flow's half second, not over a whole second.
        assert!(
            (r.hops[0].speed - 2_000_000.0).abs() < 1.0,
            "{}",
            r.hops[0].speed
        );
    }
}
