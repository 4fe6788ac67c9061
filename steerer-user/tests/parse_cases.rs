//! BPF_PROG_TEST_RUN of every parse case of SPEC 4.1 beyond plain
//! Ethernet/IP: VLAN tags, IPv6 extension headers, fragments. Each case
//! checks the verdict, the exact output bytes and the flow table.

mod support;

use etherparse::Ipv4Header;
use steerer_common::StatReason;
use support::*;

const TPID_8021Q: u16 = 0x8100;
const TPID_8021AD: u16 = 0x88a8;

/// What a redirect must make of an untagged IPv4 frame: hop MACs, TTL - 1,
/// header checksum valid, everything else as it was.
fn expected_v4_redirect(untagged: &[u8]) -> Vec<u8> {
    let mut out = untagged.to_vec();
    out[0..6].copy_from_slice(&HOP_DST_MAC);
    out[6..12].copy_from_slice(&HOP_SRC_MAC);
    let (mut ip, _) = Ipv4Header::from_slice(&out[14..]).unwrap();
    ip.time_to_live -= 1;
    ip.header_checksum = ip.calc_header_checksum();
    let hdr = ip.to_bytes();
    out[14..14 + hdr.len()].copy_from_slice(&hdr);
    out
}

fn expected_v6_redirect(untagged: &[u8]) -> Vec<u8> {
    let mut out = untagged.to_vec();
    out[0..6].copy_from_slice(&HOP_DST_MAC);
    out[6..12].copy_from_slice(&HOP_SRC_MAC);
    out[14 + 7] -= 1;
    out
}

fn assert_redirected(t: &TestDataplane, pkt: &[u8], expected: &[u8], ports: (u16, u16)) {
    let o = run_xdp(t, pkt);
    assert_eq!(o.verdict, XDP_REDIRECT, "verdict");
    assert_eq!(o.out, expected, "output bytes");
    let flows = t.dp.flows().unwrap();
    assert_eq!(flows.len(), 1, "one flow");
    assert_eq!((flows[0].0.src_port, flows[0].0.dst_port), ports);
}

#[test]
fn single_vlan_tag_is_parsed_and_removed_on_redirect() {
    let t = TestDataplane::new(true);
    let plain = tcp_v4([198, 18, 0, 2], [198, 19, 0, 2], 40001, 443, 64, b"x");
    let tagged = with_vlan(&plain, &[TPID_8021Q]);
    assert_redirected(&t, &tagged, &expected_v4_redirect(&plain), (40001, 443));
}

#[test]
fn qinq_tags_are_parsed_and_removed_on_redirect() {
    let t = TestDataplane::new(true);
    let plain = tcp_v6(40002, 443);
    let tagged = with_vlan(&plain, &[TPID_8021AD, TPID_8021Q]);
    assert_redirected(&t, &tagged, &expected_v6_redirect(&plain), (40002, 443));
}

#[test]
fn three_vlan_tags_pass_unchanged() {
    let t = TestDataplane::new(true);
    let plain = tcp_v4([198, 18, 0, 2], [198, 19, 0, 2], 40003, 443, 64, b"x");
    let tagged = with_vlan(&plain, &[TPID_8021AD, TPID_8021Q, TPID_8021Q]);
    assert_passed_unchanged(&t, &tagged, StatReason::PassNotIp);
}

#[test]
fn ipv6_extension_headers_are_walked_to_the_ports() {
    let t = TestDataplane::new(true);
    let base = tcp_v6(40004, 8443);
    let pkt = with_v6_ext(
        &base,
        &[
            opts_header(0),
            (43, vec![0, 0, 0, 0, 0, 0, 0, 0]),
            opts_header(60),
        ],
    );
    assert_redirected(&t, &pkt, &expected_v6_redirect(&pkt), (40004, 8443));
}

#[test]
fn eight_extension_headers_are_walked_nine_are_passed() {
    let t = TestDataplane::new(true);
    let base = tcp_v6(40005, 443);
    let eight = with_v6_ext(&base, &vec![opts_header(60); 8]);
    assert_redirected(&t, &eight, &expected_v6_redirect(&eight), (40005, 443));

    let t = TestDataplane::new(true);
    let nine = with_v6_ext(&base, &vec![opts_header(60); 9]);
    assert_passed_unchanged(&t, &nine, StatReason::PassIpOptions);
}

#[test]
fn ipv6_first_fragment_is_steered_by_its_ports() {
    let t = TestDataplane::new(true);
    let base = udp_v6(v6(2), v6(0x99), 5000, 53, 64, b"first part");
    let pkt = with_v6_ext(&base, &[fragment_header(0, true)]);
    assert_redirected(&t, &pkt, &expected_v6_redirect(&pkt), (5000, 53));
}

#[test]
fn ipv6_non_first_fragment_passes_unchanged() {
    let t = TestDataplane::new(true);
    let base = udp_v6(v6(2), v6(0x99), 5000, 53, 64, b"later part");
    let pkt = with_v6_ext(&base, &[fragment_header(185, false)]);
    assert_passed_unchanged(&t, &pkt, StatReason::PassFragment);
}

#[test]
fn ipv6_esp_and_truncated_extension_header_pass_unchanged() {
    let t = TestDataplane::new(true);
    let base = tcp_v6(40006, 443);
    let mut esp = base.clone();
    esp[14 + 6] = 50;
    assert_passed_unchanged(&t, &esp, StatReason::PassOtherProto);

    // A hop-by-hop header claiming 256 bytes in a short packet.
    let mut long = with_v6_ext(&base, &[opts_header(0)]);
    long[14 + 40 + 1] = 31;
    assert_passed_unchanged(&t, &long, StatReason::PassTruncated);
}

fn v4_with_frag(frag_field: u16) -> Vec<u8> {
    let mut pkt = tcp_v4([198, 18, 0, 2], [198, 19, 0, 2], 40007, 443, 64, b"frag");
    let (mut ip, _) = Ipv4Header::from_slice(&pkt[14..]).unwrap();
    ip.more_fragments = frag_field & 0x2000 != 0;
    ip.dont_fragment = false;
    ip.fragment_offset = (frag_field & 0x1fff).try_into().unwrap();
    ip.header_checksum = ip.calc_header_checksum();
    let hdr = ip.to_bytes();
    pkt[14..14 + hdr.len()].copy_from_slice(&hdr);
    pkt
}

#[test]
fn ipv4_first_fragment_is_steered_and_later_ones_pass() {
    let t = TestDataplane::new(true);
    let first = v4_with_frag(0x2000);
    assert_redirected(&t, &first, &expected_v4_redirect(&first), (40007, 443));

    let t = TestDataplane::new(true);
    let later = v4_with_frag(0x2000 | 20);
    assert_passed_unchanged(&t, &later, StatReason::PassFragment);
}
