//! Port sets on the real Tor snapshot in ../shared/data/tor/2019-06-06.

use std::path::PathBuf;

use steerer_user::portsets::{analyse, directory};

#[path = "support/shared_data.rs"]
mod shared_data;

fn tor_dir() -> PathBuf {
    shared_data::shared_data("tor/2019-06-06")
}

fn load() -> (Vec<directory::Exit>, directory::Skipped) {
    let d = tor_dir();
    let f = |n: &str| d.join(n).display().to_string();
    directory::load(
        &f("cached-microdesc-consensus"),
        &[f("cached-microdescs"), f("cached-microdescs.new")],
    )
    .expect("the snapshot parses")
}

#[test]
fn the_snapshot_parses_into_exits_with_policies() {
    let (exits, skipped) = load();
    // 949 relays carry the Exit flag; one of them is also a BadExit.
    assert_eq!(exits.len(), 948, "skipped: {skipped:?}");
    assert_eq!(skipped.0.get("BadExit flag").map(|x| x.0), Some(1));
    assert!(exits.iter().all(|e| e.weight >= 0.0));
    let web = exits.iter().filter(|e| e.ports.contains(443)).count();
    assert!(web > 700, "most exits accept 443: {web}");
}

#[test]
fn bandwidth_weighted_merge_never_loses_more_bandwidth_than_count_merge() {
    let (exits, _) = load();
    let a = analyse(&exits, 16);
    assert!(
        a.exact_classes > 100,
        "hundreds of exact classes: {}",
        a.exact_classes
    );
    for k in [4, 8, 16, 32] {
        let row = |by: &str| {
            a.losses
                .iter()
                .find(|r| r.k == k && r.merged_by == by)
                .unwrap_or_else(|| panic!("no row for K={k} {by}"))
        };
        let (bw, count) = (row("bandwidth"), row("count"));
        assert_eq!(bw.sets, k);
        assert!(
            bw.loss_by_bandwidth <= count.loss_by_bandwidth,
            "K={k}: bandwidth merge loses {} of bandwidth, count merge {}",
            bw.loss_by_bandwidth,
            count.loss_by_bandwidth
        );
    }
    // The sets cover every port exactly once.
    let ports: u32 = a.sets.iter().map(|s| s.port_count).sum();
    assert_eq!(ports, 65535);
    assert_eq!(a.exit_bits.len(), 948);
}
