//! The configured hops as the controller sees them (name, estimate,
//! operator, subnet, freshness, latency, ports, state), and the log lines
//! that say which are drained, disabled or limited to port sets.

use std::{collections::HashMap, net::IpAddr};

use tracing::{info, warn};

use super::hops::ResolvedHop;
use crate::{
    config::{Config, HopState},
    policy::{Admin, Controller, ControllerHop, HopSpec},
    portsets,
};

/// One controller hop per configured hop, in configuration order, with
/// the id it holds from the pins (`ids`) and the probes' latencies.
pub(super) fn controller_hops(
    config: &Config,
    resolved: &[ResolvedHop],
    ids: &[Option<u32>],
    latencies: &HashMap<String, f64>,
) -> Vec<ControllerHop> {
    let now = std::time::SystemTime::now();
    config
        .hops
        .iter()
        .zip(resolved)
        .zip(ids)
        .map(|((h, r), &id)| ControllerHop {
            spec: HopSpec {
                name: h.name.clone(),
                initial_estimate: h.initial_estimate_bytes_per_sec(),
                operator: h.operator.clone(),
                subnet: h.next_hop.map(subnet_of),
                // At start: recently published directory data (a reload
                // marks the hops it adds, `reload.rs`).
                fresh: config.fresh(h, now, false, false),
                // Measured by the probes if they answered, else the file's.
                latency_ms: latencies.get(&h.name).copied().or(h.latency_ms),
            },
            id,
            accepts: h.accepted_ports(),
            usable: r.usable(),
            admin: match h.state {
                HopState::Active => Admin::Active,
                HopState::Drain => Admin::Drain,
                HopState::Disabled => Admin::Disabled,
            },
        })
        .collect()
}

/// Hops the configuration drains or disables, each said once per start or
/// reload.
pub(super) fn log_hop_states(config: &Config) {
    for h in &config.hops {
        match h.state {
            HopState::Active => {}
            HopState::Drain => {
                info!(hop = %h.name, "hop drained (state = \"drain\"): no new flows, its established flows stay")
            }
            HopState::Disabled => {
                warn!(hop = %h.name, "hop disabled (state = \"disabled\"): no flows, its established flows are reset")
            }
        }
    }
}

pub(super) fn log_port_sets(controller: &Controller, config: &Config) {
    if controller.ports().is_trivial() {
        return;
    }
    for (index, ports, allowed) in controller.ports().set_ports() {
        let names: Vec<&str> = config
            .hops
            .iter()
            .zip(allowed)
            .filter(|(_, &a)| a)
            .map(|(h, _)| h.name.as_str())
            .collect();
        let shown = portsets::abbreviate(&ports.to_ranges(), 60);
        info!(set = index, ports = %shown, hops = ?names, "port set");
    }
}

/// The /24 (IPv4) or /48 (IPv6) of a hop's address, for window diversity.
fn subnet_of(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        IpAddr::V6(a) => {
            let s = a.segments();
            format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
    }
}
