//! Issue 2's lab tests: real TCP through the gateway with steerer attached.

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

#[test]
fn three_equal_hops_carry_300_connections_with_exact_counters() {
    let programs_before = check::steerer_programs().expect("bpftool works");
    let lab = Lab::build(LabSpec::equal_hops(3)).expect("lab (needs root, iproute2, nftables)");
    let prefix = lab.prefix.clone();
    let pin_dir = lab.pin_dir();
    let _server = Server::start(&lab.server_ns(), &[PORT]).expect("server");
    let mut steerer = SteererProcess::start(&lab, &lab.steerer_config(5, &[100.0; 3]), &[], false)
        .expect("steerer starts");

    let target = SocketAddr::new(IpAddr::V4(SERVER_V4), PORT);
    let mut w = Workload::fixed(vec![target], 300, 10, 0);
    // Different sizes per connection so a mixed-up counter cannot match.
    w.sizes = steerer_lab::traffic::Sizes::Cdf {
        cdf: steerer_lab::sizes::SizeCdf::parse(steerer_lab::sizes::WEBSEARCH).unwrap(),
        scale: 0.05,
        max: 400_000,
    };
    let results =
        run_workload(&lab.client_ns(), &w, Arc::new(Progress::default())).expect("workload");
    assert_eq!(results.len(), 300);
    let failed: Vec<_> = results.iter().filter(|r| !r.ok).collect();
    assert!(
        failed.is_empty(),
        "{} connections failed, e.g. {:?}",
        failed.len(),
        failed.first()
    );

    let flows = PinnedMaps::open_dir(&pin_dir).unwrap().flows().unwrap();
    let by_port: HashMap<u16, _> = flows
        .iter()
        .filter(|(k, _)| k.dst_port == PORT && k.proto == 6)
        .map(|(k, v)| (k.src_port, *v))
        .collect();
    // A client port the kernel used for two connections to the server is
    // one 5-tuple, so one flow entry counts both (flows end by idle
    // expiry, not at FIN): the checks sum the connections of each port.
    let mut by_client_port: HashMap<u16, (u64, u64, usize)> = HashMap::new();
    for r in &results {
        let local = r.local.expect("local address");
        let sent = r.bytes_sent.expect("tcp_info bytes_sent");
        let payload = r.size + 8;
        assert!(sent >= payload, "{r:?}");
        let e = by_client_port.entry(local.port()).or_default();
        e.0 += payload;
        e.1 += sent;
        e.2 += 1;
    }
    let mut per_hop = [0usize; 3];
    for (port, &(payload, sent, conns)) in &by_client_port {
        let v = by_port
            .get(port)
            .unwrap_or_else(|| panic!("no flow entry for client port {port}"));
        per_hop[v.hop as usize] += conns;
        // Frame bytes = TCP payload + per-packet headers (Ethernet 14 +
        // IPv4 20 + TCP 20..60). At least the payload the server counted
        // (8-byte length + size) passed; at most what the client's kernel
        // sent, retransmissions included.
        let min = payload + v.packets * (14 + 20 + 20);
        let max = sent + v.packets * (14 + 20 + 60);
        assert!(
            (min..=max).contains(&v.bytes),
            "flow from port {port} ({conns} connections): {} bytes in map for {payload} payload bytes ({sent} sent) in {} packets",
            v.bytes,
            v.packets
        );
        assert!(
            v.reply_bytes > 0 && v.reply_packets > 0,
            "flow from port {port} has no reply bytes"
        );
    }
    for (hop, &n) in per_hop.iter().enumerate() {
        let share = n as f64 / 300.0;
        assert!(
            (0.20..=0.47).contains(&share),
            "hop {hop} carried {n} of 300: {per_hop:?}"
        );
    }

    assert!(
        steerer.stop().expect("stop"),
        "steerer exits cleanly on SIGTERM:\n{}",
        steerer.log()
    );
    assert!(steerer.log().contains("detached"), "{}", steerer.log());
    assert!(!pin_dir.exists(), "pins removed on clean exit");
    drop(steerer);
    drop(lab);
    assert!(
        check::namespaces_with_prefix(&prefix).unwrap().is_empty(),
        "namespaces left"
    );
    check::programs_released(programs_before).unwrap();
}

#[test]
fn slow_hop_loses_its_share_within_two_ticks() {
    let mut spec = LabSpec::equal_hops(3);
    for h in &mut spec.hops {
        h.rate_mbit = Some(100);
    }
    spec.hops[2] = HopOptions {
        rate_mbit: Some(10),
        blackhole_port: None,
        blackhole_dest: None,
    };
    let lab = Lab::build(spec).expect("lab");
    let _server = Server::start(&lab.server_ns(), &[PORT]).expect("server");
    let steerer = SteererProcess::start(&lab, &lab.steerer_config(2, &[100.0; 3]), &[], false)
        .expect("steerer starts");
    let maps = PinnedMaps::open_dir(&lab.pin_dir()).unwrap();
    let share = |slots: &[u32], hop: u32| {
        slots.iter().filter(|&&h| h == hop).count() as f64 / slots.len() as f64
    };
    let initial = maps.slots(0).unwrap();
    assert!(
        share(&initial, 2) > 0.3,
        "starts equal: {}",
        share(&initial, 2)
    );

    let target = SocketAddr::new(IpAddr::V4(SERVER_V4), PORT);
    let mut w = Workload::fixed(vec![target], usize::MAX, 8, 1_000_000);
    w.connections = None;
    w.duration = Some(Duration::from_secs(30));
    let progress = Arc::new(Progress::default());
    let ns = lab.client_ns();
    let bg = {
        let progress = progress.clone();
        std::thread::spawn(move || run_workload(&ns, &w, progress))
    };
    let status = steerer.wait_tick(2, Duration::from_secs(20));
    let slots = maps.slots(0);
    progress
        .stop
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let results = bg.join().expect("workload thread").expect("workload");
    let status = status.expect("two ticks");
    let slots = slots.unwrap();
    let slow = share(&slots, 2);
    assert!(
        slow < 0.20,
        "slow hop still holds {slow:.2} of the slots; status {status:#}"
    );
    assert!(slow > 0.0, "but stays measurable");
    assert!(
        results.iter().filter(|r| r.ok).count() > 10,
        "traffic flowed"
    );
}

#[test]
fn ipv6_flows_are_steered_and_counted() {
    let lab = Lab::build(LabSpec::equal_hops(2)).expect("lab");
    let _server = Server::start(&lab.server_ns(), &[PORT]).expect("server");
    let _steerer = SteererProcess::start(&lab, &lab.steerer_config(5, &[100.0; 2]), &[], false)
        .expect("steerer starts");
    let target = SocketAddr::new(IpAddr::V6(steerer_lab::lab::SERVER_V6), PORT);
    let w = Workload::fixed(vec![target], 40, 4, 20_000);
    let results =
        run_workload(&lab.client_ns(), &w, Arc::new(Progress::default())).expect("workload");
    assert!(
        results.iter().all(|r| r.ok),
        "all IPv6 connections complete: {:?}",
        results.iter().find(|r| !r.ok)
    );
    let flows = PinnedMaps::open_dir(&lab.pin_dir())
        .unwrap()
        .flows()
        .unwrap();
    let v6: Vec<_> = flows
        .iter()
        .filter(|(k, _)| k.family == 6 && k.dst_port == PORT)
        .collect();
    assert_eq!(v6.len(), 40, "one flow entry per IPv6 connection");
    let mut hops = [0; 2];
    for (_, v) in &v6 {
        hops[v.hop as usize] += 1;
        // IPv6 header is 40 bytes: the payload plus at least 14+40+20 per packet.
        assert!(v.bytes >= 20_008 + v.packets * (14 + 40 + 20), "{v:?}");
        assert!(v.reply_packets > 0);
    }
    assert!(hops.iter().all(|&n| n > 0), "both hops used: {hops:?}");
}
