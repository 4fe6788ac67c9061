//! The hop-choice policies a simulation compares. steerer's is the real
//! policy engine ([`crate::policy::Engine`] with its block list and the
//! data plane's choice rule), fed the same observations the daemon reads
//! from the flow table; nothing of it is re-implemented here.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use steerer_common::{siphash::flow_hash, FlowKey};

use crate::policy::{
    blocked::{BlockList, Verdict},
    choice, Engine, FlowSample, HopSpec, Params,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum PolicyKind {
    /// A hop drawn uniformly at random among the hops that are up.
    Uniform,
    /// Plain ECMP: a static hash of the 5-tuple over the hops that are up.
    Ecmp,
    /// steerer's policy engine.
    Steerer,
    /// Knows every blackhole and every hop's capacity and load.
    Oracle,
}

impl PolicyKind {
    pub const ALL: [PolicyKind; 4] = [
        PolicyKind::Uniform,
        PolicyKind::Ecmp,
        PolicyKind::Steerer,
        PolicyKind::Oracle,
    ];

    pub fn label(self) -> &'static str {
        match self {
            PolicyKind::Uniform => "uniform",
            PolicyKind::Ecmp => "ecmp",
            PolicyKind::Steerer => "steerer",
            PolicyKind::Oracle => "oracle",
        }
    }
}

/// What a policy may look at when it chooses: the oracle sees everything,
/// the others only which hops are up (a router's link state).
pub struct NetView<'a> {
    pub up: &'a [bool],
    pub capacity: &'a [f64],
    pub active: &'a [u32],
    pub blackholes: &'a dyn Fn(u32, u32) -> bool,
}

/// A flow attempt as the policy sees it.
pub struct Attempt<'a> {
    pub key: &'a FlowKey,
    pub destination: u32,
}

pub enum Policy {
    Uniform {
        rng: Box<ChaCha8Rng>,
        up_list: Vec<u32>,
    },
    Ecmp {
        hash_key: [u64; 2],
        up_list: Vec<u32>,
    },
    Steerer(Box<SteererPolicy>),
    Oracle,
}

/// steerer: the engine (weights, slot table, failures), the per
/// destination block list, and the data plane's choice rule.
pub struct SteererPolicy {
    pub engine: Engine<u64>,
    pub blocks: BlockList<u32>,
    hash_key: [u64; 2],
    /// (hop, destination, time) of exclusions since the caller last took
    /// them (for the time-to-learn figure).
    pub new_exclusions: Vec<(u32, u32, u64)>,
}

impl Policy {
    pub fn new(kind: PolicyKind, seed: u64, hops: Vec<HopSpec>, params: Params) -> Policy {
        let hash_key = [
            seed ^ 0x5bd1_e995_0000_0001,
            seed.rotate_left(32) ^ 0x2545_f491,
        ];
        match kind {
            PolicyKind::Uniform => Policy::Uniform {
                rng: Box::new(ChaCha8Rng::seed_from_u64(seed ^ 0x9e37_79b9_7f4a_7c15)),
                up_list: Vec::new(),
            },
            PolicyKind::Ecmp => Policy::Ecmp {
                hash_key,
                up_list: Vec::new(),
            },
            PolicyKind::Steerer => Policy::Steerer(Box::new(SteererPolicy {
                engine: Engine::new(hops, params),
                blocks: BlockList::new(),
                hash_key,
                new_exclusions: Vec::new(),
            })),
            PolicyKind::Oracle => Policy::Oracle,
        }
    }

    /// The hops that are up changed (a router's next-hop set).
    pub fn hops_changed(&mut self, up: &[bool]) {
        let list = || {
            up.iter()
                .enumerate()
                .filter(|(_, &u)| u)
                .map(|(h, _)| h as u32)
                .collect::<Vec<u32>>()
        };
        match self {
            Policy::Uniform { up_list, .. } | Policy::Ecmp { up_list, .. } => *up_list = list(),
            Policy::Steerer(_) | Policy::Oracle => {}
        }
    }

    /// The hop for a new flow attempt; `None` when no hop may take it.
    pub fn choose(&mut self, now_ns: u64, a: &Attempt, net: &NetView) -> Option<u32> {
        match self {
            Policy::Uniform { rng, up_list } => {
                if up_list.is_empty() {
                    None
                } else {
                    Some(up_list[rng.gen_range(0..up_list.len())])
                }
            }
            Policy::Ecmp { hash_key, up_list } => {
                if up_list.is_empty() {
                    None
                } else {
                    let h = flow_hash(hash_key, a.key) % up_list.len() as u64;
                    Some(up_list[h as usize])
                }
            }
            Policy::Steerer(s) => s.choose(now_ns, a),
            Policy::Oracle => {
                // Highest fair share among the hops that reach the
                // destination; ties to the lower index.
                let mut best: Option<(u32, f64)> = None;
                for h in 0..net.up.len() {
                    if !net.up[h] || (net.blackholes)(h as u32, a.destination) {
                        continue;
                    }
                    let share = net.capacity[h] / (net.active[h] as f64 + 1.0);
                    if best.is_none_or(|(_, b)| share > b) {
                        best = Some((h as u32, share));
                    }
                }
                best.map(|(h, _)| h)
            }
        }
    }

    /// A SYN was retransmitted for an attempt that had no reply yet: the
    /// data plane's fast failover (SPEC 4.1.5) moves it. Only steerer has
    /// one; `None` keeps the hop.
    pub fn failover(
        &mut self,
        now_ns: u64,
        a: &Attempt,
        old_hop: u32,
        failovers: u16,
    ) -> Option<u32> {
        match self {
            Policy::Steerer(s) => s.failover(now_ns, a, old_hop, failovers),
            _ => None,
        }
    }

    pub fn steerer(&mut self) -> Option<&mut SteererPolicy> {
        match self {
            Policy::Steerer(s) => Some(s),
            _ => None,
        }
    }
}

impl SteererPolicy {
    fn choose(&mut self, now_ns: u64, a: &Attempt) -> Option<u32> {
        let table = table_for(&self.engine, a.destination);
        let blocks = &mut self.blocks;
        choice::choose(table, &self.hash_key, a.key, 0, |h| {
            !matches!(
                blocks.check(h, &a.destination, now_ns),
                Verdict::Excluded { .. }
            )
        })
    }

    fn failover(&mut self, now_ns: u64, a: &Attempt, old: u32, failovers: u16) -> Option<u32> {
        // The data plane counts the move against (old hop, destination); the
        // daemon feeds that count to the block list at its next tick. Here
        // it is fed at once, which differs by at most one tick.
        self.feed_failure(old, a.destination, now_ns, |b| {
            b.failovers(old, a.destination, 1, now_ns)
        });
        self.engine.record_failovers(old, 1);
        let table = table_for(&self.engine, a.destination);
        let blocks = &mut self.blocks;
        choice::choose(
            table,
            &self.hash_key,
            a.key,
            failovers.saturating_add(1),
            |h| {
                h != old
                    && !matches!(
                        blocks.check(h, &a.destination, now_ns),
                        Verdict::Excluded { .. }
                    )
            },
        )
    }

    /// One engine tick over the attempts seen in the past tick; failed
    /// flows feed the block list. Returns the hop shares and the hops
    /// declared disappeared (whose flows the caller resets).
    pub fn tick(
        &mut self,
        now_ns: u64,
        samples: Vec<FlowSample<u64>>,
        destination_of: impl Fn(u64) -> Option<u32>,
    ) -> (Vec<f64>, Vec<u32>) {
        // A destination's own window never holds a hop excluded for it.
        let blocks = &self.blocks;
        let allowed = |d: u64, h: u32| !blocks.is_excluded(h, &(d as u32), now_ns);
        let report = self.engine.tick_with(now_ns, samples, &allowed);
        for (key, hop) in &report.newly_failed_flows {
            if let Some(d) = destination_of(*key) {
                self.feed_failure(*hop, d, now_ns, |b| b.flow_failed(*hop, d, now_ns));
            }
        }
        for &h in &report.disappeared {
            // Its per-destination history is moot; a re-test starts clean.
            self.blocks.forget_hop(h);
        }
        (
            report.hops.iter().map(|h| h.share).collect(),
            report.disappeared,
        )
    }

    fn feed_failure(
        &mut self,
        hop: u32,
        d: u32,
        now_ns: u64,
        feed: impl FnOnce(&mut BlockList<u32>),
    ) {
        let before = self.blocks.is_excluded(hop, &d, now_ns);
        feed(&mut self.blocks);
        if !before && self.blocks.is_excluded(hop, &d, now_ns) {
            self.new_exclusions.push((hop, d, now_ns));
        }
    }

    /// A flow from `hop` got its first reply: the hop reaches `destination`.
    pub fn answered(&mut self, hop: u32, destination: u32) {
        self.blocks.flow_answered(hop, destination);
    }
}

/// The destination's own table if it has one, else the class table (what
/// the data plane's destination map does).
fn table_for(engine: &Engine<u64>, destination: u32) -> &[u32] {
    engine
        .table_for_destination(destination as u64)
        .unwrap_or(engine.table())
}
