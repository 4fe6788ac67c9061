//! A simulation scenario: the network, the workload and the sender's
//! timeout rule, read from TOML (`scenarios/*.toml`).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::workload::FlowSizeCdf;

/// Hops a scenario may have.
pub const MAX_SIM_HOPS: usize = 200_000;

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read scenario {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("scenario {path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("scenario {path}: {field}: {why}")]
    Invalid {
        path: PathBuf,
        field: &'static str,
        why: String,
    },
    #[error("scenario {path}: flow sizes {file}: {why}")]
    FlowSizes {
        path: PathBuf,
        file: PathBuf,
        why: String,
    },
}

/// A group of identical hops.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HopGroup {
    pub count: u32,
    /// Throughput limit, shared fairly among the hop's active flows.
    pub mbit: f64,
    /// What the hop claims (directory data); steerer starts from
    /// min(claim, capacity estimate) and learns. Default: `mbit`.
    pub claimed_mbit: Option<f64>,
    /// Operator tag shared by the group's hops (SPEC 5.6 caps an
    /// operator's total share).
    pub operator: Option<String>,
    /// Base round-trip time through the group's hops (default the
    /// scenario's `rtt_ms`).
    pub rtt_ms: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// The hop stops forwarding anything (gone from the network).
    Disappear,
    /// The hop's throughput limit becomes `mbit`.
    Slow,
}

/// Something that happens to one hop at a scripted time.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    pub at_secs: f64,
    /// Hop index (groups are numbered in order, from 0).
    pub hop: u32,
    pub kind: EventKind,
    pub mbit: Option<f64>,
}

fn default_senders() -> u32 {
    16
}
fn default_zipf() -> f64 {
    1.0
}
fn default_step_ms() -> u64 {
    50
}
fn default_tick_secs() -> f64 {
    5.0
}
fn default_timeout_bytes() -> u64 {
    1
}
fn default_timeout_secs() -> f64 {
    4.0
}
fn default_max_attempts() -> u32 {
    30
}
fn default_request_bytes() -> u64 {
    500
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    pub name: Option<String>,
    pub description: Option<String>,
    /// Seed of everything random (overridden by `--seed`).
    #[serde(default)]
    pub seed: u64,
    /// Connections the senders open (each retried until it completes).
    pub connections: u64,
    /// Mean new connections per second (Poisson arrivals).
    pub arrivals_per_sec: f64,
    #[serde(default = "default_senders")]
    pub senders: u32,
    /// Distinct destinations, chosen with Zipf popularity.
    pub destinations: u32,
    #[serde(default = "default_zipf")]
    pub zipf_exponent: f64,
    /// Flow-size CDF file ("bytes percent" lines), relative to the scenario.
    pub flow_sizes: PathBuf,
    /// Each hop blackholes each destination with probability 1/P (0: never).
    #[serde(default)]
    pub blackhole_p: u32,
    /// Each destination sits behind an intermediary link of this many
    /// Mbit/s, shared by its flows (0: unlimited).
    #[serde(default)]
    pub intermediary_mbit: f64,
    pub hops: Vec<HopGroup>,
    #[serde(default)]
    pub events: Vec<Event>,
    /// Simulation step.
    #[serde(default = "default_step_ms")]
    pub step_ms: u64,
    /// steerer's tick K (seconds).
    #[serde(default = "default_tick_secs")]
    pub tick_secs: f64,
    /// The sender's rule: a stream that received fewer than `timeout_bytes`
    /// in the last `timeout_secs` is abandoned and retried on a new
    /// connection (a new 5-tuple).
    #[serde(default = "default_timeout_bytes")]
    pub timeout_bytes: u64,
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: f64,
    /// Attempts per connection before the sender gives up.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Bytes each connection sends (its request).
    #[serde(default = "default_request_bytes")]
    pub request_bytes: u64,
    /// steerer's max share (SPEC 3; default 0.5), to compare values.
    #[serde(default)]
    pub max_share: Option<f64>,
    /// steerer's `bulk_flow_bytes` (default the daemon's; 0 off), to
    /// compare values.
    #[serde(default)]
    pub bulk_flow_bytes: Option<u64>,
    /// steerer's `load_aware` (default the daemon's), to compare values.
    #[serde(default)]
    pub load_aware: Option<bool>,
    /// Data-plane hop ids steerer's tables can name at once (default the
    /// data plane's `MAX_HOPS`): a pool larger than this is steered
    /// through its window members only.
    #[serde(default)]
    pub hop_ids: Option<u32>,
    /// The pool changes over the run (a live directory).
    #[serde(default)]
    pub churn: Option<super::churn::ChurnSpec>,
    /// Base round-trip time sender -> hop -> destination and back (0: none,
    /// data moves from a connection's first instant at its fair share).
    /// With it a connection pays a handshake and a request round trip
    /// before data arrives, and its rate grows by slow start.
    #[serde(default)]
    pub rtt_ms: f64,
    /// Each hop's round-trip time is its base x (1 + spread x u), u
    /// uniform in [-1, 1], fixed per (seed, hop).
    #[serde(default)]
    pub rtt_spread: f64,
}

/// A validated scenario, flow sizes loaded.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub file: ScenarioFile,
    pub flow_sizes: FlowSizeCdf,
    /// Capacity of every hop, bytes per second.
    pub hop_capacity: Vec<f64>,
    /// Claimed speed of every hop, bytes per second.
    pub hop_claim: Vec<f64>,
    pub hop_operator: Vec<Option<String>>,
    /// Base round-trip time of every hop, seconds (spread per seed by the
    /// simulation).
    pub hop_rtt: Vec<f64>,
}

impl Scenario {
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.to_owned(),
            source,
        })?;
        let file: ScenarioFile = toml::from_str(&text).map_err(|source| ScenarioError::Parse {
            path: path.to_owned(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Scenario::from_file(file, path, base)
    }

    /// Validate `file`; `flow_sizes` is resolved against `base`.
    pub fn from_file(
        file: ScenarioFile,
        path: &Path,
        base: &Path,
    ) -> Result<Scenario, ScenarioError> {
        let invalid = |field: &'static str, why: String| ScenarioError::Invalid {
            path: path.to_owned(),
            field,
            why,
        };
        if file.connections == 0 {
            return Err(invalid("connections", "must be at least 1".into()));
        }
        if !(file.arrivals_per_sec.is_finite() && file.arrivals_per_sec > 0.0) {
            return Err(invalid(
                "arrivals_per_sec",
                "must be a positive number".into(),
            ));
        }
        if file.senders == 0 || file.senders > 65_536 {
            return Err(invalid("senders", "must be 1..=65536".into()));
        }
        if file.destinations == 0 || file.destinations > 1 << 24 {
            return Err(invalid("destinations", "must be 1..=16777216".into()));
        }
        if !(file.zipf_exponent.is_finite() && file.zipf_exponent >= 0.0) {
            return Err(invalid("zipf_exponent", "must be >= 0".into()));
        }
        if file.blackhole_p == 1 {
            return Err(invalid(
                "blackhole_p",
                "1 would blackhole everything; use 0 for none or >= 2".into(),
            ));
        }
        if !(file.intermediary_mbit.is_finite() && file.intermediary_mbit >= 0.0) {
            return Err(invalid("intermediary_mbit", "must be >= 0".into()));
        }
        if file.step_ms == 0 || file.step_ms > 1000 {
            return Err(invalid("step_ms", "must be 1..=1000".into()));
        }
        let step_s = file.step_ms as f64 / 1000.0;
        if !(file.tick_secs.is_finite() && file.tick_secs >= step_s) {
            return Err(invalid("tick_secs", "must be at least one step".into()));
        }
        if !(file.timeout_secs.is_finite() && file.timeout_secs >= step_s) {
            return Err(invalid("timeout_secs", "must be at least one step".into()));
        }
        if file.max_attempts == 0 {
            return Err(invalid("max_attempts", "must be at least 1".into()));
        }
        if file.max_share.is_some_and(|m| !(m > 0.0 && m <= 1.0)) {
            return Err(invalid("max_share", "must be in (0, 1]".into()));
        }
        let max_ids = steerer_common::limits::MAX_HOPS;
        if file.hop_ids.is_some_and(|n| n == 0 || n > max_ids) {
            return Err(invalid("hop_ids", format!("must be 1..={max_ids}")));
        }
        if let Some(c) = &file.churn {
            if !(c.every_secs.is_finite() && c.every_secs >= step_s) {
                return Err(invalid(
                    "churn.every_secs",
                    "must be at least one step".into(),
                ));
            }
            if !(c.fraction.is_finite() && c.fraction > 0.0 && c.fraction < 1.0) {
                return Err(invalid("churn.fraction", "must be in (0, 1)".into()));
            }
        }
        if !(file.rtt_ms.is_finite() && (0.0..=10_000.0).contains(&file.rtt_ms)) {
            return Err(invalid("rtt_ms", "must be 0..=10000".into()));
        }
        if !(file.rtt_spread.is_finite() && (0.0..1.0).contains(&file.rtt_spread)) {
            return Err(invalid("rtt_spread", "must be in [0, 1)".into()));
        }
        let mut hop_capacity = Vec::new();
        let mut hop_claim = Vec::new();
        let mut hop_operator = Vec::new();
        let mut hop_rtt = Vec::new();
        for (i, g) in file.hops.iter().enumerate() {
            if !(g.mbit.is_finite() && g.mbit > 0.0) {
                return Err(invalid("hops.mbit", format!("group {i}: must be positive")));
            }
            let claim = g.claimed_mbit.unwrap_or(g.mbit);
            if !(claim.is_finite() && claim > 0.0) {
                return Err(invalid(
                    "hops.claimed_mbit",
                    format!("group {i}: must be positive"),
                ));
            }
            let rtt_ms = g.rtt_ms.unwrap_or(file.rtt_ms);
            if !(rtt_ms.is_finite() && (0.0..=10_000.0).contains(&rtt_ms)) {
                return Err(invalid(
                    "hops.rtt_ms",
                    format!("group {i}: must be 0..=10000"),
                ));
            }
            for _ in 0..g.count {
                hop_capacity.push(g.mbit * 125_000.0);
                hop_claim.push(claim * 125_000.0);
                hop_operator.push(g.operator.clone());
                hop_rtt.push(rtt_ms / 1000.0);
            }
        }
        if hop_capacity.is_empty() {
            return Err(invalid("hops", "at least one hop is needed".into()));
        }
        // The engine has no hop limit of its own (the data plane's HOPS map
        // does); this bounds the simulator's slot table (100 x hops slots).
        if hop_capacity.len() > MAX_SIM_HOPS {
            return Err(invalid(
                "hops",
                format!(
                    "{} hops; the simulator takes at most {MAX_SIM_HOPS}",
                    hop_capacity.len()
                ),
            ));
        }
        if let Some(c) = &file.churn {
            if c.unpublished as usize >= hop_capacity.len() {
                return Err(invalid(
                    "churn.unpublished",
                    format!(
                        "must leave some of the {} hops published",
                        hop_capacity.len()
                    ),
                ));
            }
        }
        for e in &file.events {
            if e.hop as usize >= hop_capacity.len() {
                return Err(invalid(
                    "events.hop",
                    format!("hop {} does not exist ({} hops)", e.hop, hop_capacity.len()),
                ));
            }
            if !(e.at_secs.is_finite() && e.at_secs >= 0.0) {
                return Err(invalid("events.at_secs", "must be >= 0".into()));
            }
            if e.kind == EventKind::Slow && !e.mbit.is_some_and(|m| m.is_finite() && m > 0.0) {
                return Err(invalid(
                    "events.mbit",
                    "a `slow` event needs a positive mbit".into(),
                ));
            }
        }
        let sizes_path = base.join(&file.flow_sizes);
        let flow_sizes =
            FlowSizeCdf::load(&sizes_path).map_err(|why| ScenarioError::FlowSizes {
                path: path.to_owned(),
                file: sizes_path.clone(),
                why,
            })?;
        let name = file.name.clone().unwrap_or_else(|| {
            path.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "scenario".into())
        });
        Ok(Scenario {
            name,
            file,
            flow_sizes,
            hop_capacity,
            hop_claim,
            hop_operator,
            hop_rtt,
        })
    }

    pub fn hop_count(&self) -> usize {
        self.hop_capacity.len()
    }
}
