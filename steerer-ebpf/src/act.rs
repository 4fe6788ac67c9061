//! Hop actions. `redirect`: rewrite the Ethernet addresses for the hop's
//! next hop, decrement TTL / hop limit, and send the frame out of the hop's
//! interface through the devmap.

use core::ptr::{read_volatile, write_volatile};

use aya_ebpf::{
    bindings::{xdp_action, TC_ACT_OK, TC_ACT_REDIRECT},
    helpers::{bpf_redirect, bpf_skb_vlan_pop, bpf_xdp_adjust_head},
    programs::{TcContext, XdpContext},
};
use network_types::{
    eth::EthHdr,
    ip::{Ipv4Hdr, Ipv6Hdr},
};
use steerer_common::{flow::FAMILY_IPV4, HopEntry, StatReason};

use crate::{
    maps::{HOPS, HOP_DEVS},
    parse::{ptr_at_mut, Parsed},
    rare,
};

/// The hop's entry, if it exists, is enabled, and its action can be
/// applied by the calling program (`mark` needs TC).
#[inline(always)]
pub fn usable_hop(hop: u32, allow_mark: bool) -> Result<&'static HopEntry, StatReason> {
    match HOPS.get(hop) {
        Some(entry) if entry.is_enabled() && (allow_mark || !entry.is_mark()) => Ok(entry),
        _ => Err(StatReason::PassNoHop),
    }
}

/// `mark` (TC): tag the packet for policy routing and let the stack
/// forward it (the kernel decrements the TTL itself).
#[inline(always)]
pub fn mark_tc(ctx: &TcContext, entry: &HopEntry) -> i32 {
    ctx.set_mark(entry.mark);
    TC_ACT_OK
}

/// `redirect` (TC): as `redirect_xdp`, on an skb. VLAN tags, in the packet
/// or offloaded into the skb, are removed first.
#[inline(always)]
pub fn redirect_tc(ctx: &TcContext, parsed: &Parsed, entry: &HopEntry) -> Result<i32, StatReason> {
    let offloaded = unsafe { (*ctx.skb.skb).vlan_present } != 0;
    let pops = parsed.vlan_tags as u32 + offloaded as u32;
    let mut i = 0;
    while i < pops && i < 3 {
        let code = unsafe { bpf_skb_vlan_pop(ctx.skb.skb) };
        if code != 0 {
            rare::note(u32::MAX, entry.ifindex, code);
            return Err(StatReason::RedirectFailed);
        }
        i += 1;
    }
    let l3_off = parsed.l3_off - 4 * parsed.vlan_tags as usize;
    let (data, data_end) = (ctx.data(), ctx.data_end());
    decrement_ttl(data, data_end, parsed, l3_off)?;
    rewrite_macs(data, data_end, entry)?;
    match unsafe { bpf_redirect(entry.ifindex, 0) } as i32 {
        TC_ACT_REDIRECT => Ok(TC_ACT_REDIRECT),
        action => {
            rare::note(u32::MAX, entry.ifindex, action as i64);
            Err(StatReason::RedirectFailed)
        }
    }
}

/// Rewrite the frame for `entry` and redirect it (XDP). VLAN tags of the
/// LAN link are removed: the hop's link is a different one.
#[inline(always)]
pub fn redirect_xdp(
    ctx: &XdpContext,
    parsed: &Parsed,
    hop: u32,
    entry: &HopEntry,
) -> Result<u32, StatReason> {
    let (data, data_end) = (ctx.data(), ctx.data_end());
    decrement_ttl(data, data_end, parsed, parsed.l3_off)?;
    let (data, data_end) = if parsed.vlan_tags > 0 {
        // The inner EtherType lands at offset 12 of the shortened frame; the
        // addresses before it are written below.
        let pop = parsed.vlan_tags as i32 * 4;
        let code = unsafe { bpf_xdp_adjust_head(ctx.ctx, pop) };
        if code != 0 {
            rare::note(hop, entry.ifindex, code);
            return Err(StatReason::RedirectFailed);
        }
        (ctx.data(), ctx.data_end())
    } else {
        (data, data_end)
    };
    rewrite_macs(data, data_end, entry)?;
    HOP_DEVS.redirect(hop, 0).map_err(|action| {
        rare::note(hop, entry.ifindex, action as i64);
        StatReason::RedirectFailed
    })
}

/// TTL / hop limit - 1 of the IP header at `l3_off` (both actions that
/// forward themselves, XDP and TC `redirect`).
#[inline(always)]
fn decrement_ttl(
    data: usize,
    data_end: usize,
    parsed: &Parsed,
    l3_off: usize,
) -> Result<(), StatReason> {
    if parsed.key.family == FAMILY_IPV4 {
        let ip: *mut Ipv4Hdr =
            ptr_at_mut(data, data_end, l3_off).ok_or(StatReason::PassTruncated)?;
        unsafe { decrement_ttl_v4(&mut *ip) };
    } else {
        let ip: *mut Ipv6Hdr =
            ptr_at_mut(data, data_end, l3_off).ok_or(StatReason::PassTruncated)?;
        unsafe { (*ip).hop_limit -= 1 };
    }
    Ok(())
}

/// Ethernet addresses for the hop's next hop.
#[inline(always)]
fn rewrite_macs(data: usize, data_end: usize, entry: &HopEntry) -> Result<(), StatReason> {
    let eth: *mut EthHdr = ptr_at_mut(data, data_end, 0).ok_or(StatReason::PassTruncated)?;
    // Three 16-bit words per address: a plain array assignment into packet
    // memory compiles to a call of the byte-loop `memmove` (about 10 ns on
    // the established-flow path), a 6-byte copy to twelve byte loads and
    // stores. Both addresses sit at even offsets, in the frame and in
    // `HopEntry` (8 and 14).
    unsafe {
        copy_mac(entry.dst_mac.as_ptr(), (*eth).dst_addr.as_mut_ptr());
        copy_mac(entry.src_mac.as_ptr(), (*eth).src_addr.as_mut_ptr());
    }
    Ok(())
}

/// Six bytes from `from` to `to`, both 2-byte aligned, as three words.
#[inline(always)]
unsafe fn copy_mac(from: *const u8, to: *mut u8) {
    let (from, to) = (from as *const u16, to as *mut u16);
    // Volatile: LLVM would otherwise split the copy into bytes again (the
    // BPF target assumes nothing about alignment it cannot prove).
    unsafe {
        write_volatile(to, read_volatile(from));
        write_volatile(to.add(1), read_volatile(from.add(1)));
        write_volatile(to.add(2), read_volatile(from.add(2)));
    }
}

/// TTL - 1 with the checksum fixed incrementally (RFC 1624), as the kernel's
/// `ip_decrease_ttl` does: the TTL is the high byte of its 16-bit word, so
/// the one's-complement sum rises by 0x0100.
#[inline(always)]
pub fn decrement_ttl_v4(ip: &mut Ipv4Hdr) {
    let mut check = u16::from_be_bytes(ip.check) as u32;
    check += 0x0100;
    check += (check >= 0xffff) as u32;
    ip.check = (check as u16).to_be_bytes();
    ip.ttl -= 1;
}

/// Verdict for packets we leave alone.
pub const PASS: u32 = xdp_action::XDP_PASS;
