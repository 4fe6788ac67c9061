//! The metrics' unit tests: counters follow the kernel's totals, states
//! and exclusions are labelled, the shipped dashboard queries only what
//! is exported.

use super::*;
use crate::report::{HopStatus, TickStatus};

fn status(hops: &[(&str, f64, u64)]) -> TickStatus {
    TickStatus {
        tick: 1,
        elapsed_secs: 1.0,
        flows: 5,
        moved_slots: 0,
        min_moved_slots: 0,
        slot_count: 101,
        destination_windows: 0,
        new_flows_not_inserted: 2,
        flows_evicted: 3,
        flows_evicted_total: 3,
        probe_rounds: 0,
        probe_rounds_answered: 0,
        hops: hops
            .iter()
            .map(|&(name, share, bytes)| HopStatus {
                name: name.into(),
                usable: true,
                in_window: true,
                share,
                slots: 0,
                active_flows: 1,
                bytes,
                speed_mbit: 8.0,
                speed_source: "measured".into(),
                failed_new: 0,
                failed_total: 0,
                probe_rtt_ms: None,
                probe_down: false,
                ..HopStatus::default()
            })
            .collect(),
        ..TickStatus::default()
    }
}

fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
}

#[test]
fn counters_grow_by_the_kernel_totals_difference_and_hops_that_leave_vanish() {
    let m = Metrics::new();
    let totals = |new: u64, a_out: u64, failed_over: u64| DataplaneTotals {
        stats: vec![(StatReason::NewFlow, new)],
        hops: vec![(
            "a".to_string(),
            HopCounters {
                packets: a_out,
                bytes: a_out * 100,
                reply_packets: 1,
                reply_bytes: 60,
            },
        )],
        failovers: vec![("a".to_string(), failed_over)],
        flow_table_size: 4096,
        tick_seconds: 0.003,
    };
    m.observe(
        &status(&[("a", 0.6, 100), ("b", 0.4, 50)]),
        &totals(10, 5, 4),
    );
    m.observe(&status(&[("a", 1.0, 30)]), &totals(25, 12, 9));
    assert_eq!(
        sample(&m.text(), "steerer_hop_failovers_total{hop=\"a\"}"),
        Some(9.0)
    );
    let t = m.text();
    assert_eq!(sample(&t, "steerer_ticks_total"), Some(2.0));
    assert_eq!(
        sample(&t, "steerer_dataplane_packets_total{reason=\"new_flow\"}"),
        Some(25.0)
    );
    assert_eq!(
        sample(&t, "steerer_hop_bytes_total{hop=\"a\"}"),
        Some(130.0)
    );
    assert_eq!(sample(&t, "steerer_hop_share{hop=\"a\"}"), Some(1.0));
    assert_eq!(
        sample(&t, "steerer_hop_share{hop=\"b\"}"),
        None,
        "b left the pool:\n{t}"
    );
    assert_eq!(
        sample(&t, "steerer_hop_speed_bytes_per_second{hop=\"a\"}"),
        Some(1e6)
    );
    assert_eq!(
        sample(&t, "steerer_new_flows_not_inserted_total"),
        Some(4.0)
    );
    assert_eq!(sample(&t, "steerer_flow_table_evictions_total"), Some(6.0));
    // New maps (a total below the last): counted from zero again.
    // The per-hop counters follow the kernel's totals the same way.
    assert_eq!(
        sample(&t, "steerer_hop_packets_total{hop=\"a\",direction=\"out\"}"),
        Some(12.0)
    );
    assert_eq!(
        sample(
            &t,
            "steerer_hop_dataplane_bytes_total{hop=\"a\",direction=\"back\"}"
        ),
        Some(60.0)
    );
    assert_eq!(sample(&t, "steerer_tick_duration_seconds_count"), Some(2.0));
    m.observe(&status(&[("a", 1.0, 0)]), &totals(3, 2, 0));
    let t = m.text();
    // FAILOVERS is an LRU: 9 -> 0 (keys evicted) adds nothing.
    assert_eq!(
        sample(&t, "steerer_hop_failovers_total{hop=\"a\"}"),
        Some(9.0)
    );
    assert_eq!(sample(&t, "steerer_flow_table_size"), Some(4096.0));
    assert_eq!(
        sample(&t, "steerer_dataplane_packets_total{reason=\"new_flow\"}"),
        Some(28.0)
    );
    assert_eq!(
        sample(&t, "steerer_hop_packets_total{hop=\"a\",direction=\"out\"}"),
        Some(14.0)
    );
}

/// Every metric the shipped Grafana dashboard queries is one the
/// daemon exports (a renamed metric would leave a panel empty).
#[test]
fn the_dashboard_queries_only_exported_metrics() {
    let m = Metrics::new();
    let mut st = status(&[("a", 1.0, 10)]);
    st.hops[0].probe_rtt_ms = Some(3.0);
    let totals = DataplaneTotals {
        stats: vec![(StatReason::NewFlow, 1)],
        hops: vec![("a".into(), HopCounters::default())],
        failovers: vec![("a".into(), 1)],
        flow_table_size: 1024,
        tick_seconds: 0.01,
    };
    m.observe(&st, &totals);
    let text = m.text();
    let exported: std::collections::HashSet<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    let dash: serde_json::Value =
        serde_json::from_str(include_str!("../../../contrib/grafana-dashboard.json")).unwrap();
    let mut queried = 0;
    for panel in dash["panels"].as_array().unwrap() {
        for t in panel["targets"].as_array().unwrap() {
            let expr = t["expr"].as_str().unwrap();
            for name in expr
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| w.starts_with("steerer_"))
            {
                queried += 1;
                assert!(
                    exported.contains(name),
                    "{name} in {expr:?} is not exported:\n{text}"
                );
            }
        }
    }
    assert!(queried >= 15, "{queried}");
}

/// A hop's state and its exclusions (with their ends) are metrics too.
#[test]
fn states_and_exclusions_are_labelled_per_hop() {
    use crate::status_view::ExclusionStatus;
    let m = Metrics::new();
    let mut st = status(&[("a", 1.0, 0), ("b", 0.0, 0)]);
    st.hops[0].state = "up".into();
    st.hops[1].state = "link down".into();
    st.exclusions = vec![
        ExclusionStatus {
            hop: "a".into(),
            destination: "198.19.0.2:8443/tcp".into(),
            until_unix: 1_800_000_060.0,
        },
        ExclusionStatus {
            hop: "a".into(),
            destination: "198.19.0.3:8443/tcp".into(),
            until_unix: 1_800_000_120.0,
        },
    ];
    m.observe(&st, &DataplaneTotals::default());
    let t = m.text();
    assert_eq!(
        sample(&t, "steerer_hop_state{hop=\"a\",state=\"up\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(&t, "steerer_hop_state{hop=\"b\",state=\"link_down\"}"),
        Some(1.0)
    );
    assert_eq!(sample(&t, "steerer_hop_exclusions{hop=\"a\"}"), Some(2.0));
    assert_eq!(sample(&t, "steerer_hop_exclusions{hop=\"b\"}"), Some(0.0));
    assert_eq!(
        sample(
            &t,
            "steerer_exclusion_expiry_timestamp_seconds{hop=\"a\",destination=\"198.19.0.3:8443/tcp\"}"
        ),
        Some(1_800_000_120.0)
    );
    // The next tick: b is back up, the exclusions are over.
    st.hops[1].state = "up".into();
    st.exclusions.clear();
    m.observe(&st, &DataplaneTotals::default());
    let t = m.text();
    assert_eq!(
        sample(&t, "steerer_hop_state{hop=\"b\",state=\"link_down\"}"),
        None
    );
    assert_eq!(sample(&t, "steerer_hop_exclusions{hop=\"a\"}"), Some(0.0));
    assert!(
        !t.contains("steerer_exclusion_expiry_timestamp_seconds{"),
        "{t}"
    );
}
