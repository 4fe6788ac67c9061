//! A hop is its name (SPEC 5): reordering the `[[hop]]` list and
//! restarting moves no flow. Each flow keeps its hop id, the id keeps its
//! name and its way out (the next hop's MAC), and every transfer that ran
//! across the restart completes.

use std::{
    collections::HashMap,
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

const PORT: u16 = 5001;

/// Per flow (by source port): (hop id, that id's name, its next hop's MAC).
fn where_flows_go(lab: &Lab) -> HashMap<u16, (u32, String, [u8; 6])> {
    let maps = PinnedMaps::open_dir(&lab.pin_dir()).expect("pinned maps");
    let names: HashMap<u32, String> = maps.hop_names().unwrap().into_iter().collect();
    maps.flows()
        .unwrap()
        .into_iter()
        .filter(|(k, _)| k.dst_port == PORT && k.proto == 6)
        .map(|(k, v)| {
            let mac = maps.hop(v.hop).unwrap().dst_mac;
            let name = names.get(&v.hop).cloned().unwrap_or_default();
            (k.src_port, (v.hop, name, mac))
        })
        .collect()
}

/// The config's `[[hop]]` blocks in reverse order.
fn reversed_hops(config: &str) -> String {
    let mut parts = config.split("\n[[hop]]\n");
    let head = parts.next().unwrap_or_default().to_string();
    let hops: Vec<&str> = parts.collect();
    hops.iter()
        .rev()
        .fold(head, |acc, h| format!("{acc}\n[[hop]]\n{h}"))
}

#[test]
fn reordering_the_hops_and_restarting_moves_no_flow() {
    let lab = Lab::build(LabSpec {
        hops: vec![
            HopOptions {
                rate_mbit: Some(20),
                blackhole_port: None,
                blackhole_dest: None,
            };
            3
        ],
        lan_iface: None,
    })
    .expect("lab");
    let _server = Server::start(&lab.server_ns(), &[PORT]).unwrap();
    let config = lab.steerer_config(2, &[20.0; 3]);
    let reordered = reversed_hops(&config);
    assert!(
        reordered.find("hop2").unwrap() < reordered.find("hop0").unwrap(),
        "{reordered}"
    );
    let mut first = SteererProcess::start(&lab, &config, &[], false).expect("steerer starts");

    // Six 15 MB uploads over 20 Mbit/s hops: well over ten seconds each.
    let target = SocketAddr::new(IpAddr::V4(SERVER_V4), PORT);
    let mut w = Workload::fixed(vec![target], 6, 6, 15_000_000);
    w.io_timeout = Duration::from_secs(60);
    let ns = lab.client_ns();
    let traffic = std::thread::spawn(move || run_workload(&ns, &w, Arc::new(Progress::default())));
    std::thread::sleep(Duration::from_secs(4));
    let before = where_flows_go(&lab);
    assert_eq!(before.len(), 6, "all six flows steered: {before:?}");
    // Reversed, hop0 and hop2 change places (hop1 stays in the middle):
    // flows on either of them would move if ids followed positions. (Which
    // hops the first flows take is the policy's business: on a loaded
    // machine its first measurements may send all of them to one hop.)
    assert!(
        before.values().any(|v| v.1 == "hop0" || v.1 == "hop2"),
        "some flow on a hop whose place changes: {before:?}\n{}",
        first.log()
    );

    first.kill_leaving_pins().unwrap();
    let second = SteererProcess::start(&lab, &reordered, &[], false).expect("steerer restarts");
    assert!(
        second.log().contains("hop keeps its id"),
        "{}",
        second.log()
    );
    second.wait_tick(2, Duration::from_secs(15)).expect("ticks");
    let after = where_flows_go(&lab);
    let mut moved = 0;
    for (port, was) in &before {
        match after.get(port) {
            Some(now) if now == was => {}
            other => {
                moved += 1;
                eprintln!("flow {port}: {was:?} -> {other:?}");
            }
        }
    }
    assert_eq!(
        moved,
        0,
        "flows moved after the reordered restart:\n{}",
        second.log()
    );
    let results = traffic.join().unwrap().expect("workload");
    assert_eq!(results.len(), 6);
    for r in &results {
        assert!(r.ok, "a transfer broke across the restart: {r:?}");
    }
    drop(second);
    drop(first);
}
