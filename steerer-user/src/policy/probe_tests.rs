//! Active probes as controller inputs (issue 14, item 2): lost rounds take
//! a hop out, answers bring it back after the hold-down, the rate bound
//! and the interval hold, round-trip times rank equal hops, answering
//! probes outvote failed flows, and a disappeared hop is re-tested when
//! its probes answer.

use steerer_common::{FlowKey, FlowValue};

use super::*;

const SEC: u64 = 1_000_000_000;
const MS: u64 = 1_000_000;

fn hops(n: usize) -> Vec<ControllerHop> {
    (0..n)
        .map(|i| test_support::hop(&format!("h{i}"), Some(10 + i as u32), 1e8))
        .collect()
}

fn params(window: usize, probe: ProbeParams) -> Params {
    Params {
        tick_ns: 5 * SEC,
        slot_count: 101,
        window_base: window,
        link_hold_down_ns: 3 * SEC,
        probe: Some(probe),
        ..Params::default()
    }
}

fn probes(interval_s: u64, rate: f64) -> ProbeParams {
    ProbeParams {
        interval_ns: interval_s * SEC,
        down_after_rounds: 2,
        max_rounds_per_sec: rate,
    }
}

fn in_class_table(d: &Decisions, id: u32) -> bool {
    d.class_tables.iter().any(|t| t.table.contains(&id))
}

#[test]
fn two_lost_rounds_take_a_hop_out_and_an_answer_brings_it_back_after_the_hold_down() {
    let mut c = Controller::new(hops(3), params(3, probes(1, 100.0)));
    let d = c.initial();
    assert!(in_class_table(&d, 11));
    let mut due = c.poll_probes(0);
    due.sort();
    assert_eq!(due, vec!["h0", "h1", "h2"]);
    // One lost round is not enough.
    let d = c.handle_probe(SEC, "h1", None);
    assert!(d.events.is_empty(), "{:?}", d.events);
    assert!(in_class_table(&d, 11));
    // The second takes it out of every table, disabled in the data plane.
    let d = c.handle_probe(2 * SEC, "h1", None);
    assert_eq!(
        d.events,
        vec![Event::ProbesLost {
            hop: "h1".into(),
            rounds: 2
        }]
    );
    assert!(!in_class_table(&d, 11));
    assert!(!d.hops.iter().find(|h| h.id == 11).unwrap().enabled);
    assert!(c.probe_down("h1"));
    // Its flows are reset at the next tick, as for a link down.
    let k = test_support::flow_key(17, 2, 53, 1000);
    let v = FlowValue {
        hop: 11,
        packets: 10,
        bytes: 1000,
        reply_packets: 10,
        reply_bytes: 1000,
        first_seen_ns: 0,
        last_seen_ns: 2 * SEC,
        ..FlowValue::default()
    };
    let d = c.handle_tick(5 * SEC, &[(k, v)], &[]);
    assert_eq!(d.reset_flows, vec![k]);
    // An answer: held down (3 s) before it takes flows again.
    let d = c.handle_probe(6 * SEC, "h1", Some(2 * MS));
    assert_eq!(
        d.events,
        vec![Event::ProbesBack {
            hop: "h1".into(),
            for_ns: 3 * SEC
        }]
    );
    assert!(!in_class_table(&d, 11));
    assert!(
        c.poll_timeout() <= 9 * SEC,
        "the hold-down's end is a timeout"
    );
    let d = c.handle_timeout(9 * SEC - 1);
    assert!(!in_class_table(&d, 11), "not before the hold-down ends");
    let d = c.handle_timeout(9 * SEC);
    assert_eq!(d.events, vec![Event::HopUp { hop: "h1".into() }]);
    assert!(in_class_table(&d, 11));
    assert!(!c.probe_down("h1"));
}

#[test]
fn a_round_lost_during_the_hold_down_keeps_the_hop_out() {
    let mut c = Controller::new(hops(2), params(2, probes(1, 100.0)));
    c.initial();
    c.poll_probes(0);
    c.handle_probe(SEC, "h1", None);
    c.handle_probe(2 * SEC, "h1", None);
    c.handle_probe(3 * SEC, "h1", Some(MS));
    c.handle_probe(4 * SEC, "h1", None);
    let d = c.handle_timeout(10 * SEC);
    assert!(d.events.is_empty(), "{:?}", d.events);
    assert!(!in_class_table(&d, 11));
    assert!(c.probe_down("h1"));
}

#[test]
fn each_hop_is_probed_once_per_interval_and_all_within_the_rate_bound() {
    // Interval 1 s, no rate bound to speak of: all at 0, none at 0.5 s,
    // all again at 1 s.
    let mut c = Controller::new(hops(4), params(4, probes(1, 1000.0)));
    c.initial();
    assert_eq!(c.poll_probes(0).len(), 4);
    assert!(c.poll_probes(SEC / 2).is_empty());
    assert_eq!(c.poll_probes(SEC).len(), 4);
    // 2 rounds per second with an interval of 1 s: a bucket of 2; then one
    // round per 0.5 s.
    let mut c = Controller::new(hops(10), params(10, probes(1, 2.0)));
    c.initial();
    assert_eq!(c.poll_probes(0).len(), 2);
    assert!(c.poll_probes(0).is_empty());
    assert_eq!(c.poll_timeout(), SEC / 2, "the next token");
    assert_eq!(c.poll_probes(SEC / 2).len(), 1);
    // Over 10 s at most 2 + 2 per second were started, each hop probed.
    let mut seen = std::collections::HashSet::new();
    let mut started = 3;
    for step in 2..=20u64 {
        let due = c.poll_probes(step * SEC / 2);
        started += due.len();
        seen.extend(due);
    }
    assert!(started <= 2 + 2 * 10, "{started} rounds started");
    assert!(seen.len() + 3 >= 10, "every hop gets its turn: {seen:?}");
}

#[test]
fn a_disabled_hop_is_not_probed() {
    let mut hs = hops(3);
    hs[2].admin = Admin::Disabled;
    let mut c = Controller::new(hs, params(3, probes(1, 100.0)));
    c.initial();
    let mut due = c.poll_probes(0);
    due.sort();
    assert_eq!(due, vec!["h0", "h1"]);
}

#[test]
fn probes_off_means_no_rounds_and_no_change() {
    let mut c = Controller::new(
        hops(2),
        Params {
            probe: None,
            ..params(2, probes(1, 1.0))
        },
    );
    c.initial();
    assert!(c.poll_probes(0).is_empty());
    let d = c.handle_probe(SEC, "h1", None);
    let d = c.handle_probe(2 * SEC, "h1", None).events.len() + d.events.len();
    assert_eq!(d, 0);
    assert!(!c.probe_down("h1"));
}

#[test]
fn the_lowest_round_trip_time_wins_among_equal_hops() {
    // A window of one among four equal hops: when the member leaves, the
    // replacement is the hop whose probes answered fastest, whatever the
    // enumeration order.
    let mut c = Controller::new(hops(4), params(1, probes(1, 100.0)));
    c.initial();
    // A pool the rate bound covers is probed whole, members or not.
    assert_eq!(c.poll_probes(0).len(), 4);
    let member = c.engine().window()[0];
    let others: Vec<u32> = (0..4).filter(|&h| h != member).collect();
    // The others' times: 40, 25 and 3 ms, in enumeration-independent order.
    let rtts = [40 * MS, 25 * MS, 3 * MS];
    for (h, rtt) in others.iter().zip(rtts) {
        c.handle_probe(SEC, &format!("h{h}"), Some(rtt));
    }
    assert_eq!(c.probe_rtt_ms(&format!("h{}", others[2])), Some(3.0));
    c.handle_link(2 * SEC, &format!("h{member}"), false);
    assert_eq!(c.engine().window(), &[others[2]]);
}

/// `n` TCP flows on data-plane id `id` that never got a reply, started at 0.
fn unanswered_syns(id: u32, n: u16) -> Vec<(FlowKey, FlowValue)> {
    (0..n)
        .map(|i| {
            let v = FlowValue {
                hop: id,
                packets: 3,
                bytes: 180,
                first_seen_ns: 0,
                last_seen_ns: 2 * SEC,
                ..FlowValue::default()
            };
            (test_support::flow_key(6, 9, 443, 2000 + i), v)
        })
        .collect()
}

#[test]
fn answering_probes_outvote_failed_syns_but_lost_ones_agree_with_them() {
    // Probes through h1 answer: 3 unanswered SYNs do not take it out.
    let mut c = Controller::new(hops(3), params(3, probes(1, 100.0)));
    c.initial();
    c.poll_probes(0);
    c.handle_probe(SEC, "h1", Some(MS));
    let d = c.handle_tick(5 * SEC, &unanswered_syns(11, 3), &[]);
    assert!(
        !d.events
            .iter()
            .any(|e| matches!(e, Event::HopDisappeared { .. })),
        "{:?}",
        d.events
    );
    // The same flows with the last round lost: out, as without probes.
    let mut c = Controller::new(hops(3), params(3, probes(1, 100.0)));
    c.initial();
    c.poll_probes(0);
    c.handle_probe(SEC, "h1", None);
    let d = c.handle_tick(5 * SEC, &unanswered_syns(11, 3), &[]);
    assert!(d
        .events
        .iter()
        .any(|e| matches!(e, Event::HopDisappeared { hop, .. } if hop == "h1")));
    assert!(!in_class_table(&d, 11));
    // A probe answer re-tests it now, not after L (60 s).
    let due = c.poll_probes(6 * SEC);
    assert!(due.contains(&"h1".to_string()), "{due:?}");
    let d = c.handle_probe(6 * SEC, "h1", Some(MS));
    assert_eq!(d.events, vec![Event::Retested { hop: "h1".into() }]);
    assert!(in_class_table(&d, 11));
}

#[test]
fn a_reload_keeps_what_the_probes_said() {
    let mut old = Controller::new(hops(3), params(3, probes(1, 100.0)));
    old.initial();
    old.poll_probes(0);
    old.handle_probe(SEC, "h0", Some(7 * MS));
    old.handle_probe(SEC, "h2", None);
    old.handle_probe(2 * SEC, "h2", None);
    // The new list drops h1 and puts h2 first.
    let new_hops = vec![
        test_support::hop("h2", Some(12), 1e8),
        test_support::hop("h0", Some(10), 1e8),
    ];
    let mut c = Controller::new(new_hops, params(3, probes(1, 100.0)));
    let (_, d) = c.handle_reload(old);
    assert!(c.probe_down("h2"));
    assert!(!in_class_table(&d, 12));
    assert_eq!(c.probe_rtt_ms("h0"), Some(7.0));
}
