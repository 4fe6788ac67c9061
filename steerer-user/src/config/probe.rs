//! `[probe]`: active probes through each hop (issue 14, item 2). Off
//! unless the section is there. Each hop is probed the way its traffic
//! leaves: a mark hop with its mark, a redirect hop through a policy route
//! of its own (`ip rule fwmark <mark_base + k> lookup <table_base + k>`,
//! `default via <next_hop> dev <interface>` in that table) that the daemon
//! installs at start and removes at exit.

use std::net::IpAddr;

use serde::Deserialize;

use super::{invalid, ConfigError, HopAction, HopConfig};

/// How a probe asks a target for an answer.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ProbeKind {
    /// ICMP echo (a raw socket: root or CAP_NET_RAW).
    #[default]
    Icmp,
    /// A TCP connect: a SYN answered by SYN-ACK or RST is an answer.
    Tcp,
    /// A UDP datagram the target echoes (RFC 862 echo, or any server
    /// that answers).
    Udp,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProbeConfig {
    /// Targets probed through every hop (the shared landmark servers).
    #[serde(default)]
    pub targets: Vec<IpAddr>,
    #[serde(default)]
    pub kind: ProbeKind,
    /// TCP or UDP port; default 80 for tcp, 7 (echo) for udp.
    #[serde(default)]
    pub port: Option<u16>,
    /// Seconds between two rounds through one hop.
    #[serde(default = "default_interval")]
    pub interval_secs: u64,
    /// Milliseconds a probe waits for its answer (less than the interval).
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    /// Unanswered rounds in a row that take a hop out.
    #[serde(default = "default_down_after")]
    pub down_after_rounds: u32,
    /// Rounds started per second at most, over all hops.
    #[serde(default = "default_rate")]
    pub max_rounds_per_sec: f64,
    /// Redirect hops' probe marks start here (one per redirect hop).
    #[serde(default = "default_mark_base")]
    pub mark_base: u32,
    /// ... and their route tables.
    #[serde(default = "default_table_base")]
    pub table_base: u32,
    /// Priority of those `ip rule`s (the daemon owns every rule of it).
    #[serde(default = "default_rule_priority")]
    pub rule_priority: u32,
}

pub const DEFAULT_PROBE_INTERVAL_SECS: u64 = 5;
pub const DEFAULT_PROBE_TIMEOUT_MS: u64 = 1000;
fn default_interval() -> u64 {
    DEFAULT_PROBE_INTERVAL_SECS
}
fn default_timeout() -> u64 {
    DEFAULT_PROBE_TIMEOUT_MS
}
fn default_down_after() -> u32 {
    2
}
fn default_rate() -> f64 {
    100.0
}
fn default_mark_base() -> u32 {
    0x5e5e_0000
}
fn default_table_base() -> u32 {
    0x5e5e_0000
}
fn default_rule_priority() -> u32 {
    20_555
}

/// Targets per hop at most (shared and the hop's own).
pub const MAX_PROBE_TARGETS: usize = 8;

impl ProbeConfig {
    /// The port of a TCP or UDP probe.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.kind {
            ProbeKind::Udp => 7,
            _ => 80,
        })
    }

    /// Hop `hop`'s targets: its own `probe_targets` if it has them, else
    /// the shared ones.
    pub fn targets_of<'a>(&'a self, hop: &'a HopConfig) -> &'a [IpAddr] {
        match &hop.probe_targets {
            Some(own) => own,
            None => &self.targets,
        }
    }

    pub fn params(&self) -> crate::policy::ProbeParams {
        crate::policy::ProbeParams {
            interval_ns: self.interval_secs.saturating_mul(1_000_000_000),
            down_after_rounds: self.down_after_rounds,
            max_rounds_per_sec: self.max_rounds_per_sec,
        }
    }

    pub(super) fn validate(&self, hops: &[HopConfig]) -> Result<(), ConfigError> {
        let f = |k: &str| format!("probe.{k}");
        if self.interval_secs == 0 || self.interval_secs > super::MAX_TICK_SECS {
            return Err(invalid(
                f("interval_secs"),
                format!(
                    "{} is out of range: 1..={} seconds",
                    self.interval_secs,
                    super::MAX_TICK_SECS
                ),
            ));
        }
        if self.timeout_ms == 0 || self.timeout_ms > self.interval_secs * 1000 {
            return Err(invalid(
                f("timeout_ms"),
                format!(
                    "{} is out of range: 1..={} ms (the interval)",
                    self.timeout_ms,
                    self.interval_secs * 1000
                ),
            ));
        }
        if self.down_after_rounds == 0 || self.down_after_rounds > 100 {
            return Err(invalid(f("down_after_rounds"), "must be 1..=100"));
        }
        if !(self.max_rounds_per_sec.is_finite() && self.max_rounds_per_sec >= 0.1) {
            return Err(invalid(f("max_rounds_per_sec"), "must be at least 0.1"));
        }
        if self.targets.len() > MAX_PROBE_TARGETS {
            return Err(invalid(
                f("targets"),
                format!("at most {MAX_PROBE_TARGETS} targets"),
            ));
        }
        let redirect = hops
            .iter()
            .filter(|h| h.action == HopAction::Redirect)
            .count() as u32;
        for (base, key) in [
            (self.mark_base, "mark_base"),
            (self.table_base, "table_base"),
        ] {
            if base == 0 || base.checked_add(redirect).is_none() {
                return Err(invalid(
                    f(key),
                    format!("{base:#x}: must be non-zero with room for {redirect} redirect hops below 2^32"),
                ));
            }
        }
        let marks = self.mark_base..self.mark_base + redirect;
        for (i, hop) in hops.iter().enumerate() {
            if let Some(m) = hop.mark.filter(|m| marks.contains(m)) {
                return Err(invalid(
                    format!("hop[{i}].mark"),
                    format!("{m:#x} is among the redirect hops' probe marks ({:#x}..{:#x}); move probe.mark_base", marks.start, marks.end),
                ));
            }
            if hop
                .probe_targets
                .as_ref()
                .is_some_and(|t| t.len() > MAX_PROBE_TARGETS)
            {
                return Err(invalid(
                    format!("hop[{i}].probe_targets"),
                    format!("at most {MAX_PROBE_TARGETS} targets"),
                ));
            }
        }
        if self.targets.is_empty() && hops.iter().all(|h| h.probe_targets.is_none()) {
            return Err(invalid(
                f("targets"),
                "no target: give [probe] targets or a hop probe_targets (or remove [probe])",
            ));
        }
        Ok(())
    }
}
