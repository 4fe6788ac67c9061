//! Several policies over one scenario and seed, and the text `steerer
//! simulate` prints of them.

use super::{results, run, PolicyKind, RunResult, Scenario};

/// Run every policy of `kinds` on the scenario with `seed`, in parallel
/// (each run is independent and deterministic), in the order given.
pub fn compare(scenario: &Scenario, kinds: &[PolicyKind], seed: u64) -> Vec<RunResult> {
    std::thread::scope(|s| {
        let handles: Vec<_> = kinds
            .iter()
            .map(|&k| s.spawn(move || run(scenario, k, seed)))
            .collect();
        handles
            .into_iter()
            .map(|h| match h.join() {
                Ok(r) => r,
                Err(e) => std::panic::resume_unwind(e),
            })
            .collect()
    })
}

/// The text `steerer simulate` prints: what was simulated, then the table.
pub fn report(scenario: &Scenario, seed: u64, results: &[RunResult]) -> String {
    let f = &scenario.file;
    let capacity: f64 = scenario.hop_capacity.iter().sum::<f64>() * 8.0 / 1e6;
    let offered = f.arrivals_per_sec * scenario.flow_sizes.mean() * 8.0 / 1e6;
    let mut out = format!(
        "scenario {} (seed {seed}): {} connections, {} hops ({:.0} Mbit/s in all), {} destinations (Zipf {}), \
blackhole 1/P = {}, offered load {:.0} Mbit/s, sender timeout {} B in {} s, steerer tick {} s, {}\n",
        scenario.name,
        f.connections,
        scenario.hop_count(),
        capacity,
        f.destinations,
        f.zipf_exponent,
        if f.blackhole_p >= 2 {
            format!("1/{}", f.blackhole_p)
        } else {
            "0".into()
        },
        offered,
        f.timeout_bytes,
        f.timeout_secs,
        f.tick_secs,
        if f.rtt_ms > 0.0 {
            format!(
                "round trips {} ms +- {:.0}% per hop, slow start",
                f.rtt_ms,
                f.rtt_spread * 100.0
            )
        } else {
            "no round trips".into()
        },
    );
    if let Some(d) = &f.description {
        out.push_str(&format!("{}\n", d.trim()));
    }
    out.push('\n');
    out.push_str(&results::table(results, f.blackhole_p));
    out
}
