//! Exit policies in the lab (issue 6): hop A accepts only ports 80 and 443,
//! hop B everything. No flow is ever steered to a hop that does not accept
//! its destination port.

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
};

use steerer_lab::{
    lab::SERVER_V4,
    steerer::SteererProcess,
    traffic::{run_workload, Progress, Server, Workload},
    Lab, LabSpec,
};
use steerer_user::dataplane::PinnedMaps;

#[test]
fn ssh_goes_only_through_the_hop_that_accepts_it_and_https_through_both() {
    let lab = Lab::build(LabSpec::equal_hops(2)).expect("lab");
    let mut config = lab.steerer_config(5, &[100.0, 100.0]);
    // hop0 is "A": web only.
    config = config.replacen(
        "name = \"hop0\"\n",
        "name = \"hop0\"\nexit_policy = \"accept 80,443\"\n",
        1,
    );
    let _server = Server::start(&lab.server_ns(), &[22, 443]).unwrap();
    let steerer = SteererProcess::start(&lab, &config, &[], false).expect("steerer starts");
    assert!(steerer.log().contains("port set"), "{}", steerer.log());

    let ssh = SocketAddr::new(IpAddr::V4(SERVER_V4), 22);
    let https = SocketAddr::new(IpAddr::V4(SERVER_V4), 443);
    let results = run_workload(
        &lab.client_ns(),
        &Workload::fixed(vec![ssh], 200, 8, 2_000),
        Arc::new(Progress::default()),
    )
    .expect("ssh workload");
    assert!(
        results.iter().all(|r| r.ok),
        "{:?}",
        results.iter().find(|r| !r.ok)
    );
    let results = run_workload(
        &lab.client_ns(),
        &Workload::fixed(vec![https], 100, 8, 2_000),
        Arc::new(Progress::default()),
    )
    .expect("https workload");
    assert!(results.iter().all(|r| r.ok));

    let flows = PinnedMaps::open_dir(&lab.pin_dir())
        .unwrap()
        .flows()
        .unwrap();
    let count = |port: u16, hop: u32| {
        flows
            .iter()
            .filter(|(k, v)| k.dst_port == port && v.hop == hop)
            .count()
    };
    assert_eq!(count(22, 1), 200, "all 200 ssh flows via B");
    assert_eq!(count(22, 0), 0, "none via A");
    assert!(
        count(443, 0) > 20 && count(443, 1) > 20,
        "https uses both: {} / {}",
        count(443, 0),
        count(443, 1)
    );
}
