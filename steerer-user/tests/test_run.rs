//! BPF_PROG_TEST_RUN of the real programs on hand-built packets: expected
//! verdict, expected output bytes, expected map effects.

mod support;

use etherparse::{Ipv4Header, NetSlice, SlicedPacket, TransportSlice};
use steerer_common::{flow::FAMILY_IPV4, FlowKey, HopEntry, StatReason};
use steerer_user::monotonic_ns;
use support::*;

#[test]
fn arp_frame_passes_unchanged() {
    let t = TestDataplane::new(true);
    let mut arp = Vec::new();
    arp.extend_from_slice(&[0xff; 6]);
    arp.extend_from_slice(&CLIENT_MAC);
    arp.extend_from_slice(&[0x08, 0x06]);
    // Request: who has 198.18.0.1, tell 198.18.0.2.
    arp.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    arp.extend_from_slice(&CLIENT_MAC);
    arp.extend_from_slice(&[198, 18, 0, 2]);
    arp.extend_from_slice(&[0; 6]);
    arp.extend_from_slice(&[198, 18, 0, 1]);
    assert_passed_unchanged(&t, &arp, StatReason::PassNotIp);
}

#[test]
fn truncated_ipv4_header_passes_unchanged() {
    let t = TestDataplane::new(true);
    let full = tcp_v4([198, 18, 0, 2], [198, 19, 0, 2], 40000, 80, 64, b"");
    // Ethernet + 12 of the 20 IPv4 header bytes.
    let cut = &full[..14 + 12];
    assert_passed_unchanged(&t, cut, StatReason::PassTruncated);
}

/// An IPv4 packet with `options` (a multiple of 4 bytes) in its header,
/// carrying a bare TCP header to port 80.
fn tcp_v4_with_options(options: &[u8], ttl: u8) -> Vec<u8> {
    let mut ip = Ipv4Header::new(
        20,
        ttl,
        etherparse::IpNumber::TCP,
        [198, 18, 0, 2],
        [198, 19, 0, 2],
    )
    .unwrap();
    ip.options = options.try_into().unwrap();
    ip.total_len = (ip.header_len() + 20) as u16;
    ip.header_checksum = ip.calc_header_checksum();
    let mut pkt = Vec::new();
    pkt.extend_from_slice(&GW_LAN_MAC);
    pkt.extend_from_slice(&CLIENT_MAC);
    pkt.extend_from_slice(&[0x08, 0x00]);
    ip.write(&mut pkt).unwrap();
    etherparse::TcpHeader::new(40000, 80, 1, 65535)
        .write(&mut pkt)
        .unwrap();
    pkt
}

#[test]
fn ipv4_with_options_is_steered_by_the_ports_after_them() {
    // SPEC 4.1: IPv4 with any IHL. Router alert padded to 4 bytes (IHL 6),
    // and the largest header: 40 bytes of options (IHL 15).
    let router_alert = [0x94, 0x04, 0x00, 0x00];
    let mut longest = [0x01u8; 40]; // NOPs...
    longest[39] = 0x00; // ...then end of options.
    for (options, ihl) in [(&router_alert[..], 6u8), (&longest[..], 15)] {
        let t = TestDataplane::new(true);
        let pkt = tcp_v4_with_options(options, 64);
        assert_eq!(pkt[14] & 0x0f, ihl);
        let o = run_xdp(&t, &pkt);
        assert_eq!(o.verdict, XDP_REDIRECT, "IHL {ihl}");
        // Expected bytes: the same packet built with TTL 63 (and so its own
        // checksum), behind the hop's MACs.
        let mut want = tcp_v4_with_options(options, 63);
        want[0..6].copy_from_slice(&HOP_DST_MAC);
        want[6..12].copy_from_slice(&HOP_SRC_MAC);
        assert_eq!(o.out, want, "IHL {ihl}: output bytes");
        let flows = t.dp.flows().unwrap();
        assert_eq!(flows.len(), 1);
        assert_eq!((flows[0].0.src_port, flows[0].0.dst_port), (40000, 80));
    }
}

/// A header whose checksum does not add up is what a router drops: passed
/// to the kernel unchanged (which drops and counts it), counted as
/// malformed, no flow. Checked for a byte flipped in the fixed header, in
/// the checksum itself, and in an option word (the sum covers options).
#[test]
fn ipv4_header_with_a_wrong_checksum_passes_unchanged() {
    let t = TestDataplane::new(true);
    let good = tcp_v4([198, 18, 0, 2], [198, 19, 0, 2], 40000, 80, 64, b"x");
    for at in [14 + 1, 14 + 10, 14 + 15] {
        let mut pkt = good.clone();
        pkt[at] ^= 0x40;
        assert_passed_unchanged(&t, &pkt, StatReason::PassMalformed);
    }
    let mut opts = tcp_v4_with_options(&[0x94, 0x04, 0x00, 0x00], 64);
    opts[14 + 22] ^= 0x01;
    assert_passed_unchanged(&t, &opts, StatReason::PassMalformed);
    // The same packets intact are steered.
    assert_eq!(run_xdp(&t, &good).verdict, XDP_REDIRECT);
    let intact = tcp_v4_with_options(&[0x94, 0x04, 0x00, 0x00], 64);
    assert_eq!(run_xdp(&t, &intact).verdict, XDP_REDIRECT);
}

#[test]
fn ipv4_total_length_shorter_than_its_header_passes_unchanged() {
    let t = TestDataplane::new(true);
    let mut pkt = tcp_v4_with_options(&[0x01; 8], 64);
    // Total length 24 < IHL 7 x 4 = 28: the header claims more than the packet.
    pkt[16..18].copy_from_slice(&24u16.to_be_bytes());
    assert_passed_unchanged(&t, &pkt, StatReason::PassTruncated);
}

#[test]
fn tcp_v4_new_flow_is_redirected_with_rewritten_headers() {
    let t = TestDataplane::new(true);
    let pkt = tcp_v4([198, 18, 0, 2], [198, 19, 0, 2], 40000, 80, 64, b"hello");
    let o = run_xdp(&t, &pkt);
    assert_eq!(o.verdict, XDP_REDIRECT);
    assert_eq!(o.out.len(), pkt.len());
    assert_eq!(&o.out[0..6], &HOP_DST_MAC, "destination MAC = next hop");
    assert_eq!(&o.out[6..12], &HOP_SRC_MAC, "source MAC = egress interface");
    let sliced = SlicedPacket::from_ethernet(&o.out).unwrap();
    let Some(NetSlice::Ipv4(ip)) = sliced.net else {
        panic!("not ipv4")
    };
    let h = ip.header().to_header();
    assert_eq!(h.time_to_live, 63);
    assert_eq!(
        h.header_checksum,
        h.calc_header_checksum(),
        "IPv4 checksum recomputed"
    );
    // Everything after the IP header is untouched.
    assert_eq!(&o.out[34..], &pkt[34..]);

    let flows = t.dp.flows().unwrap();
    assert_eq!(flows.len(), 1);
    let (k, v) = flows[0];
    assert_eq!(k.family, FAMILY_IPV4);
    assert_eq!((k.src_port, k.dst_port, k.proto), (40000, 80, 6));
    assert_eq!(&k.dst_addr[..4], &[198, 19, 0, 2]);
    assert_eq!(v.hop, 0);
    assert_eq!(v.packets, 1);
    assert_eq!(v.bytes, pkt.len() as u64);
    assert!(v.first_seen_ns > 0 && v.first_seen_ns == v.last_seen_ns);

    // Second packet of the same flow: same hop, counters add up.
    let o2 = run_xdp(&t, &pkt);
    assert_eq!(o2.verdict, XDP_REDIRECT);
    let v2 = t.dp.flows().unwrap()[0].1;
    assert_eq!(v2.packets, 2);
    assert_eq!(v2.bytes, 2 * pkt.len() as u64);
    assert_eq!(stat(&t, StatReason::NewFlow), 1);
    assert_eq!(stat(&t, StatReason::Established), 1);
}

#[test]
fn checksum_carry_case_is_correct() {
    // Sweep TTLs and addresses so the incremental update meets the carry
    // and 0xffff corner cases at least once.
    let t = TestDataplane::new(true);
    for i in 0..300u32 {
        let ttl = 2 + (i % 250) as u8;
        let pkt = tcp_v4(
            [198, 18, (i >> 8) as u8, i as u8],
            [198, 19, 0, 2],
            1000 + i as u16,
            443,
            ttl,
            b"",
        );
        let o = run_xdp(&t, &pkt);
        assert_eq!(o.verdict, XDP_REDIRECT);
        let ip = Ipv4Header::from_slice(&o.out[14..]).unwrap().0;
        assert_eq!(ip.time_to_live, ttl - 1);
        assert_eq!(
            ip.header_checksum,
            ip.calc_header_checksum(),
            "ttl {ttl} i {i}"
        );
    }
}

#[test]
fn udp_v6_new_flow_is_redirected_with_hop_limit_decremented() {
    let t = TestDataplane::new(true);
    let pkt = udp_v6(v6(2), v6(0x99), 5353, 53, 64, b"query");
    let o = run_xdp(&t, &pkt);
    assert_eq!(o.verdict, XDP_REDIRECT);
    assert_eq!(&o.out[0..6], &HOP_DST_MAC);
    assert_eq!(&o.out[6..12], &HOP_SRC_MAC);
    assert_eq!(o.out[14 + 7], 63, "hop limit");
    assert_eq!(&o.out[14 + 8..], &pkt[14 + 8..], "rest unchanged");
    let sliced = SlicedPacket::from_ethernet(&o.out).unwrap();
    assert!(matches!(sliced.transport, Some(TransportSlice::Udp(_))));
    let (k, _) = t.dp.flows().unwrap()[0];
    assert_eq!(k.family, 6);
    assert_eq!(k.dst_addr, v6(0x99));
}

#[test]
fn ttl_one_passes_to_the_kernel() {
    let t = TestDataplane::new(true);
    let pkt = tcp_v4([198, 18, 0, 2], [198, 19, 0, 2], 40000, 80, 1, b"");
    assert_passed_unchanged(&t, &pkt, StatReason::PassTtl);
}

#[test]
fn nothing_is_steered_before_the_control_plane_is_ready() {
    let t = TestDataplane::new(false);
    let pkt = tcp_v4([198, 18, 0, 2], [198, 19, 0, 2], 40000, 80, 64, b"");
    assert_passed_unchanged(&t, &pkt, StatReason::PassNotReady);
}

#[test]
fn disabled_hop_is_never_used() {
    let mut t = TestDataplane::new(true);
    t.dp.set_hop(
        0,
        &HopEntry {
            ifindex: 1,
            ..HopEntry::default()
        },
    )
    .unwrap();
    let pkt = tcp_v4([198, 18, 0, 2], [198, 19, 0, 2], 40000, 80, 64, b"");
    assert_passed_unchanged(&t, &pkt, StatReason::PassNoHop);
}

#[test]
fn local_and_multicast_destinations_are_not_steered() {
    let mut t = TestDataplane::new(true);
    let mut local = steerer_common::flow::LocalAddrKey::default();
    local.addr[..4].copy_from_slice(&[198, 18, 0, 1]);
    local.family = FAMILY_IPV4;
    t.dp.set_local_addrs(&[local]).unwrap();
    let to_gw = tcp_v4([198, 18, 0, 2], [198, 18, 0, 1], 40000, 22, 64, b"");
    assert_passed_unchanged(&t, &to_gw, StatReason::PassLocal);
    let mcast = tcp_v4([198, 18, 0, 2], [239, 1, 1, 1], 40000, 22, 64, b"");
    assert_passed_unchanged(&t, &mcast, StatReason::PassLocal);
    let mut loopback6 = [0u8; 16];
    loopback6[15] = 1;
    let lo6 = udp_v6(v6(2), loopback6, 5000, 53, 64, b"");
    assert_passed_unchanged(&t, &lo6, StatReason::PassLocal);
    let unspecified6 = udp_v6(v6(2), [0u8; 16], 5000, 53, 64, b"");
    assert_passed_unchanged(&t, &unspecified6, StatReason::PassLocal);
    let link_local6 = udp_v6(
        v6(2),
        [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5],
        5000,
        53,
        64,
        b"",
    );
    assert_passed_unchanged(&t, &link_local6, StatReason::PassLocal);
}

#[test]
fn slot_choice_is_the_keyed_hash_of_the_tuple() {
    // Two hops, alternating slots: the hop the kernel picks must be the one
    // user space predicts with the same key.
    let mut t = TestDataplane::new(true);
    enable_second_hop(&mut t);
    let table: Vec<u32> = (0..SLOTS).map(|i| i % 2).collect();
    t.dp.write_slots(0, &table, None).unwrap();
    let mut seen = [0; 2];
    for port in 1000..1100u16 {
        let pkt = tcp_v4([198, 18, 0, 2], [198, 19, 0, 2], port, 80, 64, b"");
        assert_eq!(run_xdp(&t, &pkt).verdict, XDP_REDIRECT);
    }
    for (k, v) in t.dp.flows().unwrap() {
        let expect =
            table[(steerer_common::siphash::flow_hash(&HASH_KEY, &k) % SLOTS as u64) as usize];
        assert_eq!(v.hop, expect, "flow {k:?}");
        seen[v.hop as usize] += 1;
    }
    assert!(seen[0] > 20 && seen[1] > 20, "both hops used: {seen:?}");
}

#[test]
fn tc_program_accounts_replies_to_the_reversed_flow() {
    let t = TestDataplane::new(true);
    let fwd = tcp_v4([198, 18, 0, 2], [198, 19, 0, 2], 40000, 80, 64, b"request");
    assert_eq!(run_xdp(&t, &fwd).verdict, XDP_REDIRECT);
    let reply = tcp_v4(
        [198, 19, 0, 2],
        [198, 18, 0, 2],
        80,
        40000,
        60,
        b"response!",
    );
    let o = run_tc_reply(&t, &reply);
    assert_eq!(o.verdict, 0, "TC_ACT_OK");
    assert_eq!(o.out, reply, "reply bytes unchanged");
    let flows = t.dp.flows().unwrap();
    assert_eq!(flows.len(), 1, "no entry created for the reply direction");
    let v = flows[0].1;
    assert_eq!(v.reply_packets, 1);
    assert_eq!(v.reply_bytes, reply.len() as u64);
    assert!(v.last_reply_ns >= v.first_seen_ns);
}

#[test]
fn port_sets_select_their_own_slot_table() {
    let mut t = TestDataplane::new(true);
    enable_second_hop(&mut t);
    // Set 1 = {443, 8443}, served by hop 1 only; everything else by hop 0.
    let mut sets = vec![0u8; 65536];
    sets[443] = 1;
    sets[8443] = 1;
    t.dp.set_port_sets(&sets, None).unwrap();
    t.dp.write_slots(1, &vec![1; SLOTS as usize], None).unwrap();
    for (port, want) in [(443u16, 1u32), (8443, 1), (80, 0), (444, 0)] {
        let pkt = tcp_v4(
            [198, 18, 0, 2],
            [198, 19, 0, 2],
            40000 + port,
            port,
            64,
            b"",
        );
        assert_eq!(run_xdp(&t, &pkt).verdict, XDP_REDIRECT);
        let hop =
            t.dp.flows()
                .unwrap()
                .into_iter()
                .find(|(k, _)| k.dst_port == port)
                .unwrap()
                .1
                .hop;
        assert_eq!(hop, want, "port {port}");
    }
    // A set whose table has no hop passes its flows unsteered, counted.
    sets[22] = 2;
    t.dp.set_port_sets(&sets, None).unwrap();
    t.dp.write_slots(
        2,
        &vec![steerer_common::limits::NO_HOP; SLOTS as usize],
        None,
    )
    .unwrap();
    let ssh = tcp_v4([198, 18, 0, 2], [198, 19, 0, 2], 40022, 22, 64, b"");
    assert_passed_unchanged(&t, &ssh, StatReason::PassNoHop);
    assert!(
        t.dp.set_port_sets(&vec![40u8; 65536], None).is_err(),
        "set beyond the tables"
    );
}

/// A pin directory of this test process for `tag`, with any leftovers of
/// an earlier run removed.
fn scratch_pin_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::path::PathBuf::from(format!(
        "/sys/fs/bpf/steerer-test-{tag}-{}",
        std::process::id()
    ));
    let _ = steerer_user::dataplane::remove_pins(&dir);
    dir
}

#[test]
fn a_failed_first_load_leaves_no_pins() {
    require_root();
    let dir = scratch_pin_dir("fail");
    // A flow table of 0 entries cannot be created.
    let r = steerer_user::dataplane::Dataplane::load(&dir, Some(0));
    assert!(r.is_err(), "a 0-entry flow table must be refused");
    assert!(!dir.exists(), "the pin directory it created is gone again");
}

#[test]
fn a_destination_table_overrides_the_port_set_table() {
    // SPEC 5.4 in the data plane: a destination with a window of its own
    // is steered from its own table; other destinations, and the same one
    // once its table is removed, from their port set's.
    use steerer_common::{flow::DestKey, limits::DEST_SLOT_COUNT};
    let mut t = TestDataplane::new(true);
    enable_second_hop(&mut t);
    let busy = tcp_v4([198, 18, 0, 2], [198, 19, 0, 7], 40000, 443, 64, b"");
    let other = tcp_v4([198, 18, 0, 2], [198, 19, 0, 8], 40000, 443, 64, b"");
    let key = |pkt: &[u8]| {
        let mut k = FlowKey {
            family: FAMILY_IPV4,
            proto: 6,
            src_port: 40000,
            dst_port: 443,
            ..FlowKey::default()
        };
        k.src_addr[..4].copy_from_slice(&pkt[26..30]);
        k.dst_addr[..4].copy_from_slice(&pkt[30..34]);
        k
    };
    let dest = DestKey::of(&key(&busy));
    t.dp.set_destination_table(&dest, 3, &vec![1; DEST_SLOT_COUNT as usize], None)
        .unwrap();
    assert_eq!(
        run_xdp(&t, &busy).out[0..6],
        HOP1_DST_MAC,
        "its own table: hop 1"
    );
    assert_eq!(
        run_xdp(&t, &other).out[0..6],
        HOP_DST_MAC,
        "port set table: hop 0"
    );
    let hop_of = |k: &FlowKey| {
        t.dp.flows()
            .unwrap()
            .into_iter()
            .find(|(f, _)| f == k)
            .map(|(_, v)| v.hop)
    };
    assert_eq!(hop_of(&key(&busy)), Some(1));
    assert_eq!(hop_of(&key(&other)), Some(0));
    assert_eq!(t.dp.destinations().unwrap(), vec![(dest, 3)]);

    // Removed: a new flow to it (another source port) uses the set's table.
    t.dp.remove_destination(&dest).unwrap();
    let again = tcp_v4([198, 18, 0, 2], [198, 19, 0, 7], 40001, 443, 64, b"");
    assert_eq!(run_xdp(&t, &again).out[0..6], HOP_DST_MAC);
    assert!(t.dp.destinations().unwrap().is_empty());
}

/// Flow times are CLOCK_MONOTONIC as the control plane reads it, and they
/// move: the data plane reads a coarse clock through a per-jiffy cache
/// (`flow::now_ns`), which must neither lag by more than a couple of
/// jiffies nor stick.
#[test]
fn flow_times_follow_the_monotonic_clock() {
    // Two jiffies at HZ=100, the coarsest kernel setting, and a margin.
    const LAG_NS: u64 = 25_000_000;
    let t = TestDataplane::new(true);
    let pkt = tcp_v4([198, 18, 0, 7], [198, 19, 0, 7], 40007, 443, 64, b"t");
    let before = monotonic_ns();
    assert_eq!(run_xdp(&t, &pkt).verdict, XDP_REDIRECT);
    let after = monotonic_ns();
    let v = t.dp.flows().unwrap()[0].1;
    assert!(
        v.first_seen_ns + LAG_NS >= before && v.first_seen_ns <= after,
        "first_seen {} outside [{before} - lag, {after}]",
        v.first_seen_ns
    );
    std::thread::sleep(std::time::Duration::from_millis(100));
    let before = monotonic_ns();
    assert_eq!(run_xdp(&t, &pkt).verdict, XDP_REDIRECT);
    let after = monotonic_ns();
    let v2 = t.dp.flows().unwrap()[0].1;
    assert!(
        v2.last_seen_ns + LAG_NS >= before && v2.last_seen_ns <= after,
        "last_seen {} outside [{before} - lag, {after}]",
        v2.last_seen_ns
    );
    assert!(
        v2.last_seen_ns >= v.first_seen_ns + 100_000_000 - LAG_NS,
        "last_seen moved {} ns over a 100 ms sleep",
        v2.last_seen_ns - v.first_seen_ns
    );
    assert_eq!(v2.first_seen_ns, v.first_seen_ns);
}

/// A pin from another build (here SLOTS with 16 entries and 8-byte values,
/// as bpftool makes it) is refused before anything is loaded, with what
/// differs and `--fresh` in the message, and left as it was: the data plane
/// that made it may still be steering.
#[test]
fn pins_of_another_build_are_refused_and_left_alone() {
    require_root();
    let dir = scratch_pin_dir("foreign");
    std::fs::create_dir_all(&dir).unwrap();
    let pin = dir.join("SLOTS");
    let made = std::process::Command::new("bpftool")
        .args(["map", "create"])
        .arg(&pin)
        .args([
            "type", "array", "key", "4", "value", "8", "entries", "16", "name", "SLOTS",
        ])
        .status()
        .expect("bpftool (installed by cargo xtask setup)");
    assert!(made.success(), "bpftool map create failed");
    let result = steerer_user::dataplane::Dataplane::load(&dir, None);
    let msg = match result {
        Ok(_) => String::new(),
        Err(e) => e.to_string(),
    };
    let pin_left = pin.exists();
    let only_pin = std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0) == 1;
    let _ = steerer_user::dataplane::remove_pins(&dir);
    assert!(
        msg.contains("SLOTS value size is 8 pinned, 4 in this build")
            && msg.contains("SLOTS entries is 16 pinned")
            && msg.contains("--fresh"),
        "refusal does not say what differs: {msg:?}"
    );
    assert!(
        pin_left && only_pin,
        "the foreign pin was touched, or maps were pinned beside it"
    );
}

/// A reused flow table keeps the size it was made with (established flows
/// stay in it); the size asked for applies to a new one.
#[test]
fn a_reused_flow_table_keeps_its_size() {
    require_root();
    let dir = scratch_pin_dir("resize");
    let first = steerer_user::dataplane::Dataplane::load(&dir, Some(4096)).expect("first load");
    let made = first.flow_table_entries().expect("entries");
    drop(first);
    let kept = steerer_user::dataplane::Dataplane::load(&dir, Some(8192))
        .map(|d| d.flow_table_entries().ok());
    let _ = steerer_user::dataplane::remove_pins(&dir);
    assert_eq!(made, 4096);
    assert!(
        matches!(kept, Ok(Some(4096))),
        "reload with another size: {kept:?}"
    );
}
