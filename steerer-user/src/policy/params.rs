//! What the policy is told before it starts: the hops as it sees them and
//! its tunables (SPEC section 3), and the thresholds of its rules.

/// One configured hop as the policy sees it.
#[derive(Debug, Clone)]
pub struct HopSpec {
    pub name: String,
    /// min(estimated speed, estimated capacity), bytes per second.
    pub initial_estimate: f64,
    /// Operator tag (SPEC 2): hops of one operator share the operator's
    /// max share, and windows prefer operators they do not hold yet.
    pub operator: Option<String>,
    /// The hop's network (e.g. the /24 of its address): windows prefer
    /// subnets they do not hold yet (SPEC 5.6).
    pub subnet: Option<String>,
    /// The directory published fresh data about this hop (preferred when
    /// windows take new members).
    pub fresh: bool,
    /// Probe latency, milliseconds (lower preferred among equals).
    pub latency_ms: Option<f64>,
}

/// Tunables (SPEC section 3); `Params::default()` holds the SPEC defaults.
#[derive(Debug, Clone)]
pub struct Params {
    /// K, nanoseconds.
    pub tick_ns: u64,
    /// The first tick after the start comes this soon (at most K): before
    /// it the tables follow the hops' claims alone.
    pub first_tick_ns: u64,
    /// L: the sequence window (SPEC 5.2). A hop without data this tick is
    /// weighted by its speed over L; a destination window is sized by its
    /// connections over L; a disappeared hop stays out this long before a
    /// re-test.
    pub memory_ns: u64,
    /// T: no reply after this long marks a flow failed.
    pub fail_after_ns: u64,
    /// One fast failover off a hop excludes it for the destination this
    /// long (0: a failover is one of the two failures that exclude it for
    /// `blocked::FIRST_EXCLUSION_NS`).
    pub failover_exclusion_ns: u64,
    pub max_share: f64,
    /// Largest share of one operator's hops together (SPEC 5.6).
    pub max_operator_share: f64,
    /// Share of new flows spread evenly over every usable hop, so that each
    /// can be measured again (SPEC 5.6).
    pub exploration_share: f64,
    /// A flow that moves at least this many bytes in a tick is a bulk
    /// flow: a hop's speed is also measured over its bulk flows alone, and
    /// the higher of the two counts (0: over all flows only).
    pub bulk_flow_bytes: u64,
    /// Shares follow the load as well as the speeds: at a load well below
    /// the hops' capacity new flows go to the fast hops (see
    /// `weights::load_factors`); off: shares by speed alone.
    pub load_aware: bool,
    /// Slots per class table (prime).
    pub slot_count: u32,
    /// N: baseline window size.
    pub window_base: usize,
    /// R: new connections to one destination in one tick before it gets a
    /// window of its own.
    pub grow_after: u64,
    /// S: hops added per R connections.
    pub grow_by: usize,
    /// Largest destination window: a destination table of 1021 slots still
    /// gives each of 32 hops about 32 slots of resolution. (The class
    /// window grows with load up to `class_window_cap`.)
    pub max_window: usize,
    /// Data-plane hop ids: how many hops the tables can name at once (and
    /// flows point at). The class window grows to at most 3/4 of them, so
    /// ids remain for destination windows and for hops whose flows drain.
    pub hop_ids: u32,
    /// Destination windows held at most (the data plane's table count); the
    /// least recently used destination gives way.
    pub max_destination_windows: usize,
    /// Slots per destination table (prime).
    pub destination_slot_count: u32,
    /// A TCP flow without a packet for this long leaves the flow table.
    pub idle_tcp_ns: u64,
    /// ... and a flow of any other protocol (UDP: no end to see).
    pub idle_other_ns: u64,
    /// A TCP flow whose end the data plane saw (FIN both ways, or RST)
    /// leaves after this long without a packet.
    pub closed_tcp_ns: u64,
    /// A hop whose link came back waits this long, without going down
    /// again, before it takes new flows (0: at once).
    pub link_hold_down_ns: u64,
    /// M: grouping tolerance of the window sequences (SPEC 5.2).
    pub group_tolerance_ns: u64,
    /// Seed of the pool enumeration (random, fixed per run).
    pub seed: u64,
    /// Active probes through each hop (`None`: not configured).
    pub probe: Option<super::probe_book::ProbeParams>,
}

impl Default for Params {
    fn default() -> Params {
        Params {
            tick_ns: 5_000_000_000,
            first_tick_ns: 1_000_000_000,
            memory_ns: 60_000_000_000,
            fail_after_ns: 3_000_000_000,
            failover_exclusion_ns: super::blocked::FIRST_FAILOVER_EXCLUSION_NS,
            max_share: crate::config::DEFAULT_MAX_SHARE,
            max_operator_share: 0.5,
            exploration_share: 0.05,
            bulk_flow_bytes: crate::config::DEFAULT_BULK_FLOW_BYTES,
            load_aware: crate::config::DEFAULT_LOAD_AWARE,
            slot_count: 401,
            window_base: 4,
            grow_after: 8,
            grow_by: 2,
            max_window: 32,
            hop_ids: steerer_common::limits::MAX_HOPS,
            max_destination_windows: steerer_common::limits::MAX_DEST_TABLES as usize,
            destination_slot_count: steerer_common::limits::DEST_SLOT_COUNT,
            group_tolerance_ns: 50_000_000,
            link_hold_down_ns: 10_000_000_000,
            idle_tcp_ns: 1_800 * 1_000_000_000,
            idle_other_ns: 120 * 1_000_000_000,
            closed_tcp_ns: 10 * 1_000_000_000,
            seed: 0,
            probe: None,
        }
    }
}

impl Params {
    /// The class window's largest size: the hop ids (see `hop_ids`) less
    /// a reserve for destination windows and for hops whose flows drain
    /// (1/16 of the ids, at least 1/4 of them up to 32: 960 of 1,024, 224
    /// of 256, 24 of 32); a base window above it is held to it.
    pub fn class_window_cap(&self) -> usize {
        let ids = self.hop_ids as usize;
        let reserve = (ids / 16).max((ids / 4).min(32));
        (ids - reserve).max(1)
    }
}

/// Failed flows in one tick, with no reply on any flow of the hop, that
/// declare a hop disappeared.
pub const SILENT_FAILURES: u64 = 3;
/// A window member slower than this fraction of the window's best is bad
/// (SPEC 5.5) and replaced.
pub const BAD_SPEED_FRACTION: f64 = 0.1;
/// A hop that slow (SPEC 5.5 "bad": low weight, then replaced) weighs this
/// fraction of its speed in every table, while the pool has no better hop
/// to put in its place: a 10 Mbit/s hop next to a 200 Mbit/s one would
/// otherwise take new flows in proportion to its speed and stay full.
pub const SLOW_WEIGHT: f64 = 0.1;
/// A member whose flows fail more than this often (with at least
/// `SILENT_FAILURES` failures) is bad too.
pub const BAD_FAILURE_RATIO: f64 = 0.5;
/// Load (bytes over the whole tick / the hop's best speed within L) of the
/// window's members above which they are saturated and the class window
/// grows fourfold (at least S more) (SPEC is silent on load; an operator
/// expects a full window to widen).
pub const SATURATED_BUSY: f64 = 0.8;
/// ... and below which a grown class window may shrink again.
pub const IDLE_BUSY: f64 = 0.5;
/// Bytes from a hop to a destination in a tick before its per-destination
/// speed is used instead of the global one (SPEC 5.3 "enough data").
pub const DESTINATION_MIN_BYTES: u64 = 64 * 1024;
