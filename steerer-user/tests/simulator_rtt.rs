//! The simulator's round trips (issue 17): a connection pays a handshake
//! and a request round trip, then slow start; without `rtt_ms` the old
//! fluid model. Expected times are computed from TCP's rules, not read
//! from the simulator.

use std::path::Path;

use steerer_user::sim::{self, scenario::ScenarioFile, PolicyKind, Scenario};

/// One hop of `mbit`, one connection of exactly `bytes`, 1 ms steps.
fn one_flow(bytes: u64, mbit: f64, rtt_ms: f64) -> Scenario {
    flows(1, bytes, mbit, rtt_ms)
}

/// `n` connections of exactly `bytes` arriving together.
fn flows(n: u32, bytes: u64, mbit: f64, rtt_ms: f64) -> Scenario {
    // One directory per call: the tests run in parallel and each removes
    // its own.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("steerer-sim-rtt-{}-{call}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("fixed.txt"), format!("{bytes} 0\n{bytes} 100\n")).unwrap();
    let text = format!(
        r#"
connections = {n}
arrivals_per_sec = 1000000.0
destinations = 1
flow_sizes = "fixed.txt"
step_ms = 1
rtt_ms = {rtt_ms}

[[hops]]
count = 1
mbit = {mbit}
"#
    );
    let file: ScenarioFile = toml::from_str(&text).unwrap();
    let sc = Scenario::from_file(file, Path::new("t.toml"), &dir).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    sc
}

fn completion_s(sc: &Scenario) -> f64 {
    let r = sim::run(sc, PolicyKind::Uniform, 1);
    assert_eq!(r.times_ns.len(), 1, "the one connection completes");
    r.times_ns[0] as f64 / 1e9
}

fn completions_s(sc: &Scenario) -> Vec<f64> {
    let r = sim::run(sc, PolicyKind::Uniform, 1);
    r.times_ns.iter().map(|&t| t as f64 / 1e9).collect()
}

/// Two round trips, then slow start from 10 segments doubling per round
/// trip until the window carries the hop's rate, then the rest at it.
fn expected_s(bytes: f64, rate: f64, rtt: f64) -> f64 {
    let w0 = 10.0 * 1448.0;
    let ln2 = std::f64::consts::LN_2;
    // Bytes slow start moves until cwnd / rtt reaches the rate.
    let slow_start_bytes = (rate * rtt - w0) / ln2;
    let moving = if bytes <= slow_start_bytes {
        rtt * (1.0 + bytes * ln2 / w0).log2()
    } else {
        rtt * (rate * rtt / w0).log2() + (bytes - slow_start_bytes) / rate
    };
    2.0 * rtt + moving
}

#[test]
fn without_round_trips_a_flow_moves_at_its_share_from_the_start() {
    // 1 MB at 80 Mbit/s (10 MB/s): 0.1 s.
    let t = completion_s(&one_flow(1_000_000, 80.0, 0.0));
    assert!((t - 0.1).abs() < 0.002, "{t} s");
}

#[test]
fn a_large_flow_pays_two_round_trips_and_slow_start() {
    let t = completion_s(&one_flow(1_000_000, 80.0, 40.0));
    let want = expected_s(1e6, 1e7, 0.04);
    // about 0.316 s: 0.08 s of round trips, 0.19 s of slow start
    assert!(want > 0.3, "{want}");
    assert!(
        (t - want).abs() / want < 0.02,
        "{t} s, TCP's rules give {want} s"
    );
}

#[test]
fn a_small_flow_is_bound_by_round_trips_not_by_the_hop() {
    let t = completion_s(&one_flow(10_000, 80.0, 40.0));
    let want = expected_s(1e4, 1e7, 0.04);
    // 10 kB fits the first windows: about 0.103 s, against 1 ms at the rate
    assert!(
        (t - want).abs() / want < 0.02,
        "{t} s, TCP's rules give {want} s"
    );
    assert!(t > 0.1);
}

#[test]
fn flows_that_start_together_share_the_hop_once_their_windows_allow() {
    // Two 1 MB flows on one 80 Mbit/s hop: each grows its window until it
    // carries half the hop, then moves the rest at half the hop.
    let times = completions_s(&flows(2, 1_000_000, 80.0, 40.0));
    let want = expected_s(1e6, 0.5e7, 0.04);
    assert_eq!(times.len(), 2);
    for t in times {
        assert!(
            (t - want).abs() / want < 0.02,
            "{t} s, TCP's rules give {want} s"
        );
    }
}
