//! The operator's configuration file (TOML), parsed and validated before
//! anything touches the kernel.

use std::{path::Path, time::Duration};

use serde::Deserialize;
use thiserror::Error;

mod hop;
mod slots;
mod validate;
pub use slots::next_prime;
pub mod directory;
pub mod help;
pub mod probe;
pub use hop::{HopAction, HopConfig, HopState};
pub use probe::{ProbeConfig, ProbeKind};

/// Tick period K when the file does not say (SPEC section 3).
pub const DEFAULT_TICK_SECS: u64 = 5;
/// Max share of one hop in a window of 2+ hops. SPEC section 3 says 0.5;
/// measured in the lab shoot-out (issue 22, BENCHMARKS.md) 0.7 completed
/// 30% more requests with a third shorter p99 on the demo, where 0.5 held
/// the 200 Mbit/s hop under its capacity share and overloaded a 50 Mbit/s
/// one; in the simulator the two are level over seeds 1-5 (EXPERIMENTS.md).
/// A hop that fails takes at most this share of new flows until the fast
/// failover and the next tick move them.
pub const DEFAULT_MAX_SHARE: f64 = 0.7;
/// Whether shares follow the load (`Params::load_aware`).
pub const DEFAULT_LOAD_AWARE: bool = true;
/// Bytes a flow moves in a tick to count as a bulk flow (see
/// `Params::bulk_flow_bytes`; chosen in BENCHMARKS.md's lab shoot-out).
pub const DEFAULT_BULK_FLOW_BYTES: u64 = 1_000_000;
/// Max share of the hops of one operator tag together (SPEC section 3).
pub const DEFAULT_MAX_OPERATOR_SHARE: f64 = 0.5;
/// A flow with packets sent and no reply after this long is failed (T).
pub const DEFAULT_FAIL_AFTER_SECS: u64 = 3;
/// L: the sequence window, seconds (SPEC section 3).
pub const DEFAULT_MEMORY_SECS: u64 = 60;
/// M: grouping tolerance, milliseconds (SPEC section 3).
pub const DEFAULT_GROUP_TOLERANCE_MS: u64 = 50;
/// A link that came back waits this long before its hop takes new flows:
/// two ticks of the default K, so a link flapping every few seconds stays
/// out.
pub const DEFAULT_LINK_HOLD_DOWN_SECS: u64 = 10;
/// Idle timeouts: half an hour for TCP (a keep-alive every few minutes
/// keeps a connection in), two minutes for UDP and the rest (what
/// conntrack gives an answered UDP stream).
pub const DEFAULT_TCP_IDLE_SECS: u64 = 1800;
pub const DEFAULT_UDP_IDLE_SECS: u64 = 120;
/// A closed TCP connection's stragglers (a retransmitted FIN, the last
/// ACK) come within seconds; TIME_WAIT is the hosts' business.
pub const DEFAULT_TCP_CLOSED_SECS: u64 = 10;
/// Seconds between polls of `hop_directory_url`.
pub const DEFAULT_DIRECTORY_POLL_SECS: u64 = 60;
/// Directory data published within this many seconds is fresh: a day, a
/// bit more than Tor relays' 18-hour descriptor period.
pub const DEFAULT_FRESH_SECS: u64 = 86_400;
/// Largest `new_flows_per_sec` (per CPU it must fit the data plane's u32).
pub const MAX_NEW_FLOWS_PER_SEC: u64 = 1_000_000_000;
/// Longest `fresh_secs`: 30 days.
pub const MAX_FRESH_SECS: u64 = 30 * 86_400;
/// Longest idle timeout: a week.
pub const MAX_IDLE_SECS: u64 = 7 * 86_400;
/// Largest K and T: an hour. Beyond that a gateway does not steer, it
/// waits; the bound also keeps every derived nanosecond figure far from
/// overflow.
pub const MAX_TICK_SECS: u64 = 3600;
/// Largest L: a day.
pub const MAX_MEMORY_SECS: u64 = 86_400;
/// Largest M: ten seconds.
pub const MAX_GROUP_TOLERANCE_MS: u64 = 10_000;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// K: seconds between two control-plane ticks.
    #[serde(default = "default_tick")]
    pub tick_secs: u64,
    /// Largest fraction of the slots one hop may hold while 2+ hops are usable.
    #[serde(default = "default_max_share")]
    pub max_share: f64,
    /// T: seconds without any reply after which a flow counts as failed.
    #[serde(default = "default_fail_after")]
    pub fail_after_secs: u64,
    /// Seconds one fast failover off a hop excludes it for that destination
    /// (0: a failover is one of the two failures that exclude it for 60 s).
    #[serde(default = "default_failover_block")]
    pub failover_block_secs: u64,
    /// L: seconds of the sequence window (speeds over L, destination
    /// window sizes, how long a silent hop stays out).
    #[serde(default = "default_memory")]
    pub memory_secs: u64,
    /// M: milliseconds within which flows that merely touch stay apart
    /// (SPEC 5.2 grouping).
    #[serde(default = "default_group_tolerance")]
    pub group_tolerance_ms: u64,
    /// Seconds a hop whose link came back (up, carrier) must stay up
    /// before it takes new flows again; 0: at once.
    #[serde(default = "default_link_hold_down")]
    pub link_hold_down_secs: u64,
    /// A TCP flow without a packet for this many seconds leaves the flow
    /// table (a connection idle longer keeps working: its next packet is
    /// steered as a new flow, to the same hop while its slot is unchanged).
    #[serde(default = "default_tcp_idle")]
    pub tcp_idle_secs: u64,
    /// The same for UDP and every other protocol.
    #[serde(default = "default_udp_idle")]
    pub udp_idle_secs: u64,
    /// A TCP flow whose end was seen (FIN both ways, or an RST) leaves the
    /// flow table after this many seconds without a packet.
    #[serde(default = "default_tcp_closed")]
    pub tcp_closed_secs: u64,
    /// Slots per table; default: the smallest prime >= 100 x hops (Maglev's rule).
    #[serde(default)]
    pub slot_count: Option<u32>,
    /// N: hops in the class window (SPEC 5.4).
    #[serde(default = "default_window")]
    pub window: usize,
    /// R: new connections to one destination per tick before it gets a
    /// window of its own.
    #[serde(default = "default_grow_after")]
    pub grow_after: u64,
    /// S: hops a destination window gains per R connections.
    #[serde(default = "default_grow_by")]
    pub grow_by: usize,
    /// Largest fraction of a window's weight the hops of one operator tag
    /// may hold together while 2+ operators are in it.
    #[serde(default = "default_max_operator_share")]
    pub max_operator_share: f64,
    /// A file of more `[[hop]]` entries, watched while steering (relative:
    /// next to this file). See `directory.rs`.
    #[serde(default)]
    pub hop_directory: Option<String>,
    /// An HTTP URL the daemon polls for the hop directory (with the ETag
    /// of the last answer: an unchanged directory costs no body); each
    /// new version is checked and written to `hop_directory`, which stays
    /// what the daemon reads (and what a restart starts from).
    #[serde(default)]
    pub hop_directory_url: Option<String>,
    /// Seconds between polls of `hop_directory_url`.
    #[serde(default = "default_directory_poll")]
    pub hop_directory_poll_secs: u64,
    /// For an `https://` URL: a PEM file of the certificates its server
    /// must chain to (relative: next to this file); default the web's
    /// root certificates (Mozilla's, built in).
    #[serde(default)]
    pub hop_directory_ca: Option<String>,
    /// A hop not seen before whose directory data was published within this
    /// many seconds is fresh: windows take it before others (SPEC 5.4).
    #[serde(default = "default_fresh")]
    pub fresh_secs: u64,
    /// A flow moving at least this many bytes in a tick is a bulk flow; a
    /// hop's speed is then also measured over its bulk flows alone and the
    /// higher figure counts. 0: over all flows only.
    #[serde(default = "default_bulk_flow_bytes")]
    pub bulk_flow_bytes: u64,
    /// Shares follow the load as well as the speeds: well below capacity,
    /// new flows go to the fast hops; false: shares by speed alone.
    #[serde(default = "default_load_aware")]
    pub load_aware: bool,
    /// The flood guard: new flow-table entries per second at most, over all
    /// CPUs (each CPU gets its share); new flows over it are steered
    /// without an entry. Default: the flow table's size / (2 x tick_secs);
    /// 0: no limit.
    #[serde(default)]
    pub new_flows_per_sec: Option<u64>,
    /// Address and port of a Prometheus metrics endpoint (`GET /metrics`);
    /// none without it.
    #[serde(default)]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Active probes through each hop; none without this section.
    #[serde(default)]
    pub probe: Option<ProbeConfig>,
    #[serde(rename = "hop", default)]
    pub hops: Vec<HopConfig>,
}

fn default_tick() -> u64 {
    DEFAULT_TICK_SECS
}
fn default_max_share() -> f64 {
    DEFAULT_MAX_SHARE
}
fn default_bulk_flow_bytes() -> u64 {
    DEFAULT_BULK_FLOW_BYTES
}
fn default_failover_block() -> u64 {
    crate::policy::blocked::FIRST_FAILOVER_EXCLUSION_NS / 1_000_000_000
}
fn default_load_aware() -> bool {
    DEFAULT_LOAD_AWARE
}
fn default_max_operator_share() -> f64 {
    DEFAULT_MAX_OPERATOR_SHARE
}
fn default_fail_after() -> u64 {
    DEFAULT_FAIL_AFTER_SECS
}
fn default_memory() -> u64 {
    DEFAULT_MEMORY_SECS
}
fn default_group_tolerance() -> u64 {
    DEFAULT_GROUP_TOLERANCE_MS
}
fn default_link_hold_down() -> u64 {
    DEFAULT_LINK_HOLD_DOWN_SECS
}
fn default_tcp_idle() -> u64 {
    DEFAULT_TCP_IDLE_SECS
}
fn default_udp_idle() -> u64 {
    DEFAULT_UDP_IDLE_SECS
}
fn default_tcp_closed() -> u64 {
    DEFAULT_TCP_CLOSED_SECS
}
fn default_directory_poll() -> u64 {
    DEFAULT_DIRECTORY_POLL_SECS
}
fn default_fresh() -> u64 {
    DEFAULT_FRESH_SECS
}
fn default_window() -> usize {
    4
}
fn default_grow_after() -> u64 {
    8
}
fn default_grow_by() -> usize {
    2
}

impl Config {
    /// Read and validate a file. `interface_exists` is asked about every
    /// interface name so the check can run against the real system (or a
    /// fake in tests).
    pub fn load(
        path: &Path,
        interface_exists: &dyn Fn(&str) -> bool,
    ) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let mut config = Config::parse(&text).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.display().to_string(),
                message,
            },
            other => other,
        })?;
        if let Some(dir) = config.directory_file(path) {
            // A polled directory not fetched yet is empty until it is.
            if config.hop_directory_url.is_none() || dir.exists() {
                config.hops.extend(directory::read_directory(&dir)?);
            }
        }
        config.validate(interface_exists)?;
        Ok(config)
    }

    /// The hop directory's path, if the configuration at `config_path`
    /// names one.
    pub fn directory_file(&self, config_path: &Path) -> Option<std::path::PathBuf> {
        self.hop_directory
            .as_deref()
            .map(|d| directory::directory_path(config_path, d))
    }

    /// Parse TOML text (no validation against the system).
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: "<config>".into(),
            message: e.to_string(),
        })
    }

    /// `hop_directory_ca`'s path, if set (relative to the configuration).
    pub fn directory_ca(&self, config_path: &Path) -> Option<std::path::PathBuf> {
        self.hop_directory_ca
            .as_deref()
            .map(|d| directory::directory_path(config_path, d))
    }

    /// The flood guard's rate for a flow table of `entries` (see
    /// `new_flows_per_sec`): a flood at the limit takes two ticks to turn
    /// the table over once, so the control plane reads every flow it let
    /// in at least once.
    pub fn new_flow_rate(&self, entries: u32) -> u64 {
        self.new_flows_per_sec
            .unwrap_or(entries as u64 / (2 * self.tick_secs.max(1)))
    }

    /// SPEC 5.4's "fresh directory data" at wall-clock time `now`: a hop
    /// not seen before (`seen_before`: the running pool had it) whose
    /// data was published within `fresh_secs` (a time ahead of `now`, as
    /// from a clock that runs ahead, counts as recent). A hop without a
    /// published time is fresh only when a reload adds it
    /// (`added_by_reload`): at start every such hop is as new as the others.
    pub fn fresh(
        &self,
        hop: &HopConfig,
        now: std::time::SystemTime,
        added_by_reload: bool,
        seen_before: bool,
    ) -> bool {
        if seen_before {
            return false;
        }
        match hop.published_at() {
            Some(t) => now
                .duration_since(t)
                .map_or(true, |age| age.as_secs() <= self.fresh_secs),
            None => added_by_reload,
        }
    }

    /// Hops with action `mark` need the TC steering program.
    pub fn check_attach(&self, tc: bool) -> Result<(), ConfigError> {
        match self.hops.iter().position(|h| h.action == HopAction::Mark) {
            Some(i) if !tc => Err(invalid(
                format!("hop[{i}].action"),
                "\"mark\" needs `--attach tc` (XDP cannot set packet marks)",
            )),
            _ => Ok(()),
        }
    }

    /// The policy's tunables. Every figure was bounded by `validate`, so
    /// the nanosecond products cannot overflow; they saturate anyway.
    pub fn params(&self, seed: u64) -> crate::policy::Params {
        let secs = |s: u64| Duration::from_secs(s).as_nanos().min(u64::MAX as u128) as u64;
        crate::policy::Params {
            tick_ns: secs(self.tick_secs),
            memory_ns: secs(self.memory_secs),
            fail_after_ns: secs(self.fail_after_secs),
            failover_exclusion_ns: secs(self.failover_block_secs),
            group_tolerance_ns: self.group_tolerance_ms.saturating_mul(1_000_000),
            link_hold_down_ns: secs(self.link_hold_down_secs),
            idle_tcp_ns: secs(self.tcp_idle_secs),
            idle_other_ns: secs(self.udp_idle_secs),
            closed_tcp_ns: secs(self.tcp_closed_secs),
            max_share: self.max_share,
            max_operator_share: self.max_operator_share,
            slot_count: self.effective_slot_count().0,
            window_base: self.window,
            grow_after: self.grow_after,
            grow_by: self.grow_by,
            seed,
            probe: self.probe.as_ref().map(ProbeConfig::params),
            bulk_flow_bytes: self.bulk_flow_bytes,
            load_aware: self.load_aware,
            ..crate::policy::Params::default()
        }
    }
}

#[cfg(test)]
mod tests;
