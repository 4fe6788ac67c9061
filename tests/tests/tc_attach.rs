//! `--attach tc`: the TC steering program with both actions in the lab.
//! Hop 0 is a `redirect` hop; hop 1 a `mark` hop whose mark policy routing
//! sends to hop 1's next hop.

mod common;

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
};

use steerer_lab::{
    check,
    lab::SERVER_V4,
    netns::run_in,
    steerer::SteererProcess,
    traffic::{run_workload, Progress, Server, Workload},
    Lab, LabSpec,
};
use steerer_user::dataplane::PinnedMaps;

const PORT: u16 = 5001;

fn tx_bytes(lab: &Lab, iface: &str) -> u64 {
    // (sysfs would show the root namespace's links; ask ip.)
    let out = run_in(
        &lab.gw_ns(),
        "ip",
        &["-j", "-s", "link", "show", "dev", iface],
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v[0]["stats64"]["tx"]["bytes"].as_u64().expect("tx bytes")
}

#[test]
fn tc_attach_redirects_and_marks() {
    let programs_before = check::steerer_programs().unwrap();
    let lab = Lab::build(LabSpec::equal_hops(2)).expect("lab");
    common::route_mark_through_hop1(&lab, 16);
    let config = format!(
        "tick_secs = 5\n\
         [[hop]]\nname = \"direct\"\ninterface = \"{}\"\nnext_hop = \"{}\"\n\
         estimated_speed_mbit = 100.0\nestimated_capacity_mbit = 100.0\n\
         [[hop]]\nname = \"marked\"\ninterface = \"{}\"\naction = \"mark\"\nmark = 16\n\
         estimated_speed_mbit = 100.0\nestimated_capacity_mbit = 100.0\n",
        lab.hop_iface(0),
        lab.hop_next_hop(0),
        lab.hop_iface(1)
    );
    let _server = Server::start(&lab.server_ns(), &[PORT]).unwrap();
    let hop1_before = tx_bytes(&lab, &lab.hop_iface(1));
    let mut steerer = SteererProcess::start(&lab, &config, &["--attach", "tc"], false)
        .expect("steerer starts with --attach tc");

    let target = SocketAddr::new(IpAddr::V4(SERVER_V4), PORT);
    let w = Workload::fixed(vec![target], 60, 6, 100_000);
    let results =
        run_workload(&lab.client_ns(), &w, Arc::new(Progress::default())).expect("workload");
    assert!(
        results.iter().all(|r| r.ok),
        "{:?}",
        results.iter().find(|r| !r.ok)
    );

    let flows = PinnedMaps::open_dir(&lab.pin_dir())
        .unwrap()
        .flows()
        .unwrap();
    let on = |hop: u32| {
        flows
            .iter()
            .filter(|(k, v)| k.dst_port == PORT && v.hop == hop)
            .count()
    };
    let (direct, marked) = (on(0), on(1));
    assert_eq!(direct + marked, 60);
    assert!(
        direct > 10 && marked > 10,
        "both actions used: {direct} / {marked}"
    );
    // The marked flows' uploads left through hop 1's link (policy routing).
    let marked_bytes: u64 = flows
        .iter()
        .filter(|(k, v)| k.dst_port == PORT && v.hop == 1)
        .map(|(_, v)| v.bytes)
        .sum();
    let sent = tx_bytes(&lab, &lab.hop_iface(1)) - hop1_before;
    assert!(
        sent >= marked_bytes * 9 / 10,
        "hop 1 link sent {sent} B for {marked_bytes} B marked"
    );
    assert!(!steerer.log().contains("prog/xdp"));
    assert!(steerer.stop().unwrap(), "clean exit:\n{}", steerer.log());
    drop(steerer);
    drop(lab);
    check::programs_released(programs_before).unwrap();
}

#[test]
fn mark_hops_without_tc_attach_are_rejected_before_attaching() {
    let lab = Lab::build(LabSpec::equal_hops(1)).expect("lab");
    let config = format!(
        "[[hop]]\nname = \"marked\"\ninterface = \"{}\"\naction = \"mark\"\nmark = 16\n\
         estimated_speed_mbit = 100.0\nestimated_capacity_mbit = 100.0\n",
        lab.hop_iface(0)
    );
    let err = SteererProcess::start(&lab, &config, &[], false)
        .err()
        .expect("rejected");
    let text = format!("{err:#}");
    assert!(
        text.contains("hop[0].action") && text.contains("--attach tc"),
        "{text}"
    );
    assert!(!lab.pin_dir().exists(), "nothing pinned");
}
