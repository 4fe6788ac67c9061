use super::*;
use proptest::prelude::*;

const S: u64 = 1_000_000_000;

fn iv(start: u64, end: u64, bytes: u64) -> PacketInterval {
    PacketInterval {
        start_ns: start * S,
        end_ns: end * S,
        bytes,
    }
}

#[test]
fn speed_is_data_over_busy_time() {
    // SPEC 5.1: "speed = interval data / interval time"; under a
    // millisecond of activity the quotient is noise.
    assert_eq!(speed_of(1000, 2 * S), Some(500.0));
    assert_eq!(speed_of(1000, 999_999), None);
    assert_eq!(speed_of(0, S), None);
}

#[test]
fn sequence_answers_over_l_and_forgets_older_sub_windows() {
    // SPEC 5.2: "a ring of smaller windows (K seconds)"; L = 3 K here.
    let mut w = WindowSequence::new(5 * S, 15 * S, 0, 0);
    w.record(iv(0, 4, 400), true);
    w.roll(5 * S);
    w.record(iv(5, 9, 800), true);
    w.record(iv(6, 8, 100), false);
    w.roll(10 * S);
    assert_eq!(w.bytes(), 1300);
    assert_eq!(w.connections_started(), 2);
    assert_eq!(w.busy_ns(), 8 * S);
    assert_eq!(w.speed(), Some(1300.0 / 8.0));
    // Sub-window speeds: 400 B over 4 s, 900 B over 4 s busy (the union
    // of 5-9 and 6-8): the peak within L is the second.
    assert_eq!(w.peak_speed(), Some(225.0));
    w.roll(15 * S); // the first sub-window (0-5 s) leaves
    assert_eq!(w.bytes(), 900);
    assert_eq!(w.busy_ns(), 4 * S);
    w.roll(20 * S);
    assert_eq!(w.bytes(), 0);
}

#[test]
fn a_flow_spanning_sub_windows_counts_once_in_busy_time() {
    let mut w = WindowSequence::new(5 * S, 60 * S, 0, 0);
    w.record(iv(2, 5, 10), true);
    w.roll(5 * S);
    w.record(iv(4, 9, 10), false); // the same flow seen again
    assert_eq!(w.busy_ns(), 7 * S);
}

#[test]
fn touching_flows_form_separate_groups() {
    // SPEC 5.2: "an end event is ordered before a start event when the
    // end lies within M seconds of the start".
    let m = S / 20; // 50 ms
    let mut flows = vec![
        (0, S),
        // Starts 30 ms before the first ends: within M, so a new group.
        (S - 30_000_000, 2 * S),
        // Starts 500 ms before the second ends: a real overlap, same group.
        (2 * S - S / 2, 3 * S),
    ];
    let g = group(&mut flows, m);
    assert_eq!(g.len(), 2, "{g:?}");
    assert_eq!(g[1], (S - 30_000_000, 3 * S));
    // Busy time is the union all the same: 3 s.
    let mut w = WindowSequence::new(5 * S, 60 * S, m, 0);
    assert_eq!(w.record_batch(3, &mut flows, 3), 3 * S);
}

#[test]
fn memory_per_sub_window_is_bounded() {
    let mut w = WindowSequence::new(5 * S, 60 * S, 0, 0);
    for i in 0..1000u64 {
        w.record(
            PacketInterval {
                start_ns: i * 10,
                end_ns: i * 10 + 3,
                bytes: 1,
            },
            true,
        );
    }
    assert!(w.current().spans.len() <= MAX_GROUPS);
    // Merging closes gaps only: busy time never shrinks below the truth.
    assert!(w.busy_ns() >= 3000);
    assert_eq!(w.bytes(), 1000);
}

proptest! {
    #[test]
    fn busy_time_is_the_union_while_under_the_bound(
        ivs in proptest::collection::vec((0u64..1000, 0u64..100), 0..(MAX_GROUPS))
    ) {
        let mut w = WindowSequence::new(1000, 1000, 0, 0);
        let mut raw = Vec::new();
        for &(s, d) in &ivs {
            w.record(PacketInterval { start_ns: s, end_ns: s + d, bytes: 1 }, true);
            raw.push((s, s + d));
        }
        prop_assert_eq!(w.busy_ns(), crate::policy::busy_time::union_length(&mut raw));
    }

    #[test]
    fn groups_cover_exactly_the_union_when_m_is_zero(
        ivs in proptest::collection::vec((0u64..1000, 1u64..100), 0..40)
    ) {
        let mut raw: Vec<(u64, u64)> = ivs.iter().map(|&(s, d)| (s, s + d)).collect();
        let g = group(&mut raw.clone(), 0);
        let total: u64 = g.iter().map(|&(s, e)| e - s).sum();
        prop_assert_eq!(total, crate::policy::busy_time::union_length(&mut raw));
        for pair in g.windows(2) {
            prop_assert!(pair[0].1 <= pair[1].0, "groups overlap: {:?}", pair);
        }
    }
}
