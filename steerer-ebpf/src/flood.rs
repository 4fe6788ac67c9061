//! The new-flow flood guard (see `steerer_common::flood`): a per-CPU
//! one-second window of inserted flows against the configured limit.

use steerer_common::flood::NewFlowBucket;

use crate::maps::{NEW_FLOW_BUCKETS, NEW_FLOW_LIMIT};

const WINDOW_NS: u64 = 1_000_000_000;

/// Whether this CPU may insert one more new flow at `now` (and counts it
/// either way). No limit configured: always.
#[inline(always)]
pub fn admit(now: u64) -> bool {
    let limit = match NEW_FLOW_LIMIT.get(0) {
        Some(l) if l.per_cpu_per_sec > 0 => l.per_cpu_per_sec as u64,
        _ => return true,
    };
    let Some(b) = NEW_FLOW_BUCKETS.get_ptr_mut(0) else {
        return true;
    };
    // Per-CPU slot: no other CPU writes it, plain stores are exact.
    let b: &mut NewFlowBucket = unsafe { &mut *b };
    if now.wrapping_sub(b.window_ns) >= WINDOW_NS {
        b.window_ns = now;
        b.inserted = 0;
    }
    if b.inserted >= limit {
        b.refused += 1;
        return false;
    }
    b.inserted += 1;
    true
}
