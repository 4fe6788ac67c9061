//! Busy time of a hop: the length of the union of its flows' intervals,
//! found by a sweep over start/end events (SPEC 5.2).

/// Total time covered by at least one of `intervals` (`(start, end)`, any
/// unit). Intervals with `end <= start` cover nothing.
pub fn union_length(intervals: &mut [(u64, u64)]) -> u64 {
    intervals.sort_unstable();
    let mut total = 0u64;
    let mut current: Option<(u64, u64)> = None;
    for &(start, end) in intervals.iter() {
        if end <= start {
            continue;
        }
        current = match current {
            Some((s, e)) if start <= e => Some((s, e.max(end))),
            Some((s, e)) => {
                total += e - s;
                Some((start, end))
            }
            None => Some((start, end)),
        };
    }
    if let Some((s, e)) = current {
        total += e - s;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn overlapping_and_disjoint_intervals() {
        assert_eq!(union_length(&mut [(0, 10), (5, 15), (20, 25)]), 20);
        assert_eq!(union_length(&mut [(20, 25), (0, 10)]), 15);
        assert_eq!(union_length(&mut []), 0);
        assert_eq!(union_length(&mut [(5, 5), (7, 3)]), 0);
        assert_eq!(union_length(&mut [(0, 10), (2, 3)]), 10);
    }

    proptest! {
        #[test]
        fn union_matches_a_unit_grid(iv in proptest::collection::vec((0u64..200, 0u64..200), 0..20)) {
            let mut grid = [false; 200];
            for &(s, e) in &iv {
                for t in s..e.min(200) { grid[t as usize] = true; }
            }
            let expected = grid.iter().filter(|&&b| b).count() as u64;
            let mut iv = iv.clone();
            prop_assert_eq!(union_length(&mut iv), expected);
        }
    }
}
