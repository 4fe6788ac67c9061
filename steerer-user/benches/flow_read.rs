//! `cargo xtask bench flows`: reading the whole flow table, as the daemon
//! does every tick, in batches (`BPF_MAP_LOOKUP_BATCH`, 4,096 entries per
//! call: what `Dataplane::flows` does) against walking it entry by entry
//! (`get_next_key` + `lookup`, two syscalls per entry: what it did before),
//! on the production-size table (the LRU of 1,048,576 entries) holding
//! 100,000 and then 1,000,000 flows written from user space. Median of 5
//! interleaved samples each; the ratio is walk / batch in the same run.
//! Only the read is timed (no controller, no writes).

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Instant;

use steerer_common::{FlowKey, FlowValue};
use support::TestDataplane;

fn key(i: u32) -> FlowKey {
    let mut k = FlowKey {
        src_port: (i & 0xffff) as u16,
        dst_port: 443,
        proto: 6,
        family: 4,
        ..FlowKey::default()
    };
    k.src_addr[..4].copy_from_slice(&[198, 18, (i >> 16) as u8, 2]);
    k.dst_addr[..4].copy_from_slice(&[198, 19, 0, (i % 251) as u8]);
    k
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let mut t = TestDataplane::with_flow_table(true, steerer_common::limits::FLOW_TABLE_SIZE);
    let mut filled = 0u32;
    println!("| flows in table | batch read ms | walk ms | walk / batch |");
    println!("|---:|---:|---:|---:|");
    for n in [100_000u32, 1_000_000] {
        while filled < n {
            let v = FlowValue {
                hop: filled % 16,
                bytes: 1_000,
                packets: 2,
                ..FlowValue::default()
            };
            t.dp.put_flow(&key(filled), &v).expect("insert");
            filled += 1;
        }
        let (mut batch, mut walk) = (Vec::new(), Vec::new());
        for _ in 0..5 {
            let s = Instant::now();
            let a = t.dp.flows().expect("batch read").len();
            batch.push(s.elapsed().as_secs_f64() * 1e3);
            let s = Instant::now();
            let b = t.dp.flows_walking().expect("walk").len();
            walk.push(s.elapsed().as_secs_f64() * 1e3);
            assert!(
                a >= n as usize * 99 / 100 && b >= n as usize * 99 / 100,
                "{a} {b} of {n}"
            );
        }
        let (b, w) = (median(batch), median(walk));
        println!("| {n} | {b:.1} | {w:.1} | {:.1} |", w / b);
    }
}
