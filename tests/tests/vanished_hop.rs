//! SPEC 5.5 "disappeared" in the lab (issue 4's test): one hop's namespace
//! is deleted mid-run. Within two ticks no new flow is steered to it, and
//! every connection the client opens afterwards completes on its first
//! socket.

use std::{
    net::{IpAddr, SocketAddr},
    sync::{atomic::Ordering, Arc},
    time::Duration,
};

use steerer_lab::{
    lab::SERVER_V4,
    steerer::SteererProcess,
    traffic::{run_all_must_complete, run_workload, Progress, Server, Workload},
    Lab, LabSpec,
};
use steerer_user::dataplane::PinnedMaps;

const PORT: u16 = 5001;
const GONE: usize = 1;

#[test]
fn a_deleted_hop_gets_no_new_flows_within_two_ticks_and_connections_complete() {
    let mut lab = Lab::build(LabSpec::equal_hops(3)).expect("lab");
    let _server = Server::start(&lab.server_ns(), &[PORT]).unwrap();
    // Closed flows stay in the table for the count below (by default they
    // leave 10 s after their FINs, while the workload still runs).
    let config = format!(
        "tcp_closed_secs = 600\n{}",
        lab.steerer_config(2, &[100.0; 3])
    );
    let steerer = SteererProcess::start(&lab, &config, &[], false).expect("steerer starts");
    let target = SocketAddr::new(IpAddr::V4(SERVER_V4), PORT);
    let maps = PinnedMaps::open_dir(&lab.pin_dir()).unwrap();

    // Background traffic across the vanish.
    let mut w = Workload::fixed(vec![target], usize::MAX, 4, 20_000);
    w.connections = None;
    w.duration = Some(Duration::from_secs(30));
    w.connect_timeout = Duration::from_secs(3);
    let progress = Arc::new(Progress::default());
    let (ns, p) = (lab.client_ns(), progress.clone());
    let background = std::thread::spawn(move || run_workload(&ns, &w, p));

    steerer
        .wait_tick(2, Duration::from_secs(10))
        .expect("two ticks");
    let on_gone_before = maps
        .flows()
        .unwrap()
        .iter()
        .filter(|(_, v)| v.hop == GONE as u32)
        .count();
    assert!(
        on_gone_before > 0,
        "hop {GONE} carried flows before it vanished"
    );
    let ticks_before = steerer
        .status()
        .and_then(|s| s["tick"].as_u64())
        .expect("a tick status");
    lab.remove_hop(GONE).expect("delete the hop's namespace");
    steerer
        .wait_tick(ticks_before + 2, Duration::from_secs(10))
        .expect("two more ticks");

    // From here on, no new flow may go to the vanished hop.
    progress.stop.store(true, Ordering::Relaxed);
    let _ = background.join().unwrap().expect("background workload");
    let since = steerer_user::monotonic_ns();
    // Flows first steered to the vanished hop and then moved off it by
    // fast failover leave a count against it here.
    let failovers_from_gone = |maps: &PinnedMaps| -> u64 {
        maps.failovers()
            .unwrap()
            .iter()
            .filter(|(k, _)| k.hop == GONE as u32)
            .map(|(_, n)| n)
            .sum()
    };
    let moved_before = failovers_from_gone(&maps);

    run_all_must_complete(&lab.client_ns(), target, 150, 8, 20_000, &|| steerer.log());
    // Flows with packets since `since` (the client's source ports may
    // repeat earlier ones, so keys alone do not tell new from old).
    let new: Vec<_> = maps
        .flows()
        .unwrap()
        .into_iter()
        .filter(|(k, v)| v.last_seen_ns >= since && k.dst_port == PORT)
        .collect();
    assert!(
        new.len() >= 140,
        "flows seen after the vanish: {}",
        new.len()
    );
    // (A failover off a healthy hop, after a lost SYN, is not one.)
    let to_gone = new.iter().filter(|(_, v)| v.hop == GONE as u32).count()
        + (failovers_from_gone(&maps) - moved_before) as usize;
    assert_eq!(
        to_gone,
        0,
        "{to_gone} new flows were steered to the vanished hop\n{}",
        steerer.log()
    );
    assert!(
        steerer.log().contains("hop interface vanished"),
        "{}",
        steerer.log()
    );
}
