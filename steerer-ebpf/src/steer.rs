//! The per-packet decision shared by the XDP and TC steering programs
//! (SPEC 4.1 steps 1-3 and 5): classify, look the flow up or choose its
//! hop, fail over a repeated SYN. Applying the hop's action is up to the
//! caller (`act`).

use core::{mem::MaybeUninit, ptr::write_volatile};

use steerer_common::{flow::LocalAddrKey, HopEntry, StatReason};

use crate::{
    act, failover, flood, flow,
    maps::{count, count_to_hop, FLOWS, LOCAL_ADDRS},
    parse::{self, Parsed},
    rare, select,
};

pub struct Decision {
    pub parsed: Parsed,
    pub hop: u32,
    pub entry: &'static HopEntry,
}

/// `pkt_len` counts the whole packet (TC's linear area may be shorter);
/// `allow_mark`: whether this program can apply the `mark` action.
#[inline(always)]
pub fn decide(
    data: usize,
    data_end: usize,
    pkt_len: usize,
    allow_mark: bool,
) -> Result<Decision, StatReason> {
    let parsed = parse::parse(data, data_end, pkt_len)?;
    if parsed.ttl <= 1 {
        return Err(StatReason::PassTtl);
    }
    let now = flow::now_ns();
    let bytes = pkt_len as u64;
    let hop = match FLOWS.get_ptr_mut(&parsed.key) {
        Some(value) => {
            if failover::wanted(value, parsed.tcp_flags) {
                failover::resteer(&parsed.key, value, allow_mark);
            }
            flow::hit(value, bytes, now, parsed.tcp_flags)
        }
        None => {
            if is_local(&parsed) {
                return Err(StatReason::PassLocal);
            }
            let hop = select::pick_hop(&parsed.key, allow_mark)?;
            // Refuse before inserting, so an unusable hop leaves no flow behind.
            let entry = act::usable_hop(hop, allow_mark)?;
            if !flood::admit(now) {
                // Over the new-flow limit: steered by the hash alone
                // (counted in NEW_FLOW_BUCKETS), no entry to evict others.
                count_to_hop(hop, bytes);
                return Ok(Decision { parsed, hop, entry });
            }
            let hop = flow::insert(&parsed.key, hop, bytes, now).map_err(|code| {
                rare::note(u32::MAX, 0, code);
                StatReason::PassFlowTableFull
            })?;
            count(StatReason::NewFlow);
            hop
        }
    };
    let entry = act::usable_hop(hop, allow_mark)?;
    count_to_hop(hop, bytes);
    Ok(Decision { parsed, hop, entry })
}

#[inline(always)]
fn is_local(parsed: &Parsed) -> bool {
    if parse::is_special_destination(&parsed.key) {
        return true;
    }
    let mut local = MaybeUninit::<LocalAddrKey>::uninit();
    let k = local.as_mut_ptr();
    // Volatile for the padding: a constant `[0; 3]` becomes a call of the
    // BPF target's byte-loop `memset` (see `flow::insert`).
    unsafe {
        (*k).addr = parsed.key.dst_addr;
        (*k).family = parsed.key.family;
        let pad = (&raw mut (*k)._pad) as *mut u8;
        write_volatile(pad, 0);
        write_volatile(pad.add(1), 0);
        write_volatile(pad.add(2), 0);
    }
    // SAFETY: every field was written above; borrowed in place (a moved
    // copy would be built again with a memset).
    let local = unsafe { local.assume_init_ref() };
    unsafe { LOCAL_ADDRS.get(local).is_some() }
}
