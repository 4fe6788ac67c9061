//! `cargo xtask bench tick` (issue 15): one whole daemon tick as
//! `steerer run` does it (the adapter's `tick`: read the flow table and the
//! failover counters from the kernel's maps, the controller's `handle_tick`,
//! write every table that changed and delete reset or expired flows),
//! against a real flow table (the production-size LRU, 1,048,576 entries)
//! holding 100,000 and then 1,000,000 flows, 64 hops, 20,000 destinations.
//! Between ticks every flow's counters are moved on (a batch update, not
//! timed), so every flow has news each tick. Floor: one batch read of the
//! same map in the same sample. Median of 5 samples after two ticks that
//! fill the controller; memory: resident growth of the daemon's side per
//! flow after those two ticks (the kernel's map is not in it).

mod memory;
#[path = "../tests/support/mod.rs"]
mod support;

use std::{collections::HashMap, time::Instant};

use steerer_common::{
    flow::{FAMILY_IPV4, PROTO_TCP},
    hop::HOP_ENABLED,
    FlowKey, FlowValue, HopEntry,
};
use steerer_user::{
    daemon::adapter::Adapter,
    policy::{Admin, Controller, ControllerHop, HopSpec, Params},
    portsets::PortSet,
    sim::slot_count_for,
};
use support::TestDataplane;

const HOPS: u32 = 64;
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
    k.src_addr[..4].copy_from_slice(&[198, 18, (i >> 16) as u8, 2]);
    let d = i % 20_000;
    k.dst_addr[..4].copy_from_slice(&[198, 19, (d >> 8) as u8, d as u8]);
    k
}

/// The table at tick time `t` (seconds): each flow moved bytes since the
/// last tick, one in 97 never answered.
fn flows_at(n: u32, t: u64) -> Vec<(FlowKey, FlowValue)> {
    (0..n)
        .map(|i| {
            let rate = 1_000 + (i as u64 * 37) % 5_000;
            let answered = i % 97 != 0;
            (
                key(i),
                FlowValue {
                    hop: i % HOPS,
                    packets: 2 * t,
                    bytes: 200 * t,
                    reply_packets: if answered { t } else { 0 },
                    reply_bytes: if answered { rate * t } else { 0 },
                    first_seen_ns: (i as u64 % 1000) * 1_000_000,
                    last_seen_ns: t * SEC - (i as u64 % 500) * 1_000_000,
                    last_reply_ns: if answered { t * SEC } else { 0 },
                    ..FlowValue::default()
                },
            )
        })
        .collect()
}

fn adapter() -> Adapter {
    let hops = (0..HOPS)
        .map(|i| ControllerHop {
            spec: HopSpec {
                name: format!("hop{i}"),
                initial_estimate: 1e7,
                operator: Some(format!("op{}", i % 8)),
                subnet: None,
                fresh: false,
                latency_ms: None,
            },
            id: Some(i),
            accepts: PortSet::all(),
            usable: true,
            admin: Admin::Active,
        })
        .collect();
    let params = Params {
        slot_count: slot_count_for(HOPS as usize),
        ..Params::default()
    };
    let entries: HashMap<String, HopEntry> = (0..HOPS)
        .map(|i| {
            (
                format!("hop{i}"),
                HopEntry {
                    ifindex: 1,
                    flags: HOP_ENABLED,
                    ..HopEntry::default()
                },
            )
        })
        .collect();
    Adapter::new(Controller::new(hops, params), entries)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let mut t = TestDataplane::with_flow_table(true, steerer_common::limits::FLOW_TABLE_SIZE);
    println!("whole daemon tick, {HOPS} hops, 20,000 destinations, flow table of {} entries; median of {SAMPLES}", steerer_common::limits::FLOW_TABLE_SIZE);
    println!("| flows | tick ms | floor (batch read) ms | x floor | daemon bytes/flow |");
    println!("|---:|---:|---:|---:|---:|");
    for n in [100_000u32, 1_000_000] {
        let mut a = adapter();
        let initial = a.controller.initial();
        a.apply(&mut t.dp, &initial);
        let before = memory::resident_bytes();
        let mut now = 5u64;
        for _ in 0..2 {
            t.dp.put_flows(&flows_at(n, now)).expect("fill");
            a.tick(&mut t.dp, now * SEC).expect("tick");
            now += 5;
        }
        let bytes = memory::resident_bytes().saturating_sub(before);
        let (mut ticks, mut floors) = (Vec::new(), Vec::new());
        for _ in 0..SAMPLES {
            t.dp.put_flows(&flows_at(n, now)).expect("refresh");
            let s = Instant::now();
            let read = t.dp.flows().expect("read").len();
            floors.push(s.elapsed().as_secs_f64() * 1e3);
            assert!(
                read >= n as usize * 99 / 100,
                "{read} of {n} flows in the table"
            );
            let s = Instant::now();
            let o = a.tick(&mut t.dp, now * SEC).expect("tick");
            ticks.push(s.elapsed().as_secs_f64() * 1e3);
            assert!(o.applied.failures.is_empty(), "{:?}", o.applied.failures);
            now += 5;
        }
        let (tick, floor) = (median(ticks), median(floors));
        println!(
            "| {n} | {tick:.1} | {floor:.1} | {:.1} | {:.0} |",
            tick / floor,
            bytes as f64 / n as f64
        );
        // The next size starts from an empty table.
        let keys: Vec<FlowKey> =
            t.dp.flows()
                .expect("read")
                .into_iter()
                .map(|(k, _)| k)
                .collect();
        t.dp.remove_flows(&keys).expect("empty the table");
    }
}
