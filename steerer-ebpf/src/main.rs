//! steerer's kernel programs.
//!
//! * `steerer_xdp` (XDP, LAN-facing interface): classify, look the flow up,
//!   choose a hop for new flows, apply the hop's action.
//! * `steerer_tc_reply` (TC egress, same interface): account reply traffic to
//!   the flow it answers.
#![no_std]
#![no_main]
#![feature(core_intrinsics)]
#![allow(internal_features)]

mod act;
mod baseline;
mod failover;
mod flow;
mod maps;
mod parse;
mod select;

use aya_ebpf::{
    bindings::TC_ACT_OK,
    macros::{classifier, xdp},
    programs::{TcContext, XdpContext},
};
use steerer_common::{flow::LocalAddrKey, StatReason};

use crate::maps::{count, FLOWS, LOCAL_ADDRS};

#[xdp]
pub fn steerer_xdp(ctx: XdpContext) -> u32 {
    let data = ctx.data();
    let data_end = ctx.data_end();
    match steer(&ctx, data, data_end) {
        Ok(verdict) => verdict,
        Err(reason) => {
            count(reason);
            act::PASS
        }
    }
}

#[inline(always)]
fn steer(ctx: &XdpContext, data: usize, data_end: usize) -> Result<u32, StatReason> {
    let len = data_end - data;
    let parsed = parse::parse(data, data_end, len)?;
    if parsed.ttl <= 1 {
        return Err(StatReason::PassTtl);
    }
    let now = flow::now_ns();
    let bytes = len as u64;
    let hop = match FLOWS.get_ptr_mut(&parsed.key) {
        Some(value) => {
            if failover::wanted(value, parsed.tcp_flags) {
                failover::resteer(&parsed.key, value);
            }
            count(StatReason::Established);
            flow::hit(value, bytes, now)
        }
        None => {
            if is_local(&parsed) {
                return Err(StatReason::PassLocal);
            }
            let hop = select::pick_hop(&parsed.key)?;
            // Refuse before inserting, so a missing hop leaves no flow behind.
            act::usable_hop(hop)?;
            let hop = flow::insert(&parsed.key, hop, bytes, now)
                .map_err(|_| StatReason::PassFlowTableFull)?;
            count(StatReason::NewFlow);
            hop
        }
    };
    let entry = act::usable_hop(hop)?;
    act::redirect_xdp(ctx, &parsed, hop, entry)
}

#[inline(always)]
fn is_local(parsed: &parse::Parsed) -> bool {
    if parse::is_special_destination(&parsed.key) {
        return true;
    }
    let local = LocalAddrKey {
        addr: parsed.key.dst_addr,
        family: parsed.key.family,
        _pad: [0; 3],
    };
    unsafe { LOCAL_ADDRS.get(&local).is_some() }
}

#[classifier]
pub fn steerer_tc_reply(ctx: TcContext) -> i32 {
    // Headers must be in the linear area for direct access.
    let _ = ctx.pull_data(256.min(ctx.len()));
    let data = ctx.data();
    let data_end = ctx.data_end();
    match parse::parse(data, data_end, ctx.len() as usize) {
        Ok(parsed) => {
            let key = parsed.key.reversed();
            match FLOWS.get_ptr_mut(&key) {
                Some(value) => {
                    flow::reply(value, ctx.len() as u64, flow::now_ns());
                    count(StatReason::ReplyAccounted);
                }
                None => count(StatReason::ReplyNoFlow),
            }
        }
        Err(_) => count(StatReason::ReplyNoFlow),
    }
    TC_ACT_OK
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
