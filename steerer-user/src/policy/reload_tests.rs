//! A reload (SIGHUP) forgets nothing about the hops it keeps: the new
//! controller takes over speeds, blocks and flow memos by name, whatever
//! the new order; removed hops leave every table, added ones join.

use steerer_common::{flow::DestKey, FlowKey, FlowValue};

use super::*;

const SEC: u64 = 1_000_000_000;

fn hop(name: &str, id: u32) -> ControllerHop {
    test_support::hop(name, Some(id), 1e7)
}

fn params() -> Params {
    Params {
        slot_count: 1009,
        window_base: 4,
        max_share: 1.0,
        ..Params::default()
    }
}

fn key(dst: u8, sport: u16) -> FlowKey {
    test_support::flow_key(6, dst, 443, sport)
}

fn value(id: u32, bytes: u64, reply: u64, last: u64) -> FlowValue {
    FlowValue {
        hop: id,
        packets: 10,
        bytes,
        reply_packets: u64::from(reply > 0) * 10,
        reply_bytes: reply,
        first_seen_ns: 0,
        last_seen_ns: last,
        ..FlowValue::default()
    }
}

fn slots(d: &Decisions, id: u32) -> usize {
    d.class_tables[0].table.iter().filter(|&&h| h == id).count()
}

/// a (id 10) moved 40 MB in its second, c (12) 10 MB; b (11) two failed
/// flows to destination 9: blocked for it.
fn learned() -> (Controller, Vec<(FlowKey, FlowValue)>) {
    let mut c = Controller::new(vec![hop("a", 10), hop("b", 11), hop("c", 12)], params());
    c.handle_start(0, &[], &[]);
    let flows = vec![
        (key(2, 1), value(10, 40_000_000, 1_000, SEC)),
        (key(2, 2), value(12, 10_000_000, 1_000, SEC)),
        (key(9, 3), value(11, 60, 0, 0)),
        (key(9, 4), value(11, 60, 0, 0)),
        (key(9, 5), value(12, 6_000, 600, SEC)),
    ];
    let d = c.handle_tick(5 * SEC, &flows, &[]);
    assert!(
        slots(&d, 10) > 2 * slots(&d, 12),
        "a measured faster than c"
    );
    assert!(d.destinations.iter().any(|t| !t.table.contains(&11)));
    (c, flows)
}

#[test]
fn a_reload_keeps_what_was_learned_about_the_hops_it_keeps() {
    let (old, flows) = learned();
    // New order, b kept, d added (id 13).
    let mut new = Controller::new(
        vec![hop("c", 12), hop("d", 13), hop("b", 11), hop("a", 10)],
        params(),
    );
    let (summary, d) = new.handle_reload(old);
    assert_eq!(summary.added, vec!["d".to_string()]);
    assert!(summary.removed.is_empty());
    assert_eq!(summary.kept.len(), 3);
    // a is still the fast one (a fresh controller would split evenly by
    // the equal claims).
    assert!(
        slots(&d, 10) > 2 * slots(&d, 12),
        "{} vs {}",
        slots(&d, 10),
        slots(&d, 12)
    );
    let fresh = Controller::new(
        vec![hop("c", 12), hop("d", 13), hop("b", 11), hop("a", 10)],
        params(),
    )
    .initial();
    assert!(slots(&fresh, 10).abs_diff(slots(&fresh, 12)) < 20);
    // The block of b for destination 9 holds.
    let t9 = d
        .destinations
        .iter()
        .find(|t| t.dest == DestKey::of(&key(9, 0)))
        .expect("destination 9 keeps its table");
    assert!(!t9.table.contains(&11) && t9.table.contains(&12));
    // The next tick does not count the flows' old bytes or failures again.
    let r = new.handle_tick(10 * SEC, &flows, &[]).report.unwrap();
    for h in &r.hops {
        assert_eq!(h.bytes, 0, "{}: nothing moved since the last tick", h.name);
        assert_eq!(h.newly_failed, 0, "{}", h.name);
    }
}

#[test]
fn a_removed_hop_leaves_every_table_and_an_added_one_joins() {
    let (old, _) = learned();
    let mut new = Controller::new(vec![hop("a", 10), hop("c", 12), hop("d", 13)], params());
    let (summary, d) = new.handle_reload(old);
    assert_eq!(summary.removed, vec!["b".to_string()]);
    assert_eq!(summary.added, vec!["d".to_string()]);
    // b's id is held for its flows to drain, as no hop of the pool.
    let b = d.hops.iter().find(|h| h.id == 11).expect("b's id is held");
    assert!(!b.pooled && b.name == "b", "{b:?}");
    assert_eq!(slots(&d, 11), 0);
    assert!(d.destinations.iter().all(|t| !t.table.contains(&11)));
    let id_d = new.id_of("d").expect("d holds an id");
    assert!(![10, 11, 12].contains(&id_d), "d takes a free id");
    assert!(slots(&d, id_d) > 0, "d is offered new flows");
    assert!(d.reset_flows.is_empty(), "no flow is reset by a reload");
}

#[test]
fn a_drained_hop_takes_no_new_flows_and_keeps_its_own_a_disabled_one_loses_them() {
    let (old, flows) = learned();
    // Reload with a drained and c disabled.
    let mut new = Controller::new(
        vec![
            ControllerHop {
                admin: Admin::Drain,
                ..hop("a", 10)
            },
            hop("b", 11),
            ControllerHop {
                admin: Admin::Disabled,
                ..hop("c", 12)
            },
        ],
        params(),
    );
    let (_, d) = new.handle_reload(old);
    assert_eq!(
        (slots(&d, 10), slots(&d, 12)),
        (0, 0),
        "neither takes new flows"
    );
    assert!(d
        .destinations
        .iter()
        .all(|t| !t.table.contains(&10) && !t.table.contains(&12)));
    let enabled = |id: u32| d.hops.iter().find(|h| h.id == id).unwrap().enabled;
    assert!(enabled(10), "a drained hop still forwards its flows");
    assert!(!enabled(12), "a disabled one does not");
    // The next tick resets c's flows only, and says why.
    let d = new.handle_tick(10 * SEC, &flows, &[]);
    let mut reset: Vec<u16> = d.reset_flows.iter().map(|k| k.src_port).collect();
    reset.sort_unstable();
    assert_eq!(reset, vec![2, 5], "c's two flows");
    assert!(d.events.iter().any(|e| matches!(e,
        Event::FlowsReset { hop, why, .. } if hop == "c" && why.contains("disabled"))));
    // A link event does not bring a drained hop back.
    new.handle_link(11 * SEC, "a", false);
    let d = new.handle_link(12 * SEC, "a", true);
    let d = if d
        .events
        .iter()
        .any(|e| matches!(e, Event::HopHeldDown { .. }))
    {
        new.handle_timeout(12 * SEC + params().link_hold_down_ns)
    } else {
        d
    };
    assert_eq!(slots(&d, 10), 0, "still drained");
}
