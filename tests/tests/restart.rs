//! A crash of the daemon leaves established flows on their hops: programs
//! stay attached through pinned links, maps stay pinned, and a restarted
//! `steerer run` takes over without moving a flow.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use steerer_lab::{
    check,
    lab::SERVER_V4,
    steerer::SteererProcess,
    traffic::{run_workload, Progress, Server, Workload},
    HopOptions, Lab, LabSpec,
};
use steerer_user::dataplane::PinnedMaps;

const PORT: u16 = 5001;

fn hops_by_port(lab: &Lab) -> HashMap<u16, (u32, u64)> {
    PinnedMaps::open_dir(&lab.pin_dir())
        .expect("pinned maps")
        .flows()
        .unwrap()
        .into_iter()
        .filter(|(k, _)| k.dst_port == PORT && k.proto == 6)
        .map(|(k, v)| (k.src_port, (v.hop, v.packets)))
        .collect()
}

#[test]
fn sigkill_and_restart_during_transfers_moves_no_flow() {
    let programs_before = check::steerer_programs().unwrap();
    let lab = Lab::build(LabSpec {
        hops: vec![
            HopOptions {
                rate_mbit: Some(20),
                blackhole_port: None,
                blackhole_dest: None
            };
            3
        ],
        lan_iface: None,
    })
    .expect("lab");
    let prefix = lab.prefix.clone();
    let _server = Server::start(&lab.server_ns(), &[PORT]).unwrap();
    let config = lab.steerer_config(2, &[20.0; 3]);
    let mut first = SteererProcess::start(&lab, &config, &[], false).expect("steerer starts");

    // Six 20 MB uploads over 20 Mbit/s hops: about 20 s each.
    let target = SocketAddr::new(IpAddr::V4(SERVER_V4), PORT);
    let mut w = Workload::fixed(vec![target], 6, 6, 20_000_000);
    w.io_timeout = Duration::from_secs(60);
    let ns = lab.client_ns();
    let traffic = std::thread::spawn(move || run_workload(&ns, &w, Arc::new(Progress::default())));

    std::thread::sleep(Duration::from_secs(4));
    let before = hops_by_port(&lab);
    assert_eq!(before.len(), 6, "all six flows steered: {before:?}");

    first.kill_leaving_pins().unwrap();
    assert!(
        check::xdp_attached(&lab),
        "XDP stays attached after SIGKILL"
    );
    std::thread::sleep(Duration::from_secs(3));
    let during = hops_by_port(&lab);
    for (port, (hop, packets)) in &before {
        let (h, p) = during[port];
        assert_eq!(h, *hop, "flow {port} moved while no daemon ran");
        assert!(
            p > *packets,
            "flow {port} still steered by the orphaned programs"
        );
    }

    let second = SteererProcess::start(&lab, &config, &[], false).expect("steerer restarts");
    assert!(
        second.log().contains("reusing pinned maps")
            && second.log().contains("took over the pinned links"),
        "restart reuses maps and links:\n{}",
        second.log()
    );
    // Read while the transfers still run: a finished one's closed flow
    // leaves the table tcp_closed_secs after its FINs.
    std::thread::sleep(Duration::from_secs(2));
    let after = hops_by_port(&lab);
    let results = traffic.join().unwrap().expect("workload");
    assert_eq!(results.len(), 6);
    for r in &results {
        assert!(r.ok, "transfer failed across the restart: {r:?}");
        assert!(
            r.elapsed > Duration::from_secs(8),
            "transfers spanned the restart: {r:?}"
        );
    }
    for (port, (hop, _)) in &before {
        let (h, p) = after[port];
        assert_eq!(h, *hop, "flow {port} changed hop across the restart");
        assert!(
            p > during[port].1,
            "flow {port} kept flowing after the restart"
        );
    }

    drop(second);
    drop(first);
    drop(lab);
    assert!(check::namespaces_with_prefix(&prefix).unwrap().is_empty());
    check::programs_released(programs_before).unwrap();
}
