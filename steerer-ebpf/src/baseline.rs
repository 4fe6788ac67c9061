//! Reference programs for `cargo xtask bench dataplane`; never attached.
//!
//! The benchmark prints steerer's cost per packet as a ratio to these two,
//! measured in the same run: what any XDP program costs at all, and what
//! the least a steering program must do (parse, one flow-table lookup)
//! costs.

use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};

use crate::{maps::FLOWS, parse};

#[xdp]
pub fn bench_xdp_pass(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_PASS
}

#[xdp]
pub fn bench_parse_lookup(ctx: XdpContext) -> u32 {
    let (data, data_end) = (ctx.data(), ctx.data_end());
    match parse::parse(data, data_end, data_end - data) {
        Ok(parsed) => match unsafe { FLOWS.get(&parsed.key) } {
            Some(_) => xdp_action::XDP_PASS,
            None => xdp_action::XDP_DROP,
        },
        Err(_) => xdp_action::XDP_ABORTED,
    }
}
