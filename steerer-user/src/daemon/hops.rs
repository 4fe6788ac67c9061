//! How the daemon reaches each configured hop: interface index, MACs,
//! mark. Resolved through netlink at start and checked again when the
//! kernel announces a change (`link_events`), or at a tick while a next hop
//! has not resolved; what changed is reported to the controller as link
//! state, never judged here.

use std::{net::IpAddr, time::Duration};

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

/// Resolve every hop of the configuration (start-up: errors are fatal).
pub async fn resolve_all(
    handle: &rtnetlink::Handle,
    hops: &[HopConfig],
) -> Result<Vec<ResolvedHop>> {
    let mut out = Vec::with_capacity(hops.len());
    for hop in hops {
        out.push(resolve(handle, hop).await?);
    }
    Ok(out)
}

async fn resolve(handle: &rtnetlink::Handle, hop: &HopConfig) -> Result<ResolvedHop> {
    let ifindex = netlink::ifindex(&hop.interface)
        .with_context(|| format!("hop {}: interface {} vanished", hop.name, hop.interface))?;
    let mut r = ResolvedHop {
        name: hop.name.clone(),
        interface: hop.interface.clone(),
        next_hop: hop.next_hop,
        ifindex,
        src_mac: [0; 6],
        dst_mac: None,
        mark: None,
        link_present: true,
        carrier: netlink::link_is_up(handle, ifindex)
            .await
            .with_context(|| format!("hop {}: reading interface {}", hop.name, hop.interface))?,
    };
    if !r.carrier {
        warn!(hop = %hop.name, interface = %hop.interface, "hop interface is down or has no carrier; hop disabled until it has");
    }
    let (Some(next_hop), HopAction::Redirect) = (hop.next_hop, hop.action) else {
        // `mark`: the kernel's policy routing picks the way out.
        info!(hop = %hop.name, mark = hop.mark.unwrap_or_default(), "mark hop");
        r.mark = hop.mark;
        return Ok(r);
    };
    r.src_mac = netlink::link_mac(handle, ifindex)
        .await
        .with_context(|| format!("hop {}: reading interface {}", hop.name, hop.interface))?
        .with_context(|| {
            format!(
                "hop {}: interface {} has no MAC address (use action = \"mark\" for tunnels)",
                hop.name, hop.interface
            )
        })?;
    r.dst_mac = netlink::resolve_next_hop(handle, ifindex, next_hop, Duration::from_secs(3))
        .await
        .with_context(|| format!("hop {}: resolving {next_hop}", hop.name))?;
    match r.dst_mac {
        Some(mac) => {
            info!(hop = %hop.name, next_hop = %next_hop, mac = %fmt_mac(&mac), "next hop resolved")
        }
        None => warn!(
            hop = %hop.name, next_hop = %next_hop,
            "next hop does not resolve; hop disabled until it does"
        ),
    }
    Ok(r)
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
/// probe that makes it resolve).
pub async fn poll_unresolved(handle: &rtnetlink::Handle, hops: &mut [ResolvedHop]) -> Vec<usize> {
    let waiting: Vec<usize> = (0..hops.len())
        .filter(|&i| {
            let r = &hops[i];
            r.mark.is_none() && r.link_present && r.dst_mac.is_none()
        })
        .collect();
    let mut changed = Vec::new();
    for i in waiting {
        changed.extend(poll(handle, &mut hops[i..=i]).await.into_iter().map(|_| i));
    }
    changed
}

/// Check every hop again (after a link announcement, or when some were
/// lost). Returns the hops whose entry changed
/// (index into `hops`); a failed netlink query is logged and retried next
/// time, the hop keeping its last known state.
pub async fn poll(handle: &rtnetlink::Handle, hops: &mut [ResolvedHop]) -> Vec<usize> {
    let mut changed = Vec::new();
    for (i, r) in hops.iter_mut().enumerate() {
        let before = r.entry();
        if let Err(e) = poll_one(handle, r).await {
            warn!(hop = %r.name, error = %format!("{e:#}"), "checking the hop failed; retried at the next tick");
        }
        if r.entry() != before {
            changed.push(i);
        }
    }
    changed
}

async fn poll_one(handle: &rtnetlink::Handle, r: &mut ResolvedHop) -> Result<()> {
    match netlink::ifindex(&r.interface) {
        Some(index) if r.link_present && index == r.ifindex => {}
        Some(index) => {
            // Back (or recreated under the same name): take the new index
            // and MAC; a redirect hop re-resolves below.
            r.ifindex = index;
            r.link_present = true;
            if r.mark.is_none() {
                r.src_mac = netlink::link_mac(handle, index).await?.unwrap_or(r.src_mac);
                r.dst_mac = None;
            }
            info!(hop = %r.name, interface = %r.interface, "hop interface is back");
        }
        None if r.link_present => {
            r.link_present = false;
            warn!(hop = %r.name, interface = %r.interface, "hop interface vanished");
        }
        None => {}
    }
    if r.link_present {
        let up = netlink::link_is_up(handle, r.ifindex).await?;
        if up != r.carrier {
            r.carrier = up;
            if up {
                info!(hop = %r.name, interface = %r.interface, "hop interface has carrier again");
            } else {
                warn!(hop = %r.name, interface = %r.interface, "hop interface lost carrier (or was set down)");
            }
        }
    }
    // A redirect hop whose next hop did not resolve gets another chance.
    if let (true, None, None, Some(ip)) = (r.link_present, r.mark, r.dst_mac, r.next_hop) {
        match netlink::resolve_next_hop(handle, r.ifindex, ip, Duration::ZERO).await? {
            Some(mac) => {
                info!(hop = %r.name, mac = %fmt_mac(&mac), "next hop resolved");
                r.dst_mac = Some(mac);
            }
            None => netlink::trigger_resolution(ip),
        }
    }
    Ok(())
}

pub fn fmt_mac(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}
