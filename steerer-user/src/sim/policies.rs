//! The hop-choice policies a simulation compares. steerer's is the
//! daemon's own control loop ([`crate::policy::Controller`]) writing into
//! a copy of the data plane's maps ([`ModelDataplane`]) through the
//! daemon's own `apply`, and the data plane's own choice functions reading
//! them; nothing of it is re-implemented here.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use steerer_common::{flow::FailoverKey, siphash::flow_hash, FlowKey, FlowValue};

use super::dataplane::ModelDataplane;
use crate::{
    apply::{apply, Applied},
    policy::{Controller, ControllerHop, Decisions, Event, HopSpec, Params},
    portsets::PortSet,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum PolicyKind {
    /// A hop drawn uniformly at random among the hops that are up.
    Uniform,
    /// Plain ECMP: a static hash of the 5-tuple over the hops that are up.
    Ecmp,
    /// A health-checked least-loaded balancer (LVS `wlc`, mwan3 with
    /// weights): static weights by each hop's configured (claimed)
    /// capacity, each new flow to the hop with the fewest flows per unit
    /// of weight among the hops that are up. Its health checks see a hop
    /// that is down or gone at once (more than a real prober does); they
    /// cannot see a hop that blackholes some destinations.
    Health,
    /// steerer's policy engine.
    Steerer,
    /// Knows every blackhole and every hop's capacity and load.
    Oracle,
}

impl PolicyKind {
    pub const ALL: [PolicyKind; 5] = [
        PolicyKind::Uniform,
        PolicyKind::Ecmp,
        PolicyKind::Health,
        PolicyKind::Steerer,
        PolicyKind::Oracle,
    ];

    pub fn label(self) -> &'static str {
        match self {
            PolicyKind::Uniform => "uniform",
            PolicyKind::Ecmp => "ecmp",
            PolicyKind::Health => "health",
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
    Health {
        /// Per hop, its configured capacity (the weight).
        weights: Vec<f64>,
    },
    Steerer(Box<SteererPolicy>),
    Oracle,
}

/// steerer: the controller, the data plane it writes, and what it wrote.
pub struct SteererPolicy {
    pub controller: Controller,
    pub dataplane: ModelDataplane,
    applied: Applied,
    /// (hop, destination key, time) of exclusions since the caller last
    /// took them (for the time-to-learn figure).
    pub new_exclusions: Vec<(u32, steerer_common::flow::DestKey, u64)>,
}

impl Policy {
    /// `published[h]`: hop `h` is in the pool at the start (steerer's
    /// controller is told of those only).
    pub fn new(
        kind: PolicyKind,
        seed: u64,
        hops: Vec<HopSpec>,
        published: &[bool],
        params: Params,
    ) -> Policy {
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
            PolicyKind::Health => Policy::Health {
                weights: hops.iter().map(|h| h.initial_estimate).collect(),
            },
            PolicyKind::Steerer => {
                let names: Vec<String> = hops.iter().map(|h| h.name.clone()).collect();
                let pool = hops
                    .into_iter()
                    .zip(published)
                    .filter(|(_, &p)| p)
                    .map(|(spec, _)| pool_hop(spec))
                    .collect();
                Policy::Steerer(Box::new(SteererPolicy::with_names(
                    pool, &names, params, hash_key,
                )))
            }
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
            Policy::Health { .. } | Policy::Steerer(_) | Policy::Oracle => {}
        }
    }

    /// The hop for a new flow attempt; `None` when no hop may take it.
    pub fn choose(&mut self, a: &Attempt, net: &NetView) -> Option<u32> {
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
            Policy::Health { weights } => {
                // The flows it counts are those moving data (LVS weighs a
                // connection that never got an answer 1/256 of one).
                best_share(net, weights, |_| true)
            }
            Policy::Steerer(s) => s.dataplane.new_flow(a.key),
            Policy::Oracle => {
                best_share(net, net.capacity, |h| !(net.blackholes)(h, a.destination))
            }
        }
    }

    /// A SYN was retransmitted for an attempt that had no reply yet: the
    /// data plane's fast failover (SPEC 4.1.5) moves it. Only steerer has
    /// one; `None` keeps the hop.
    pub fn failover(&mut self, a: &Attempt, old_hop: u32, failovers: u16) -> Option<u32> {
        match self {
            Policy::Steerer(s) => s.dataplane.failover(a.key, old_hop, failovers as u32),
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

/// The up hop (one `reaches`) with the highest `capacity` per flow it
/// would then carry; ties to the lower index.
fn best_share(net: &NetView, capacity: &[f64], reaches: impl Fn(u32) -> bool) -> Option<u32> {
    let mut best: Option<(u32, f64)> = None;
    for (h, (&up, &c)) in net.up.iter().zip(capacity).enumerate() {
        if !up || !reaches(h as u32) {
            continue;
        }
        let share = c / (net.active[h] as f64 + 1.0);
        if best.is_none_or(|(_, b)| share > b) {
            best = Some((h as u32, share));
        }
    }
    best.map(|(h, _)| h)
}

/// A hop of a simulated pool: every port, up, active, no id yet.
fn pool_hop(spec: HopSpec) -> ControllerHop {
    ControllerHop {
        spec,
        id: None,
        accepts: PortSet::all(),
        usable: true,
        admin: crate::policy::Admin::Active,
    }
}

impl SteererPolicy {
    /// The controller over `hops`, its first decisions written into a
    /// fresh model of the data plane keyed with `hash_key` (as the daemon
    /// does before it attaches).
    pub fn new(hops: Vec<ControllerHop>, params: Params, hash_key: [u64; 2]) -> SteererPolicy {
        let names: Vec<String> = hops.iter().map(|h| h.spec.name.clone()).collect();
        Self::with_names(hops, &names, params, hash_key)
    }

    /// [`Self::new`] where the simulated network's hops are `names` (a
    /// pool that changes draws from them).
    pub fn with_names(
        hops: Vec<ControllerHop>,
        names: &[String],
        params: Params,
        hash_key: [u64; 2],
    ) -> SteererPolicy {
        let slot_count = params.slot_count;
        let mut controller = Controller::new(hops, params);
        // The simulated gateway starts at time 0 with empty maps.
        controller.handle_start(0, &[], &[]);
        let mut s = SteererPolicy {
            dataplane: ModelDataplane::new(hash_key, slot_count, names),
            applied: Applied::default(),
            new_exclusions: Vec::new(),
            controller,
        };
        let initial = s.controller.initial();
        s.apply(&initial);
        s
    }

    /// One tick over the flow table as the simulator holds it (each
    /// flow's `hop` the simulated hop: it is given the data plane's id of
    /// it, as the kernel's table holds). Returns the class table's share
    /// of each of the `hops` simulated hops and the flows the controller
    /// reset (their senders retry at once).
    pub fn tick(
        &mut self,
        now_ns: u64,
        mut flows: Vec<(FlowKey, FlowValue)>,
        hops: usize,
    ) -> (Vec<f64>, Vec<FlowKey>) {
        let dp = &self.dataplane;
        flows.retain_mut(|(_, v)| match dp.id_of(v.hop) {
            Some(id) => {
                v.hop = id;
                true
            }
            None => false,
        });
        let d = self.handle_tick(now_ns, &flows);
        let mut shares = vec![0.0; hops];
        if let Some(r) = &d.report {
            for (h, report) in self.controller.hops().iter().zip(&r.hops) {
                if let Some(i) = self.dataplane.hop_named(&h.spec.name) {
                    if let Some(s) = shares.get_mut(i as usize) {
                        *s = report.share;
                    }
                }
            }
        }
        (shares, self.dataplane.take_resets())
    }

    /// The controller's tick over `flows` and the model's failover
    /// counters, written into the model; the decisions.
    pub fn handle_tick(&mut self, now_ns: u64, flows: &[(FlowKey, FlowValue)]) -> Decisions {
        let failovers: Vec<(FailoverKey, u64)> = self.dataplane.failover_counters();
        let d = self.controller.handle_tick(now_ns, flows, &failovers);
        self.apply(&d);
        d
    }

    /// A hop's link went up or down (written into the model at once).
    pub fn handle_link(&mut self, now_ns: u64, name: &str, usable: bool) -> Decisions {
        let d = self.controller.handle_link(now_ns, name, usable);
        self.apply(&d);
        d
    }

    /// The pool is now `hops` (a changed directory): a controller of the
    /// new pool takes over as at the daemon's reload.
    pub fn pool_changed(&mut self, _now_ns: u64, hops: Vec<HopSpec>) {
        let params = self.controller.engine().params().clone();
        let pool = hops.into_iter().map(pool_hop).collect();
        let old = std::mem::replace(&mut self.controller, Controller::new(pool, params));
        let (_, d) = self.controller.handle_reload(old);
        self.apply(&d);
    }

    /// The controller's timeout passed with no tick due.
    pub fn handle_timeout(&mut self, now_ns: u64) -> Decisions {
        let d = self.controller.handle_timeout(now_ns);
        self.apply(&d);
        d
    }

    fn apply(&mut self, d: &Decisions) {
        // The model's writes cannot fail.
        let _ = apply(&mut self.dataplane, &mut self.applied, d);
        for e in &d.events {
            if let Event::Excluded { hop, dest, .. } = e {
                let now = d.report.as_ref().map_or(0, |r| r.now_ns);
                if let Some(h) = self.dataplane.hop_named(hop) {
                    self.new_exclusions.push((h, *dest, now));
                }
            }
        }
    }
}
