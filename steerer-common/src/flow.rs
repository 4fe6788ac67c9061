//! The flow table's key and value.

/// `FlowKey::family` for IPv4 (addresses are stored in the first 4 bytes).
pub const FAMILY_IPV4: u8 = 4;
/// `FlowKey::family` for IPv6.
pub const FAMILY_IPV6: u8 = 6;

/// IANA protocol numbers the data plane steers.
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;

/// A 5-tuple, IPv4 and IPv6 alike, in the direction client -> destination.
///
/// Ports are stored in host byte order so user space can print them without
/// conversions; addresses stay in network byte order (as on the wire). An
/// IPv4 address occupies the first four bytes and the rest stays zero, so the
/// same key shape (and the same hash input) serves both families.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    pub src_addr: [u8; 16],
    pub dst_addr: [u8; 16],
    pub src_port: u16,
    pub dst_port: u16,
    pub proto: u8,
    pub family: u8,
    pub _pad: [u8; 2],
}

impl FlowKey {
    /// Size in bytes; the keyed hash reads the key as five little-endian u64s.
    pub const SIZE: usize = 40;

    /// The key of the opposite direction (reply traffic).
    #[inline(always)]
    pub fn reversed(&self) -> FlowKey {
        FlowKey {
            src_addr: self.dst_addr,
            dst_addr: self.src_addr,
            src_port: self.dst_port,
            dst_port: self.src_port,
            proto: self.proto,
            family: self.family,
            _pad: [0; 2],
        }
    }

    /// The key as the five 64-bit words the hash consumes.
    #[inline(always)]
    pub fn words(&self) -> [u64; 5] {
        let mut w = [0u64; 5];
        let mut i = 0;
        while i < 2 {
            w[i] = u64::from_le_bytes(word(&self.src_addr, i * 8));
            w[i + 2] = u64::from_le_bytes(word(&self.dst_addr, i * 8));
            i += 1;
        }
        w[4] = (self.src_port as u64)
            | ((self.dst_port as u64) << 16)
            | ((self.proto as u64) << 32)
            | ((self.family as u64) << 40);
        w
    }
}

#[inline(always)]
fn word(b: &[u8; 16], at: usize) -> [u8; 8] {
    [
        b[at],
        b[at + 1],
        b[at + 2],
        b[at + 3],
        b[at + 4],
        b[at + 5],
        b[at + 6],
        b[at + 7],
    ]
}

/// Per-flow state. Counters are updated with atomic adds from every CPU that
/// sees a packet of the flow (XDP on one queue, TC egress on another), so no
/// per-CPU split is needed and user space reads one coherent value.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowValue {
    /// Hop id the flow is pinned to.
    pub hop: u32,
    /// How many times the flow was moved to another hop (fast failover).
    pub failovers: u16,
    /// `TCP_*` bits: the end of a TCP connection seen (FIN either way, RST),
    /// so the control plane expires it soon after instead of after the
    /// idle timeout. (The two bytes were the high half of a `u32`
    /// failover count, always zero: old pins read as "nothing seen".)
    pub tcp_closing: u8,
    pub _pad: u8,
    pub packets: u64,
    pub bytes: u64,
    pub reply_packets: u64,
    pub reply_bytes: u64,
    /// `bpf_ktime_get_coarse_ns` (CLOCK_MONOTONIC, one-jiffy resolution) of
    /// the first packet.
    pub first_seen_ns: u64,
    /// `bpf_ktime_get_coarse_ns` of the latest packet in either direction.
    pub last_seen_ns: u64,
    /// `bpf_ktime_get_coarse_ns` of the latest reply packet (0: none yet).
    pub last_reply_ns: u64,
}

impl FlowValue {
    pub const SIZE: usize = 64;

    /// FIN seen in both directions, or an RST: the connection is over.
    pub fn tcp_closed(&self) -> bool {
        self.tcp_closing & TCP_RST != 0
            || self.tcp_closing & (TCP_FIN_OUT | TCP_FIN_BACK) == TCP_FIN_OUT | TCP_FIN_BACK
    }
}

/// `FlowValue::tcp_closing`: a FIN from the LAN side.
pub const TCP_FIN_OUT: u8 = 1;
/// ... a FIN from the far side (a reply).
pub const TCP_FIN_BACK: u8 = 2;
/// ... an RST either way.
pub const TCP_RST: u8 = 4;

/// TCP header flag bits.
pub const TCP_FLAG_FIN: u8 = 0x01;
pub const TCP_FLAG_RST: u8 = 0x04;

/// The `tcp_closing` bits a packet with TCP flags `flags` adds, sent from
/// the LAN side (`reply` false) or coming back.
#[inline(always)]
pub fn closing_bits(flags: u8, reply: bool) -> u8 {
    let fin = if flags & TCP_FLAG_FIN != 0 {
        if reply {
            TCP_FIN_BACK
        } else {
            TCP_FIN_OUT
        }
    } else {
        0
    };
    let rst = if flags & TCP_FLAG_RST != 0 {
        TCP_RST
    } else {
        0
    };
    fin | rst
}

/// Key of the `LOCAL_ADDRS` map: an address of the gateway itself.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct LocalAddrKey {
    pub addr: [u8; 16],
    pub family: u8,
    pub _pad: [u8; 3],
}

/// Key of the failover counters: a repeated SYN moved a flow off `hop`
/// while it was trying to reach `dest` (SPEC 4.1.5: "the failure is
/// counted against (old hop, destination)"). The control plane reads these
/// as evidence that `hop` blocks that destination.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FailoverKey {
    pub hop: u32,
    pub dest: DestKey,
}

/// A destination (SPEC 2: dst ip, dst port, proto): key of the data
/// plane's destination -> table map, for destinations with a window of
/// their own.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DestKey {
    pub addr: [u8; 16],
    pub port: u16,
    pub proto: u8,
    pub family: u8,
}

impl DestKey {
    #[inline(always)]
    pub fn of(flow: &FlowKey) -> DestKey {
        DestKey {
            addr: flow.dst_addr,
            port: flow.dst_port,
            proto: flow.proto,
            family: flow.family,
        }
    }

    /// A stable 64-bit id, the policy engine's name for it: FNV-1a of the
    /// address, protocol and family in the high 48 bits, the port in the
    /// low 16 (so the port can be read back, [`DestKey::port_of`], without
    /// a map from ids to keys).
    pub fn id(&self) -> u64 {
        let rest = self.addr.iter().copied().chain([self.proto, self.family]);
        (fnv1a(rest) & !0xffff) | self.port as u64
    }

    /// The destination port of an id made by [`DestKey::id`].
    pub fn port_of(id: u64) -> u16 {
        id as u16
    }
}

/// FNV-1a over `bytes`: a stable 64-bit hash (the same across runs and
/// compiler versions, unlike std's `DefaultHasher`), for names and ids
/// that are not secret.
pub fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Longest hop name the `HOP_NAMES` map holds (bytes of UTF-8).
pub const HOP_NAME_MAX: usize = 63;

/// Value of the `HOP_NAMES` map: the name of the hop that owns a hop id,
/// kept next to the pins so that a restarted control plane gives every
/// name the id it had (SPEC 5: a hop is its name, never its position).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HopName {
    /// Bytes used in `bytes`; 0: the id is free.
    pub len: u8,
    pub bytes: [u8; HOP_NAME_MAX],
}

impl Default for HopName {
    fn default() -> Self {
        HopName {
            len: 0,
            bytes: [0; HOP_NAME_MAX],
        }
    }
}

impl HopName {
    /// `None` when `name` is empty or longer than [`HOP_NAME_MAX`].
    pub fn new(name: &str) -> Option<HopName> {
        let b = name.as_bytes();
        if b.is_empty() || b.len() > HOP_NAME_MAX {
            return None;
        }
        let mut out = HopName::default();
        out.bytes[..b.len()].copy_from_slice(b);
        out.len = b.len() as u8;
        Some(out)
    }

    /// The name's bytes (empty for a free id).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..(self.len as usize).min(HOP_NAME_MAX)]
    }
}
