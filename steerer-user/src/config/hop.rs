//! One `[[hop]]` of the configuration: what it says and its rules.

use std::{collections::HashSet, net::IpAddr};

use serde::Deserialize;
use steerer_common::flow::HOP_NAME_MAX;

use super::{invalid, ConfigError};

/// What the data plane does to send a flow to a hop (SPEC 4.3).
#[derive(Debug, Clone, Copy, Default, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum HopAction {
    /// Rewrite MACs for the next hop, decrement TTL, send out of `interface`.
    #[default]
    Redirect,
    /// Set the packet mark (`mark`) and let policy routing (`ip rule
    /// fwmark`) take it, e.g. into a tunnel; needs `--attach tc`.
    Mark,
}

/// What the operator allows a hop to do.
#[derive(Debug, Clone, Copy, Default, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum HopState {
    /// Takes new flows (default).
    #[default]
    Active,
    /// Takes no new flows; its established flows stay on it until they end.
    Drain,
    /// Takes no flows: out of every table, its established flows reset so
    /// their senders retry elsewhere.
    Disabled,
}

/// One egress hop as the operator describes it.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HopConfig {
    /// Unique name, used in logs and tables.
    pub name: String,
    /// Interface the hop is reached through.
    pub interface: String,
    /// `redirect` (default) or `mark`.
    #[serde(default)]
    pub action: HopAction,
    /// The hop's address on that interface (its MAC is resolved via
    /// netlink); required for `redirect`.
    #[serde(default)]
    pub next_hop: Option<IpAddr>,
    /// Packet mark for `mark` (non-zero).
    #[serde(default)]
    pub mark: Option<u32>,
    /// Destination ports the hop accepts, in exit-policy summary syntax
    /// (`accept 80,443` or `reject 25,119`); default: every port.
    #[serde(default)]
    pub exit_policy: Option<String>,
    /// Operator tag: hops of one operator share `max_operator_share`, and
    /// windows prefer operators they do not hold yet (SPEC 5.6).
    #[serde(default)]
    pub operator: Option<String>,
    /// Measured or known round-trip time to the hop, milliseconds: windows
    /// prefer nearer hops among otherwise equal candidates (SPEC 5.4).
    #[serde(default)]
    pub latency_ms: Option<f64>,
    /// Advertised speed, Mbit/s.
    pub estimated_speed_mbit: f64,
    /// Advertised capacity, Mbit/s.
    pub estimated_capacity_mbit: f64,
    /// `active` (default), `drain` or `disabled`; change it and send
    /// SIGHUP to drain or disable a hop while steering.
    #[serde(default)]
    pub state: HopState,
    /// Directory data: the hop's round-trip times to shared landmark
    /// servers, milliseconds by landmark name (`steerer directory serve`
    /// answers a client's own times with the hops nearest it). The daemon
    /// does not use them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub landmarks_ms: Option<std::collections::BTreeMap<String, f64>>,
    /// When the directory last published this hop's data, RFC 3339
    /// (`2026-12-02T10:00:00Z`): recent data makes a hop not seen before
    /// fresh (see `Config::fresh`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<String>,
    /// Probe targets of this hop (instead of `[probe] targets`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_targets: Option<Vec<IpAddr>>,
}

impl HopConfig {
    /// The ports this hop accepts (all, without an exit policy). Call after
    /// `Config::validate`, which checks the syntax.
    pub fn accepted_ports(&self) -> crate::portsets::PortSet {
        self.exit_policy
            .as_deref()
            .and_then(|p| crate::portsets::PortSet::parse_policy(p).ok())
            .unwrap_or_else(crate::portsets::PortSet::all)
    }

    /// `published` as a time (None without one, or if it does not parse:
    /// `validate` rejects that).
    pub fn published_at(&self) -> Option<std::time::SystemTime> {
        humantime::parse_rfc3339_weak(self.published.as_deref()?).ok()
    }

    /// The initial estimate used before anything is measured, bytes/s.
    pub fn initial_estimate_bytes_per_sec(&self) -> f64 {
        self.estimated_speed_mbit.min(self.estimated_capacity_mbit) * 1e6 / 8.0
    }
}

/// One `[[hop]]`'s rules; `names` collects the names seen so far.
pub(super) fn validate_hop<'a>(
    i: usize,
    hop: &'a HopConfig,
    names: &mut HashSet<&'a str>,
    interface_exists: &dyn Fn(&str) -> bool,
) -> Result<(), ConfigError> {
    let field = |f: &str| format!("hop[{i}].{f}");
    if hop.name.trim().is_empty() {
        return Err(invalid(field("name"), "must not be empty"));
    }
    if hop.name.len() > HOP_NAME_MAX {
        return Err(invalid(
            field("name"),
            format!("{:?} is longer than {HOP_NAME_MAX} bytes", hop.name),
        ));
    }
    if !names.insert(hop.name.as_str()) {
        return Err(invalid(
            field("name"),
            format!("duplicate hop {:?}", hop.name),
        ));
    }
    if !interface_exists(&hop.interface) {
        return Err(invalid(
            field("interface"),
            format!("unknown interface {:?}", hop.interface),
        ));
    }
    match hop.action {
        HopAction::Redirect => {
            if hop.next_hop.is_none() {
                return Err(invalid(
                    field("next_hop"),
                    "required for action \"redirect\"",
                ));
            }
            if hop.mark.is_some() {
                return Err(invalid(field("mark"), "only for action \"mark\""));
            }
        }
        HopAction::Mark => match hop.mark {
            None | Some(0) => {
                return Err(invalid(
                    field("mark"),
                    "a non-zero mark is required for action \"mark\"",
                ))
            }
            Some(_) => {}
        },
    }
    if let Some(policy) = &hop.exit_policy {
        let ports = crate::portsets::PortSet::parse_policy(policy)
            .map_err(|e| invalid(field("exit_policy"), e.to_string()))?;
        if ports.is_empty() {
            return Err(invalid(
                field("exit_policy"),
                format!("{policy:?} accepts no port: the hop could never carry a flow (fix the policy or remove the hop)"),
            ));
        }
    }
    if let Some(p) = &hop.published {
        if humantime::parse_rfc3339_weak(p).is_err() {
            return Err(invalid(
                field("published"),
                format!("{p:?} is not an RFC 3339 time such as 2026-12-02T10:00:00Z"),
            ));
        }
    }
    if let Some(l) = hop.latency_ms {
        if !(l.is_finite() && l >= 0.0) {
            return Err(invalid(field("latency_ms"), format!("{l} must be >= 0")));
        }
    }
    for (f, v) in [
        ("estimated_speed_mbit", hop.estimated_speed_mbit),
        ("estimated_capacity_mbit", hop.estimated_capacity_mbit),
    ] {
        if !(v.is_finite() && v > 0.0) {
            return Err(invalid(field(f), format!("{v} must be a positive number")));
        }
    }
    Ok(())
}
