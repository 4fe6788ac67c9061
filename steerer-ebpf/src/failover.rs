//! Fast failover (SPEC 4.1.5): a TCP SYN repeated by a flow that has never
//! had a reply means its hop is dropping it; move the flow to another hop
//! of its window now, so the client's own SYN retransmission completes the
//! connection instead of waiting for the control plane's next tick.

use steerer_common::{flow::FailoverKey, FlowKey, FlowValue, StatReason};

use crate::{
    act::usable_hop,
    flow,
    maps::{count, FAILOVERS},
    parse::{TCP_ACK, TCP_SYN},
    select::{choose, hop_at},
};

/// Other choices tried before keeping the old hop (a window of one hop, or
/// one hop holding most slots, may offer nothing else).
const TRIES: u16 = 4;
/// Slots walked after the weighted choices failed to leave the old hop.
const SCAN: u32 = 64;

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
///
/// First a few fresh choices by weight (salted hashes); if they all land on
/// the old hop (a heavy hop, or bad luck), the slots after the last choice
/// are walked until another hop turns up, so a window with any other
/// usable hop always yields one.
#[inline(always)]
pub fn resteer(key: &FlowKey, value: *mut FlowValue, allow_mark: bool) -> u32 {
    let old = unsafe { (*value).hop };
    let moves = unsafe { (*value).failovers };
    let mut salt = (moves as u16).wrapping_add(1);
    let mut last = None;
    let mut i = 0;
    while i < TRIES {
        if let Ok(c) = choose(key, salt) {
            if let Ok(hop) = hop_at(&c, c.slot) {
                if hop != old && usable_hop(hop, allow_mark).is_ok() {
                    return moved(key, value, old, hop, moves);
                }
            }
            last = Some(c);
        }
        salt = salt.wrapping_add(1);
        i += 1;
    }
    let Some(c) = last else { return old };
    // Wrap by hand: no division (and no division-by-zero path) in the loop.
    let mut slot = c.slot;
    let mut step = 1;
    while step <= SCAN {
        slot += 1;
        if slot >= c.slot_count {
            slot = 0;
        }
        if let Ok(hop) = hop_at(&c, slot) {
            if hop != old && usable_hop(hop, allow_mark).is_ok() {
                return moved(key, value, old, hop, moves);
            }
        }
        step += 1;
    }
    old
}

#[inline(always)]
fn moved(key: &FlowKey, value: *mut FlowValue, old: u32, hop: u32, moves: u32) -> u32 {
    unsafe {
        (*value).hop = hop;
        (*value).failovers = moves + 1;
    }
    record(old, key.dst_port);
    count(StatReason::Failover);
    hop
}

#[inline(always)]
fn record(hop: u32, dst_port: u16) {
    let key = FailoverKey {
        hop,
        dst_port,
        _pad: 0,
    };
    match FAILOVERS.get_ptr_mut(&key) {
        Some(n) => flow::add(n, 1),
        None => {
            let _ = FAILOVERS.insert(&key, &1, 0);
        }
    }
}
