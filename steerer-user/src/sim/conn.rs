//! A simulated connection and its current attempt: the simulator's flow
//! table, and the 5-tuples it gives steerer.

use steerer_common::{
    flow::{DestKey, FAMILY_IPV6, PROTO_TCP},
    FlowKey, FlowValue,
};

use super::MSS;

/// One connection of the workload, and its current attempt.
pub(super) struct Conn {
    pub sender: u32,
    pub destination: u32,
    pub size: u64,
    pub first_start_ns: u64,
    pub attempts: u32,
    /// Current attempt: its id (the flow key's identity), start, hop.
    pub attempt: u64,
    pub attempt_start_ns: u64,
    pub hop: Option<u32>,
    pub received: f64,
    /// Bytes received by earlier, abandoned attempts (transferred again).
    pub wasted: f64,
    /// Whether the flow moves data now (counted in the hop's and the
    /// destination's active flows).
    pub flowing: bool,
    pub answered: bool,
    pub checkpoint_ns: u64,
    pub checkpoint_bytes: f64,
    /// SYN retransmissions so far, and when the next is due.
    pub syn_retries: u32,
    pub next_syn_ns: u64,
    pub failovers: u16,
    pub last_packet_ns: u64,
    /// When the current attempt's first data arrives (after its handshake
    /// and request round trips).
    pub data_from_ns: u64,
    /// Congestion window in slow start, bytes; infinite once the window
    /// no longer limits the flow.
    pub cwnd: f64,
    /// In the current step, what it uses of its hop when that is less than
    /// an equal share (see `transfer`).
    pub held: Option<f64>,
}

impl Conn {
    pub fn key(&self) -> FlowKey {
        flow_key(self.sender, self.destination, self.attempt)
    }
}

/// The 5-tuple of an attempt, IPv6 (documentation prefix) so that every
/// sender and destination number fits: sender 2001:db8::<sender>:<n>,
/// destination 2001:db8:1:<destination>::1 port 443, source port and the
/// source's last word from the attempt number.
pub(super) fn flow_key(sender: u32, destination: u32, attempt: u64) -> FlowKey {
    let mut k = FlowKey {
        family: FAMILY_IPV6,
        proto: PROTO_TCP,
        src_port: 1024 + (attempt % 64_000) as u16,
        dst_port: 443,
        ..FlowKey::default()
    };
    k.src_addr[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
    k.src_addr[8..12].copy_from_slice(&sender.to_be_bytes());
    k.src_addr[12..16].copy_from_slice(&((attempt / 64_000) as u32).to_be_bytes());
    k.dst_addr[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
    k.dst_addr[4..6].copy_from_slice(&[0, 1]);
    k.dst_addr[6..10].copy_from_slice(&destination.to_be_bytes());
    k.dst_addr[15] = 1;
    k
}

/// The destination number a destination key of [`flow_key`] stands for.
pub fn destination_of(dest: &DestKey) -> u32 {
    u32::from_be_bytes([dest.addr[6], dest.addr[7], dest.addr[8], dest.addr[9]])
}

/// What steerer's flow table holds for an attempt at `now`.
pub(super) fn value_of(c: &Conn, hop: u32, request: u64, now: u64) -> FlowValue {
    let last = c.last_packet_ns.min(now);
    FlowValue {
        hop,
        failovers: c.failovers,
        // The model sends no FIN or RST: its flows end by idle expiry.
        tcp_closing: 0,
        _pad: 0,
        packets: 1 + c.syn_retries as u64,
        bytes: request,
        reply_packets: (c.received / MSS).ceil() as u64,
        reply_bytes: c.received as u64,
        first_seen_ns: c.attempt_start_ns,
        last_seen_ns: last,
        last_reply_ns: if c.received > 0.0 { last } else { 0 },
    }
}
