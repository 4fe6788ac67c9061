//! Flow counters stay exact when two CPUs write the same flow at once
//! (issue 3: "counters stay correct with two CPUs writing"). The forward
//! counters are locked adds on the shared flow entry; this test runs the
//! XDP program on both CPUs of the machine concurrently, on one flow, and
//! checks that no increment was lost.

mod support;

use aya::programs::{TestRun as _, TestRunOptions};
use nix::sched::{sched_setaffinity, CpuSet};
use nix::unistd::Pid;
use support::*;

/// Test runs per thread; each repeats the packet `REPEAT` times in the
/// kernel, so both CPUs hammer the entry for about a second.
const CALLS: u64 = 400;
/// From TTL 255 every repeat decrements the TTL of the same buffer, so 254
/// repeats stay on the redirect path (a 255th would hit TTL 1 and pass).
const REPEAT: u32 = 254;

#[test]
fn two_cpus_on_one_flow_lose_no_packet_or_byte() {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert!(
        cpus >= 2,
        "this test needs two CPUs to write concurrently; the machine has {cpus}"
    );
    let t = TestDataplane::new(true);
    let pkt = tcp_v4(
        [198, 18, 0, 2],
        [198, 19, 0, 2],
        40000,
        443,
        255,
        b"payload",
    );
    // Create the flow first, so both threads only take the hit path.
    assert_eq!(run_xdp(&t, &pkt).verdict, XDP_REDIRECT);

    let program = t.dp.xdp_program().unwrap();
    std::thread::scope(|s| {
        for cpu in 0..2 {
            let pkt = &pkt;
            s.spawn(move || {
                let mut set = CpuSet::new();
                set.set(cpu).unwrap();
                sched_setaffinity(Pid::from_raw(0), &set).expect("pin thread to a CPU");
                let mut out = vec![0u8; pkt.len() + 256];
                for _ in 0..CALLS {
                    let r = program
                        .test_run(TestRunOptions {
                            data_in: Some(pkt),
                            data_out: Some(&mut out),
                            repeat: REPEAT,
                            ..Default::default()
                        })
                        .expect("test run");
                    assert_eq!(r.return_value, XDP_REDIRECT);
                }
            });
        }
    });

    let flows = t.dp.flows().unwrap();
    assert_eq!(flows.len(), 1, "one flow");
    let v = flows[0].1;
    let expected = 1 + 2 * CALLS * REPEAT as u64;
    assert_eq!(v.packets, expected, "packets counted by both CPUs");
    assert_eq!(
        v.bytes,
        expected * pkt.len() as u64,
        "bytes counted by both CPUs"
    );
}
