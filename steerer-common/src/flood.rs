//! The new-flow flood guard (issue 15, item 3; Katran's per-CPU connection
//! rate limit): each CPU inserts at most `per_cpu_per_sec` new flows into
//! the flow table per second. A new flow over the limit is still steered,
//! by the same keyed hash over the same slot table (so it keeps its hop
//! while the table does not change), but gets no flow-table entry: a LAN
//! host spraying tuples cannot evict the live flows of the table faster
//! than the limit.

/// Index 0 of `NEW_FLOW_LIMIT`, written by user space at start.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NewFlowLimit {
    /// New flow-table entries per CPU per second; 0: no limit.
    pub per_cpu_per_sec: u32,
    pub _pad: u32,
}

/// Per CPU (index 0 of `NEW_FLOW_BUCKETS`): the current one-second window.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NewFlowBucket {
    /// Start of the window (the data plane's coarse monotonic clock).
    pub window_ns: u64,
    /// Entries inserted in this window.
    pub inserted: u64,
    /// New flows steered without an entry, since the map was made.
    pub refused: u64,
}
