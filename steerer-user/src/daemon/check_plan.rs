//! `steerer check`: everything `run` checks before it attaches anything
//! (the configuration, the interfaces, every hop's link and next hop), and
//! the plan it would start with (port sets, the first class window, each
//! hop's share of the first tables), built by the same controller. Nothing
//! is loaded, attached or pinned; the only thing sent is one datagram per
//! unresolved next hop, which makes the kernel resolve it.

use std::collections::HashMap;

use anyhow::{bail, Context as _, Result};

use super::{
    check,
    hops::{self, ResolvedHop},
    setup, RunOptions,
};
use crate::{config::Config, netlink, policy::Controller, portsets};

/// The report `steerer check` prints; an error (exit status 1) when the
/// configuration is bad or no hop could carry a flow.
pub fn check_only(opts: &RunOptions) -> Result<String> {
    let config = check(opts)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let resolved = runtime.block_on(async {
        let handle = netlink::connect().context("opening rtnetlink")?;
        hops::resolve_all(&handle, &config.hops).await
    })?;
    let mut out = hop_lines(opts, &config, &resolved);
    require_a_usable_hop(&config, &resolved, "check")?;
    out.push_str(&plan(&config, &resolved));
    Ok(out)
}

/// `run` (and `check`) refuse to start without a hop that can take new
/// flows, unless told to wait for one.
pub fn require_a_usable_hop(config: &Config, resolved: &[ResolvedHop], what: &str) -> Result<()> {
    let takes_flows = |(h, r): (&crate::config::HopConfig, &ResolvedHop)| {
        r.usable() && h.state == crate::config::HopState::Active
    };
    if config.hops.iter().zip(resolved).any(takes_flows) {
        return Ok(());
    }
    bail!(
        "{what}: no hop can take new flows now (every hop's link is down, its next hop does \
         not resolve, or it is drained or disabled; see above): `steerer run --wait-for-hops` \
         starts anyway and steers once one can"
    )
}

fn hop_lines(opts: &RunOptions, config: &Config, resolved: &[ResolvedHop]) -> String {
    let (slots, note) = config.effective_slot_count();
    let mut out = format!(
        "{}: good for --iface {} ({} hops, {} slots per table, tick {} s, max share {})\n",
        opts.config.display(),
        opts.iface,
        config.hops.len(),
        slots,
        config.tick_secs,
        config.max_share
    );
    if let Some(n) = note {
        out.push_str(&format!("note: {n}\n"));
    }
    for (h, r) in config.hops.iter().zip(resolved) {
        let way = match (h.action, h.next_hop, h.mark) {
            (crate::config::HopAction::Mark, _, Some(m)) => format!("mark {m}"),
            (_, Some(ip), _) => format!("via {ip}"),
            _ => String::new(),
        };
        let now = if !r.link_present || !r.carrier {
            "link down".to_string()
        } else if r.usable() {
            match r.dst_mac {
                Some(mac) => format!("usable ({})", hops::fmt_mac(&mac)),
                None => "usable".to_string(),
            }
        } else {
            "next hop does not resolve".to_string()
        };
        out.push_str(&format!(
            "  {:<16} {:<12} {:<24} {:>8.0} Mbit/s  {:?}, {now}\n",
            h.name,
            h.interface,
            way,
            h.initial_estimate_bytes_per_sec() * 8.0 / 1e6,
            h.state
        ));
    }
    out
}

/// What the controller would start with: port sets, the first class
/// window, each hop's share of each class table.
fn plan(config: &Config, resolved: &[ResolvedHop]) -> String {
    let held = vec![None; config.hops.len()];
    let hops = setup::controller_hops(config, resolved, &held, &HashMap::new());
    // A start draws its enumeration seed from a random hash key; this plan
    // shows one such draw.
    let mut c = Controller::new(hops, config.params(0));
    let d = c.initial();
    let names: HashMap<u32, &str> = d.hops.iter().map(|h| (h.id, h.name.as_str())).collect();
    let mut out = String::from("plan at start:\n");
    let window: Vec<&str> = c
        .engine()
        .window()
        .iter()
        .map(|&h| config.hops[h as usize].name.as_str())
        .collect();
    out.push_str(&format!(
        "  class window ({} of {} hops; a start's random key may draw others among equals): {}\n",
        window.len(),
        config.hops.len(),
        window.join(", ")
    ));
    let sets: Vec<(u32, String)> = c
        .ports()
        .set_ports()
        .map(|(index, ports, _)| (index, portsets::abbreviate(&ports.to_ranges(), 60)))
        .collect();
    for t in &d.class_tables {
        let mut slots: HashMap<u32, usize> = HashMap::new();
        for &id in &t.table {
            *slots.entry(id).or_default() += 1;
        }
        let mut shares: Vec<(String, f64)> = slots
            .iter()
            .filter_map(|(id, n)| {
                Some((names.get(id)?.to_string(), *n as f64 / t.table.len() as f64))
            })
            .collect();
        shares.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let ports = sets
            .iter()
            .find(|(i, _)| *i == t.index)
            .map_or("every port".to_string(), |(_, p)| format!("ports {p}"));
        let shown: Vec<String> = shares
            .iter()
            .map(|(n, s)| format!("{n} {:.1}%", s * 100.0))
            .collect();
        out.push_str(&format!(
            "  table {} ({ports}): {}\n",
            t.index,
            if shown.is_empty() {
                "no hop (such flows pass unsteered)".to_string()
            } else {
                shown.join(", ")
            }
        ));
    }
    out
}
