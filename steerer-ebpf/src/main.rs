//! steerer's kernel programs.
//!
//! * `steerer_xdp` (XDP, LAN-facing interface): classify, look the flow up,
//!   choose a hop for new flows, apply the hop's action.
//! * `steerer_tc_reply` (TC egress, same interface): account reply traffic to
//!   the flow it answers.
//! * `steerer_tc` (TC ingress, `--attach tc`): the XDP program's decision,
//!   with the `mark` action too.
//! * only with the `bench` feature: the two reference programs of `cargo
//!   xtask bench dataplane` (`baseline`), never in the production object.
#![no_std]
#![no_main]
#![feature(core_intrinsics)]
#![allow(internal_features)]

mod act;
#[cfg(feature = "bench")]
mod baseline;
mod failover;
mod flood;
mod flow;
mod maps;
mod parse;
mod rare;
mod select;
mod steer;

use aya_ebpf::{
    bindings::TC_ACT_OK,
    macros::{classifier, xdp},
    programs::{TcContext, XdpContext},
};
use steerer_common::StatReason;

use crate::maps::{count, count_from_hop, FLOWS};

#[xdp]
pub fn steerer_xdp(ctx: XdpContext) -> u32 {
    let (data, data_end) = (ctx.data(), ctx.data_end());
    let result = steer::decide(data, data_end, data_end - data, false)
        .and_then(|d| act::redirect_xdp(&ctx, &d.parsed, d.hop, d.entry));
    match result {
        Ok(verdict) => verdict,
        Err(reason) => {
            count(reason);
            if rare::reportable(reason) {
                rare::report(&ctx, reason, false);
            }
            act::PASS
        }
    }
}

/// The TC variant of `steerer_xdp` (`--attach tc`), on the LAN interface's
/// ingress: same decision, and both actions, `redirect` and `mark`.
#[classifier]
pub fn steerer_tc(ctx: TcContext) -> i32 {
    // Headers must be in the linear area for direct access.
    let _ = ctx.pull_data(HEADROOM.min(ctx.len()));
    let (data, data_end) = (ctx.data(), ctx.data_end());
    let result = steer::decide(data, data_end, ctx.len() as usize, true).and_then(|d| {
        if d.entry.is_mark() {
            Ok(act::mark_tc(&ctx, d.entry))
        } else {
            act::redirect_tc(&ctx, &d.parsed, d.entry)
        }
    });
    match result {
        Ok(verdict) => verdict,
        Err(reason) => {
            count(reason);
            if rare::reportable(reason) {
                rare::report(&ctx, reason, true);
            }
            TC_ACT_OK
        }
    }
}

/// Bytes pulled into the linear area: every header the parser may read
/// (transport headers start within `MAX_L4_OFFSET`, TCP with options).
const HEADROOM: u32 = (parse::MAX_L4_OFFSET + parse::MAX_TCP_HEADER) as u32;

#[classifier]
pub fn steerer_tc_reply(ctx: TcContext) -> i32 {
    // Headers must be in the linear area for direct access.
    let _ = ctx.pull_data(HEADROOM.min(ctx.len()));
    let data = ctx.data();
    let data_end = ctx.data_end();
    match parse::parse(data, data_end, ctx.len() as usize) {
        Ok(parsed) => {
            let key = parsed.key.reversed();
            match FLOWS.get_ptr_mut(&key) {
                Some(value) => {
                    let bytes = ctx.len() as u64;
                    flow::reply(value, bytes, flow::now_ns(), parsed.tcp_flags);
                    count_from_hop(unsafe { (*value).hop }, bytes);
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
