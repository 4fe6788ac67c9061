//! What the active probes through each hop said (issue 14, item 2): per
//! hop, consecutive rounds without an answer, the smoothed round-trip time,
//! and whether the hop is down by probes, and when each hop is due for its
//! next round. A round probes every target of the hop once, through the
//! hop; it is answered when any target answers. Sans-IO: the adapter runs
//! the rounds the book says are due and reports each one's outcome.

use std::collections::{HashMap, HashSet};

/// Probe tunables (`[probe]` in the configuration).
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeParams {
    /// One round per hop this often.
    pub interval_ns: u64,
    /// Consecutive rounds without an answer that take a hop out.
    pub down_after_rounds: u32,
    /// Rounds started per second at most, over all hops (the probe traffic
    /// bound; a pool larger than it is probed less often than the interval).
    pub max_rounds_per_sec: f64,
}

impl Default for ProbeParams {
    fn default() -> ProbeParams {
        ProbeParams {
            interval_ns: 5_000_000_000,
            down_after_rounds: 2,
            max_rounds_per_sec: 100.0,
        }
    }
}

/// A hop as its probes see it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ProbeHealth {
    Answering,
    /// `down_after_rounds` rounds went unanswered: out of every table.
    Lost,
    /// Answering again after being lost; takes flows again at `until_ns`
    /// (the link hold-down) unless a round is lost before.
    Recovering {
        until_ns: u64,
    },
}

#[derive(Debug, Clone)]
struct HopProbe {
    next_due_ns: u64,
    lost_rounds: u32,
    rtt_ms: Option<f64>,
    health: ProbeHealth,
}

/// What one round's outcome changed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ProbeChange {
    Nothing,
    /// The hop is lost after this many unanswered rounds.
    WentDown {
        rounds: u32,
    },
    /// A lost hop answered: recovering.
    CameBack,
}

/// Weight of a new round-trip sample in the smoothed one.
const RTT_GAIN: f64 = 0.25;

#[derive(Debug, Clone, Default)]
pub struct ProbeBook {
    params: Option<ProbeParams>,
    /// Per engine hop index, the hops probed (see `due`).
    hops: HashMap<u32, HopProbe>,
    /// Round starts left (a token bucket of `max_rounds_per_sec`).
    tokens: f64,
    refilled_ns: Option<u64>,
}

impl ProbeBook {
    /// `None`: no probes configured (every call is a no-op).
    pub fn new(params: Option<ProbeParams>) -> ProbeBook {
        ProbeBook {
            params,
            ..ProbeBook::default()
        }
    }

    pub fn enabled(&self) -> bool {
        self.params.is_some()
    }

    /// Out of the tables by its probes (lost, or still recovering).
    pub fn is_down(&self, hop: u32) -> bool {
        self.hops
            .get(&hop)
            .is_some_and(|p| p.health != ProbeHealth::Answering)
    }

    /// The last round was answered.
    pub fn answering(&self, hop: u32) -> bool {
        self.hops.get(&hop).is_some_and(|p| p.lost_rounds == 0)
    }

    pub fn rtt_ms(&self, hop: u32) -> Option<f64> {
        self.hops.get(&hop)?.rtt_ms
    }

    pub fn health(&self, hop: u32) -> Option<ProbeHealth> {
        Some(self.hops.get(&hop)?.health)
    }

    /// The hops due for a round at `now_ns`, at most as many as the rate
    /// bound allows, earliest due first; each is due again an interval
    /// later. `wanted`: the hops to keep probing (those holding data-plane
    /// ids, and those to re-test); hops down by probes stay probed anyway,
    /// a hop no longer wanted and answering is forgotten.
    pub fn due(&mut self, now_ns: u64, wanted: &HashSet<u32>) -> Vec<u32> {
        let Some(p) = self.params.clone() else {
            return Vec::new();
        };
        self.hops
            .retain(|h, s| wanted.contains(h) || s.health != ProbeHealth::Answering);
        for &h in wanted {
            self.hops.entry(h).or_insert(HopProbe {
                next_due_ns: now_ns,
                lost_rounds: 0,
                rtt_ms: None,
                health: ProbeHealth::Answering,
            });
        }
        self.refill(now_ns, &p);
        let mut due: Vec<(u64, u32)> = self
            .hops
            .iter()
            .filter(|(_, s)| s.next_due_ns <= now_ns)
            .map(|(&h, s)| (s.next_due_ns, h))
            .collect();
        due.sort_unstable();
        due.truncate(self.tokens.floor().max(0.0) as usize);
        self.tokens -= due.len() as f64;
        for &(_, h) in &due {
            if let Some(s) = self.hops.get_mut(&h) {
                s.next_due_ns = now_ns.saturating_add(p.interval_ns);
            }
        }
        due.into_iter().map(|(_, h)| h).collect()
    }

    fn refill(&mut self, now_ns: u64, p: &ProbeParams) {
        let cap = (p.max_rounds_per_sec * p.interval_ns as f64 / 1e9).max(1.0);
        self.tokens = match self.refilled_ns {
            None => cap,
            Some(t) => {
                let dt = now_ns.saturating_sub(t) as f64 / 1e9;
                (self.tokens + dt * p.max_rounds_per_sec).min(cap)
            }
        };
        self.refilled_ns = Some(now_ns);
    }

    /// When `due` or `recovered` next has something: the earliest due
    /// round (no sooner than the rate bound allows one) or recovery end.
    pub fn next_wake(&self) -> Option<u64> {
        let p = self.params.as_ref()?;
        let round = self.hops.values().map(|s| s.next_due_ns).min();
        let token_at = match self.refilled_ns {
            Some(t) if self.tokens < 1.0 && p.max_rounds_per_sec > 0.0 => {
                let wait = (1.0 - self.tokens) / p.max_rounds_per_sec;
                t.saturating_add((wait * 1e9).ceil() as u64)
            }
            _ => 0,
        };
        let recovery = self
            .hops
            .values()
            .filter_map(|s| match s.health {
                ProbeHealth::Recovering { until_ns } => Some(until_ns),
                _ => None,
            })
            .min();
        [round.map(|r| r.max(token_at)), recovery]
            .into_iter()
            .flatten()
            .min()
    }

    /// One round through `hop` ended: answered with this round-trip time,
    /// or not (`None`). `hold_ns`: how long a lost hop that answers again
    /// waits before it takes flows.
    pub fn record(
        &mut self,
        now_ns: u64,
        hop: u32,
        rtt_ns: Option<u64>,
        hold_ns: u64,
    ) -> ProbeChange {
        let Some(p) = &self.params else {
            return ProbeChange::Nothing;
        };
        let Some(s) = self.hops.get_mut(&hop) else {
            return ProbeChange::Nothing;
        };
        match rtt_ns {
            Some(rtt) => {
                let ms = rtt as f64 / 1e6;
                s.rtt_ms = Some(match s.rtt_ms {
                    Some(old) => old + RTT_GAIN * (ms - old),
                    None => ms,
                });
                s.lost_rounds = 0;
                if s.health == ProbeHealth::Lost {
                    s.health = ProbeHealth::Recovering {
                        until_ns: now_ns.saturating_add(hold_ns),
                    };
                    return ProbeChange::CameBack;
                }
                ProbeChange::Nothing
            }
            None => {
                s.lost_rounds = s.lost_rounds.saturating_add(1);
                match s.health {
                    ProbeHealth::Answering if s.lost_rounds >= p.down_after_rounds.max(1) => {
                        s.health = ProbeHealth::Lost;
                        ProbeChange::WentDown {
                            rounds: s.lost_rounds,
                        }
                    }
                    // Lost again while it waited out the hold-down.
                    ProbeHealth::Recovering { .. } => {
                        s.health = ProbeHealth::Lost;
                        ProbeChange::Nothing
                    }
                    _ => ProbeChange::Nothing,
                }
            }
        }
    }

    /// Hops whose recovery ended by `now_ns`: answering, back in use.
    pub fn recovered(&mut self, now_ns: u64) -> Vec<u32> {
        let mut out = Vec::new();
        for (&h, s) in self.hops.iter_mut() {
            if let ProbeHealth::Recovering { until_ns } = s.health {
                if until_ns <= now_ns {
                    s.health = ProbeHealth::Answering;
                    out.push(h);
                }
            }
        }
        out.sort_unstable();
        out
    }

    /// A reload: the same hops under their new indices (`new_of`); the
    /// new configuration's tunables.
    pub fn renumbered(
        self,
        params: Option<ProbeParams>,
        new_of: impl Fn(u32) -> Option<u32>,
    ) -> ProbeBook {
        let hops = if params.is_some() {
            self.hops
                .into_iter()
                .filter_map(|(h, s)| Some((new_of(h)?, s)))
                .collect()
        } else {
            HashMap::new()
        };
        ProbeBook {
            params,
            hops,
            tokens: self.tokens,
            refilled_ns: self.refilled_ns,
        }
    }
}
