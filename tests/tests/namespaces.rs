//! One data plane per (network namespace, interface): two gateways whose
//! LAN interfaces have the same name, each in its own namespace, get two
//! independent data planes (pins, links, lock); stopping one leaves the
//! other steering. A daemon started through `ip netns exec` (a private
//! /sys that hides /sys/fs/bpf) pins where everyone else sees the pins,
//! so its programs survive it.

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use steerer_lab::{
    check,
    lab::SERVER_V4,
    steerer::SteererProcess,
    traffic::{run_workload, Progress, Server, Workload},
    Lab, LabSpec,
};
use steerer_user::dataplane::PinnedMaps;

const PORT: u16 = 5001;
const LAN: &str = "stlan0";

fn lab_with_lan(name: &str) -> Lab {
    let mut spec = LabSpec::equal_hops(2);
    spec.lan_iface = Some(name.to_string());
    Lab::build(spec).expect("lab")
}

/// Ten short uploads from the lab's client; how many completed.
fn traffic(lab: &Lab) -> usize {
    let target = SocketAddr::new(IpAddr::V4(SERVER_V4), PORT);
    let w = Workload::fixed(vec![target], 10, 2, 100_000);
    run_workload(&lab.client_ns(), &w, Arc::new(Progress::default()))
        .expect("workload")
        .iter()
        .filter(|r| r.ok)
        .count()
}

fn steered_flows(lab: &Lab) -> usize {
    PinnedMaps::open_dir(&lab.pin_dir())
        .expect("pins")
        .flows()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.dst_port == PORT)
        .count()
}

#[test]
fn the_same_interface_name_in_two_namespaces_is_two_data_planes() {
    let (a, b) = (lab_with_lan(LAN), lab_with_lan(LAN));
    assert_eq!(a.lan_iface(), b.lan_iface());
    assert_ne!(a.pin_dir(), b.pin_dir(), "pins keyed by namespace");
    let _sa = Server::start(&a.server_ns(), &[PORT]).unwrap();
    let _sb = Server::start(&b.server_ns(), &[PORT]).unwrap();
    let mut da = SteererProcess::start(&a, &a.steerer_config(1, &[100.0; 2]), &[], false)
        .expect("steerer in A");
    // B's daemon goes through `ip netns exec`.
    let mut db =
        SteererProcess::start_via_ip_netns_exec(&b, &b.steerer_config(1, &[100.0; 2]), &[])
            .expect("steerer in B");
    assert!(
        db.log()
            .contains("pinning into the system's bpffs through a descriptor"),
        "ip netns exec hid /sys/fs/bpf and steerer found the system's:\n{}",
        db.log()
    );
    assert!(
        a.pin_dir().exists() && b.pin_dir().exists(),
        "both pinned where the test sees them"
    );
    assert!(check::xdp_attached(&a) && check::xdp_attached(&b));
    assert_eq!(traffic(&a), 10);
    assert_eq!(traffic(&b), 10);
    assert_eq!(steered_flows(&a), 10, "A steered its own flows");
    assert_eq!(steered_flows(&b), 10, "B steered its own flows");

    // A clean stop of A removes A's data plane only.
    assert!(da.stop().unwrap(), "{}", da.log());
    assert!(!a.pin_dir().exists() && !check::xdp_attached(&a));
    assert!(
        b.pin_dir().exists() && check::xdp_attached(&b),
        "B disturbed by A's exit"
    );
    let tick = db.status().and_then(|s| s["tick"].as_u64()).unwrap_or(0);
    db.wait_tick(tick + 1, Duration::from_secs(10))
        .expect("B keeps ticking");
    assert_eq!(traffic(&b), 10);
    assert_eq!(steered_flows(&b), 20, "B still steers");

    // B's daemon dies: its programs stay (pinned in the shared bpffs,
    // not in the private one `ip netns exec` would have shown it).
    db.kill_leaving_pins().unwrap();
    assert!(check::xdp_attached(&b), "B's programs went with its daemon");
    assert_eq!(traffic(&b), 10);
    assert_eq!(steered_flows(&b), 30, "the orphaned programs steer");
    let again = SteererProcess::start_via_ip_netns_exec(&b, &b.steerer_config(1, &[100.0; 2]), &[])
        .expect("restart in B");
    assert!(
        again.log().contains("reusing pinned maps"),
        "{}",
        again.log()
    );
    drop(again);
    drop(db);
}
