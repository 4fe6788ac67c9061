//! The lab itself: hops forward, rate-limit and blackhole as asked, and
//! nothing is left behind (no steerer involved).

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use steerer_lab::{
    check,
    lab::{SERVER_V4, SERVER_V6},
    traffic::{run_workload, upload, Progress, Server, Workload},
    HopOptions, Lab, LabSpec,
};

fn one_upload(lab: &Lab, target: SocketAddr, size: u64) -> steerer_lab::traffic::ConnResult {
    steerer_lab::netns::in_netns(&lab.client_ns(), move || {
        upload(
            target,
            size,
            Duration::from_secs(2),
            Duration::from_secs(20),
        )
    })
    .expect("client namespace")
}

#[test]
fn blackholed_port_is_dropped_and_can_be_restored() {
    let lab = Lab::build(LabSpec {
        hops: vec![HopOptions {
            rate_mbit: None,
            blackhole_port: Some(8443),
            blackhole_dest: None,
        }],
        lan_iface: None,
    })
    .expect("lab");
    let _server = Server::start(&lab.server_ns(), &[5001, 8443]).expect("server");
    let open = SocketAddr::new(IpAddr::V4(SERVER_V4), 5001);
    let blocked = SocketAddr::new(IpAddr::V4(SERVER_V4), 8443);
    let open6 = SocketAddr::new(IpAddr::V6(SERVER_V6), 5001);
    assert!(one_upload(&lab, open, 1000).ok, "open port works");
    assert!(one_upload(&lab, open6, 1000).ok, "IPv6 works");
    let r = one_upload(&lab, blocked, 1000);
    assert!(!r.ok, "blackholed port must fail: {r:?}");

    let mut lab = lab;
    lab.set_blackhole(0, None).expect("clear blackhole");
    assert!(one_upload(&lab, blocked, 1000).ok, "port works again");
}

#[test]
fn rate_limited_hop_is_slower_and_lab_is_removed() {
    let lab = Lab::build(LabSpec {
        hops: vec![HopOptions {
            rate_mbit: Some(8),
            blackhole_port: None,
            blackhole_dest: None,
        }],
        lan_iface: None,
    })
    .expect("lab");
    let prefix = lab.prefix.clone();
    let _server = Server::start(&lab.server_ns(), &[5001]).expect("server");
    let target = SocketAddr::new(IpAddr::V4(SERVER_V4), 5001);
    // 2 MB at 8 Mbit/s needs at least 2 s; unlimited veth takes milliseconds.
    let w = Workload::fixed(vec![target], 1, 1, 2_000_000);
    let results =
        run_workload(&lab.client_ns(), &w, Arc::new(Progress::default())).expect("workload");
    assert!(results[0].ok, "{:?}", results[0]);
    let secs = results[0].elapsed.as_secs_f64();
    assert!(secs > 1.5, "8 Mbit/s hop moved 2 MB in {secs:.2} s");
    assert!(secs < 10.0, "but not absurdly slowly: {secs:.2} s");

    drop(lab);
    assert!(check::namespaces_with_prefix(&prefix).unwrap().is_empty());
}

#[test]
fn lab_is_removed_when_a_test_panics() {
    let prefix = std::sync::Mutex::new(String::new());
    let outcome = std::panic::catch_unwind(|| {
        let lab = Lab::build(LabSpec::equal_hops(2)).expect("lab");
        *prefix.lock().unwrap() = lab.prefix.clone();
        assert_eq!(lab.namespaces().len(), 6);
        panic!("deliberate");
    });
    assert!(outcome.is_err());
    let prefix = prefix.into_inner().unwrap();
    assert!(!prefix.is_empty());
    assert!(
        check::namespaces_with_prefix(&prefix).unwrap().is_empty(),
        "namespaces of {prefix} survived the panic"
    );
}
