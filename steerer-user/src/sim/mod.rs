//! A deterministic simulator of SPEC section 7: senders open connections
//! through a pool of hops with throughput limits, some hops blackhole some
//! destinations, and a sender whose stream stalls retries on a new
//! connection. The same seeded workload is replayed under each policy
//! (uniform random, ECMP, steerer's engine, an oracle).
//!
//! Model, in fixed steps of `step_ms`:
//! * a hop's capacity is shared equally by its flows that move data, after
//!   the flows that cannot use an equal share (in their handshake, or held
//!   by slow start) take what they can (one round of water-filling); a
//!   destination's intermediary link is shared equally; a flow gets the
//!   smaller of the two (capacity the link leaves unused is not handed to
//!   others: a simplification of max-min fairness);
//! * with `rtt_ms`, every hop has a round-trip time (spread per seed): an
//!   attempt's first data arrives two round trips after its SYN (handshake,
//!   request), and its rate then grows by slow start from a 10-segment
//!   window, doubling per round trip until the share limits it;
//! * hop h blackholes destination d with probability 1/P, fixed per (h, d)
//!   by a hash of the seed; a blackholed or vanished hop moves nothing;
//! * TCP retransmits an unanswered SYN after 1, 3, 7, ... seconds; steerer's
//!   data plane re-steers such a flow (fast failover), the others do not;
//! * the sender abandons an attempt that received fewer than N bytes in the
//!   last K seconds (checked every K seconds from its start) and opens a
//!   new connection (new source port), restarting the transfer.
//!
//! Memory: per open connection one [`Conn`] (~160 bytes); per finished
//! connection 20 bytes for the distributions; steerer's engine holds one
//! entry per attempt seen in the last tick, its block list one per
//! (hop, destination) that failed; the blackhole map is a hash, not stored.

pub mod charts;
pub mod churn;
mod conn;
pub mod dataplane;
pub mod flow_size;
pub mod policies;
mod pool_events;
mod report;
pub mod results;
pub mod scenario;
pub mod seeds;
mod step;
mod transfer;
pub mod workload;

use std::collections::HashMap;

use steerer_common::{FlowKey, FlowValue};

use crate::policy::{HopSpec, Params};
pub use conn::destination_of;
use conn::{flow_key, value_of, Conn};
pub use policies::PolicyKind;
use policies::{Attempt, NetView, Policy};
pub use report::{compare, report};
pub use results::{RunResult, Summary};
pub use scenario::Scenario;
use workload::{Arrival, Workload};

const SEC: u64 = 1_000_000_000;
/// Payload bytes per reply packet, for the packet counters steerer reads.
const MSS: f64 = 1448.0;
/// Pools up to this size keep steerer's per-tick hop shares (the weights
/// chart).
const WEIGHT_HISTORY_MAX_HOPS: usize = 20_000;

/// Does hop `h` blackhole destination `d`? Fixed per (seed, h, d).
pub fn blackholes(seed: u64, p: u32, h: u32, d: u32) -> bool {
    if p == 0 {
        return false;
    }
    let mut z = seed ^ ((h as u64) << 32 | d as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    // splitmix64 finaliser
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    z.is_multiple_of(p as u64)
}

/// Run one policy over the scenario with `seed`.
pub fn run(scenario: &Scenario, kind: PolicyKind, seed: u64) -> RunResult {
    Simulation::new(scenario, kind, seed).run()
}

struct Simulation<'a> {
    sc: &'a Scenario,
    kind: PolicyKind,
    seed: u64,
    policy: Policy,
    /// Every hop of the scenario, published or not.
    specs: Vec<HopSpec>,
    churn: Option<churn::Churn>,
    capacity: Vec<f64>,
    /// Round-trip time through each hop, seconds.
    rtt: Vec<f64>,
    /// Per hop, what its flows that cannot use an equal share use (bytes/s)
    /// and how many they are, for the hops in `touched` (see `transfer`).
    held: Vec<(f64, u32)>,
    touched: Vec<u32>,
    up: Vec<bool>,
    hop_active: Vec<u32>,
    dest_active: HashMap<u32, u32>,
    conns: Vec<Conn>,
    next_attempt: u64,
    /// Attempts that ended since the last tick: the flow table still holds
    /// them at the tick (steerer reads their last counters), then they
    /// are dropped (the kernel's LRU keeps them longer, but counters that
    /// no longer move change nothing the controller decides).
    ended: Vec<(FlowKey, FlowValue)>,
    result: RunResult,
}

impl<'a> Simulation<'a> {
    fn new(sc: &'a Scenario, kind: PolicyKind, seed: u64) -> Simulation<'a> {
        let n = sc.hop_count();
        let hops: Vec<HopSpec> = sc
            .hop_claim
            .iter()
            .enumerate()
            .map(|(i, &claim)| HopSpec {
                name: format!("hop{i}"),
                initial_estimate: claim,
                operator: sc.hop_operator[i].clone(),
                subnet: None,
                fresh: false,
                latency_ms: None,
            })
            .collect();
        let params = Params {
            tick_ns: (sc.file.tick_secs * 1e9) as u64,
            memory_ns: 60 * SEC,
            fail_after_ns: 3 * SEC,
            seed,
            max_share: sc.file.max_share.unwrap_or(Params::default().max_share),
            bulk_flow_bytes: sc
                .file
                .bulk_flow_bytes
                .unwrap_or(Params::default().bulk_flow_bytes),
            hop_ids: sc.file.hop_ids.unwrap_or(Params::default().hop_ids),
            load_aware: sc.file.load_aware.unwrap_or(Params::default().load_aware),
            ..Params::default()
        };
        let params = Params {
            // One slot table names at most `hop_ids` hops.
            slot_count: slot_count_for(n.min(params.hop_ids as usize)),
            ..params
        };
        let (churn, up) = match &sc.file.churn {
            Some(spec) => {
                let (c, published) = churn::Churn::new(spec, n, seed);
                (Some(c), published)
            }
            None => (None, vec![true; n]),
        };
        let mut policy = Policy::new(kind, seed, hops.clone(), &up, params);
        policy.hops_changed(&up);
        Simulation {
            sc,
            kind,
            seed,
            policy,
            specs: hops,
            churn,
            capacity: sc.hop_capacity.clone(),
            rtt: transfer::hop_rtts(sc, seed),
            held: vec![(0.0, 0); n],
            touched: Vec::new(),
            up,
            hop_active: vec![0; n],
            dest_active: HashMap::new(),
            conns: Vec::new(),
            next_attempt: 0,
            ended: Vec::new(),
            result: RunResult::new(kind, n),
        }
    }

    fn blackholed(&self, h: u32, d: u32) -> bool {
        blackholes(self.seed, self.sc.file.blackhole_p, h, d)
    }

    fn moves_data(&self, hop: Option<u32>, d: u32) -> bool {
        hop.is_some_and(|h| self.up[h as usize] && !self.blackholed(h, d))
    }

    /// Whether connection `i` moves data follows from its hop and
    /// destination (hop up, no blackhole).
    fn refresh_flowing(&mut self, i: usize) {
        let c = &self.conns[i];
        let flowing = self.moves_data(c.hop, c.destination);
        self.set_flowing(i, flowing);
    }

    fn set_flowing(&mut self, i: usize, flowing: bool) {
        let c = &mut self.conns[i];
        if c.flowing == flowing {
            return;
        }
        c.flowing = flowing;
        let (h, d) = (c.hop.unwrap_or(0) as usize, c.destination);
        if flowing {
            self.hop_active[h] += 1;
            *self.dest_active.entry(d).or_default() += 1;
        } else {
            self.hop_active[h] -= 1;
            if let Some(n) = self.dest_active.get_mut(&d) {
                *n -= 1;
                if *n == 0 {
                    self.dest_active.remove(&d);
                }
            }
        }
    }

    fn choose(&mut self, key: &FlowKey, destination: u32) -> Option<u32> {
        let seed = self.seed;
        let p = self.sc.file.blackhole_p;
        let bh = move |h: u32, d: u32| blackholes(seed, p, h, d);
        let net = NetView {
            up: &self.up,
            capacity: &self.capacity,
            active: &self.hop_active,
            blackholes: &bh,
        };
        let a = Attempt { key, destination };
        self.policy.choose(&a, &net)
    }

    /// Connection `i` sends a SYN through its hop at `now`: if the hop
    /// answers, the handshake takes a round trip and the request another
    /// before the first data arrives; then slow start from the initial
    /// window (no round trip: at once, at the fair share).
    fn connect(&mut self, i: usize, now: u64) {
        let rtt = self.conns[i].hop.map_or(0.0, |h| self.rtt[h as usize]);
        let c = &mut self.conns[i];
        c.data_from_ns = now + (2.0 * rtt * 1e9) as u64;
        c.cwnd = if rtt > 0.0 {
            transfer::INITIAL_WINDOW
        } else {
            f64::INFINITY
        };
    }

    /// Start attempt number `attempts` of connection `i` at `now`.
    fn start_attempt(&mut self, i: usize, now: u64) {
        self.set_flowing(i, false);
        let attempt = self.next_attempt;
        self.next_attempt += 1;
        let (sender, destination) = (self.conns[i].sender, self.conns[i].destination);
        let key = flow_key(sender, destination, attempt);
        let hop = self.choose(&key, destination);
        let c = &mut self.conns[i];
        c.attempts += 1;
        c.attempt = attempt;
        c.attempt_start_ns = now;
        c.hop = hop;
        c.wasted += c.received;
        c.received = 0.0;
        c.answered = false;
        c.checkpoint_ns = now;
        c.checkpoint_bytes = 0.0;
        c.syn_retries = 0;
        c.next_syn_ns = now + SEC;
        c.failovers = 0;
        c.last_packet_ns = now;
        self.connect(i, now);
        if let Some(h) = hop {
            self.result.attempts_per_hop[h as usize] += 1;
            if self.blackholed(h, destination) {
                self.result.note_blackholed_attempt(h, destination, now);
            }
        }
        self.refresh_flowing(i);
    }

    /// The attempt of connection `i` ends (completed or abandoned): steerer
    /// sees its final counters at the next tick.
    fn end_attempt(&mut self, i: usize, now: u64) {
        self.set_flowing(i, false);
        if self.kind == PolicyKind::Steerer {
            let c = &self.conns[i];
            if let Some(h) = c.hop {
                let v = value_of(c, h, self.sc.file.request_bytes, now);
                self.ended.push((c.key(), v));
            }
        }
    }

    fn run(mut self) -> RunResult {
        let f = &self.sc.file;
        let step = f.step_ms * 1_000_000;
        let mut workload = Workload::new(
            self.seed,
            f.connections,
            f.arrivals_per_sec,
            f.senders,
            f.destinations,
            f.zipf_exponent,
            self.sc.flow_sizes.clone(),
        )
        .peekable();
        let mut now: u64 = 0;
        // steerer's control plane is called when its controller says: a
        // tick K after the last (the first one sooner), a timeout between
        // (a link hold-down ending); the other policies have neither.
        let wake = |p: &mut Policy| {
            p.steerer()
                .map_or(u64::MAX, |s| s.controller.poll_timeout())
        };
        let mut next_wake = wake(&mut self.policy);
        loop {
            // New connections of this step.
            while let Some(a) = workload.next_if(|a: &Arrival| a.at_ns < now + step) {
                self.arrive(a, now);
            }
            if self.conns.is_empty() && workload.peek().is_none() {
                break;
            }
            self.apply_events(now, now + step);
            self.apply_churn(now);
            self.move_data(now, step);
            now += step;
            self.timers(now);
            if now >= next_wake {
                let tick_due = self
                    .policy
                    .steerer()
                    .is_some_and(|s| now >= s.controller.next_tick());
                if tick_due {
                    self.tick(now);
                } else if let Some(s) = self.policy.steerer() {
                    s.handle_timeout(now);
                }
                next_wake = wake(&mut self.policy);
            }
        }
        self.result.duration_ns = now;
        self.result.finish();
        self.result
    }

    /// Record the exclusions steerer made (for the time to learn).
    fn take_exclusions(&mut self) {
        let Some(s) = self.policy.steerer() else {
            return;
        };
        let new = std::mem::take(&mut s.new_exclusions);
        for (h, dest, t) in new {
            let d = destination_of(&dest);
            let real = !self.up[h as usize] || self.blackholed(h, d);
            self.result.note_exclusion(h, d, t, real);
        }
    }

    fn tick(&mut self, now: u64) {
        if self.kind != PolicyKind::Steerer {
            return;
        }
        let request = self.sc.file.request_bytes;
        let mut flows = std::mem::take(&mut self.ended);
        for c in &self.conns {
            if let Some(h) = c.hop {
                flows.push((c.key(), value_of(c, h, request, now)));
            }
        }
        let Some(s) = self.policy.steerer() else {
            return;
        };
        let (shares, resets) = s.tick(now, flows, self.up.len());
        self.take_exclusions();
        // Per-tick shares of every hop are chart data; a pool of 100,000
        // hops would make them gigabytes.
        if shares.len() <= WEIGHT_HISTORY_MAX_HOPS {
            self.result.weights.push((now, shares));
        }
        if resets.is_empty() {
            return;
        }
        // The daemon deletes the reset flows' entries; the senders see the
        // reset and retry at once.
        let reset: std::collections::HashSet<FlowKey> = resets.into_iter().collect();
        for i in 0..self.conns.len() {
            if self.conns[i].hop.is_some() && reset.contains(&self.conns[i].key()) {
                self.result.resets += 1;
                self.end_attempt(i, now);
                self.start_attempt(i, now);
            }
        }
    }
}

/// A prime slot count of at least 100 x hops (Maglev's rule), at least
/// 251, at most the data plane's `MAX_SLOT_COUNT` (65,537, prime: only
/// window members hold slots, so a large pool still fits).
pub fn slot_count_for(hops: usize) -> u32 {
    let n = (hops as u32 * 100).clamp(251, steerer_common::limits::MAX_SLOT_COUNT);
    crate::config::next_prime(n)
}
