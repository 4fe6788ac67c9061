//! Health that one-way traffic cannot fool (issue 14, item 3): a flow of
//! weak evidence (UDP) without a reply neither takes its hop out nor,
//! unless its destination answers through another hop, blocks the hop
//! for it; TCP without a reply stays strong evidence.

use steerer_common::{flow::DestKey, FlowKey, FlowValue};

use super::engine_tests::{hops, params, sample, slots_of, SEC};
use super::*;

/// `n` flows on `hop` that never got a reply, of weak evidence or not.
fn unanswered(hop: u32, n: u32, weak: bool, key_base: u32) -> Vec<FlowSample<u32>> {
    (0..n)
        .map(|k| {
            let mut f = sample(key_base + k, hop, 600, 0, 0);
            f.reply_packets = 0;
            f.weak_evidence = weak;
            f
        })
        .collect()
}

#[test]
fn one_way_udp_alone_takes_a_hop_out_only_after_l_of_silence() {
    // L = 60 s (params()), K = 5 s. Hop 1 carries only UDP flows that get
    // no reply, new ones every tick (a one-way burst).
    let mut e: Engine<u32> = Engine::new(hops(&[100.0, 100.0]), params());
    let mut t = 5;
    let mut out_at = None;
    while t <= 80 {
        let flows = unanswered(1, 50, true, t as u32 * 100);
        let r = e.tick(t * SEC, flows);
        if r.disappeared.contains(&1) {
            out_at = Some(t);
            break;
        }
        assert!(r.hops[1].usable && slots_of(&r.table, 1) > 0, "t = {t}");
        t += 5;
    }
    // Flows started at 0 fail after T = 3 s, first seen failing at the
    // tick at 5 s: quiet since 5 s, out at the first tick >= 5 + 60.
    assert_eq!(out_at, Some(65));
}

#[test]
fn a_reply_on_any_flow_ends_the_silence_count() {
    let mut e: Engine<u32> = Engine::new(hops(&[100.0, 100.0]), params());
    for t in (5..=100).step_by(5) {
        let mut flows = unanswered(1, 50, true, t as u32 * 100);
        if t % 50 == 0 {
            // One answered flow every 50 s: the hop is alive.
            let mut f = sample(t as u32 * 100 + 99, 1, 1_000, 0, t * SEC);
            f.reply_bytes = 500;
            flows.push(f);
        }
        let r = e.tick(t * SEC, flows);
        assert!(r.disappeared.is_empty(), "t = {t}: {:?}", r.disappeared);
    }
}

#[test]
fn unanswered_tcp_still_takes_a_hop_out_within_one_tick() {
    let mut e: Engine<u32> = Engine::new(hops(&[100.0, 100.0]), params());
    let r = e.tick(5 * SEC, unanswered(1, 3, false, 0));
    assert_eq!(r.disappeared, vec![1]);
    // And weak failures on top do not hide it; they are counted.
    let mut e: Engine<u32> = Engine::new(hops(&[100.0, 100.0]), params());
    let mut flows = unanswered(1, 3, false, 0);
    flows.extend(unanswered(1, 4, true, 100));
    let r = e.tick(5 * SEC, flows);
    assert_eq!(r.disappeared, vec![1]);
    assert_eq!(r.hops[1].newly_failed, 7);
}

fn controller(n: usize) -> Controller {
    let hops = (0..n)
        .map(|i| test_support::hop(&format!("h{i}"), Some(i as u32), 1e8))
        .collect();
    Controller::new(
        hops,
        Params {
            slot_count: 101,
            window_base: 3,
            ..Params::default()
        },
    )
}

fn udp(dst: u8, sport: u16) -> FlowKey {
    test_support::flow_key(17, dst, 443, sport)
}

fn value(hop: u32, reply: bool) -> FlowValue {
    FlowValue {
        hop,
        packets: 10,
        bytes: 6_000,
        reply_packets: u64::from(reply) * 10,
        reply_bytes: u64::from(reply) * 6_000,
        first_seen_ns: 0,
        last_seen_ns: SEC,
        ..FlowValue::default()
    }
}

#[test]
fn udp_to_a_destination_nobody_hears_from_blocks_no_hop() {
    // A LAN host sprays UDP at one destination over every hop; nothing
    // answers: no hop is blocked for it, none is taken out.
    let mut c = controller(3);
    let flows: Vec<(FlowKey, FlowValue)> = (0..60)
        .map(|i| (udp(9, 10_000 + i), value(i as u32 % 3, false)))
        .collect();
    for t in [5, 10, 15] {
        let d = c.handle_tick(t * SEC, &flows, &[]);
        // Busy enough for a window of its own, but no hop blocked in it.
        for t in &d.destinations {
            assert!((0..3).all(|h| t.table.contains(&h)), "{:?}", t.dest);
        }
        assert!(
            !d.events.iter().any(|e| e.is_warning()),
            "t = {t}: {:?}",
            d.events
        );
        assert!((0..3).all(|h| d.class_tables[0].table.contains(&h)));
    }
}

#[test]
fn udp_unanswered_on_one_hop_but_answered_on_another_blocks_that_hop() {
    // QUIC to destination 9 answers through h0 and h2, never through h1:
    // a blackhole of h1 for it.
    let mut c = controller(3);
    let mut flows = vec![(udp(9, 1), value(0, true)), (udp(9, 2), value(2, true))];
    flows.extend((0..2).map(|i| (udp(9, 100 + i), value(1, false))));
    let d = c.handle_tick(5 * SEC, &flows, &[]);
    let t = d
        .destinations
        .iter()
        .find(|t| t.dest == DestKey::of(&udp(9, 0)))
        .expect("a table of its own");
    assert!(!t.table.contains(&1) && t.table.contains(&0) && t.table.contains(&2));
}
