//! Weight-change events (issue 16): a hop whose share is 5 points or more
//! from the share last logged for it says from what to what and which rule
//! set it.

use steerer_common::{FlowKey, FlowValue};

use super::*;

const SEC: u64 = 1_000_000_000;

fn controller() -> Controller {
    controller_with(false)
}

fn controller_with(load_aware: bool) -> Controller {
    let hops = (0..2)
        .map(|i| test_support::hop(&format!("h{i}"), Some(10 + i as u32), 1e7))
        .collect();
    Controller::new(
        hops,
        Params {
            tick_ns: 5 * SEC,
            slot_count: 101,
            window_base: 2,
            load_aware,
            ..Params::default()
        },
    )
}

/// A flow on id `id` that moved `bytes` (answered) from `first` to `last`.
fn flow(sport: u16, id: u32, bytes: u64, first: u64, last: u64) -> (FlowKey, FlowValue) {
    (
        test_support::flow_key(6, 2, 443, sport),
        FlowValue {
            hop: id,
            packets: 100,
            bytes,
            reply_packets: 100,
            reply_bytes: bytes / 10,
            first_seen_ns: first,
            last_seen_ns: last,
            last_reply_ns: last,
            ..FlowValue::default()
        },
    )
}

fn weight_events(d: &Decisions) -> Vec<(String, f64, f64, WeightReason)> {
    d.events
        .iter()
        .filter_map(|e| match e {
            Event::WeightChanged {
                hop,
                from,
                to,
                reason,
                ..
            } => Some((hop.clone(), *from, *to, *reason)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_weight_change_says_from_what_to_what_and_why() {
    let mut c = controller();
    c.initial();
    // Tick 1: both measured at 10 MB/s: 0 -> 50% each, by measurement.
    let flows = vec![
        flow(1, 10, 50_000_000, 0, 5 * SEC),
        flow(2, 11, 50_000_000, 0, 5 * SEC),
    ];
    let d = c.handle_tick(5 * SEC, &flows, &[]);
    let r = d.report.as_ref().unwrap();
    let first = weight_events(&d);
    assert_eq!(first.len(), 2, "{:?}", d.events);
    for (hop, from, to, reason) in &first {
        let share = r.hops.iter().find(|h| &h.name == hop).unwrap().share;
        assert_eq!((*from, *to), (0.0, share));
        assert_eq!(*reason, WeightReason::Measured);
    }
    // Tick 2: h0 moves 50 MB/s, h1 4 MB/s (under a tenth): h1 is slow,
    // h0 would take nearly all and is held at max_share.
    let mut flows2 = flows.clone();
    flows2.push(flow(3, 10, 250_000_000, 5 * SEC, 10 * SEC));
    flows2.push(flow(4, 11, 20_000_000, 5 * SEC, 10 * SEC));
    let d = c.handle_tick(10 * SEC, &flows2, &[]);
    let r2 = d.report.as_ref().unwrap();
    let share =
        |r: &TickReport<FlowKey>, n: &str| r.hops.iter().find(|h| h.name == n).unwrap().share;
    let cap = Params::default().max_share;
    assert!(
        (share(r2, "h0") - cap).abs() < 0.005,
        "h0 at the cap: {}",
        share(r2, "h0")
    );
    let events = weight_events(&d);
    let h0 = events.iter().find(|e| e.0 == "h0").expect("h0's change");
    assert_eq!((h0.1, h0.2), (share(r, "h0"), share(r2, "h0")));
    assert_eq!(h0.3, WeightReason::Capped(cap));
    let h1 = events.iter().find(|e| e.0 == "h1").expect("h1's change");
    assert_eq!(h1.3, WeightReason::Slow);
    // The log line says it.
    let line = d
        .events
        .iter()
        .find(|e| matches!(e, Event::WeightChanged { hop, .. } if hop == "h0"))
        .unwrap()
        .to_string();
    assert!(line.starts_with("hop h0 weight 50.0% -> 70.0%"), "{line}");
    assert!(
        line.ends_with(&format!("held at max_share {cap}")),
        "{line}"
    );
}

#[test]
fn small_steps_are_logged_once_they_add_up() {
    use super::controller_weights::{LoggedShares, LOGGED_SHARE_CHANGE};
    let mut logged = LoggedShares::default();
    let tick = |l: &mut LoggedShares, shares: &[(&str, f64)]| l.update(shares.iter().copied());
    // First sight: both from zero.
    assert_eq!(
        tick(&mut logged, &[("a", 0.5), ("b", 0.5)]),
        [(0, 0.0), (1, 0.0)]
    );
    // a drifts down 2 points a tick, b up: nothing at 2 and 4 points...
    let step = 0.02;
    assert!(3.0 * step >= LOGGED_SHARE_CHANGE && 2.0 * step < LOGGED_SHARE_CHANGE);
    for k in 1..=2 {
        let d = step * k as f64;
        assert!(tick(&mut logged, &[("a", 0.5 - d), ("b", 0.5 + d)]).is_empty());
    }
    // ...and at 6 points one event each, from the share logged at first.
    let moved = tick(&mut logged, &[("a", 0.44), ("b", 0.56)]);
    assert_eq!(moved, [(0, 0.5), (1, 0.5)]);
    // From there, the next change is measured from 44% and 56%.
    assert!(tick(&mut logged, &[("a", 0.40), ("b", 0.60)]).is_empty());
    assert_eq!(
        tick(&mut logged, &[("a", 0.38), ("b", 0.62)]),
        [(0, 0.44), (1, 0.56)]
    );
    // A hop that leaves the report is forgotten; back, it starts at zero.
    assert_eq!(tick(&mut logged, &[("b", 1.0)]), [(0, 0.62)]);
    assert_eq!(tick(&mut logged, &[("a", 0.03), ("b", 0.97)]), []);
    assert_eq!(
        tick(&mut logged, &[("a", 0.3), ("b", 0.7)]),
        [(0, 0.0), (1, 1.0)]
    );
}

#[test]
fn under_the_load_rule_a_measured_hop_is_logged_with_it() {
    let mut c = controller_with(true);
    c.initial();
    let flows = vec![
        flow(1, 10, 50_000_000, 0, 5 * SEC),
        flow(2, 11, 50_000_000, 0, 5 * SEC),
    ];
    let d = c.handle_tick(5 * SEC, &flows, &[]);
    let events = weight_events(&d);
    assert_eq!(events.len(), 2, "{:?}", d.events);
    assert!(
        events.iter().all(|e| e.3 == WeightReason::Load),
        "{events:?}"
    );
}
