//! The engine's rules, one test per rule of SPEC 5: windows and
//! destination windows here; measurement, tables, health and properties
//! in `engine_more_tests.rs`.

use super::*;
use crate::policy::SpeedSource;

pub(super) const SEC: u64 = 1_000_000_000;

pub(super) fn params() -> Params {
    Params {
        tick_ns: SEC,
        memory_ns: 60 * SEC,
        fail_after_ns: 3 * SEC,
        slot_count: 307,
        ..Params::default()
    }
}

pub(super) fn hops(estimates: &[f64]) -> Vec<HopSpec> {
    estimates
        .iter()
        .enumerate()
        .map(|(i, &e)| HopSpec {
            name: format!("h{i}"),
            initial_estimate: e,
            operator: None,
            subnet: None,
            fresh: false,
            latency_ms: None,
        })
        .collect()
}

pub(super) fn sample(key: u32, hop: u32, bytes: u64, first: u64, last: u64) -> FlowSample<u32> {
    FlowSample {
        key,
        destination: 0,
        hop,
        bytes,
        reply_bytes: 0,
        packets: 1,
        reply_packets: 1,
        first_seen_ns: first,
        last_seen_ns: last,
        weak_evidence: false,
    }
}

pub(super) fn slots_of(table: &[u32], hop: u32) -> usize {
    table.iter().filter(|&&x| x == hop).count()
}

pub(super) fn sample_to(
    key: u32,
    dest: u64,
    hop: u32,
    bytes: u64,
    first: u64,
    last: u64,
) -> FlowSample<u32> {
    FlowSample {
        destination: dest,
        ..sample(key, hop, bytes, first, last)
    }
}

pub(super) fn members(e: &Engine<u32>) -> Vec<u32> {
    let mut m = e.window().to_vec();
    m.sort_unstable();
    m
}

#[test]
fn the_class_window_starts_with_n_hops_and_only_they_get_slots() {
    // "Every class starts with a window of N hops" (SPEC 5.4).
    let e: Engine<u32> = Engine::new(hops(&[100.0; 10]), params());
    assert_eq!(e.window().len(), 4);
    for h in 0..10 {
        assert_eq!(
            slots_of(e.table(), h) > 0,
            e.window().contains(&h),
            "hop {h}"
        );
    }
}

#[test]
fn a_bad_member_is_replaced_by_a_hop_not_seen_before() {
    // "bad: low measured speed ... -> low weight, then replaced" (SPEC 5.5).
    let mut e: Engine<u32> = Engine::new(hops(&[100.0; 10]), params());
    let before = members(&e);
    let slow = before[0];
    let flows: Vec<_> = before
        .iter()
        .enumerate()
        .map(|(i, &h)| {
            let bytes = if h == slow { 10_000 } else { 10_000_000 };
            // Busy a tenth of the tick: fast, not saturated.
            sample(i as u32, h, bytes, 0, SEC / 10)
        })
        .collect();
    let r = e.tick(SEC, flows);
    assert_eq!(r.window.len(), 4, "window stays at N");
    assert!(
        !r.window.contains(&slow),
        "slow hop {slow} replaced: {:?}",
        r.window
    );
    let newcomer: Vec<u32> = r
        .window
        .iter()
        .copied()
        .filter(|h| !before.contains(h))
        .collect();
    assert_eq!(newcomer.len(), 1);
    assert_eq!(slots_of(&r.table, slow), 0);
    assert!(slots_of(&r.table, newcomer[0]) > 0);
}

#[test]
fn a_busy_destination_gets_its_own_window_of_n_plus_s_per_r() {
    // "If more than R connections to a destination D were tried in the
    // past K seconds, D gets its own window ... at least
    // N + (connections / R) * S" (SPEC 5.4; N 4, R 8, S 2).
    let mut e: Engine<u32> = Engine::new(hops(&[100.0; 12]), params());
    let flows: Vec<_> = (0..20)
        .map(|k| sample_to(k, 7, e.window()[0], 1000, SEC / 2, SEC))
        .collect();
    let r = e.tick(SEC, flows);
    let w = e.destination_window(7).expect("own window").to_vec();
    assert_eq!(w.len(), 4 + (20 / 8) * 2);
    let t = e.table_for_destination(7).unwrap();
    assert_eq!(t.len(), params().destination_slot_count as usize);
    assert!(t.iter().all(|h| w.contains(h)));
    assert_eq!(r.destination_tables.len(), 1);
    // Exactly R connections is not "more than R".
    let mut e2: Engine<u32> = Engine::new(hops(&[100.0; 12]), params());
    e2.tick(
        SEC,
        (0..8)
            .map(|k| sample_to(k, 9, 0, 1, SEC / 2, SEC))
            .collect::<Vec<_>>(),
    );
    assert!(e2.destination_window(9).is_none());
}

#[test]
fn a_destination_window_shrinks_by_one_then_closes_after_l() {
    // "a window above its baseline loses the one hop that routed the
    // least data in the past K seconds" (SPEC 5.4).
    let mut e: Engine<u32> = Engine::new(hops(&[100.0; 12]), params());
    e.tick(
        SEC,
        (0..24)
            .map(|k| sample_to(k, 7, 0, 1, SEC / 2, SEC))
            .collect::<Vec<_>>(),
    );
    assert_eq!(e.destination_window(7).unwrap().len(), 4 + 3 * 2);
    // 9 more connections at 30 s; the first 24 leave the L window at 61 s.
    for t in 2..=60u64 {
        let flows: Vec<_> = if t == 30 {
            (100..109)
                .map(|k| sample_to(k, 7, 0, 1, t * SEC - SEC / 2, t * SEC))
                .collect()
        } else {
            Vec::new()
        };
        e.tick(t * SEC, flows);
    }
    // 33 connections over L: 4 + 4 * 2.
    assert_eq!(e.destination_window(7).unwrap().len(), 12);
    let sizes: Vec<usize> = (61..=68u64)
        .map(|t| {
            e.tick(t * SEC, Vec::new());
            e.destination_window(7).unwrap().len()
        })
        .collect();
    // 9 connections over L: size 4 + 1 * 2 = 6, one hop per tick.
    assert_eq!(sizes, vec![11, 10, 9, 8, 7, 6, 6, 6]);
    for t in 67..=95u64 {
        e.tick(t * SEC, Vec::new());
    }
    assert!(
        e.destination_window(7).is_none(),
        "closed after L without connections"
    );
}

#[test]
fn destination_weights_use_per_destination_data_where_there_is_enough() {
    // SPEC 5.3: "(a) by all data through h, and (b) by data from h to D.
    // Per-destination data is used where there is enough of it".
    let mut p = params();
    p.window_base = 2;
    p.max_share = 1.0;
    let mut e: Engine<u32> = Engine::new(hops(&[100.0, 100.0]), p);
    // Tick 1: destination 5 gets its own window (both hops).
    e.tick(
        SEC,
        (0..10)
            .map(|k| sample_to(k, 5, k % 2, 1, SEC / 2, SEC))
            .collect::<Vec<_>>(),
    );
    assert!(e.destination_window(5).is_some());
    // Tick 2: hop 0 is fast overall (to destination 1) but slow to 5;
    // hop 1 is slow overall but fast to 5.
    let flows = vec![
        sample_to(20, 1, 0, 50_000_000, SEC, 2 * SEC),
        sample_to(21, 5, 0, 100_000, SEC, 2 * SEC),
        sample_to(22, 5, 1, 5_000_000, SEC, 2 * SEC),
    ];
    let r = e.tick(2 * SEC, flows);
    assert!(
        slots_of(&r.table, 0) > slots_of(&r.table, 1),
        "class table: hop 0 faster"
    );
    let d = e.table_for_destination(5).unwrap();
    assert!(
        slots_of(d, 1) > slots_of(d, 0),
        "destination 5: hop 1 faster to it"
    );
}

#[test]
fn a_claimed_speed_never_outweighs_a_measured_one() {
    // "Claimed figures never outweigh measured ones" (SPEC 5.3).
    let mut p = params();
    p.max_share = 1.0;
    let mut e: Engine<u32> = Engine::new(hops(&[1e6, 1e12]), p);
    let r = e.tick(SEC, vec![sample(1, 0, 10_000_000, 0, SEC)]);
    assert_eq!(r.hops[1].speed_source, SpeedSource::Estimated);
    assert!(
        r.hops[1].share <= r.hops[0].share + 1e-9,
        "{} vs {}",
        r.hops[1].share,
        r.hops[0].share
    );
}

#[test]
fn one_operator_holds_at_most_its_share_and_windows_mix_operators() {
    // SPEC 5.6: "max share per hop and per operator tag; windows drawn
    // from diverse operators".
    let mut hs = hops(&[100.0; 8]);
    for (i, h) in hs.iter_mut().enumerate() {
        h.operator = Some(if i < 6 {
            "big".into()
        } else {
            format!("small{i}")
        });
    }
    let e: Engine<u32> = Engine::new(hs.clone(), params());
    let w = e.window();
    assert!(
        w.iter().filter(|&&h| h >= 6).count() >= 2,
        "both small operators in {w:?}"
    );
    let big: usize = w
        .iter()
        .filter(|&&h| h < 6)
        .map(|&h| slots_of(e.table(), h))
        .sum();
    assert!(
        big as f64 <= 0.5 * 307.0 + 2.0,
        "operator big holds {big} of 307 slots"
    );
}

#[test]
fn a_saturated_window_grows_and_an_idle_one_shrinks_back() {
    let mut e: Engine<u32> = Engine::new(hops(&[100.0; 40]), params());
    let w = e.window().to_vec();
    // Every member moving its best speed the whole tick: saturated.
    let flows: Vec<_> = w.iter().map(|&h| sample(h, h, 1_000_000, 0, SEC)).collect();
    let r = e.tick(SEC, flows);
    assert_eq!(r.window.len(), 16, "fourfold");
    // Then a tick at a tenth of that: one member fewer per tick, the
    // one that moved the least, down to N.
    let quiet = |t: u64, w: &[u32]| -> Vec<FlowSample<u32>> {
        w.iter()
            .map(|&h| {
                sample(
                    1000 * t as u32 + h,
                    h,
                    100_000 + h as u64,
                    (t - 1) * SEC,
                    (t - 1) * SEC + SEC / 10,
                )
            })
            .collect()
    };
    let r2 = e.tick(2 * SEC, quiet(2, &r.window));
    assert_eq!(r2.window.len(), 15);
    let least = *r.window.iter().min().unwrap();
    assert!(
        !r2.window.contains(&least),
        "the member with the least data left"
    );
    let mut last = r2;
    for t in 3..30 {
        last = e.tick(t * SEC, quiet(t, &last.window));
    }
    assert_eq!(last.window.len(), 4, "back to N");
}

#[test]
fn a_destination_window_holds_only_hops_allowed_for_it() {
    // A hop blocked for D (or whose exit policy refuses D's port) never
    // enters D's own window or table.
    let mut e: Engine<u32> = Engine::new(hops(&[100.0; 6]), params());
    let blocked = e.window()[0];
    let not_blocked = |d: u64, h: u32| !(d == 7 && h == blocked);
    let flows: Vec<_> = (0..20)
        .map(|k| sample_to(k, 7, 1, 1, SEC / 2, SEC))
        .collect();
    let r = e.tick_with(SEC, flows, &not_blocked);
    let w = e.destination_window(7).unwrap();
    assert!(!w.contains(&blocked) && w.len() == 5, "{w:?}");
    assert_eq!(slots_of(e.table_for_destination(7).unwrap(), blocked), 0);
    assert!(r.window.contains(&blocked), "the class window keeps it");
}

#[test]
fn the_least_recently_used_destination_window_gives_way() {
    let mut p = params();
    p.max_destination_windows = 2;
    let mut e: Engine<u32> = Engine::new(hops(&[100.0; 6]), p);
    let burst = |d: u64, base: u32, t: u64| -> Vec<FlowSample<u32>> {
        (0..9)
            .map(|k| sample_to(base + k, d, 0, 1, t * SEC - SEC / 2, t * SEC))
            .collect()
    };
    e.tick(SEC, burst(1, 0, 1));
    e.tick(2 * SEC, burst(2, 100, 2));
    let mut f = burst(1, 200, 3);
    f.extend(burst(3, 300, 3));
    e.tick(3 * SEC, f);
    assert!(e.destination_window(1).is_some(), "used at tick 3");
    assert!(e.destination_window(2).is_none(), "least recently used");
    assert!(e.destination_window(3).is_some());
}

#[test]
fn moved_slots_are_reported_against_the_minimum() {
    let mut e: Engine<u32> = Engine::new(hops(&[100.0, 100.0, 100.0]), params());
    let r = e.tick(
        SEC,
        vec![
            sample(1, 0, 10_000_000, 0, SEC),
            sample(2, 1, 10_000_000, 0, SEC),
            sample(3, 2, 1_000_000, 0, SEC),
        ],
    );
    assert!(r.min_moved_slots > 0);
    assert!(r.moved_slots >= r.min_moved_slots);
    assert!(
        r.moved_slots <= 3 * r.min_moved_slots,
        "{} vs {}",
        r.moved_slots,
        r.min_moved_slots
    );
}
