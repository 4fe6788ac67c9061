//! The engine's rules (continued): properties over random runs,
//! measurement, tables and health.

use super::engine_tests::{hops, params, sample, sample_to, slots_of, SEC};
use super::*;
use crate::policy::{slot_table, SpeedSource};
use proptest::prelude::*;

/// A random run: hop count, and per tick a list of (hop, destination,
/// bytes, busy tenths of the tick, answered).
/// (hop, destination, bytes, busy tenths, answered).
type TraceFlow = (u32, u64, u64, u64, bool);

fn arb_run() -> impl Strategy<Value = (usize, Vec<Vec<TraceFlow>>)> {
    (2usize..12).prop_flat_map(|n| {
        let flow = (
            0..n as u32,
            0u64..4,
            0u64..20_000_000,
            1u64..=10,
            proptest::bool::weighted(0.9),
        );
        (
            Just(n),
            proptest::collection::vec(proptest::collection::vec(flow, 0..40), 1..6),
        )
    })
}

/// Feed `run` to a fresh engine; returns every tick's report.
fn replay(n: usize, run: &[Vec<TraceFlow>], seed: u64) -> Vec<TickReport<u32>> {
    let mut p = params();
    p.seed = seed;
    let mut e: Engine<u32> = Engine::new(hops(&vec![100.0; n]), p);
    let mut key = 0;
    run.iter()
        .enumerate()
        .map(|(t, flows)| {
            let t = t as u64 + 1;
            let samples: Vec<_> = flows
                .iter()
                .map(|&(hop, dest, bytes, busy, answered)| {
                    key += 1;
                    let mut f = sample_to(
                        key,
                        dest,
                        hop,
                        bytes,
                        (t - 1) * SEC,
                        (t - 1) * SEC + busy * SEC / 10,
                    );
                    if !answered {
                        f.reply_packets = 0;
                    }
                    f
                })
                .collect();
            e.tick(t * SEC, samples)
        })
        .collect()
}

proptest! {
    #[test]
    fn window_and_table_invariants_hold_on_every_tick((n, run) in arb_run(), seed in 0u64..1000) {
        let p = params();
        for r in replay(n, &run, seed) {
            // Window size never below N (every hop here is usable or
            // disappeared; count those left).
            let usable = r.hops.iter().filter(|h| h.usable).count();
            prop_assert!(r.window.len() >= p.window_base.min(usable), "window {:?}, {} usable", r.window, usable);
            // Weights of a window sum to its slot count: every slot
            // holds a member of the window.
            if !r.window.is_empty() {
                prop_assert!(r.table.iter().all(|h| r.window.contains(h)));
            }
            // No hop above max share while the window has 2+ hops (one
            // slot of rounding).
            if r.window.len() >= 2 {
                for &h in &r.window {
                    let slots = slots_of(&r.table, h) as f64;
                    prop_assert!(slots <= p.max_share * p.slot_count as f64 + 1.0, "hop {} holds {}", h, slots);
                }
            }
            for d in &r.destination_tables {
                prop_assert!(d.members.len() >= p.window_base.min(usable));
                prop_assert!(d.table.iter().all(|h| d.members.contains(h)));
            }
        }
    }

    #[test]
    fn the_same_inputs_and_seed_give_the_same_decisions((n, run) in arb_run(), seed in 0u64..1000) {
        // Issue 4: "the same inputs and seed give the same decisions".
        let a = replay(n, &run, seed);
        let b = replay(n, &run, seed);
        for (x, y) in a.iter().zip(&b) {
            prop_assert_eq!(&x.window, &y.window);
            prop_assert_eq!(&x.table, &y.table);
            prop_assert_eq!(&x.disappeared, &y.disappeared);
            let dx: Vec<_> = x.destination_tables.iter().map(|d| (d.destination, &d.members, &d.table)).collect();
            let dy: Vec<_> = y.destination_tables.iter().map(|d| (d.destination, &d.members, &d.table)).collect();
            prop_assert_eq!(dx, dy);
        }
    }
}

#[test]
fn a_port_set_table_uses_only_the_hops_accepting_it() {
    // SPEC 6 / issue 6: "a flow is never steered to a hop that does not
    // accept its destination port".
    let e: Engine<u32> = Engine::new(hops(&[100.0, 100.0, 100.0]), params());
    let t = e.table_for(&[false, true, true]);
    assert_eq!(slots_of(&t, 0), 0);
    assert!(slots_of(&t, 1) > 100 && slots_of(&t, 2) > 100);
    let nobody = e.table_for(&[false, false, false]);
    assert!(nobody.iter().all(|&h| h == slot_table::EMPTY));
    // One accepting hop takes the whole table (max share needs 2+ hops).
    let one = e.table_for(&[false, false, true]);
    assert_eq!(slots_of(&one, 2), 307);
}

#[test]
fn initial_table_follows_min_of_estimates() {
    let e: Engine<u32> = Engine::new(hops(&[100.0, 100.0, 100.0]), params());
    for h in 0..3 {
        let s = slots_of(e.table(), h);
        assert!((101..=103).contains(&s), "hop {h}: {s}");
    }
}

#[test]
fn slow_hop_loses_share_after_one_tick() {
    // "rewrites the slot table in proportion to each hop's measured speed
    // over the past K seconds" (issue 2).
    let mut e: Engine<u32> = Engine::new(hops(&[100.0, 100.0, 100.0]), params());
    let flows = vec![
        sample(1, 0, 100_000_000, 0, SEC),
        sample(2, 1, 100_000_000, 0, SEC),
        sample(3, 2, 10_000_000, 0, SEC),
    ];
    let r = e.tick(SEC, flows);
    assert_eq!(r.hops[2].speed_source, SpeedSource::Measured);
    assert!((r.hops[2].speed - 10e6).abs() < 1.0, "{}", r.hops[2].speed);
    let share = slots_of(&r.table, 2) as f64 / 307.0;
    assert!(share < 0.07, "slow hop keeps {share}");
    assert!(share > 0.0, "exploration floor keeps it measurable");
}

#[test]
fn speed_uses_bytes_of_this_tick_only() {
    let mut e: Engine<u32> = Engine::new(hops(&[1.0]), params());
    e.tick(SEC, vec![sample(1, 0, 1_000, 0, SEC)]);
    let r = e.tick(2 * SEC, vec![sample(1, 0, 3_000, 0, 2 * SEC)]);
    assert_eq!(r.hops[0].bytes, 2_000);
    assert!((r.hops[0].speed - 2_000.0).abs() < 1e-6);
}

#[test]
fn flow_without_reply_after_t_is_failed_once() {
    let mut e: Engine<u32> = Engine::new(hops(&[1.0, 1.0]), params());
    let mut f = sample(7, 1, 60, 0, 0);
    f.reply_packets = 0;
    assert_eq!(e.tick(SEC, vec![f]).hops[1].newly_failed, 0);
    assert_eq!(e.tick(4 * SEC, vec![f]).hops[1].newly_failed, 1);
    let r = e.tick(5 * SEC, vec![f]);
    assert_eq!(r.hops[1].newly_failed, 0);
    assert_eq!(r.hops[1].failed_total, 1);
}

#[test]
fn unusable_hop_gets_no_slots() {
    let mut e: Engine<u32> = Engine::new(hops(&[1.0, 1.0]), params());
    e.set_usable(0, false);
    let r = e.tick(SEC, Vec::new());
    assert_eq!(slots_of(&r.table, 0), 0);
    assert_eq!(slots_of(&r.table, 1), 307);
}

#[test]
fn a_hop_answering_nothing_is_out_of_the_table_within_one_tick() {
    // SPEC 5.5: "disappeared: ... no reply on any flow: removed from
    // every window within one tick".
    let mut e: Engine<u32> = Engine::new(hops(&[100.0, 100.0]), params());
    let mut flows: Vec<FlowSample<u32>> = (0..3)
        .map(|k| {
            let mut f = sample(k, 1, 60, 0, 0);
            f.reply_packets = 0;
            f
        })
        .collect();
    flows.push(sample(10, 0, 1_000_000, 0, SEC));
    let r = e.tick(4 * SEC, flows.clone());
    assert_eq!(r.disappeared, vec![1]);
    assert_eq!(slots_of(&r.table, 1), 0);
    assert!(!r.hops[1].usable);
    // Not declared twice; back for a re-test after L (60 s).
    assert!(e.tick(5 * SEC, Vec::new()).disappeared.is_empty());
    let later = e.tick(65 * SEC, Vec::new());
    assert!(later.hops[1].usable && slots_of(&later.table, 1) > 0);
}

#[test]
fn a_hop_that_answers_some_flows_is_not_disappeared() {
    // Blocking some destinations is "blocked", not "disappeared".
    let mut e: Engine<u32> = Engine::new(hops(&[100.0, 100.0]), params());
    let mut flows: Vec<FlowSample<u32>> = (0..5)
        .map(|k| {
            let mut f = sample(k, 1, 60, 0, 0);
            f.reply_packets = 0;
            f
        })
        .collect();
    let mut ok = sample(10, 1, 1_000_000, 0, SEC);
    ok.reply_bytes = 50_000;
    flows.push(ok);
    let r = e.tick(4 * SEC, flows);
    assert!(r.disappeared.is_empty());
    assert_eq!(r.hops[1].newly_failed, 5);
    assert!(slots_of(&r.table, 1) > 0);
}

#[test]
fn unanswered_flows_do_not_stretch_busy_time() {
    let mut e: Engine<u32> = Engine::new(hops(&[100.0, 100.0]), params());
    let answered = sample(1, 0, 1_000_000, 0, SEC / 2);
    let mut silent = sample(2, 0, 300, 0, SEC);
    silent.reply_packets = 0;
    let r = e.tick(SEC, vec![answered, silent]);
    // 1 MB over the answered flow's half second, not over a whole second.
    assert!(
        (r.hops[0].speed - 2_000_000.0).abs() < 1.0,
        "{}",
        r.hops[0].speed
    );
}

#[test]
fn a_slow_member_weighs_a_tenth_of_its_speed_while_it_cannot_be_replaced() {
    // SPEC 5.5 "bad: low measured speed ... -> low weight, then replaced":
    // three hops, no fourth to replace the slow one with.
    let mut p = params();
    p.window_base = 3;
    p.max_share = 0.5;
    let mut e: Engine<u32> = Engine::new(hops(&[100.0; 3]), p.clone());
    // 200, 100 and 5 MB/s, each busy for the whole second.
    let flows = vec![
        sample(1, 0, 200_000_000, 0, SEC),
        sample(2, 1, 100_000_000, 0, SEC),
        sample(3, 2, 5_000_000, 0, SEC),
    ];
    let r = e.tick(SEC, flows);
    assert_eq!(r.window.len(), 3, "nobody to replace hop 2 with");
    // Weights 200, 100 and 5 x 0.1 (5 < a tenth of 200); no fresh hop, so
    // no exploration floor; hop 0 capped at 0.5, its excess shared by the
    // others in proportion.
    let w = [200e6, 100e6, 5e6 * SLOW_WEIGHT];
    let total: f64 = w.iter().sum();
    let raw: Vec<f64> = w.iter().map(|x| x / total).collect();
    let rest = raw[1] + raw[2];
    let want = [0.5, raw[1] * 0.5 / rest, raw[2] * 0.5 / rest];
    for (h, want) in r.hops.iter().zip(want) {
        assert!(
            (h.share - want).abs() < 1e-9,
            "{}: {} want {want}",
            h.name,
            h.share
        );
    }
}

#[test]
fn bulk_flows_measure_a_hop_that_small_flows_keep_busy() {
    // A hop busy the whole tick with 100 small flows (10 kB each, 10 ms
    // apart, each 5 ms long) and one bulk flow of 2 MB in 20 ms: over all
    // flows it reads 3 MB/s, its bulk flow alone moved 100 MB/s.
    let run = |bulk: u64| {
        let mut e: Engine<u32> = Engine::new(
            hops(&[1e6; 4]),
            Params {
                bulk_flow_bytes: bulk,
                ..params()
            },
        );
        let h = e.window()[0];
        let ms = SEC / 1000;
        let mut flows: Vec<_> = (0..100)
            .map(|k| {
                sample(
                    k,
                    h,
                    10_000,
                    k as u64 * 10 * ms,
                    k as u64 * 10 * ms + 5 * ms,
                )
            })
            .collect();
        flows.push(sample(1000, h, 2_000_000, 500 * ms, 520 * ms));
        e.tick(SEC, flows);
        e.last_speeds[h as usize]
    };
    // Busy time over all flows: 100 x 5 ms, and the 10 ms of the bulk
    // flow that no small flow covers (505-510 and 515-520 ms).
    let all = 3_000_000.0 / 0.51;
    assert!((run(0) - all).abs() < 1.0, "{} against {all}", run(0));
    let bulk = 2_000_000.0 / 0.02;
    assert!((run(1_000_000) - bulk).abs() < 1.0, "{}", run(1_000_000));
    // Under the threshold, the flow is not bulk: the figure over all flows.
    assert!((run(3_000_000) - all).abs() < 1.0);
}

#[test]
fn below_capacity_the_load_rule_moves_new_flows_to_the_fast_hops() {
    // Three hops measured at 20, 20 and 5 MB/s (bytes over busy time)
    // that carried 9 MB/s together in a 1 s tick.
    let flows = || {
        vec![
            sample(1, 0, 4_000_000, 0, SEC / 5),
            sample(2, 1, 4_000_000, 0, SEC / 5),
            sample(3, 2, 1_000_000, 0, SEC / 5),
        ]
    };
    let shares = |load_aware: bool| {
        let mut p = params();
        p.window_base = 3;
        p.max_share = 1.0;
        p.load_aware = load_aware;
        let mut e: Engine<u32> = Engine::new(hops(&[1e7, 1e7, 1e7]), p);
        let r = e.tick(SEC, flows());
        let speeds: Vec<f64> = r.hops.iter().map(|h| h.speed).collect();
        let carried: f64 = r.hops.iter().map(|h| h.bytes as f64).sum();
        let s: Vec<f64> = r.hops.iter().map(|h| h.share).collect();
        (s, speeds, carried)
    };
    let (by_speed, speeds, _) = shares(false);
    assert!(
        (speeds[0] - 2e7).abs() < 1.0 && (speeds[2] - 5e6).abs() < 1.0,
        "{speeds:?}"
    );
    assert!(
        (by_speed[2] - 5.0 / 45.0).abs() < 1e-9,
        "by speed: {by_speed:?}"
    );
    let (by_load, _, carried) = shares(true);
    // Expected from the rule: weights times their load factors; a hop the
    // rule leaves out keeps the exploration floor (5% / 3 hops), the others
    // share the rest by their weights.
    let f = weights::load_factors(&speeds, carried);
    assert_eq!(f[2], 0.0, "the slow hop gets none by the rule: {f:?}");
    let floor = Params::default().exploration_share / 3.0;
    let w: Vec<f64> = (0..2).map(|i| speeds[i] * f[i]).collect();
    let total: f64 = w.iter().sum();
    for i in 0..2 {
        let want = (1.0 - floor) * w[i] / total;
        assert!(
            (by_load[i] - want).abs() < 1e-9,
            "{by_load:?}: hop {i} want {want}"
        );
    }
    assert!(
        (by_load[2] - floor).abs() < 1e-9,
        "{by_load:?}: measurable at the floor"
    );
    assert!(by_load[2] < by_speed[2] / 5.0);
}
