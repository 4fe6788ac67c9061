//! A pool far larger than the data plane's hop ids, changing while it
//! steers (issue 14): the simulator's pool of hops is published by a
//! directory that retires and adds hops, the data plane has few ids, and
//! steerer must still finish the workload about as fast as with a small
//! static pool of the same mix of hops.

use std::path::{Path, PathBuf};

use steerer_user::sim::{self, scenario::ScenarioFile, PolicyKind, Scenario};

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

/// `scale` copies of the mix 10% at 100, 40% at 30, 50% at 5 Mbit/s (per
/// 10 hops), the data plane's 256 hop ids, and `churn` on top.
fn pool(scale: u32, churn: &str) -> Scenario {
    let text = format!(
        r#"
connections = 4000
arrivals_per_sec = 40.0
destinations = 400
flow_sizes = "flowsize/websearch.txt"
blackhole_p = 10
hop_ids = 256
{churn}

[[hops]]
count = {a}
mbit = 100.0

[[hops]]
count = {b}
mbit = 30.0

[[hops]]
count = {c}
mbit = 5.0
"#,
        a = scale,
        b = 4 * scale,
        c = 5 * scale,
    );
    let file: ScenarioFile = toml::from_str(&text).expect("scenario TOML");
    Scenario::from_file(file, Path::new("pool.toml"), &scenarios_dir()).expect("valid scenario")
}

#[test]
fn a_churning_pool_of_5000_hops_through_256_ids_is_within_2x_of_a_static_1000() {
    // 1% of the 4,000 published hops retire every 10 s (gone from the
    // network), as many new ones appear: 1,000 over the run.
    let churning = pool(
        500,
        "[churn]\nevery_secs = 10.0\nfraction = 0.01\nunpublished = 1000",
    );
    let fixed = pool(100, "");
    let mut ratios = Vec::new();
    for seed in 1..=3 {
        let big = sim::run(&churning, PolicyKind::Steerer, seed).summary;
        let small = sim::run(&fixed, PolicyKind::Steerer, seed).summary;
        println!(
            "seed {seed}: mean time {:.3} s (static pool {:.3} s), p99 {:.1} s ({:.1} s), gave up {}",
            big.mean_time_s, small.mean_time_s, big.p99_time_s, small.p99_time_s, big.gave_up
        );
        assert_eq!(big.connections, 4000);
        assert_eq!(big.gave_up, 0, "seed {seed}: connections given up");
        ratios.push(big.mean_time_s / small.mean_time_s);
    }
    let mean = ratios.iter().sum::<f64>() / ratios.len() as f64;
    assert!(
        mean <= 2.0,
        "mean time {mean:.2}x the static pool's: {ratios:?}"
    );
}
