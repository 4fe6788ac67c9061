//! Fast failover in the lab: a hop silently drops SYNs to one port; the
//! client's own SYN retransmission is steered to another hop and the
//! connection completes on the socket the application opened.

use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use steerer_lab::{
    lab::SERVER_V4,
    steerer::SteererProcess,
    traffic::{run_all_must_complete, Server},
    HopOptions, Lab, LabSpec,
};
use steerer_user::dataplane::PinnedMaps;

const BLOCKED: u16 = 8443;

#[test]
fn retransmitted_syn_leaves_a_blackholing_hop_and_the_connection_completes() {
    let lab = Lab::build(LabSpec {
        hops: vec![
            HopOptions {
                rate_mbit: None,
                blackhole_port: Some(BLOCKED),
                blackhole_dest: None,
            },
            HopOptions::default(),
        ],
        lan_iface: None,
    })
    .expect("lab");
    let _server = Server::start(&lab.server_ns(), &[BLOCKED]).unwrap();
    // A long tick: the control plane stays out of it, this is the data plane alone.
    let _steerer = SteererProcess::start(&lab, &lab.steerer_config(60, &[100.0; 2]), &[], false)
        .expect("steerer starts");

    let target = SocketAddr::new(IpAddr::V4(SERVER_V4), BLOCKED);
    let results = run_all_must_complete(&lab.client_ns(), target, 40, 8, 10_000, &String::new);

    let maps = PinnedMaps::open_dir(&lab.pin_dir()).unwrap();
    let flows: Vec<_> = maps
        .flows()
        .unwrap()
        .into_iter()
        .filter(|(k, _)| k.dst_port == BLOCKED)
        .collect();
    assert_eq!(flows.len(), 40);
    let moved: Vec<_> = flows.iter().filter(|(_, v)| v.failovers > 0).collect();
    assert!(
        !moved.is_empty(),
        "some flows first landed on the blackholing hop"
    );
    for (k, v) in &flows {
        assert_eq!(
            v.hop, 1,
            "flow {} ended on the hop that answers: {v:?}",
            k.src_port
        );
        assert!(v.reply_packets > 0);
    }
    let counters = maps.failovers().unwrap();
    let on_hop0: u64 = counters
        .iter()
        .filter(|(k, _)| k.hop == 0 && k.dest.port == BLOCKED)
        .map(|(_, n)| n)
        .sum();
    assert_eq!(
        on_hop0,
        moved.len() as u64,
        "each move counted against (hop0, {BLOCKED})"
    );
    // The moved connections waited for one SYN retransmission (~1 s).
    let slow = results
        .iter()
        .filter(|r| r.elapsed >= Duration::from_millis(900))
        .count();
    assert!(
        slow >= moved.len(),
        "{slow} slow connections for {} moves",
        moved.len()
    );
}
