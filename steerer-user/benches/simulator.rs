//! `cargo xtask bench sim` (issue 5): `scenarios/scale.toml` (1,000,000
//! connections over 1,000 hops) under each policy, one after another:
//! seconds and peak resident memory per run, and each run's time as a
//! ratio to the floor, generating the same 1,000,000 arrivals alone.

mod memory;

use std::{hint::black_box, path::Path, time::Instant};

use steerer_user::sim::{self, workload::Workload, PolicyKind, Scenario};

fn main() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/scale.toml");
    let sc = Scenario::load(&path).expect("scenarios/scale.toml");
    let f = &sc.file;
    let seed = f.seed;

    let start = Instant::now();
    let arrivals = Workload::new(
        seed,
        f.connections,
        f.arrivals_per_sec,
        f.senders,
        f.destinations,
        f.zipf_exponent,
        sc.flow_sizes.clone(),
    )
    .fold(0u64, |acc, a| acc ^ a.bytes);
    black_box(arrivals);
    let floor = start.elapsed().as_secs_f64();

    println!(
        "simulator: {} ({} connections, {} hops), one policy per run",
        path.display(),
        f.connections,
        sc.hop_count()
    );
    println!("floor (generating the arrivals only): {floor:.2} s");
    println!(
        "{:<8} {:>9} {:>9} {:>12} {:>12}",
        "policy", "seconds", "x floor", "peak MiB", "conns done"
    );
    let mut total = 0.0;
    for kind in PolicyKind::ALL {
        memory::reset_peak();
        let base = memory::resident_bytes();
        let start = Instant::now();
        let r = sim::run(&sc, kind, seed);
        let secs = start.elapsed().as_secs_f64();
        total += secs;
        let peak = memory::peak_bytes().saturating_sub(base);
        println!(
            "{:<8} {secs:>9.2} {:>9.1} {:>12.1} {:>12}",
            kind.label(),
            secs / floor,
            peak as f64 / (1 << 20) as f64,
            r.summary.connections
        );
    }
    println!(
        "target: 1,000,000 connections over 1,000 hops in under 60 s: all four policies one after another {total:.1} s -> {}",
        if total < 60.0 { "met" } else { "NOT met" }
    );
}
