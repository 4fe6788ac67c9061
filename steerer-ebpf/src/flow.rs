//! Flow-table access: counters with atomic adds, insertion on a miss.

use core::{
    intrinsics::{atomic_xadd, AtomicOrdering},
    mem::MaybeUninit,
    ptr::{read_volatile, write_volatile},
};

use aya_ebpf::{
    bindings::BPF_NOEXIST,
    helpers::{bpf_jiffies64, bpf_ktime_get_coarse_ns},
};
use steerer_common::{flow::closing_bits, FlowKey, FlowValue};

use crate::maps::FLOWS;

#[inline(always)]
pub fn add(field: *mut u64, n: u64) {
    // XDP and TC of the same flow run on different CPUs; a locked add keeps
    // the counters exact without a per-CPU split user space would have to sum.
    // core's AtomicU64 has no fetch_add on the BPF target (no atomic width
    // declared), but LLVM lowers this intrinsic to BPF's `lock xadd`.
    unsafe { atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(field, n) };
}

/// Account one forward packet (TCP flags `tcp_flags`, 0 for UDP) to an
/// existing flow; returns its hop.
#[inline(always)]
pub fn hit(value: *mut FlowValue, bytes: u64, now: u64, tcp_flags: u8) -> u32 {
    unsafe {
        add(&raw mut (*value).packets, 1);
        add(&raw mut (*value).bytes, bytes);
        (*value).last_seen_ns = now;
        note_closing(value, tcp_flags, false);
        (*value).hop
    }
}

/// Account one reply packet (seen leaving towards the LAN).
#[inline(always)]
pub fn reply(value: *mut FlowValue, bytes: u64, now: u64, tcp_flags: u8) {
    unsafe {
        add(&raw mut (*value).reply_packets, 1);
        add(&raw mut (*value).reply_bytes, bytes);
        (*value).last_seen_ns = now;
        (*value).last_reply_ns = now;
        note_closing(value, tcp_flags, true);
    }
}

/// A FIN or RST: the bits that let the control plane expire the flow early.
/// Written only when they add something (the byte is shared by both
/// directions' CPUs; a lost race costs at most the early expiry).
#[inline(always)]
unsafe fn note_closing(value: *mut FlowValue, tcp_flags: u8, reply: bool) {
    let bits = closing_bits(tcp_flags, reply);
    if bits != 0 {
        let old = unsafe { (*value).tcp_closing };
        if old | bits != old {
            unsafe { (*value).tcp_closing = old | bits };
        }
    }
}

/// Create the entry for a new flow. `Err` (the map's error code) when the
/// table refused it; if a racing CPU created it first, that CPU's hop wins
/// and is returned.
#[inline(always)]
pub fn insert(key: &FlowKey, hop: u32, bytes: u64, now: u64) -> Result<u32, i64> {
    let mut value = MaybeUninit::<FlowValue>::uninit();
    let v = value.as_mut_ptr();
    // Field by field with volatile stores: LLVM merges adjacent zero
    // fields of a struct literal into a `memset`, which the BPF target
    // turns into a call of a byte loop.
    unsafe {
        write_volatile(&raw mut (*v).hop, hop);
        write_volatile(&raw mut (*v).failovers, 0);
        write_volatile(&raw mut (*v).tcp_closing, 0);
        write_volatile(&raw mut (*v)._pad, 0);
        write_volatile(&raw mut (*v).packets, 1);
        write_volatile(&raw mut (*v).bytes, bytes);
        write_volatile(&raw mut (*v).reply_packets, 0);
        write_volatile(&raw mut (*v).reply_bytes, 0);
        write_volatile(&raw mut (*v).first_seen_ns, now);
        write_volatile(&raw mut (*v).last_seen_ns, now);
        write_volatile(&raw mut (*v).last_reply_ns, 0);
    }
    // SAFETY: every field was written above (FlowValue has no padding).
    // Borrowed in place: a moved copy would be built again with a memset.
    let value = unsafe { value.assume_init_ref() };
    let code = match FLOWS.insert(key, value, BPF_NOEXIST as u64) {
        Ok(()) => return Ok(hop),
        Err(code) => code,
    };
    match FLOWS.get_ptr_mut(key) {
        Some(v) => Ok(hit(v, bytes, now, 0)),
        None => Err(code as i64),
    }
}

/// Monotonic time, coarse (one jiffy, 1-4 ms): the control plane judges
/// flows over seconds, and the coarse clock is several times cheaper per
/// packet than the precise one (see BENCHMARKS.md).
///
/// Cheaper still: the coarse clock only moves when `jiffies` does, and the
/// verifier turns `bpf_jiffies64` into a single load, so the last reading
/// is kept in a global (the object's `.bss`, no map lookup) and the clock
/// is asked again only in a new jiffy. CPUs may race on the two words; the
/// worst a reader gets is the previous jiffy's reading, which the control
/// plane, judging time in seconds, cannot tell apart.
#[inline(always)]
pub fn now_ns() -> u64 {
    let jiffies = unsafe { bpf_jiffies64() };
    unsafe {
        if read_volatile(&raw const CLOCK_JIFFIES) == jiffies {
            return read_volatile(&raw const CLOCK_NS);
        }
        let ns = bpf_ktime_get_coarse_ns();
        // The reading before its jiffy: a CPU that sees the new jiffy then
        // usually finds its reading too (x86 keeps store order).
        write_volatile(&raw mut CLOCK_NS, ns);
        write_volatile(&raw mut CLOCK_JIFFIES, jiffies);
        ns
    }
}

/// `now_ns`'s cache: the jiffy of the last coarse reading, and the reading.
#[unsafe(no_mangle)]
static mut CLOCK_JIFFIES: u64 = 0;
#[unsafe(no_mangle)]
static mut CLOCK_NS: u64 = 0;
