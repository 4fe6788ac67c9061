use super::*;

fn set(ports: &[u16]) -> PortSet {
    let mut s = PortSet::empty();
    for &p in ports {
        s.insert(p);
    }
    s
}

#[test]
fn classes_group_ports_by_identical_hops() {
    let a = set(&[80, 443]);
    let b = set(&[443, 22]);
    let classes = exact_classes(&[&a, &b]);
    // {80}: a; {443}: a,b; {22}: b; everything else: nobody.
    assert_eq!(classes.len(), 4);
    let total: u32 = classes.iter().map(|c| c.count).sum();
    assert_eq!(total, 65535, "classes cover every port once");
    let c443 = classes.iter().find(|c| c.ports.contains(443)).unwrap();
    assert_eq!((c443.count, c443.hops[0]), (1, 0b11));
}

#[test]
fn bandwidth_merge_sacrifices_the_small_hop() {
    // Hop 0 (weight 100) accepts 80 and 443; hop 1 (weight 1) only 443.
    // Merging {80} with {443} loses hop 1's 443 (weight 1); merging
    // {443} with the "nobody" ports loses both hops' 443 (101).
    let a = set(&[80, 443]);
    let b = set(&[443]);
    let classes = exact_classes(&[&a, &b]);
    let m = merge(&classes, &[100.0, 1.0], 2, Metric::Bandwidth);
    assert_eq!(m.sets.len(), 2);
    let ports = m.ports(&classes);
    let with_80 = ports.iter().position(|p| p.contains(80)).unwrap();
    assert!(ports[with_80].contains(443), "80 and 443 merged");
    let (loss, total) = m.loss(&classes, &[100.0, 1.0]);
    assert_eq!((loss, total), (1.0, 201.0));
    let supporters = m.supporters(&classes);
    assert_eq!(
        supporters[with_80][0], 0b01,
        "only hop 0 supports {{80, 443}}"
    );
}

#[test]
fn k_at_least_the_class_count_loses_nothing() {
    let a = set(&[80, 443]);
    let b = set(&[443, 22]);
    let classes = exact_classes(&[&a, &b]);
    let m = merge(&classes, &[5.0, 7.0], 16, Metric::Bandwidth);
    assert_eq!(m.sets.len(), classes.len());
    assert_eq!(m.loss(&classes, &[5.0, 7.0]).0, 0.0);
}

fn random_hops() -> impl proptest::strategy::Strategy<Value = (Vec<PortSet>, Vec<f64>)> {
    use proptest::prelude::*;
    proptest::collection::vec(
        (proptest::collection::vec(1u16..40, 0..12), 1u32..1000),
        1..8,
    )
    .prop_map(|hops| {
        let sets = hops.iter().map(|(p, _)| set(p)).collect();
        let w = hops.iter().map(|(_, w)| *w as f64).collect();
        (sets, w)
    })
}

proptest::proptest! {
    // Each case walks all 65535 ports several times: few cases suffice.
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(40))]

    /// Every class lands in exactly one set, the loss is the one of the
    /// definition (pairs counted one by one), and a smaller K never
    /// loses less (greedy K sets are a coarsening of K + 1 sets).
    #[test]
    fn merge_partitions_and_loss_matches_the_definition((hops, w) in random_hops(), k in 1usize..6) {
        let refs: Vec<&PortSet> = hops.iter().collect();
        let classes = exact_classes(&refs);
        let m = merge(&classes, &w, k, Metric::Bandwidth);
        proptest::prop_assert_eq!(m.sets.len(), k.min(classes.len()));
        let mut seen: Vec<usize> = m.sets.iter().flatten().copied().collect();
        seen.sort_unstable();
        proptest::prop_assert_eq!(seen, (0..classes.len()).collect::<Vec<_>>());

        let mut brute = 0.0;
        for ports in m.ports(&classes) {
            for (h, accepts) in hops.iter().enumerate() {
                let all = ports.ports().all(|p| accepts.contains(p));
                if !all {
                    brute += ports.ports().filter(|&p| accepts.contains(p)).count() as f64 * w[h];
                }
            }
        }
        let (loss, _) = m.loss(&classes, &w);
        proptest::prop_assert!((loss - brute).abs() < 1e-6, "{} vs {}", loss, brute);

        if k > 1 {
            let coarser = merge(&classes, &w, k - 1, Metric::Bandwidth);
            proptest::prop_assert!(coarser.loss(&classes, &w).0 >= loss - 1e-6);
        }
    }
}

#[test]
fn one_run_for_several_k_gives_what_separate_runs_give() {
    let hops: Vec<PortSet> = (0..6u16)
        .map(|i| set(&[80, 443, 1000 + i, 2000 + i % 3, 3000 + i % 2]))
        .collect();
    let refs: Vec<&PortSet> = hops.iter().collect();
    let classes = exact_classes(&refs);
    let w = [5.0, 1.0, 9.0, 2.0, 7.0, 3.0];
    let ks = [8, 2, 5, 1, 100];
    let together = merge_to_each(&classes, &w, &ks, Metric::Bandwidth);
    for (k, m) in ks.iter().zip(&together) {
        assert_eq!(m, &merge(&classes, &w, *k, Metric::Bandwidth), "K = {k}");
    }
}
