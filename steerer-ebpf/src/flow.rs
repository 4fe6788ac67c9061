//! Flow-table access: counters with atomic adds, insertion on a miss.

use core::intrinsics::{atomic_xadd, AtomicOrdering};

use aya_ebpf::{bindings::BPF_NOEXIST, helpers::bpf_ktime_get_coarse_ns};
use steerer_common::{FlowKey, FlowValue};

use crate::maps::FLOWS;

#[inline(always)]
pub fn add(field: *mut u64, n: u64) {
    // XDP and TC of the same flow run on different CPUs; a locked add keeps
    // the counters exact without a per-CPU split user space would have to sum.
    // core's AtomicU64 has no fetch_add on the BPF target (no atomic width
    // declared), but LLVM lowers this intrinsic to BPF's `lock xadd`.
    unsafe { atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(field, n) };
}

/// Account one forward packet to an existing flow; returns its hop.
#[inline(always)]
pub fn hit(value: *mut FlowValue, bytes: u64, now: u64) -> u32 {
    unsafe {
        add(&raw mut (*value).packets, 1);
        add(&raw mut (*value).bytes, bytes);
        (*value).last_seen_ns = now;
        (*value).hop
    }
}

/// Account one reply packet (seen leaving towards the LAN).
#[inline(always)]
pub fn reply(value: *mut FlowValue, bytes: u64, now: u64) {
    unsafe {
        add(&raw mut (*value).reply_packets, 1);
        add(&raw mut (*value).reply_bytes, bytes);
        (*value).last_seen_ns = now;
        (*value).last_reply_ns = now;
    }
}

/// Create the entry for a new flow. `Err` when the table refused it; if a
/// racing CPU created it first, that CPU's hop wins and is returned.
#[inline(always)]
pub fn insert(key: &FlowKey, hop: u32, bytes: u64, now: u64) -> Result<u32, ()> {
    let value = FlowValue {
        hop,
        failovers: 0,
        packets: 1,
        bytes,
        reply_packets: 0,
        reply_bytes: 0,
        first_seen_ns: now,
        last_seen_ns: now,
        last_reply_ns: 0,
    };
    if FLOWS.insert(key, &value, BPF_NOEXIST as u64).is_ok() {
        return Ok(hop);
    }
    match FLOWS.get_ptr_mut(key) {
        Some(v) => Ok(hit(v, bytes, now)),
        None => Err(()),
    }
}

/// Monotonic time, coarse (one jiffy, 1-4 ms): the control plane judges
/// flows over seconds, and the coarse clock is several times cheaper per
/// packet than the precise one (see BENCHMARKS.md).
#[inline(always)]
pub fn now_ns() -> u64 {
    unsafe { bpf_ktime_get_coarse_ns() }
}
