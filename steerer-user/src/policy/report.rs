//! What the engine reads (flow samples) and what a tick reports.

/// What a flow's counters said at one instant. Times share the clock of
/// `now` passed to [`Engine::tick`] (the daemon uses CLOCK_MONOTONIC).
#[derive(Debug, Clone, Copy)]
pub struct FlowSample<K> {
    pub key: K,
    /// The flow's destination (dst ip, dst port, proto) as an opaque id.
    pub destination: u64,
    pub hop: u32,
    /// Forward bytes since the flow started.
    pub bytes: u64,
    /// Reply bytes since the flow started.
    pub reply_bytes: u64,
    pub packets: u64,
    pub reply_packets: u64,
    pub first_seen_ns: u64,
    pub last_seen_ns: u64,
    /// No reply on this flow says little about its hop (issue 14: UDP and
    /// other connectionless flows may be one-way by design, and a LAN host
    /// can send a flood of them): its failure never counts towards a hop
    /// being bad or gone, only, where the destination answers through
    /// another hop, towards blocking this hop for it. A TCP flow without a
    /// reply (a SYN never answered) is strong evidence.
    pub weak_evidence: bool,
}

/// A flow that changed state in a tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowEvent<K> {
    pub key: K,
    pub hop: u32,
    pub destination: u64,
    /// The flow's `weak_evidence`.
    pub weak: bool,
}

/// Where a hop's speed figure came from this tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpeedSource {
    /// Measured from data in the past K seconds.
    Measured,
    /// No data this tick: its speed over the L window.
    Remembered,
    /// Never measured (or too long ago): min(estimated speed, capacity),
    /// and never above the best measured hop of its window.
    Estimated,
}

impl SpeedSource {
    pub fn label(self) -> &'static str {
        match self {
            SpeedSource::Measured => "measured",
            SpeedSource::Remembered => "remembered",
            SpeedSource::Estimated => "estimate",
        }
    }
}

/// Per-hop line of a tick report.
#[derive(Debug, Clone)]
pub struct HopReport {
    pub name: String,
    pub usable: bool,
    /// Member of the class window.
    pub in_window: bool,
    /// Share of new flows in the class table (0..=1).
    pub share: f64,
    /// Slots held in the class table.
    pub slots: u32,
    /// Flows with a packet in the past K seconds.
    pub active_flows: u64,
    /// Bytes (both directions) moved in the past K seconds.
    pub bytes: u64,
    /// Bytes per second over the hop's busy time in the past K seconds.
    pub speed: f64,
    pub speed_source: SpeedSource,
    /// Flows that became failed (no reply after T) during this tick.
    pub newly_failed: u64,
    /// Failed flows since start.
    pub failed_total: u64,
}

/// A destination's own window and table.
#[derive(Debug, Clone)]
pub struct DestinationTable {
    pub destination: u64,
    pub members: Vec<u32>,
    pub table: Vec<u32>,
}

#[derive(Debug, Clone)]
pub struct TickReport<K> {
    pub now_ns: u64,
    pub hops: Vec<HopReport>,
    /// The class window's members.
    pub window: Vec<u32>,
    /// The new class slot table (hop ids; `slot_table::EMPTY` when no hop
    /// is usable).
    pub table: Vec<u32>,
    /// Slots that changed hop compared with the previous table, and the
    /// least number that had to (sum of the hops' slot gains).
    pub moved_slots: usize,
    pub min_moved_slots: usize,
    /// The flows that became failed this tick (no reply after T), with
    /// their hop and destination (input for per-destination blocking,
    /// SPEC 5.5).
    pub newly_failed_flows: Vec<FlowEvent<K>>,
    /// The flows whose first reply was seen this tick: their hop reaches
    /// their destination.
    pub newly_answered_flows: Vec<FlowEvent<K>>,
    /// Hops declared disappeared this tick (no reply on any flow): out of
    /// every table; the caller resets their flows so retries go elsewhere.
    pub disappeared: Vec<u32>,
    /// Destinations that had to hold a window of their own this tick (a
    /// hop is blocked for them) and got none: every window was taken by
    /// another such destination. The caller falls back to a coarser rule.
    pub unplaced: Vec<u64>,
    /// Every destination window, in destination order.
    pub destination_tables: Vec<DestinationTable>,
}
