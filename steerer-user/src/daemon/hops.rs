//! How the daemon reaches each configured hop: interface index, MACs,
//! mark. Resolved through netlink at start and checked again when the
//! kernel announces a change (`link_events`), or at a tick while a next hop
//! has not resolved; what changed is reported to the controller as link
//! state, never judged here.

use std::{collections::HashMap, net::IpAddr, time::Duration};

use anyhow::{Context as _, Result};
use steerer_common::{
    hop::{HOP_ACTION_MARK, HOP_ENABLED},
    HopEntry,
};
use tracing::{info, warn};

use crate::{
    config::{HopAction, HopConfig},
    netlink,
};

/// One hop's way out, as far as it is known.
#[derive(Debug, Clone)]
pub struct ResolvedHop {
    pub name: String,
    pub interface: String,
    pub next_hop: Option<IpAddr>,
    pub ifindex: u32,
    pub src_mac: [u8; 6],
    /// Redirect hops: the next hop's MAC once it resolved.
    pub dst_mac: Option<[u8; 6]>,
    /// Mark hops: the mark (usable at once, no neighbour to resolve).
    pub mark: Option<u32>,
    /// The interface exists.
    pub link_present: bool,
    /// It is up and has carrier.
    pub carrier: bool,
}

impl ResolvedHop {
    /// Link there with carrier and (for redirect) the next hop resolved.
    pub fn usable(&self) -> bool {
        self.link_present && self.carrier && (self.mark.is_some() || self.dst_mac.is_some())
    }

    /// The hop table entry (enabled when usable).
    pub fn entry(&self) -> HopEntry {
        let mut flags = if self.usable() { HOP_ENABLED } else { 0 };
        if self.mark.is_some() {
            flags |= HOP_ACTION_MARK;
        }
        HopEntry {
            // A vanished link has no index (and the kernel dropped its devmap slot).
            ifindex: if self.link_present { self.ifindex } else { 0 },
            flags,
            src_mac: self.src_mac,
            dst_mac: self.dst_mac.unwrap_or_default(),
            mark: self.mark.unwrap_or(0),
        }
    }
}

/// Hops at most for which every step is logged; a larger pool logs counts.
const LOG_EACH_UP_TO: usize = 64;
/// Next hops asked to resolve (a datagram each, behind an ARP or
/// neighbour solicitation) per call at most: a pool of thousands of
/// unresolved next hops must not flood the link.
const MAX_TRIGGERS: usize = 256;

/// What the kernel says of every interface and neighbour now: two netlink
/// dumps, however many hops ask.
struct Snapshot {
    links: HashMap<String, netlink::LinkFacts>,
    neighbours: HashMap<(u32, IpAddr), [u8; 6]>,
}

impl Snapshot {
    async fn take(handle: &rtnetlink::Handle) -> Result<Snapshot> {
        Ok(Snapshot {
            links: netlink::link_facts(handle)
                .await
                .context("reading the interfaces")?,
            neighbours: netlink::neighbour_macs(handle)
                .await
                .context("reading the neighbour table")?,
        })
    }
}

/// Resolve every hop of the configuration (start-up and the hops a reload
/// adds: errors are fatal). Next hops not in the neighbour table are
/// asked to resolve and waited for together, 3 s at most.
pub async fn resolve_all(
    handle: &rtnetlink::Handle,
    hops: &[HopConfig],
) -> Result<Vec<ResolvedHop>> {
    let snap = Snapshot::take(handle).await?;
    let verbose = hops.len() <= LOG_EACH_UP_TO;
    let mut out = Vec::with_capacity(hops.len());
    for hop in hops {
        out.push(resolve(hop, &snap, verbose)?);
    }
    wait_for_next_hops(handle, &mut out, Duration::from_secs(3), verbose).await?;
    if !verbose {
        let unresolved = out.iter().filter(|r| !r.usable()).count();
        info!(
            hops = out.len(),
            unusable = unresolved,
            "hops resolved (link down or next hop unresolved: disabled until they are)"
        );
    }
    Ok(out)
}

fn resolve(hop: &HopConfig, snap: &Snapshot, verbose: bool) -> Result<ResolvedHop> {
    let facts = snap
        .links
        .get(&hop.interface)
        .with_context(|| format!("hop {}: interface {} vanished", hop.name, hop.interface))?;
    let mut r = ResolvedHop {
        name: hop.name.clone(),
        interface: hop.interface.clone(),
        next_hop: hop.next_hop,
        ifindex: facts.index,
        src_mac: [0; 6],
        dst_mac: None,
        mark: None,
        link_present: true,
        carrier: facts.up,
    };
    if !r.carrier && verbose {
        warn!(hop = %hop.name, interface = %hop.interface, "hop interface is down or has no carrier; hop disabled until it has");
    }
    let (Some(next_hop), HopAction::Redirect) = (hop.next_hop, hop.action) else {
        // `mark`: the kernel's policy routing picks the way out.
        if verbose {
            info!(hop = %hop.name, mark = hop.mark.unwrap_or_default(), "mark hop");
        }
        r.mark = hop.mark;
        return Ok(r);
    };
    r.src_mac = facts.mac.with_context(|| {
        format!(
            "hop {}: interface {} has no MAC address (use action = \"mark\" for tunnels)",
            hop.name, hop.interface
        )
    })?;
    r.dst_mac = snap.neighbours.get(&(facts.index, next_hop)).copied();
    if let (Some(mac), true) = (r.dst_mac, verbose) {
        info!(hop = %hop.name, next_hop = %next_hop, mac = %fmt_mac(&mac), "next hop resolved");
    }
    Ok(r)
}

/// Redirect hops whose next hop has not resolved.
fn unresolved(hops: &[ResolvedHop]) -> Vec<usize> {
    (0..hops.len())
        .filter(|&i| {
            let r = &hops[i];
            r.mark.is_none() && r.link_present && r.dst_mac.is_none() && r.next_hop.is_some()
        })
        .collect()
}

/// Ask the kernel to resolve the unresolved next hops: one datagram per
/// distinct next hop, `MAX_TRIGGERS` at most.
fn ask_to_resolve(hops: &[ResolvedHop]) {
    let mut asked: Vec<IpAddr> = unresolved(hops)
        .into_iter()
        .filter_map(|i| hops[i].next_hop)
        .collect();
    asked.sort_unstable();
    asked.dedup();
    for &ip in asked.iter().take(MAX_TRIGGERS) {
        netlink::trigger_resolution(ip);
    }
}

/// Ask the unresolved next hops to resolve and take what the neighbour
/// table holds until `wait` has passed or none is left.
async fn wait_for_next_hops(
    handle: &rtnetlink::Handle,
    hops: &mut [ResolvedHop],
    wait: Duration,
    verbose: bool,
) -> Result<()> {
    let mut waiting = unresolved(hops);
    ask_to_resolve(hops);
    let deadline = tokio::time::Instant::now() + wait;
    while !waiting.is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let neighbours = netlink::neighbour_macs(handle)
            .await
            .context("reading the neighbour table")?;
        take_neighbours(hops, &waiting, &neighbours, verbose);
        waiting.retain(|&i| hops[i].dst_mac.is_none());
    }
    if verbose {
        for &i in &waiting {
            let r = &hops[i];
            warn!(
                hop = %r.name, next_hop = ?r.next_hop,
                "next hop does not resolve; hop disabled until it does"
            );
        }
    }
    Ok(())
}

/// A neighbour announcement: a redirect hop whose next hop it is takes
/// the new MAC at once (a VRRP failover moves the next hop's address to
/// another router). Returns the hops whose entry changed. A failed or
/// deleted entry changes nothing but asks the kernel to resolve again: the
/// last MAC stays until a new one is known (health judges the hop).
pub fn apply_neighbour(
    hops: &mut [ResolvedHop],
    index: u32,
    ip: IpAddr,
    mac: Option<[u8; 6]>,
) -> Vec<usize> {
    let mut changed = Vec::new();
    for (i, r) in hops.iter_mut().enumerate() {
        if r.mark.is_some() || !r.link_present || r.ifindex != index || r.next_hop != Some(ip) {
            continue;
        }
        match (mac, r.dst_mac) {
            (Some(new), Some(old)) if new != old => {
                info!(hop = %r.name, next_hop = %ip, old = %fmt_mac(&old), new = %fmt_mac(&new), "next hop MAC changed (failover of the next hop?): written at once");
            }
            (Some(new), None) => {
                info!(hop = %r.name, next_hop = %ip, mac = %fmt_mac(&new), "next hop resolved");
            }
            (None, _) => {
                netlink::trigger_resolution(ip);
                continue;
            }
            _ => continue,
        }
        r.dst_mac = mac;
        changed.push(i);
    }
    changed
}

/// Only the hops whose next hop has not resolved yet (checked per tick
/// until it does: the kernel announces a resolution too, this retries the
/// datagram that makes it resolve).
pub async fn poll_unresolved(handle: &rtnetlink::Handle, hops: &mut [ResolvedHop]) -> Vec<usize> {
    let waiting = unresolved(hops);
    if waiting.is_empty() {
        return Vec::new();
    }
    let neighbours = match netlink::neighbour_macs(handle).await {
        Ok(n) => n,
        Err(e) => {
            warn!(error = %format!("{e}"), "reading the neighbour table failed; retried at the next tick");
            return Vec::new();
        }
    };
    let changed = take_neighbours(hops, &waiting, &neighbours, waiting.len() <= LOG_EACH_UP_TO);
    // Those still waiting are asked again (the kernel announces an answer).
    ask_to_resolve(hops);
    changed
}

fn take_neighbours(
    hops: &mut [ResolvedHop],
    which: &[usize],
    neighbours: &HashMap<(u32, IpAddr), [u8; 6]>,
    verbose: bool,
) -> Vec<usize> {
    let mut changed = Vec::new();
    for &i in which {
        let r = &mut hops[i];
        let Some(mac) = r.next_hop.and_then(|ip| neighbours.get(&(r.ifindex, ip))) else {
            continue;
        };
        if r.dst_mac != Some(*mac) {
            if verbose {
                info!(hop = %r.name, mac = %fmt_mac(mac), "next hop resolved");
            }
            r.dst_mac = Some(*mac);
            changed.push(i);
        }
    }
    changed
}

/// Check every hop again (after a link announcement, or when some were
/// lost): two netlink dumps for the whole pool. Returns the hops whose
/// entry changed (index into `hops`); a failed dump is logged and retried
/// next time, the hops keeping their last known state.
pub async fn poll(handle: &rtnetlink::Handle, hops: &mut [ResolvedHop]) -> Vec<usize> {
    let snap = match Snapshot::take(handle).await {
        Ok(s) => s,
        Err(e) => {
            warn!(error = %format!("{e:#}"), "checking the hops failed; retried at the next tick");
            return Vec::new();
        }
    };
    let verbose = hops.len() <= LOG_EACH_UP_TO;
    let mut changed = Vec::new();
    for (i, r) in hops.iter_mut().enumerate() {
        let before = r.entry();
        poll_one(r, &snap, verbose);
        if r.entry() != before {
            changed.push(i);
        }
    }
    if !verbose && !changed.is_empty() {
        info!(hops = changed.len(), "hops whose link or next hop changed");
    }
    ask_to_resolve(hops);
    changed
}

fn poll_one(r: &mut ResolvedHop, snap: &Snapshot, verbose: bool) {
    match snap.links.get(&r.interface) {
        Some(f) if r.link_present && f.index == r.ifindex => {}
        Some(f) => {
            // Back (or recreated under the same name): take the new index
            // and MAC; a redirect hop resolves again below.
            r.ifindex = f.index;
            r.link_present = true;
            if r.mark.is_none() {
                r.src_mac = f.mac.unwrap_or(r.src_mac);
                r.dst_mac = None;
            }
            if verbose {
                info!(hop = %r.name, interface = %r.interface, "hop interface is back");
            }
        }
        None if r.link_present => {
            r.link_present = false;
            if verbose {
                warn!(hop = %r.name, interface = %r.interface, "hop interface vanished");
            }
        }
        None => {}
    }
    if let (true, Some(f)) = (r.link_present, snap.links.get(&r.interface)) {
        if f.up != r.carrier {
            r.carrier = f.up;
            match (verbose, f.up) {
                (false, _) => {}
                (true, true) => {
                    info!(hop = %r.name, interface = %r.interface, "hop interface has carrier again")
                }
                (true, false) => {
                    warn!(hop = %r.name, interface = %r.interface, "hop interface lost carrier (or was set down)")
                }
            }
        }
    }
    // A redirect hop whose next hop did not resolve gets another chance.
    if let (true, None, None, Some(ip)) = (r.link_present, r.mark, r.dst_mac, r.next_hop) {
        if let Some(mac) = snap.neighbours.get(&(r.ifindex, ip)) {
            if verbose {
                info!(hop = %r.name, mac = %fmt_mac(mac), "next hop resolved");
            }
            r.dst_mac = Some(*mac);
        }
    }
}

pub fn fmt_mac(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}
