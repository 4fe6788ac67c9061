//! Hop table entries: how to send a packet to a hop.

/// The hop may receive new flows and keep old ones.
pub const HOP_ENABLED: u32 = 1;
/// Action `mark` (TC only): set the packet mark and let policy routing
/// (`ip rule fwmark`) send it; without this flag the action is `redirect`.
pub const HOP_ACTION_MARK: u32 = 2;

/// Action parameters of one hop (index = hop id).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HopEntry {
    /// Egress interface; also set in the redirect devmap under the same id.
    pub ifindex: u32,
    /// `HOP_*` flags; an entry without `HOP_ENABLED` is never used.
    pub flags: u32,
    /// Source MAC for the rewritten frame (the egress interface's address).
    pub src_mac: [u8; 6],
    /// Destination MAC: the next hop's address, resolved by the control plane.
    pub dst_mac: [u8; 6],
    /// Packet mark for the TC `mark` action (0: none).
    pub mark: u32,
}

impl HopEntry {
    #[inline(always)]
    pub fn is_enabled(&self) -> bool {
        self.flags & HOP_ENABLED != 0
    }

    #[inline(always)]
    pub fn is_mark(&self) -> bool {
        self.flags & HOP_ACTION_MARK != 0
    }
}

/// Per hop id and per CPU (`HOP_STATS`): what the data plane sent to the
/// hop and what came back on its flows, counted per packet (issue 16:
/// per-hop counters that are cheap to read, not sums over flows). Flows the
/// flood guard steered without an entry count towards their hop's packets
/// out; their replies find no flow and are not counted.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HopCounters {
    pub packets: u64,
    pub bytes: u64,
    pub reply_packets: u64,
    pub reply_bytes: u64,
}
