//! Fast failover under BPF_PROG_TEST_RUN (SPEC 4.1.5): a repeated SYN of a
//! flow that never had a reply moves to another hop of its window.

mod support;

use etherparse::PacketBuilder;
use steerer_common::StatReason;
use support::*;

fn syn(sport: u16, ack: bool) -> Vec<u8> {
    let mut tcp = PacketBuilder::ethernet2(CLIENT_MAC, GW_LAN_MAC)
        .ipv4([198, 18, 0, 2], [198, 19, 0, 2], 64)
        .tcp(sport, 8443, 1, 65535);
    tcp = if ack { tcp.syn().ack(1) } else { tcp.syn() };
    let mut out = Vec::new();
    tcp.write(&mut out, &[]).unwrap();
    out
}

/// Hops 0 and 1 enabled, slots alternating between them.
fn two_hops() -> TestDataplane {
    let mut t = TestDataplane::new(true);
    enable_second_hop(&mut t);
    let table: Vec<u32> = (0..SLOTS).map(|i| i % 2).collect();
    t.dp.write_slots(0, &table, None).unwrap();
    t
}

#[test]
fn repeated_syn_without_reply_moves_the_flow_and_counts_it() {
    let t = two_hops();
    let first = syn(40100, false);
    assert_eq!(run_xdp(&t, &first).verdict, XDP_REDIRECT);
    let (_, v) = t.dp.flows().unwrap()[0];
    let old = v.hop;

    let again = run_xdp(&t, &first);
    assert_eq!(again.verdict, XDP_REDIRECT);
    let (_, v) = t.dp.flows().unwrap()[0];
    assert_ne!(v.hop, old, "the retransmitted SYN left the silent hop");
    assert_eq!(v.failovers, 1);
    assert_eq!(v.packets, 2);
    let want_mac: [u8; 6] = if v.hop == 1 {
        HOP1_DST_MAC
    } else {
        HOP_DST_MAC
    };
    assert_eq!(&again.out[0..6], &want_mac, "rewritten for the new hop");
    assert_eq!(stat(&t, StatReason::Failover), 1);
    let counters = t.dp.failovers().unwrap();
    assert_eq!(counters.len(), 1);
    // Counted against (old hop, destination): 198.19.0.2:8443 over TCP.
    let dest = counters[0].0.dest;
    assert_eq!((counters[0].0.hop, counters[0].1), (old, 1));
    assert_eq!(
        (&dest.addr[..4], dest.port, dest.proto, dest.family),
        (&[198u8, 19, 0, 2][..], 8443, 6, 4)
    );
}

#[test]
fn a_flow_with_replies_or_a_non_syn_packet_does_not_move() {
    let t = two_hops();
    let first = syn(40200, false);
    run_xdp(&t, &first);
    let hop = t.dp.flows().unwrap()[0].1.hop;

    // An ACK-bearing packet is not a connection attempt.
    let synack_like = syn(40200, true);
    run_xdp(&t, &synack_like);
    assert_eq!(t.dp.flows().unwrap()[0].1.hop, hop);

    // A reply arrives (TC accounts it); a later repeated SYN stays put.
    let reply = {
        let b = PacketBuilder::ethernet2(GW_LAN_MAC, CLIENT_MAC)
            .ipv4([198, 19, 0, 2], [198, 18, 0, 2], 60)
            .tcp(8443, 40200, 7, 65535)
            .syn()
            .ack(2);
        let mut out = Vec::new();
        b.write(&mut out, &[]).unwrap();
        out
    };
    assert_eq!(run_tc_reply(&t, &reply).verdict, 0, "TC_ACT_OK");
    assert!(t.dp.flows().unwrap()[0].1.reply_packets > 0);
    run_xdp(&t, &first);
    let v = t.dp.flows().unwrap()[0].1;
    assert_eq!(v.hop, hop, "a flow that got an answer is not moved");
    assert_eq!(v.failovers, 0);
    assert_eq!(stat(&t, StatReason::Failover), 0);
}

#[test]
fn a_window_of_one_hop_keeps_the_flow() {
    let t = TestDataplane::new(true); // every slot is hop 0
    let first = syn(40300, false);
    run_xdp(&t, &first);
    run_xdp(&t, &first);
    let v = t.dp.flows().unwrap()[0].1;
    assert_eq!((v.hop, v.failovers), (0, 0));
    assert!(t.dp.failovers().unwrap().is_empty());
}

/// The flow entry of client port `sport`.
fn flow_of(t: &TestDataplane, sport: u16) -> steerer_common::FlowValue {
    t.dp.flows()
        .unwrap()
        .into_iter()
        .find(|(k, _)| k.src_port == sport)
        .expect("flow entry")
        .1
}

#[test]
fn a_heavy_old_hop_still_yields_the_other_hop() {
    // Hop 0 holds 95% of the slots: weighted re-choices mostly land on it
    // again; the slot walk must still find hop 1 for every flow.
    let mut t = two_hops();
    let table: Vec<u32> = (0..SLOTS).map(|i| u32::from(i % 20 == 19)).collect();
    t.dp.write_slots(0, &table, None).unwrap();
    let mut moved = 0;
    for sport in 41000..41100u16 {
        let s = syn(sport, false);
        run_xdp(&t, &s);
        let before = flow_of(&t, sport);
        run_xdp(&t, &s);
        let after = flow_of(&t, sport);
        if before.hop == 0 {
            assert_eq!(after.hop, 1, "flow {sport} left hop 0");
            moved += 1;
        } else {
            assert_eq!(after.hop, 0, "flow {sport} left hop 1");
        }
    }
    assert!(moved > 80, "most flows started on the heavy hop: {moved}");
}
