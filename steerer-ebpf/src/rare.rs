//! Reports of the data plane's rare error paths through aya-log (a failed
//! redirect, a flow table that refused an entry), with the hop, ifindex and
//! error code the per-reason counters cannot carry. Never on the hot path,
//! and at most one report per CPU per second: a path that fails for every
//! packet (a hop's interface gone) must not flood the ring buffer or the
//! daemon's log; the counters count every packet.
//!
//! The failing site only `note`s what it knows in a per-CPU slot; the
//! program's error arm, which holds the context anyway, makes the report.
//! Passing the context down into the steering decision instead, so that
//! the site could log itself, cost the established-flow hit about a tenth
//! of its time (register pressure and code layout) though it never ran.

use aya_ebpf::{macros::map, maps::PerCpuArray, EbpfContext};
use aya_log_ebpf::error;
use steerer_common::StatReason;

use crate::flow;

/// Per CPU: what the last failing site knew, and when the last report was
/// made (the coarse clock).
#[repr(C)]
pub struct RareNote {
    last_report_ns: u64,
    code: i64,
    hop: u32,
    ifindex: u32,
}

#[map]
static RARE_NOTES: PerCpuArray<RareNote> = PerCpuArray::with_max_entries(1, 0);

const REPORT_EVERY_NS: u64 = 1_000_000_000;

/// Record what a failing site knows, for `report`. `hop` is `u32::MAX`
/// where the site has none.
#[inline(always)]
pub fn note(hop: u32, ifindex: u32, code: i64) {
    if let Some(slot) = RARE_NOTES.get_ptr_mut(0) {
        // Per-CPU slot: no other CPU writes it, and the program that noted
        // runs to its error arm before the next packet on this CPU.
        unsafe {
            (*slot).hop = hop;
            (*slot).ifindex = ifindex;
            (*slot).code = code;
        }
    }
}

/// Whether `reason` is one that `report` explains.
#[inline(always)]
pub fn reportable(reason: StatReason) -> bool {
    matches!(
        reason,
        StatReason::RedirectFailed | StatReason::PassFlowTableFull
    )
}

/// Log the noted failure behind `reason`, unless this CPU reported less
/// than a second ago. A function of its own (a BPF-to-BPF call), never
/// inlined, so that its record building stays out of the steering path.
#[inline(never)]
pub fn report<C: EbpfContext>(ctx: &C, reason: StatReason, tc: bool) {
    let Some(slot) = RARE_NOTES.get_ptr_mut(0) else {
        return;
    };
    let now = flow::now_ns();
    // SAFETY: per-CPU slot, see `note`.
    let (hop, ifindex, code) = unsafe {
        let last = (*slot).last_report_ns;
        if last != 0 && now.wrapping_sub(last) < REPORT_EVERY_NS {
            return;
        }
        (*slot).last_report_ns = now;
        ((*slot).hop, (*slot).ifindex, (*slot).code)
    };
    match reason {
        StatReason::RedirectFailed if tc => error!(
            ctx,
            "redirect to ifindex {} failed (TC action or helper error {}); the packet passes to the stack",
            ifindex,
            code
        ),
        StatReason::RedirectFailed => error!(
            ctx,
            "redirect to hop {} (ifindex {}) failed (XDP action or helper error {}); the packet passes to the stack",
            hop,
            ifindex,
            code
        ),
        _ => error!(
            ctx,
            "the flow table refused a new flow (error {}): it passes unsteered", code
        ),
    }
}
