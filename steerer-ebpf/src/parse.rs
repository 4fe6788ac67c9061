//! Header parsing with bounds checks the verifier can follow: every access
//! goes through [`ptr_at`], which compares against `data_end` first.

use core::mem::size_of;

use network_types::{
    eth::EthHdr,
    ip::{Ipv4Hdr, Ipv6Hdr},
    tcp::TcpHdr,
    udp::UdpHdr,
};
use steerer_common::{
    flow::{FAMILY_IPV4, FAMILY_IPV6, PROTO_TCP, PROTO_UDP},
    FlowKey, StatReason,
};

const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
const VLAN_HDR_LEN: usize = 4;
const IPV6_HOP_BY_HOP: u8 = 0;
const IPV6_ROUTING: u8 = 43;
const IPV6_FRAGMENT: u8 = 44;
const IPV6_AUTH: u8 = 51;
const IPV6_DEST_OPTS: u8 = 60;
/// Extension headers walked before giving up (SPEC 4.1: a bounded number).
pub const MAX_IPV6_EXT_HEADERS: usize = 8;
/// Transport headers must start within this many bytes of the frame: it
/// bounds every offset for the verifier and is far beyond real headers.
pub const MAX_L4_OFFSET: usize = 512;
/// Largest TCP header (data offset 15 words).
pub const MAX_TCP_HEADER: usize = 60;

/// What the steering code needs to know about a classified packet.
pub struct Parsed {
    pub key: FlowKey,
    /// Offset of the IP header from the start of the frame.
    pub l3_off: usize,
    pub ttl: u8,
    /// VLAN tags in front of the IP header (0-2); a redirect removes them,
    /// as they belong to the LAN link.
    pub vlan_tags: u8,
    /// TCP flags byte (0 for UDP).
    pub tcp_flags: u8,
}

pub const TCP_SYN: u8 = 0x02;
pub const TCP_ACK: u8 = 0x10;

#[inline(always)]
pub fn ptr_at<T>(data: usize, data_end: usize, off: usize) -> Option<*const T> {
    if data + off + size_of::<T>() > data_end {
        return None;
    }
    Some((data + off) as *const T)
}

#[inline(always)]
pub fn ptr_at_mut<T>(data: usize, data_end: usize, off: usize) -> Option<*mut T> {
    ptr_at::<T>(data, data_end, off).map(|p| p as *mut T)
}

/// Classify a frame. `Err` carries the reason it is passed unsteered.
///
/// `pkt_len` is the whole frame's length; for TC it can exceed the linear
/// `data..data_end` area, which only has to hold the headers.
#[inline(always)]
pub fn parse(data: usize, data_end: usize, pkt_len: usize) -> Result<Parsed, StatReason> {
    let eth: *const EthHdr = ptr_at(data, data_end, 0).ok_or(StatReason::PassTruncated)?;
    let mut ether_type = u16::from_be(unsafe { (*eth).ether_type });
    let mut off = EthHdr::LEN;

    // Up to two VLAN tags (802.1ad outer, 802.1Q inner).
    let mut tags = 0;
    while tags < 2 && (ether_type == ETH_P_8021Q || ether_type == ETH_P_8021AD) {
        let inner: *const [u8; 4] = ptr_at(data, data_end, off).ok_or(StatReason::PassTruncated)?;
        let b = unsafe { *inner };
        ether_type = u16::from_be_bytes([b[2], b[3]]);
        off += VLAN_HDR_LEN;
        tags += 1;
    }

    let ip = match ether_type {
        ETH_P_IP => parse_ipv4(data, data_end, pkt_len, off),
        ETH_P_IPV6 => parse_ipv6(data, data_end, pkt_len, off),
        _ => Err(StatReason::PassNotIp),
    }?;
    // Both families' addresses are read as 32-bit words and chosen word by
    // word: copies of different lengths in two branches were merged byte
    // by byte (a 32-byte select through the stack, some 70 instructions
    // per packet).
    let (src, dst) = if ip.family == FAMILY_IPV4 {
        let addrs: *const [u32; 2] =
            ptr_at(data, data_end, ip.addrs_off).ok_or(StatReason::PassTruncated)?;
        let [src, dst] = unsafe { addrs.read_unaligned() };
        ([src, 0, 0, 0], [dst, 0, 0, 0])
    } else {
        let addrs: *const [[u32; 4]; 2] =
            ptr_at(data, data_end, ip.addrs_off).ok_or(StatReason::PassTruncated)?;
        let [src, dst] = unsafe { addrs.read_unaligned() };
        (src, dst)
    };
    let mut key = FlowKey {
        src_addr: addr_bytes(src),
        dst_addr: addr_bytes(dst),
        family: ip.family,
        proto: ip.proto,
        ..FlowKey::default()
    };
    let tcp_flags = parse_ports(data, data_end, ip.l4_off, ip.l3_end, ip.fragment, &mut key)?;
    Ok(Parsed {
        key,
        l3_off: off,
        ttl: ip.ttl,
        vlan_tags: tags,
        tcp_flags,
    })
}

/// Words as read from the packet back to bytes in wire order.
#[inline(always)]
fn addr_bytes(words: [u32; 4]) -> [u8; 16] {
    // SAFETY: same size, every bit pattern valid.
    unsafe { core::mem::transmute::<[u32; 4], [u8; 16]>(words) }
}

/// What an IP header parser found, for the common tail of `parse`.
struct IpHeader {
    family: u8,
    /// Transport protocol (after IPv6 extension headers).
    proto: u8,
    ttl: u8,
    /// A first fragment: ports present, UDP length describes the datagram.
    fragment: bool,
    /// Offset of the source address, followed by the destination address.
    addrs_off: usize,
    /// Offset of the transport header.
    l4_off: usize,
    /// End of the IP packet by its length fields.
    l3_end: usize,
}

#[inline(always)]
fn parse_ipv4(
    data: usize,
    data_end: usize,
    pkt_len: usize,
    l3_off: usize,
) -> Result<IpHeader, StatReason> {
    let ip: *const Ipv4Hdr = ptr_at(data, data_end, l3_off).ok_or(StatReason::PassTruncated)?;
    let ip = unsafe { &*ip };
    if ip.vihl >> 4 != 4 {
        return Err(StatReason::PassMalformed);
    }
    let ihl = (ip.vihl & 0x0f) as usize;
    if ihl < 5 {
        return Err(StatReason::PassMalformed);
    }
    let frags = u16::from_be_bytes(ip.frags);
    let frag_offset = frags & 0x1fff;
    if frag_offset != 0 {
        return Err(StatReason::PassFragment);
    }
    let tot_len = u16::from_be_bytes(ip.tot_len) as usize;
    // Options (IHL 6-15) are skipped: the ports follow them, and ihl <= 15
    // keeps the offset bounded for the verifier.
    let header_len = ihl * 4;
    if tot_len < header_len || l3_off + tot_len > pkt_len {
        return Err(StatReason::PassTruncated);
    }
    if !ipv4_checksum_ok(data, data_end, l3_off, ihl) {
        return Err(StatReason::PassMalformed);
    }
    Ok(IpHeader {
        family: FAMILY_IPV4,
        proto: ip.proto,
        ttl: ip.ttl,
        // A first fragment (offset 0, more-fragments set) carries the ports
        // and is steered like any packet.
        fragment: frags & 0x2000 != 0,
        addrs_off: l3_off + 12,
        l4_off: l3_off + header_len,
        l3_end: l3_off + tot_len,
    })
}

/// RFC 1071: the one's-complement sum of a valid IPv4 header, checksum
/// included, is 0xffff (in either byte order). The kernel's `ip_rcv` drops
/// a header that fails; steering it instead would carry the corruption onto
/// a hop and a garbled 5-tuple into the flow table.
#[inline(always)]
fn ipv4_checksum_ok(data: usize, data_end: usize, l3_off: usize, ihl: usize) -> bool {
    // IP headers sit at even offsets of the frame, so 16-bit reads align.
    let Some(fixed) = ptr_at::<[u16; 10]>(data, data_end, l3_off) else {
        return false;
    };
    let fixed = unsafe { *fixed };
    let mut sum = 0u32;
    let mut i = 0;
    while i < 10 {
        sum += fixed[i] as u32;
        i += 1;
    }
    // Options: one 32-bit word per IHL above 5, up to ten. Written out
    // word by word: as a loop, LLVM rewrote the bounds check into
    // arithmetic on `data_end`, which the verifier refuses.
    let options = l3_off + 20;
    macro_rules! option_word {
        ($w:literal) => {
            if ihl > 5 + $w {
                match ptr_at::<[u16; 2]>(data, data_end, options + 4 * $w) {
                    Some(p) => {
                        let p = unsafe { *p };
                        sum += p[0] as u32 + p[1] as u32;
                    }
                    None => return false,
                }
            }
        };
    }
    option_word!(0);
    option_word!(1);
    option_word!(2);
    option_word!(3);
    option_word!(4);
    option_word!(5);
    option_word!(6);
    option_word!(7);
    option_word!(8);
    option_word!(9);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum == 0xffff
}

#[inline(always)]
fn parse_ipv6(
    data: usize,
    data_end: usize,
    pkt_len: usize,
    l3_off: usize,
) -> Result<IpHeader, StatReason> {
    let ip: *const Ipv6Hdr = ptr_at(data, data_end, l3_off).ok_or(StatReason::PassTruncated)?;
    let ip = unsafe { &*ip };
    if ip.vcf[0] >> 4 != 6 {
        return Err(StatReason::PassMalformed);
    }
    let payload_len = u16::from_be_bytes(ip.payload_len) as usize;
    if l3_off + Ipv6Hdr::LEN + payload_len > pkt_len {
        return Err(StatReason::PassTruncated);
    }
    let mut next = ip.next_hdr;
    let ttl = ip.hop_limit;
    let mut off = l3_off + Ipv6Hdr::LEN;
    // Walk extension headers up to the transport header. Each step bounds
    // `off` so the verifier sees every packet access stay in range.
    let mut walked = 0;
    let mut fragment = false;
    while next != PROTO_TCP && next != PROTO_UDP {
        if walked == MAX_IPV6_EXT_HEADERS {
            return Err(StatReason::PassIpOptions);
        }
        if off > MAX_L4_OFFSET {
            return Err(StatReason::PassIpOptions);
        }
        let hdr: *const [u8; 8] = ptr_at(data, data_end, off).ok_or(StatReason::PassTruncated)?;
        let hdr = unsafe { *hdr };
        match next {
            IPV6_HOP_BY_HOP | IPV6_ROUTING | IPV6_DEST_OPTS => {
                off += (hdr[1] as usize + 1) * 8;
            }
            IPV6_AUTH => {
                off += (hdr[1] as usize + 2) * 4;
            }
            IPV6_FRAGMENT => {
                let frag_offset = u16::from_be_bytes([hdr[2], hdr[3]]) >> 3;
                if frag_offset != 0 {
                    return Err(StatReason::PassFragment);
                }
                fragment = true;
                off += 8;
            }
            // ESP (encrypted), no-next-header, ICMPv6, anything else.
            _ => return Err(StatReason::PassOtherProto),
        }
        next = hdr[0];
        walked += 1;
    }
    if off > MAX_L4_OFFSET {
        return Err(StatReason::PassIpOptions);
    }
    Ok(IpHeader {
        family: FAMILY_IPV6,
        proto: next,
        ttl,
        fragment,
        addrs_off: l3_off + 8,
        l4_off: off,
        l3_end: l3_off + Ipv6Hdr::LEN + payload_len,
    })
}

/// Fill the ports of `key`; returns the TCP flags (0 for UDP). The transport header must lie inside the IP
/// packet (`l3_end`), not merely inside the frame: a length field that
/// disagrees with the headers makes the packet malformed.
#[inline(always)]
fn parse_ports(
    data: usize,
    data_end: usize,
    l4_off: usize,
    l3_end: usize,
    fragment: bool,
    key: &mut FlowKey,
) -> Result<u8, StatReason> {
    match key.proto {
        PROTO_TCP => {
            let tcp: *const TcpHdr =
                ptr_at(data, data_end, l4_off).ok_or(StatReason::PassTruncated)?;
            let raw: *const [u8; 14] =
                ptr_at(data, data_end, l4_off).ok_or(StatReason::PassTruncated)?;
            let tcp = unsafe { &*tcp };
            // Data offset below 5 words is not a TCP header.
            let doff = (unsafe { (*raw)[12] } >> 4) as usize;
            if doff < 5 {
                return Err(StatReason::PassMalformed);
            }
            if l4_off + doff * 4 > l3_end {
                return Err(StatReason::PassTruncated);
            }
            key.src_port = u16::from_be_bytes(tcp.source);
            key.dst_port = u16::from_be_bytes(tcp.dest);
            Ok(unsafe { (*raw)[13] })
        }
        PROTO_UDP => {
            let udp: *const UdpHdr =
                ptr_at(data, data_end, l4_off).ok_or(StatReason::PassTruncated)?;
            let udp = unsafe { &*udp };
            if l4_off + UdpHdr::LEN > l3_end {
                return Err(StatReason::PassTruncated);
            }
            // A whole datagram's length must match its IP packet; a first
            // fragment's describes the reassembled datagram instead.
            let udp_len = u16::from_be_bytes(udp.len) as usize;
            if !fragment && (udp_len < UdpHdr::LEN || l4_off + udp_len > l3_end) {
                return Err(StatReason::PassMalformed);
            }
            key.src_port = u16::from_be_bytes(udp.src);
            key.dst_port = u16::from_be_bytes(udp.dst);
            Ok(0)
        }
        _ => Err(StatReason::PassOtherProto),
    }
}

/// Addresses the gateway must never steer: multicast, broadcast, link-local,
/// loopback, unspecified.
#[inline(always)]
pub fn is_special_destination(key: &FlowKey) -> bool {
    if key.family == FAMILY_IPV4 {
        let a = key.dst_addr[0];
        a >= 224 || a == 0 || a == 127
    } else {
        let a = key.dst_addr[0];
        let b = key.dst_addr[1];
        if a == 0xff || (a == 0xfe && (b & 0xc0) == 0x80) {
            return true;
        }
        // :: and ::1 (unspecified, loopback): never valid on a wire.
        let mut high = 0u8;
        let mut i = 0;
        while i < 15 {
            high |= key.dst_addr[i];
            i += 1;
        }
        high == 0 && key.dst_addr[15] <= 1
    }
}
