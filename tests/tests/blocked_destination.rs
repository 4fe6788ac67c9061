//! SPEC 5.5 "blocked" in the lab: one hop of four drops TCP to one
//! destination, 198.19.0.2:8443. Within three ticks it is excluded for that
//! destination only: new connections to it stop using the hop, while the
//! same port on another address (198.19.0.3:8443) and other ports keep
//! using it. The exclusion lives in the destination's own table; the port
//! map is not touched.

use std::{
    collections::HashSet,
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use steerer_lab::{
    lab::{SERVER2_V4, SERVER_V4},
    steerer::SteererProcess,
    traffic::{run_workload, Progress, Server, Workload},
    HopOptions, Lab, LabSpec,
};
use steerer_user::dataplane::PinnedMaps;

const OPEN: u16 = 5001;
const BLOCKED: u16 = 8443;

#[test]
fn a_hop_blackholing_one_destination_is_excluded_for_that_destination_only() {
    let mut spec = LabSpec::equal_hops(4);
    spec.hops[0] = HopOptions {
        rate_mbit: None,
        blackhole_port: None,
        blackhole_dest: Some((SERVER_V4, BLOCKED)),
    };
    let lab = Lab::build(spec).expect("lab");
    let _server = Server::start(&lab.server_ns(), &[OPEN, BLOCKED]).unwrap();
    let steerer = SteererProcess::start(&lab, &lab.steerer_config(2, &[100.0; 4]), &[], false)
        .expect("steerer starts");

    let targets = vec![
        SocketAddr::new(IpAddr::V4(SERVER_V4), OPEN),
        SocketAddr::new(IpAddr::V4(SERVER_V4), BLOCKED),
        SocketAddr::new(IpAddr::V4(SERVER2_V4), BLOCKED),
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
    let to = |ip: [u8; 4], port: u16| -> Vec<&steerer_common::FlowValue> {
        later
            .iter()
            .filter(|(k, _)| k.dst_port == port && k.dst_addr[..4] == ip)
            .map(|(_, v)| v)
            .collect()
    };
    let blocked = to(SERVER_V4.octets(), BLOCKED);
    let bad = blocked.iter().filter(|v| first_on_hop0(v)).count();
    assert!(
        blocked.len() >= 30,
        "enough new connections to the blocked destination: {}",
        blocked.len()
    );
    assert!(
        (bad as f64) < 0.05 * blocked.len() as f64,
        "{bad} of {} new connections to {SERVER_V4}:{BLOCKED} still went to the blackholing hop:\n{}",
        blocked.len(),
        steerer.log()
    );
    // The same port on the other address still uses hop 0, and so does
    // the open port.
    let same_port = to(SERVER2_V4.octets(), BLOCKED);
    let same_port_on_hop0 = same_port.iter().filter(|v| v.hop == 0).count();
    assert!(
        same_port_on_hop0 > 5,
        "hop 0 still carries {SERVER2_V4}:{BLOCKED}: {same_port_on_hop0} of {}",
        same_port.len()
    );
    let open_on_hop0 = to(SERVER_V4.octets(), OPEN)
        .iter()
        .filter(|v| v.hop == 0)
        .count();
    assert!(
        open_on_hop0 > 5,
        "hop 0 still carries port {OPEN}: {open_on_hop0}"
    );
    let log = steerer.log();
    assert!(
        log.contains(&format!("hop hop0 drops connections to {SERVER_V4}:{BLOCKED}/tcp: excluded for that destination only")),
        "{log}"
    );
    assert!(
        !log.contains(&format!("{SERVER2_V4}:{BLOCKED}/tcp: excluded")),
        "the other address is not blocked:\n{log}"
    );
    assert!(
        !log.contains("excluded for every destination on port"),
        "no per-port fallback:\n{log}"
    );
    // The blocked destination has a table of its own without hop 0; the
    // other address on the same port either has none or one with hop 0.
    let dests = maps.destination_tables().unwrap();
    let blocked_table = dests
        .iter()
        .find(|(k, _)| k.port == BLOCKED && k.addr[..4] == SERVER_V4.octets())
        .expect("a table for the blocked destination");
    assert!(
        !blocked_table.1.contains(&0),
        "hop 0 in the blocked destination's table"
    );
    for (k, t) in &dests {
        if k.addr[..4] == SERVER2_V4.octets() {
            assert!(t.contains(&0), "{SERVER2_V4}:{} lost hop 0", k.port);
        }
    }
}
