//! The new-flow flood guard (issue 15, item 3) under BPF_PROG_TEST_RUN:
//! over the per-CPU limit, new flows are still steered to the hop their
//! keyed hash picks, but get no flow-table entry, and are counted; the
//! next one-second window inserts again. The test thread is pinned to one
//! CPU: the limit is per CPU.

mod support;

use nix::sched::{sched_setaffinity, CpuSet};
use steerer_common::{siphash::flow_hash, StatReason};
use support::*;

const LIMIT: u32 = 5;

fn on_one_cpu() {
    let mut set = CpuSet::new();
    set.set(0).expect("cpu 0");
    sched_setaffinity(nix::unistd::Pid::from_raw(0), &set).expect("pin the test thread");
}

#[test]
fn new_flows_over_the_limit_are_steered_by_hash_without_an_entry() {
    on_one_cpu();
    let mut t = TestDataplane::new(true);
    enable_second_hop(&mut t);
    let table: Vec<u32> = (0..SLOTS).map(|i| i % 2).collect();
    t.dp.write_slots(0, &table, None).unwrap();
    t.dp.set_new_flow_limit(LIMIT).unwrap();
    let flows = 12u16;
    for port in 0..flows {
        let pkt = tcp_v4([198, 18, 0, 2], [198, 19, 0, 2], 30000 + port, 80, 64, b"");
        let o = run_xdp(&t, &pkt);
        assert_eq!(o.verdict, XDP_REDIRECT, "flow {port} steered");
        // The hop the hash picks, entry or not: its next hop's MAC.
        let mut key = steerer_common::FlowKey {
            src_port: 30000 + port,
            dst_port: 80,
            proto: 6,
            family: steerer_common::flow::FAMILY_IPV4,
            ..Default::default()
        };
        key.src_addr[..4].copy_from_slice(&[198, 18, 0, 2]);
        key.dst_addr[..4].copy_from_slice(&[198, 19, 0, 2]);
        let hop = table[(flow_hash(&HASH_KEY, &key) % SLOTS as u64) as usize];
        let mac = if hop == 0 { HOP_DST_MAC } else { HOP1_DST_MAC };
        assert_eq!(&o.out[0..6], &mac, "flow {port}: hop {hop}");
    }
    // All within one second (the test runs in milliseconds).
    assert_eq!(t.dp.flows().unwrap().len(), LIMIT as usize);
    assert_eq!(stat(&t, StatReason::NewFlow), LIMIT as u64);
    assert_eq!(
        t.dp.new_flows_refused().unwrap(),
        (flows as u32 - LIMIT) as u64
    );
    // An inserted flow's next packet is established: no token spent.
    let first = tcp_v4([198, 18, 0, 2], [198, 19, 0, 2], 30000, 80, 64, b"");
    assert_eq!(run_xdp(&t, &first).verdict, XDP_REDIRECT);
    assert_eq!(stat(&t, StatReason::Established), 1);

    // A new window: inserted again.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let later = tcp_v4([198, 18, 0, 2], [198, 19, 0, 2], 31000, 80, 64, b"");
    assert_eq!(run_xdp(&t, &later).verdict, XDP_REDIRECT);
    assert_eq!(t.dp.flows().unwrap().len(), LIMIT as usize + 1);
}

#[test]
fn no_limit_inserts_every_new_flow() {
    on_one_cpu();
    let mut t = TestDataplane::new(true);
    t.dp.set_new_flow_limit(0).unwrap();
    for port in 0..40u16 {
        let pkt = tcp_v4([198, 18, 0, 2], [198, 19, 0, 2], 20000 + port, 80, 64, b"");
        assert_eq!(run_xdp(&t, &pkt).verdict, XDP_REDIRECT);
    }
    assert_eq!(t.dp.flows().unwrap().len(), 40);
    assert_eq!(t.dp.new_flows_refused().unwrap(), 0);
}
