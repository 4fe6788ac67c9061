//! SPEC 5.5 "blocked" in the lab (issue 4's test): one hop of four drops
//! TCP port 8443. Within three ticks it is excluded for 8443 only: new
//! connections to 8443 stop using it while it keeps carrying other ports.

use std::{
    collections::HashSet,
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use steerer_lab::{
    lab::SERVER_V4,
    steerer::SteererProcess,
    traffic::{run_workload, Progress, Server, Workload},
    HopOptions, Lab, LabSpec,
};
use steerer_user::dataplane::PinnedMaps;

const OPEN: u16 = 5001;
const BLOCKED: u16 = 8443;

#[test]
fn a_hop_blackholing_one_port_is_excluded_for_that_port_only() {
    let mut spec = LabSpec::equal_hops(4);
    spec.hops[0] = HopOptions {
        rate_mbit: None,
        blackhole_port: Some(BLOCKED),
    };
    let lab = Lab::build(spec).expect("lab");
    let _server = Server::start(&lab.server_ns(), &[OPEN, BLOCKED]).unwrap();
    let steerer = SteererProcess::start(&lab, &lab.steerer_config(2, &[100.0; 4]), &[], false)
        .expect("steerer starts");

    let targets = vec![
        SocketAddr::new(IpAddr::V4(SERVER_V4), OPEN),
        SocketAddr::new(IpAddr::V4(SERVER_V4), BLOCKED),
    ];
    let mut w = Workload::fixed(targets, usize::MAX, 8, 20_000);
    w.connections = None;
    w.duration = Some(Duration::from_secs(14));
    w.connect_timeout = Duration::from_secs(4);
    let ns = lab.client_ns();
    let traffic = std::thread::spawn(move || run_workload(&ns, &w, Arc::new(Progress::default())));

    steerer
        .wait_tick(3, Duration::from_secs(20))
        .expect("three ticks");
    let maps = PinnedMaps::open_dir(&lab.pin_dir()).unwrap();
    let early: HashSet<_> = maps.flows().unwrap().into_iter().map(|(k, _)| k).collect();
    let results = traffic.join().unwrap().expect("workload");
    assert!(
        results.iter().filter(|r| r.ok).count() > 100,
        "traffic flowed"
    );

    let flows = maps.flows().unwrap();
    let later: Vec<_> = flows.iter().filter(|(k, _)| !early.contains(k)).collect();
    // A flow first steered to hop 0 is on it, or was moved off it by
    // fast failover (hop 0 is the only hop that drops anything).
    let first_on_hop0 = |v: &steerer_common::FlowValue| v.hop == 0 || v.failovers > 0;
    let to_blocked: Vec<_> = later
        .iter()
        .filter(|(k, _)| k.dst_port == BLOCKED)
        .collect();
    let bad = to_blocked.iter().filter(|(_, v)| first_on_hop0(v)).count();
    assert!(
        to_blocked.len() >= 40,
        "enough new 8443 connections: {}",
        to_blocked.len()
    );
    assert!(
        (bad as f64) < 0.05 * to_blocked.len() as f64,
        "{bad} of {} new connections to {BLOCKED} still went to the blackholing hop:\n{}",
        to_blocked.len(),
        steerer.log()
    );
    let open_on_hop0 = later
        .iter()
        .filter(|(k, v)| k.dst_port == OPEN && v.hop == 0)
        .count();
    assert!(
        open_on_hop0 > 5,
        "hop 0 still carries port {OPEN}: {open_on_hop0}"
    );
    assert!(
        steerer.log().contains("excluded for it"),
        "{}",
        steerer.log()
    );
    // The busy destinations got tables of their own (SPEC 5.4), and the
    // one on the blocked port never holds the blackholing hop.
    let dests = maps.destination_tables().unwrap();
    let blocked_dest = dests
        .iter()
        .find(|(k, _)| k.port == BLOCKED)
        .expect("a destination table for the busy 8443 server");
    assert!(
        !blocked_dest.1.contains(&0),
        "hop 0 in the 8443 destination's table"
    );
    assert!(
        dests.iter().any(|(k, t)| k.port == OPEN && t.contains(&0)),
        "the open port's destination table keeps hop 0"
    );
}
