//! `cargo xtask bench policy` (issue 4): the time of one policy-engine
//! tick over 10k, 100k and 1M active flows, 1,000 hops (50 operators) and
//! 20,000 destinations (up to 256 with windows of their own), as a ratio
//! to the floor (iterating the same observations and summing their bytes),
//! and the engine's resident memory per flow.

mod memory;

use std::{hint::black_box, time::Instant};

use steerer_common::{
    flow::{FAMILY_IPV4, PROTO_TCP},
    FlowKey,
};
use steerer_user::{
    policy::{Engine, FlowSample, HopSpec, Params},
    sim::slot_count_for,
};

const HOPS: usize = 1000;
const SEC: u64 = 1_000_000_000;
const SAMPLES: usize = 5;

fn key(i: u32) -> FlowKey {
    let mut k = FlowKey {
        family: FAMILY_IPV4,
        proto: PROTO_TCP,
        src_port: (i & 0xffff) as u16,
        dst_port: 443,
        ..FlowKey::default()
    };
    k.src_addr[..4].copy_from_slice(&[198, 18, (i >> 24) as u8, (i >> 16) as u8]);
    k.dst_addr[..4].copy_from_slice(&[198, 19, (i >> 8) as u8, i as u8]);
    k
}

/// The flow table as the daemon reads it at tick `t` (seconds): every flow
/// has moved some bytes since the last tick, most got replies.
fn observations(n: u32, t: u64) -> Vec<FlowSample<FlowKey>> {
    (0..n)
        .map(|i| {
            let hop = i % HOPS as u32;
            let rate = 1_000 + (hop as u64 * 37) % 5_000;
            FlowSample {
                key: key(i),
                // 20,000 destinations: the busiest get windows of their own.
                destination: (i % 20_000) as u64,
                hop,
                bytes: 200 * t,
                reply_bytes: rate * t,
                packets: 2 * t,
                reply_packets: if i % 97 == 0 { 0 } else { t },
                first_seen_ns: (i as u64 % 1000) * 1_000_000,
                last_seen_ns: t * SEC - (i as u64 % 500) * 1_000_000,
                weak_evidence: false,
            }
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let hops: Vec<HopSpec> = (0..HOPS)
        .map(|i| HopSpec {
            name: format!("hop{i}"),
            initial_estimate: 1e6 + i as f64,
            operator: Some(format!("op{}", i % 50)),
            subnet: None,
            fresh: false,
            latency_ms: None,
        })
        .collect();
    let params = Params {
        slot_count: slot_count_for(HOPS),
        ..Params::default()
    };
    println!(
        "policy engine tick, {HOPS} hops, slot table {} slots; median of {SAMPLES} ticks",
        params.slot_count
    );
    println!(
        "{:>9} {:>12} {:>12} {:>9} {:>16}",
        "flows", "tick ms", "floor ms", "x floor", "engine B/flow"
    );
    let mut one_million_ms = 0.0;
    for n in [10_000u32, 100_000, 1_000_000] {
        let before = memory::resident_bytes();
        let mut engine: Engine<FlowKey> = Engine::new(hops.clone(), params.clone());
        // The first tick fills the engine's per-flow state.
        engine.tick(5 * SEC, observations(n, 5));
        let engine_bytes = memory::resident_bytes().saturating_sub(before);
        let (mut ticks, mut floors) = (Vec::new(), Vec::new());
        for s in 0..SAMPLES as u64 {
            let t = 10 + 5 * s;
            let obs = observations(n, t);
            // Floor: one pass over the same observations.
            let start = Instant::now();
            let sum: u64 = obs.iter().map(|f| f.bytes + f.reply_bytes).sum();
            black_box(sum);
            floors.push(start.elapsed().as_secs_f64() * 1e3);
            let start = Instant::now();
            let report = engine.tick(t * SEC, obs);
            ticks.push(start.elapsed().as_secs_f64() * 1e3);
            black_box(report);
        }
        let (tick, floor) = (median(ticks), median(floors));
        if n == 1_000_000 {
            one_million_ms = tick;
        }
        // The engine's memory includes its last table and the observations'
        // copy it keeps per flow (previous counters).
        println!(
            "{n:>9} {tick:>12.2} {floor:>12.3} {:>9.0} {:>16.0}",
            tick / floor,
            engine_bytes as f64 / n as f64
        );
        drop(engine);
    }
    println!(
        "target: 1M flows in under 1 s per tick: {:.0} ms -> {}",
        one_million_ms,
        if one_million_ms < 1000.0 {
            "met"
        } else {
            "NOT met"
        }
    );
}
