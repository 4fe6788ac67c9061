use super::*;

#[test]
fn pinned_ids_are_kept_and_new_members_take_free_ones() {
    let mut t = IdTable::new(4, &[Some(2), None, None]);
    assert_eq!(t.id(0), Some(2));
    assert!(t.settle(&[0, 1, 2], false).is_empty());
    // The lowest free ids, in pool order.
    assert_eq!((t.id(1), t.id(2)), (Some(0), Some(1)));
    assert_eq!(t.hop(2), Some(0));
}

#[test]
fn an_id_is_released_only_after_a_read_finds_no_flow_and_no_table_names_it() {
    let mut t = IdTable::new(2, &[Some(0), Some(1), None]);
    // Hop 1 leaves the tables between ticks: it keeps its id.
    t.settle(&[0], false);
    assert_eq!(t.id(1), Some(1));
    // At the next tick the read finds no flow on it, but the tables in
    // effect until now (the last decision's) did not name it either: it
    // is released and hop 2 takes it in the same decision.
    t.count_flows([0u32].into_iter());
    let left = t.settle(&[0, 2], true);
    assert!(left.is_empty());
    assert_eq!((t.id(1), t.id(2)), (None, Some(1)));
}

#[test]
fn an_id_named_by_the_last_tables_is_not_released_at_the_next_tick() {
    let mut t = IdTable::new(2, &[None, None, None]);
    t.settle(&[0, 1], true);
    // No flow yet on hop 1, but the tables just written name it: a flow
    // may be made on it after this read.
    t.count_flows(std::iter::empty());
    let left = t.settle(&[0, 2], true);
    assert_eq!(left, vec![2], "no id free for hop 2 yet");
    assert_eq!(t.id(1), Some(1));
    t.count_flows(std::iter::empty());
    assert!(t.settle(&[0, 2], true).is_empty());
    assert_eq!(t.id(2), Some(1));
}

#[test]
fn flows_keep_an_id_whatever_the_tables() {
    let mut t = IdTable::new(1, &[Some(0), None]);
    for _ in 0..3 {
        t.count_flows([0u32, 0].into_iter());
        assert_eq!(t.settle(&[1], true), vec![1]);
        assert_eq!(t.hop(0), Some(0));
    }
    t.count_flows(std::iter::empty());
    assert!(t.settle(&[1], true).is_empty());
    assert_eq!(t.hop(0), Some(1));
}

#[test]
fn pins_count_as_tabled_at_start() {
    let mut t = IdTable::new(1, &[Some(0), None]);
    t.count_flows(std::iter::empty());
    // The earlier run's tables may still name id 0.
    assert_eq!(t.settle(&[1], true), vec![1]);
}

#[test]
fn a_reload_keeps_ids_by_name_and_drains_removed_names() {
    let mut t = IdTable::new(4, &[Some(3), Some(1)]);
    t.settle(&[0, 1], false);
    let r = t.renamed(&["a", "b"], &["c", "a"]);
    assert_eq!(r.id(1), Some(3), "a keeps its id");
    assert_eq!(r.id(0), None, "c has none until a table names it");
    assert_eq!(
        r.held().find(|(id, _)| *id == 1).map(|(_, h)| h.clone()),
        Some(IdHolder::Draining(Some("b".into())))
    );
    // b's flows are gone at the next read: its id is freed.
    let mut r = r;
    r.settle(&[0, 1], false);
    r.count_flows([3u32].into_iter());
    r.settle(&[0, 1], true);
    assert_eq!(r.id(0), Some(0));
    assert!(!r.held().any(|(id, _)| id == 1), "b's id is free again");
}

#[test]
fn a_draining_name_that_comes_back_gets_its_id_again() {
    let t = IdTable::new(2, &[Some(1)]);
    let gone = t.renamed(&["a"], &[]);
    let back = gone.renamed(&[], &["a"]);
    assert_eq!(back.id(0), Some(1));
}
