//! Every packet of every capture in `../shared/data/pcap/` (real edge
//! cases: VLANs, IPv6 extension headers, fragments, truncation, tunnels,
//! malformed headers) through the XDP program under BPF_PROG_TEST_RUN.
//!
//! Invariants, checked per packet against an independent parser
//! (etherparse):
//! * a packet the oracle does not call a steerable TCP/UDP packet is never
//!   rewritten or redirected and creates no flow;
//! * a passed packet comes out byte for byte unchanged;
//! * a redirected packet is exactly the input with VLAN tags removed, hop
//!   MACs, TTL / hop limit - 1 and (IPv4) a correct checksum, and its flow
//!   has the oracle's ports.
//!
//! Non-Ethernet captures (PPP, Cisco HDLC, Linux SLL2, raw IPv4/IPv6) are
//! given an Ethernet header carrying their protocol, so their packets test
//! the parser too. The test prints the packets per stats reason.

mod support;

use std::{collections::BTreeMap, path::PathBuf};

use etherparse::{Ipv4HeaderSlice, SlicedPacket};
use pcap_file::{pcap::PcapReader, DataLink};
use steerer_common::StatReason;
use support::{oracle::oracle, *};

fn pcap_dir() -> PathBuf {
    support::shared_data::shared_data("pcap")
}

fn ethernet(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&GW_LAN_MAC);
    f.extend_from_slice(&CLIENT_MAC);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// The capture's packet as an Ethernet frame.
fn to_ethernet(link: DataLink, data: &[u8]) -> Option<Vec<u8>> {
    let ip_type = |d: &[u8]| match d.first().map(|b| b >> 4) {
        Some(6) => 0x86dd,
        _ => 0x0800,
    };
    let ppp_proto = |p: u16| match p {
        0x0021 => 0x0800,
        0x0057 => 0x86dd,
        other => other,
    };
    match link {
        DataLink::ETHERNET => Some(data.to_vec()),
        DataLink::RAW | DataLink::IPV4 | DataLink::IPV6 => Some(ethernet(ip_type(data), data)),
        DataLink::LINUX_SLL2 if data.len() >= 20 => Some(ethernet(
            u16::from_be_bytes([data[0], data[1]]),
            &data[20..],
        )),
        DataLink::PPP if data.len() >= 4 => Some(ethernet(
            ppp_proto(u16::from_be_bytes([data[2], data[3]])),
            &data[4..],
        )),
        DataLink::C_HDLC if data.len() >= 4 => {
            Some(ethernet(u16::from_be_bytes([data[2], data[3]]), &data[4..]))
        }
        _ => None,
    }
}

fn all_stats(t: &TestDataplane) -> BTreeMap<&'static str, u64> {
    t.dp.stats()
        .unwrap()
        .into_iter()
        .map(|(r, v)| (r.name(), v))
        .collect()
}

#[test]
fn every_captured_packet_is_steered_correctly_or_passed_unchanged() {
    let dir = pcap_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 50,
        "expected the shared captures in {}",
        dir.display()
    );

    let mut totals: BTreeMap<&'static str, u64> = BTreeMap::new();
    let (mut packets, mut redirected) = (0u64, 0u64);
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let mut reader = PcapReader::new(std::fs::File::open(file).unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let link = reader.header().datalink;
        // A fresh data plane per capture: flows of one do not hide another's.
        let t = TestDataplane::new(true);
        let before = all_stats(&t);
        let mut index = 0;
        while let Some(pkt) = reader.next_packet() {
            let pkt = pkt.unwrap_or_else(|e| panic!("{name}: {e}"));
            index += 1;
            let frame = to_ethernet(link, &pkt.data)
                .unwrap_or_else(|| panic!("{name}: link type {link:?} not handled"));
            if frame.len() < 14 {
                continue; // BPF_PROG_TEST_RUN refuses frames shorter than Ethernet.
            }
            packets += 1;
            let new_flows = stat(&t, StatReason::NewFlow);
            let o = run_xdp(&t, &frame);
            let created = stat(&t, StatReason::NewFlow) - new_flows;
            let truth = oracle(&frame);
            let at = format!("{name} packet {index}");
            match o.verdict {
                XDP_PASS => {
                    assert_eq!(o.out, frame, "{at}: passed packet was modified");
                    assert_eq!(created, 0, "{at}: passed packet created a flow");
                }
                XDP_REDIRECT => {
                    redirected += 1;
                    let s = truth.unwrap_or_else(|| {
                        panic!(
                            "{at}: redirected a packet that is not steerable TCP/UDP: {:?}",
                            SlicedPacket::from_ethernet(&frame).map(|p| (p.vlan, p.net))
                        )
                    });
                    let tags = s.vlan_tags * 4;
                    let mut want = frame.clone();
                    want.drain(12..12 + tags);
                    assert_eq!(o.out.len(), want.len(), "{at}: length");
                    assert_eq!(&o.out[0..6], &HOP_DST_MAC, "{at}");
                    assert_eq!(&o.out[6..12], &HOP_SRC_MAC, "{at}");
                    let ethertype = u16::from_be_bytes([want[12], want[13]]);
                    if ethertype == 0x0800 {
                        assert_eq!(o.out[14 + 8], want[14 + 8] - 1, "{at}: TTL");
                        let h = Ipv4HeaderSlice::from_slice(&o.out[14..]).unwrap();
                        assert_eq!(
                            h.header_checksum(),
                            h.to_header().calc_header_checksum(),
                            "{at}: IPv4 checksum"
                        );
                        // Version .. fragment field, protocol, then from the
                        // addresses on: unchanged.
                        assert_eq!(&o.out[12..22], &want[12..22], "{at}");
                        assert_eq!(o.out[23], want[23], "{at}: protocol");
                        assert_eq!(&o.out[26..], &want[26..], "{at}: after the checksum");
                    } else {
                        assert_eq!(o.out[14 + 7], want[14 + 7] - 1, "{at}: hop limit");
                        assert_eq!(&o.out[12..21], &want[12..21], "{at}");
                        assert_eq!(&o.out[22..], &want[22..], "{at}");
                    }
                    let flow =
                        t.dp.flows()
                            .unwrap()
                            .into_iter()
                            .find(|(k, _)| (k.src_port, k.dst_port) == s.ports);
                    assert!(flow.is_some(), "{at}: no flow with ports {:?}", s.ports);
                }
                other => panic!("{at}: verdict {other}"),
            }
        }
        let after = all_stats(&t);
        for (reason, v) in after {
            let d = v - before.get(reason).copied().unwrap_or(0);
            if d > 0 {
                *totals.entry(reason).or_default() += d;
            }
        }
    }
    println!(
        "{} captures, {packets} packets, {redirected} redirected",
        files.len()
    );
    println!("packets per reason:");
    for (reason, n) in &totals {
        println!("  {reason:<22} {n}");
    }
    let passed: u64 = totals
        .iter()
        .filter(|(r, _)| r.starts_with("pass_"))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(
        passed + totals.get("new_flow").unwrap_or(&0) + totals.get("established").unwrap_or(&0),
        packets,
        "every packet is counted under exactly one reason"
    );
    assert!(
        redirected > 0 && passed > 0,
        "the captures exercise both paths"
    );
}
