//! The control-plane policy, sans-IO: it never reads a clock, a socket or a
//! map. The daemon (from BPF maps) and tests feed it flow samples stamped
//! with time; it answers with weights and a slot table.
//!
//! This is the foundation's policy (issue 2): one window holding every hop,
//! weights proportional to each hop's speed measured over the past tick.

pub mod blocked;
pub mod busy_time;
pub mod choice;
pub mod slot_table;
pub mod weights;
pub mod window;

use std::collections::HashMap;
use std::hash::Hash;

/// One configured hop as the policy sees it.
#[derive(Debug, Clone)]
pub struct HopSpec {
    pub name: String,
    /// min(estimated speed, estimated capacity), bytes per second.
    pub initial_estimate: f64,
}

/// Tunables (SPEC section 3).
#[derive(Debug, Clone)]
pub struct Params {
    /// K, nanoseconds.
    pub tick_ns: u64,
    /// L: how long a measured speed is remembered when a hop gets no traffic.
    pub memory_ns: u64,
    /// T: no reply after this long marks a flow failed.
    pub fail_after_ns: u64,
    pub max_share: f64,
    /// Share of new flows spread evenly over every usable hop, so that each
    /// can be measured again (SPEC 5.6).
    pub exploration_share: f64,
    /// Slots per table (prime).
    pub slot_count: u32,
}

/// What a flow's counters said at one instant. Times share the clock of
/// `now` passed to [`Engine::tick`] (the daemon uses CLOCK_MONOTONIC).
#[derive(Debug, Clone, Copy)]
pub struct FlowSample<K> {
    pub key: K,
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
    /// Never measured (or too long ago): min(estimated speed, capacity).
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
    /// Share of new flows (0..=1).
    pub share: f64,
    /// Slots held in the new table.
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

#[derive(Debug, Clone)]
pub struct TickReport<K> {
    pub now_ns: u64,
    pub hops: Vec<HopReport>,
    /// The new slot table (hop ids; `slot_table::EMPTY` when no hop usable).
    pub table: Vec<u32>,
    /// Slots that changed hop compared with the previous table.
    pub moved_slots: usize,
    /// The flows that became failed this tick, with their hop (input for
    /// per-destination blocking, SPEC 5.5).
    pub newly_failed_flows: Vec<(K, u32)>,
    /// Hops declared disappeared this tick (no reply on any flow): out of
    /// every table; the caller resets their flows so retries go elsewhere.
    pub disappeared: Vec<u32>,
}

/// Failed flows in one tick, with no reply on any flow of the hop, that
/// declare a hop disappeared.
pub const SILENT_FAILURES: u64 = 3;

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
    failed_total: u64,
}

/// The policy engine.
pub struct Engine<K> {
    hops: Vec<HopSpec>,
    seeds: Vec<u64>,
    state: Vec<HopState>,
    params: Params,
    /// Bytes each flow had at the previous tick, for per-tick deltas.
    /// What each flow's counters said at the previous tick. The hasher is
    /// aHash, randomly keyed per process: flow keys come from the network,
    /// and SipHash (std's) costs a third of a tick at a million flows.
    flows: HashMap<K, FlowMemo, ahash::RandomState>,
    /// Ticks so far; flows not seen in the current tick are forgotten.
    tick_count: u64,
    table: Vec<u32>,
    last_tick_ns: Option<u64>,
    /// Speeds the last table was built from (for per-port-set tables).
    last_speeds: Vec<f64>,
    /// Flows the data plane moved off each hop by fast failover since the
    /// last tick (each an unanswered SYN).
    pending_failovers: Vec<u64>,
}

impl<K: Hash + Eq + Copy> Engine<K> {
    pub fn new(hops: Vec<HopSpec>, params: Params) -> Self {
        let seeds = hops.iter().map(|h| slot_table::hop_seed(&h.name)).collect();
        let state = hops
            .iter()
            .map(|_| HopState {
                usable: true,
                ..HopState::default()
            })
            .collect();
        let mut engine = Engine {
            hops,
            seeds,
            state,
            params,
            flows: HashMap::default(),
            tick_count: 0,
            table: Vec::new(),
            last_tick_ns: None,
            last_speeds: Vec::new(),
            pending_failovers: Vec::new(),
        };
        let (speeds, _) = engine.speeds(&vec![None; engine.hops.len()], 0);
        engine.table = engine.build_table(&speeds, None).1;
        engine.last_speeds = speeds;
        engine
    }

    pub fn params(&self) -> &Params {
        &self.params
    }

    pub fn hops(&self) -> &[HopSpec] {
        &self.hops
    }

    /// The current slot table.
    pub fn table(&self) -> &[u32] {
        &self.table
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
        let h = hop as usize;
        if h < self.hops.len() {
            if self.pending_failovers.len() < self.hops.len() {
                self.pending_failovers.resize(self.hops.len(), 0);
            }
            self.pending_failovers[h] += n;
        }
    }

    /// One control-plane cycle at time `now_ns` over every flow currently in
    /// the flow table.
    pub fn tick(
        &mut self,
        now_ns: u64,
        flows: impl IntoIterator<Item = FlowSample<K>>,
    ) -> TickReport<K> {
        let n = self.hops.len();
        let window_start = match self.last_tick_ns {
            Some(t) if t < now_ns => t,
            _ => now_ns.saturating_sub(self.params.tick_ns),
        };
        let mut bytes = vec![0u64; n];
        let mut active = vec![0u64; n];
        let mut newly_failed = vec![0u64; n];
        let mut newly_failed_flows = Vec::new();
        let mut intervals: Vec<Vec<(u64, u64)>> = vec![Vec::new(); n];
        let mut answered = vec![0u64; n];
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
                answered[h] += 1;
            }
            memo.total = total;
            memo.reply = f.reply_bytes;
            memo.seen_tick = tick;
            if f.last_seen_ns >= window_start {
                active[h] += 1;
            }
            // A flow that never got an answer moved no data: its retried SYNs
            // would only stretch the hop's busy time (blackholes are judged
            // by failures and exclusions, not by speed).
            if delta > 0 && f.reply_packets > 0 {
                bytes[h] += delta;
                let start = f.first_seen_ns.max(window_start);
                intervals[h].push((start, f.last_seen_ns.max(start)));
            }
            let failed = f.packets > 0
                && f.reply_packets == 0
                && now_ns.saturating_sub(f.first_seen_ns) >= self.params.fail_after_ns;
            if failed && !memo.failed {
                memo.failed = true;
                newly_failed[h] += 1;
                newly_failed_flows.push((f.key, f.hop));
            }
        }
        // Flows gone from the table (ended, evicted) are forgotten.
        self.flows.retain(|_, m| m.seen_tick == tick);

        let mut measured = vec![None; n];
        for h in 0..n {
            let busy = busy_time::union_length(&mut intervals[h]);
            // Below a millisecond of activity the quotient is noise.
            if bytes[h] > 0 && busy >= 1_000_000 {
                measured[h] = Some(bytes[h] as f64 / (busy as f64 / 1e9));
            }
            self.state[h].failed_total += newly_failed[h];
        }
        let mut unanswered = newly_failed.clone();
        for (h, n) in std::mem::take(&mut self.pending_failovers)
            .into_iter()
            .enumerate()
        {
            unanswered[h] += n;
        }
        let disappeared = self.judge_silence(now_ns, &unanswered, &answered);
        let (speeds, sources) = self.speeds(&measured, now_ns);
        let (shares, table) = self.build_table(&speeds, None);
        self.last_speeds = speeds.clone();
        let moved_slots = slot_table::moved(&self.table, &table);
        self.table = table;
        self.last_tick_ns = Some(now_ns);

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
                share: shares[h],
                slots: slots[h],
                active_flows: active[h],
                bytes: bytes[h],
                speed: speeds[h],
                speed_source: sources[h],
                newly_failed: newly_failed[h],
                failed_total: self.state[h].failed_total,
            })
            .collect();
        TickReport {
            now_ns,
            hops,
            table: self.table.clone(),
            moved_slots,
            newly_failed_flows,
            disappeared,
        }
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

    /// Speed per hop: this tick's measurement, else a remembered one, else the
    /// operator's estimate. Remembers new measurements.
    fn speeds(&mut self, measured: &[Option<f64>], now_ns: u64) -> (Vec<f64>, Vec<SpeedSource>) {
        let mut speeds = Vec::with_capacity(measured.len());
        let mut sources = Vec::with_capacity(measured.len());
        for (h, m) in measured.iter().enumerate() {
            let state = &mut self.state[h];
            if let Some(speed) = m {
                state.last_measured = Some((*speed, now_ns));
                speeds.push(*speed);
                sources.push(SpeedSource::Measured);
            } else if let Some((speed, at)) = state
                .last_measured
                .filter(|(_, at)| now_ns.saturating_sub(*at) <= self.params.memory_ns)
            {
                let _ = at;
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
    /// tick. No allowed usable hop: an empty table (the data plane passes
    /// such flows unsteered and counts them).
    pub fn table_for(&self, allowed: &[bool]) -> Vec<u32> {
        self.build_table(&self.last_speeds, Some(allowed)).1
    }

    fn build_table(&self, speeds: &[f64], allowed: Option<&[bool]>) -> (Vec<f64>, Vec<u32>) {
        let usable: Vec<bool> = (0..self.state.len())
            .map(|h| {
                self.usable_now(h) && allowed.is_none_or(|a| a.get(h).copied().unwrap_or(false))
            })
            .collect();
        if !usable.iter().any(|&u| u) {
            return (
                vec![0.0; self.hops.len()],
                vec![slot_table::EMPTY; self.params.slot_count as usize],
            );
        }
        let shares = weights::shares(
            speeds,
            &usable,
            self.params.max_share,
            self.params.exploration_share,
        );
        let ids: Vec<u32> = (0..self.hops.len() as u32).collect();
        let table = slot_table::build(&ids, &self.seeds, &shares, self.params.slot_count);
        (shares, table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    fn params() -> Params {
        Params {
            tick_ns: SEC,
            memory_ns: 60 * SEC,
            fail_after_ns: 3 * SEC,
            max_share: 0.5,
            exploration_share: 0.05,
            slot_count: 307,
        }
    }

    fn hops(estimates: &[f64]) -> Vec<HopSpec> {
        estimates
            .iter()
            .enumerate()
            .map(|(i, &e)| HopSpec {
                name: format!("h{i}"),
                initial_estimate: e,
            })
            .collect()
    }

    fn sample(key: u32, hop: u32, bytes: u64, first: u64, last: u64) -> FlowSample<u32> {
        FlowSample {
            key,
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
