//! The controller's status view: each hop's condition and the exclusions
//! and destination windows in force, as an operator's `steerer status`
//! shows them.

use steerer_common::{flow::DestKey, FlowKey, FlowValue};

use super::{controller_view::HopCondition, *};

const SEC: u64 = 1_000_000_000;

fn params() -> Params {
    Params {
        tick_ns: 5 * SEC,
        slot_count: 101,
        window_base: 3,
        link_hold_down_ns: 4 * SEC,
        ..Params::default()
    }
}

fn failing(id: u32, dst: u8, port: u16) -> Vec<(FlowKey, FlowValue)> {
    (0..2u16)
        .map(|i| {
            let v = FlowValue {
                hop: id,
                packets: 3,
                bytes: 180,
                ..FlowValue::default()
            };
            (test_support::flow_key(6, dst, port, 100 + i), v)
        })
        .collect()
}

#[test]
fn each_hop_has_the_condition_its_last_word_gave_it() {
    let mut hops: Vec<ControllerHop> = (0..4)
        .map(|i| test_support::hop(&format!("h{i}"), Some(10 + i), 1e8))
        .collect();
    hops[2].admin = Admin::Drain;
    hops[3].admin = Admin::Disabled;
    let mut c = Controller::new(hops, params());
    c.handle_start(0, &[], &[]);
    assert_eq!(c.hop_condition("h0"), Some(HopCondition::Up));
    assert_eq!(c.hop_condition("h2"), Some(HopCondition::Draining));
    assert_eq!(c.hop_condition("h3"), Some(HopCondition::Disabled));
    assert_eq!(c.hop_condition("nope"), None);
    c.handle_link(SEC, "h1", false);
    assert_eq!(c.hop_condition("h1"), Some(HopCondition::LinkDown));
    c.handle_link(2 * SEC, "h1", true);
    // Back at 2 s with a 4 s hold-down: new flows from 6 s.
    assert_eq!(
        c.hop_condition("h1"),
        Some(HopCondition::HeldDown { until_ns: 6 * SEC })
    );
    c.handle_timeout(6 * SEC);
    assert_eq!(c.hop_condition("h1"), Some(HopCondition::Up));
    // A drained hop's link going down does not hide the operator's word.
    c.handle_link(7 * SEC, "h2", false);
    assert_eq!(c.hop_condition("h2"), Some(HopCondition::Draining));
}

#[test]
fn exclusions_and_destination_windows_are_listed_by_name_with_their_end() {
    let mut c = Controller::new(
        (0..3)
            .map(|i| test_support::hop(&format!("h{i}"), Some(10 + i), 1e8))
            .collect(),
        params(),
    );
    c.handle_start(0, &[], &[]);
    assert!(c.exclusions().is_empty());
    assert!(c.destination_windows().is_empty());
    let now = 5 * SEC;
    let flows = failing(11, 2, 8443);
    c.handle_tick(now, &flows, &[]);
    let dest = DestKey::of(&flows[0].0);
    // Two unanswered flows block h1 for the destination for the first
    // exclusion's length.
    assert_eq!(
        c.exclusions(),
        vec![controller_view::ExclusionView {
            hop: "h1".into(),
            dest,
            until_ns: now + blocked::FIRST_EXCLUSION_NS,
        }]
    );
    let windows = c.destination_windows();
    assert_eq!(windows.len(), 1, "{windows:?}");
    assert_eq!(windows[0].dest, dest);
    assert!(!windows[0].hops.contains(&"h1".to_string()), "{windows:?}");
    assert!(!windows[0].hops.is_empty());
}
