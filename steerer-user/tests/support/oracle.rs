//! An independent judge of which frames are steerable TCP/UDP packets
//! (etherparse, plus the first-fragment rule of SPEC 4.1 and the IPv4
//! header checksum a router verifies), for tests that feed the XDP program
//! real or random bytes.

use etherparse::{Ipv4HeaderSlice, Ipv6ExtensionSlice, NetSlice, SlicedPacket, TransportSlice};

/// What the oracle knows of a steerable packet.
pub struct Steerable {
    pub ports: (u16, u16),
    pub vlan_tags: usize,
}

pub fn oracle(frame: &[u8]) -> Option<Steerable> {
    let p = SlicedPacket::from_ethernet(frame).ok()?;
    let vlan_tags = match &p.vlan {
        None => 0,
        Some(etherparse::VlanSlice::SingleVlan(_)) => 1,
        Some(etherparse::VlanSlice::DoubleVlan(_)) => 2,
    };
    let (fragmented, first_fragment, payload, proto) = match p.net.as_ref()? {
        NetSlice::Ipv4(ip) => {
            let h = ip.header();
            let s = Ipv4HeaderSlice::from_slice(h.slice()).ok()?;
            if s.to_header().calc_header_checksum() != s.header_checksum() {
                return None;
            }
            (
                ip.is_payload_fragmented(),
                h.fragments_offset().value() == 0,
                ip.payload().payload,
                ip.payload().ip_number.0,
            )
        }
        NetSlice::Ipv6(ip) => {
            let mut first = true;
            for ext in ip.extensions().clone() {
                if let Ipv6ExtensionSlice::Fragment(f) = ext {
                    // RFC 8200: offset is the upper 13 bits of bytes 2-3.
                    let b = f.slice();
                    first &= u16::from_be_bytes([b[2], b[3]]) >> 3 == 0;
                }
            }
            (
                ip.is_payload_fragmented(),
                first,
                ip.payload().payload,
                ip.payload().ip_number.0,
            )
        }
    };
    let ports = if !fragmented {
        match p.transport.as_ref()? {
            TransportSlice::Tcp(t) => (t.source_port(), t.destination_port()),
            TransportSlice::Udp(u) => (u.source_port(), u.destination_port()),
            _ => return None,
        }
    } else {
        // A first fragment carries the transport header in full.
        let need = match proto {
            6 => 20,
            17 => 8,
            _ => return None,
        };
        if !first_fragment || payload.len() < need {
            return None;
        }
        if proto == 6 && payload[12] >> 4 < 5 {
            return None;
        }
        (
            u16::from_be_bytes([payload[0], payload[1]]),
            u16::from_be_bytes([payload[2], payload[3]]),
        )
    };
    Some(Steerable { ports, vlan_tags })
}
