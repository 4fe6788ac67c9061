//! Fast failover (SPEC 4.1.5): a TCP SYN repeated by a flow that has never
//! had a reply means its hop is dropping it; move the flow to another hop
//! of its window now, so the client's own SYN retransmission completes the
//! connection instead of waiting for the control plane's next tick.

use steerer_common::{flow::FailoverKey, FlowKey, FlowValue, StatReason};

use crate::{
    act::usable_hop,
    maps::{count, FAILOVERS},
    parse::{TCP_ACK, TCP_SYN},
    select::pick_hop_salted,
};

/// Other choices tried before keeping the old hop (a window of one hop, or
/// one hop holding most slots, may offer nothing else).
const TRIES: u16 = 4;

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

/// Move the flow to another usable hop; returns the hop it now uses.
#[inline(always)]
pub fn resteer(key: &FlowKey, value: *mut FlowValue, allow_mark: bool) -> u32 {
    let old = unsafe { (*value).hop };
    let moves = unsafe { (*value).failovers };
    let mut salt = (moves as u16).wrapping_add(1);
    let mut i = 0;
    while i < TRIES {
        if let Ok(hop) = pick_hop_salted(key, salt) {
            if hop != old && usable_hop(hop, allow_mark).is_ok() {
                unsafe {
                    (*value).hop = hop;
                    (*value).failovers = moves + 1;
                }
                record(old, key.dst_port);
                count(StatReason::Failover);
                return hop;
            }
        }
        salt = salt.wrapping_add(1);
        i += 1;
    }
    old
}

#[inline(always)]
fn record(hop: u32, dst_port: u16) {
    let key = FailoverKey {
        hop,
        dst_port,
        _pad: 0,
    };
    match FAILOVERS.get_ptr_mut(&key) {
        Some(n) => unsafe {
            core::intrinsics::atomic_xadd::<u64, u64, { core::intrinsics::AtomicOrdering::Relaxed }>(
                n, 1,
            );
        },
        None => {
            let _ = FAILOVERS.insert(&key, &1, 0);
        }
    }
}
