//! The flow table read in batches (`BPF_MAP_LOOKUP_BATCH`) holds exactly
//! what walking it entry by entry finds: 20,000 flows, five calls of
//! `BATCH_ENTRIES` (4,096).

mod support;

use std::collections::BTreeMap;

use steerer_common::{FlowKey, FlowValue};
use support::TestDataplane;

fn key(i: u32) -> FlowKey {
    let mut k = FlowKey {
        src_port: (i % 50_000) as u16 + 1024,
        dst_port: 443,
        proto: 6,
        family: 4,
        ..FlowKey::default()
    };
    k.src_addr[..4].copy_from_slice(&[198, 18, (i >> 16) as u8, (i >> 8) as u8]);
    k.dst_addr[..4].copy_from_slice(&[198, 19, 0, i as u8]);
    k
}

#[test]
fn a_batch_read_finds_every_flow_a_walk_finds() {
    let mut t = TestDataplane::with_flow_table(true, 65_536);
    let n = 20_000u32;
    assert!(n > 4 * steerer_user::dataplane::batch::BATCH_ENTRIES);
    for i in 0..n {
        let v = FlowValue {
            hop: i % 7,
            bytes: u64::from(i) * 1000,
            packets: u64::from(i),
            ..FlowValue::default()
        };
        t.dp.put_flow(&key(i), &v).expect("insert");
    }
    let batch: BTreeMap<_, _> =
        t.dp.flows()
            .expect("batch read")
            .into_iter()
            .map(|(k, v)| ((k.src_addr, k.dst_addr, k.src_port), (v.hop, v.bytes)))
            .collect();
    let walk: BTreeMap<_, _> =
        t.dp.flows_walking()
            .expect("walk")
            .into_iter()
            .map(|(k, v)| ((k.src_addr, k.dst_addr, k.src_port), (v.hop, v.bytes)))
            .collect();
    assert_eq!(batch, walk);
    // The LRU may have evicted a few on insertion; nearly all are there,
    // each with the value written.
    assert!(batch.len() as u32 > n * 9 / 10, "{} of {n}", batch.len());
    for i in 0..n {
        let k = key(i);
        if let Some(&(hop, bytes)) = batch.get(&(k.src_addr, k.dst_addr, k.src_port)) {
            assert_eq!((hop, bytes), (i % 7, u64::from(i) * 1000));
        }
    }
}

#[test]
fn an_empty_table_reads_as_empty() {
    let t = TestDataplane::new(true);
    assert!(t.dp.flows().expect("batch read").is_empty());
}

#[test]
fn a_batch_delete_skips_missing_keys_and_removes_the_rest() {
    let mut t = TestDataplane::with_flow_table(true, 65_536);
    for i in 0..10_000u32 {
        t.dp.put_flow(&key(i), &FlowValue::default())
            .expect("insert");
    }
    let present: std::collections::BTreeSet<u16> =
        t.dp.flows()
            .unwrap()
            .iter()
            .map(|(k, _)| k.src_port)
            .collect();
    // Every third of 0..9,000 plus keys never inserted (10,000 and up)
    // between them: more than two batches.
    let mut doomed = Vec::new();
    for i in (0..9_000u32).step_by(3) {
        doomed.push(key(i));
        doomed.push(key(10_000 + i));
    }
    let expected = doomed
        .iter()
        .filter(|k| present.contains(&k.src_port))
        .count();
    let n = t.dp.remove_flows(&doomed).expect("delete");
    assert_eq!(n, expected);
    let left: std::collections::BTreeSet<u16> =
        t.dp.flows()
            .unwrap()
            .iter()
            .map(|(k, _)| k.src_port)
            .collect();
    for i in 0..10_000u32 {
        let p = key(i).src_port;
        if present.contains(&p) {
            assert_eq!(left.contains(&p), !(i < 9_000 && i % 3 == 0), "flow {i}");
        }
    }
}
