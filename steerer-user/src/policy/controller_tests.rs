//! The controller's own rules: restart baselines, link events, blocks per
//! destination with the per-port fallback.

use steerer_common::{
    flow::{DestKey, FailoverKey},
    FlowKey, FlowValue,
};

use super::*;

const SEC: u64 = 1_000_000_000;

fn hops(n: usize) -> Vec<ControllerHop> {
    // Ids unlike positions: 10, 11, ...
    (0..n)
        .map(|i| test_support::hop(&format!("h{i}"), Some(10 + i as u32), 1e8))
        .collect()
}

fn params() -> Params {
    Params {
        tick_ns: 5 * SEC,
        slot_count: 101,
        window_base: 3,
        ..Params::default()
    }
}

fn key(dst: u8, dport: u16, sport: u16) -> FlowKey {
    test_support::flow_key(6, dst, dport, sport)
}

fn flow(hop: u32, bytes: u64, reply: u64, first: u64, last: u64) -> FlowValue {
    FlowValue {
        hop,
        packets: 10,
        bytes,
        reply_packets: u64::from(reply > 0) * 10,
        reply_bytes: reply,
        first_seen_ns: first,
        last_seen_ns: last,
        ..FlowValue::default()
    }
}

#[test]
fn after_a_restart_the_first_tick_measures_only_what_moved_since() {
    // Three flows that moved 1 GB each before the restart at 100 s, then
    // 5 MB each over 1 s of the first tick.
    let before: Vec<(FlowKey, FlowValue)> = (0..3u32)
        .map(|i| {
            (
                key(2, 443, 1000 + i as u16),
                flow(10 + i, 0, 1_000_000_000, 0, 100 * SEC),
            )
        })
        .collect();
    let after: Vec<(FlowKey, FlowValue)> = before
        .iter()
        .map(|(k, v)| {
            (
                *k,
                FlowValue {
                    reply_bytes: v.reply_bytes + 5_000_000,
                    last_seen_ns: 101 * SEC,
                    ..*v
                },
            )
        })
        .collect();
    let mut c = Controller::new(hops(3), params());
    c.handle_start(100 * SEC, &before, &[]);
    let r = c.handle_tick(105 * SEC, &after, &[]).report.unwrap();
    for h in &r.hops {
        assert_eq!(h.bytes, 5_000_000, "{}: only this run's bytes", h.name);
        // 5 MB over the flow's 1 s since the start (busy from 100 to 101 s).
        assert!((h.speed - 5e6).abs() < 1e-3, "{}: {}", h.name, h.speed);
    }
    // Without the baseline the lifetime bytes would count as one tick.
    let mut c = Controller::new(hops(3), params());
    let r = c.handle_tick(105 * SEC, &after, &[]).report.unwrap();
    assert_eq!(r.hops[0].bytes, 1_005_000_000);
}

#[test]
fn a_hop_going_down_leaves_every_table_at_once_and_its_flows_are_reset() {
    let mut c = Controller::new(hops(3), params());
    let d = c.handle_link(SEC, "h1", false);
    assert_eq!(d.events, vec![Event::HopDown { hop: "h1".into() }]);
    assert!(!d.hops.iter().find(|h| h.id == 11).unwrap().enabled);
    assert!(d.class_tables.iter().all(|t| !t.table.contains(&11)));
    assert!(d.class_tables[0].table.iter().all(|&h| h == 10 || h == 12));
    // The next tick resets exactly its flows.
    let flows = vec![
        (key(2, 443, 1), flow(11, 100, 100, 0, SEC)),
        (key(2, 443, 2), flow(10, 100, 100, 0, SEC)),
    ];
    let d = c.handle_tick(5 * SEC, &flows, &[]);
    assert_eq!(d.reset_flows, vec![key(2, 443, 1)]);
    assert!(d
        .events
        .iter()
        .any(|e| matches!(e, Event::FlowsReset { hop, flows: 1, .. } if hop == "h1")));
    // Back up: after the hold-down in the table again, nothing more reset.
    c.handle_link(6 * SEC, "h1", true);
    let d = c.handle_timeout(6 * SEC + params().link_hold_down_ns);
    assert!(d.class_tables[0].table.contains(&11));
    assert!(c.handle_tick(20 * SEC, &flows, &[]).reset_flows.is_empty());
}

/// Two failed flows (no reply after T) from hop `id` to `dst`:`port`.
fn failing(id: u32, dst: u8, port: u16, sport: u16) -> Vec<(FlowKey, FlowValue)> {
    (0..2)
        .map(|i| (key(dst, port, sport + i), flow(id, 60, 0, 0, 0)))
        .collect()
}

#[test]
fn a_block_is_per_destination_and_falls_back_to_the_port_without_tables() {
    let mut p = params();
    p.max_destination_windows = 1;
    let mut c = Controller::new(hops(3), p);
    let mut flows = failing(11, 2, 8443, 100);
    let d = c.handle_tick(5 * SEC, &flows, &[]);
    let b = d
        .destinations
        .iter()
        .find(|t| t.dest == DestKey::of(&key(2, 8443, 0)))
        .expect("own table");
    assert!(!b.table.contains(&11) && b.table.contains(&10) && b.table.contains(&12));
    assert!(
        d.class_tables[0].table.contains(&11),
        "h1 keeps every other destination"
    );
    assert!(
        d.port_sets.iter().all(|&s| s == d.port_sets[0]),
        "no port excluded"
    );
    // A second blocked destination finds no table left (one here): h1 is
    // excluded for its port instead, through a port set of its own.
    flows.extend(failing(11, 3, 9000, 200));
    let d = c.handle_tick(10 * SEC, &flows, &[]);
    assert!(
        d.events.contains(&Event::PortExcluded {
            hop: "h1".into(),
            port: 9000
        }),
        "{:?}",
        d.events
    );
    let set = d.port_sets[9000];
    assert_ne!(set, d.port_sets[443]);
    let t = d
        .class_tables
        .iter()
        .find(|t| t.index == set as u32)
        .unwrap();
    assert!(!t.table.contains(&11), "port 9000's table lacks h1");
    let other = d
        .class_tables
        .iter()
        .find(|t| t.index == d.port_sets[443] as u32)
        .unwrap();
    assert!(other.table.contains(&11));
}

#[test]
fn a_hop_that_answers_most_of_a_port_keeps_it_when_a_block_finds_no_table() {
    let mut p = params();
    p.max_destination_windows = 1;
    let mut c = Controller::new(hops(3), p);
    // h1 answers eight flows to other destinations on 9000 ...
    let mut flows: Vec<(FlowKey, FlowValue)> = (0..8)
        .map(|i| (key(20 + i, 9000, 600), flow(11, 5000, 5000, 0, 4 * SEC)))
        .collect();
    // ... and blackholes two destinations on it, one of which finds no
    // table (the only one is taken by the first).
    flows.extend(failing(11, 2, 9000, 100));
    c.handle_tick(5 * SEC, &flows, &[]);
    flows.extend(failing(11, 3, 9000, 200));
    let d = c.handle_tick(10 * SEC, &flows, &[]);
    // 4 failed against 8 answered: under half, the port stays.
    assert!(
        !d.events
            .iter()
            .any(|e| matches!(e, Event::PortExcluded { .. })),
        "{:?}",
        d.events
    );
    assert!(d.port_sets.iter().all(|&s| s == d.port_sets[0]));
    // The block itself holds for the destination with a table.
    assert!(
        d.events.iter().any(|e| matches!(e, Event::Excluded { .. }))
            || c.exclusions().iter().any(|x| x.hop == "h1")
    );
}

#[test]
fn failovers_are_counted_once_and_against_their_destination() {
    let mut c = Controller::new(hops(3), params());
    let fk = FailoverKey {
        hop: 12,
        dest: DestKey::of(&key(5, 80, 0)),
    };
    // Two moves off h2 towards 198.19.0.5:80: blocked for it.
    let d = c.handle_tick(5 * SEC, &[], &[(fk, 2)]);
    assert!(d.events.iter().any(
        |e| matches!(e, Event::Excluded { hop, dest, .. } if hop == "h2" && *dest == fk.dest)
    ));
    // The same cumulative count again is no new failover: no new event,
    // and the block stays.
    let d = c.handle_tick(10 * SEC, &[], &[(fk, 2)]);
    assert!(!d.events.iter().any(|e| matches!(e, Event::Excluded { .. })));
    let t = d.destinations.iter().find(|t| t.dest == fk.dest).unwrap();
    assert!(!t.table.contains(&12));
}

#[test]
fn the_port_fallback_never_takes_a_port_from_more_than_half_the_hops() {
    let mut p = params();
    p.max_destination_windows = 1;
    let mut c = Controller::new(hops(3), p);
    // One destination takes the only table; then every hop is blocked
    // for other destinations on port 9000, h2 for two of them.
    let mut flows = failing(10, 2, 8443, 100);
    c.handle_tick(5 * SEC, &flows, &[]);
    flows.extend(failing(10, 3, 9000, 200));
    flows.extend(failing(11, 4, 9000, 300));
    flows.extend(failing(12, 5, 9000, 400));
    flows.extend(failing(12, 6, 9000, 500));
    let d = c.handle_tick(10 * SEC, &flows, &[]);
    let excluded: Vec<&Event> = d
        .events
        .iter()
        .filter(|e| matches!(e, Event::PortExcluded { port: 9000, .. }))
        .collect();
    // Three hops accept 9000: one may lose it, the one with the most
    // evidence (h2, two destinations).
    assert_eq!(
        excluded,
        vec![&Event::PortExcluded {
            hop: "h2".into(),
            port: 9000
        }]
    );
    let t = d
        .class_tables
        .iter()
        .find(|t| t.index == d.port_sets[9000] as u32)
        .unwrap();
    assert!(t.table.contains(&10) && t.table.contains(&11) && !t.table.contains(&12));
}

#[test]
fn the_first_tick_comes_a_second_after_the_start_then_every_k() {
    let mut c = Controller::new(hops(3), params());
    c.handle_start(100 * SEC, &[], &[]);
    assert_eq!(
        c.poll_timeout(),
        101 * SEC,
        "first tick after first_tick_ns (1 s)"
    );
    c.handle_tick(101 * SEC, &[], &[]);
    assert_eq!(
        c.poll_timeout(),
        106 * SEC,
        "then K = 5 s after the last tick"
    );
    c.handle_tick(107 * SEC, &[], &[]);
    assert_eq!(c.poll_timeout(), 112 * SEC, "a late tick moves the next");
}

#[test]
fn a_link_back_waits_out_the_hold_down_and_a_flap_restarts_it() {
    let p = Params {
        link_hold_down_ns: 4 * SEC,
        ..params()
    };
    let mut c = Controller::new(hops(3), p);
    c.handle_start(0, &[], &[]);
    c.handle_link(SEC, "h1", false);
    let d = c.handle_link(2 * SEC, "h1", true);
    assert_eq!(
        d.events,
        vec![Event::HopHeldDown {
            hop: "h1".into(),
            for_ns: 4 * SEC
        }]
    );
    assert!(d.class_tables.iter().all(|t| !t.table.contains(&11)));
    // The first tick (1 s after the start) comes before the hold-down's
    // end (6 s).
    assert_eq!(c.poll_timeout(), SEC);
    c.handle_tick(SEC, &[], &[]);
    assert_eq!(
        c.poll_timeout(),
        6 * SEC,
        "hold-down ends before the tick at 6 s"
    );
    assert_eq!(c.next_tick(), 6 * SEC);
    // A flap at 3 s cancels the wait; up at 4 s waits until 8 s.
    c.handle_link(3 * SEC, "h1", false);
    c.handle_link(4 * SEC, "h1", true);
    assert_eq!(c.poll_timeout(), 6 * SEC, "the tick at 6 s comes first");
    let d = c.handle_timeout(7 * SEC);
    assert!(d.events.is_empty(), "{:?}", d.events);
    assert!(d.class_tables.iter().all(|t| !t.table.contains(&11)));
    assert_eq!(c.poll_timeout(), 6 * SEC, "no tick since 1 s: due");
    c.handle_tick(7 * SEC, &[], &[]);
    assert_eq!(c.poll_timeout(), 8 * SEC);
    let d = c.handle_timeout(8 * SEC);
    assert_eq!(d.events, vec![Event::HopUp { hop: "h1".into() }]);
    // Its id was freed at the tick at 7 s (no flow, no table named it);
    // back, it holds one again, enabled and in the table.
    let id = c.id_of("h1").expect("h1 holds an id again");
    assert!(d.class_tables[0].table.contains(&id));
    assert!(d.hops.iter().find(|h| h.id == id).unwrap().enabled);
}

#[test]
fn without_a_hold_down_a_link_back_is_used_at_once() {
    let p = Params {
        link_hold_down_ns: 0,
        ..params()
    };
    let mut c = Controller::new(hops(2), p);
    c.handle_link(SEC, "h1", false);
    let d = c.handle_link(2 * SEC, "h1", true);
    assert_eq!(d.events, vec![Event::HopUp { hop: "h1".into() }]);
    assert!(d.class_tables[0].table.contains(&11));
    // Twice up is one event.
    assert!(c.handle_link(3 * SEC, "h1", true).events.is_empty());
}

#[test]
fn idle_flows_expire_by_protocol_and_a_reset_flow_is_not_expired_twice() {
    let p = Params {
        idle_tcp_ns: 100 * SEC,
        idle_other_ns: 20 * SEC,
        ..params()
    };
    let mut c = Controller::new(hops(3), p);
    let mut udp = key(2, 53, 7);
    udp.proto = 17;
    let flows = vec![
        // TCP idle 50 s: stays; TCP idle 150 s: expires.
        (key(2, 443, 1), flow(10, 100, 100, 0, 150 * SEC)),
        (key(2, 443, 2), flow(10, 100, 100, 0, 50 * SEC)),
        // UDP idle 30 s: expires.
        (udp, flow(11, 100, 100, 0, 170 * SEC)),
    ];
    let d = c.handle_tick(200 * SEC, &flows, &[]);
    let mut expired: Vec<u16> = d.expired_flows.iter().map(|k| k.src_port).collect();
    expired.sort_unstable();
    assert_eq!(expired, vec![2, 7]);
    // A hop going down resets its flows; none of them is also expired.
    c.handle_link(201 * SEC, "h0", false);
    let d = c.handle_tick(205 * SEC, &flows, &[]);
    assert!(d.reset_flows.iter().any(|k| k.src_port == 2));
    assert!(
        d.expired_flows.iter().all(|k| k.src_port != 2),
        "{:?}",
        d.expired_flows
    );
    assert!(d.expired_flows.iter().any(|k| k.src_port == 7));
}
