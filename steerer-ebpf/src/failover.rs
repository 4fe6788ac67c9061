//! Fast failover (SPEC 4.1.5): a TCP SYN repeated by a flow that has never
//! had a reply means its hop is dropping it; move the flow to another hop
//! of its window now, so the client's own SYN retransmission completes the
//! connection instead of waiting for the control plane's next tick. Which
//! hop is `steerer_common::select::failover_hop`, shared with the
//! simulator.

use steerer_common::{
    flow::{DestKey, FailoverKey},
    select::failover_hop,
    FlowKey, FlowValue, StatReason,
};

use crate::{
    flow,
    maps::{count, FAILOVERS},
    parse::{TCP_ACK, TCP_SYN},
    select::Maps,
};

/// A SYN without ACK (a connection attempt, not its answer).
#[inline(always)]
pub fn is_connection_attempt(tcp_flags: u8) -> bool {
    tcp_flags & (TCP_SYN | TCP_ACK) == TCP_SYN
}

/// Does this packet of an existing flow call for a failover?
#[inline(always)]
pub fn wanted(value: *const FlowValue, tcp_flags: u8) -> bool {
    is_connection_attempt(tcp_flags) && unsafe { (*value).reply_packets == 0 }
}

/// Move the flow to another usable hop if there is one.
#[inline(always)]
pub fn resteer(key: &FlowKey, value: *mut FlowValue, allow_mark: bool) {
    let old = unsafe { (*value).hop };
    let moves = unsafe { (*value).failovers };
    if let Some(hop) = failover_hop(&Maps { allow_mark }, key, old, moves as u32) {
        unsafe {
            (*value).hop = hop;
            (*value).failovers = moves.saturating_add(1);
        }
        record(old, key);
        count(StatReason::Failover);
    }
}

/// Count the move against (old hop, destination).
#[inline(always)]
fn record(hop: u32, key: &FlowKey) {
    let key = FailoverKey {
        hop,
        dest: DestKey::of(key),
    };
    match FAILOVERS.get_ptr_mut(&key) {
        Some(n) => flow::add(n, 1),
        None => {
            let _ = FAILOVERS.insert(&key, &1, 0);
        }
    }
}
