//! A pool far larger than the data plane in the daemon (issue 14, item 4):
//! 5,000 directory hops on the lab's two links, half of them behind next
//! hops that never resolve. The daemon reads the kernel's links and
//! neighbours in one dump each for the whole pool (not a query and a
//! 3-second wait per hop: that would be two hours here), starts within
//! seconds, disables exactly the unresolved hops, ticks within K, and
//! steers connections that all complete through the resolved ones.

mod common;
use common::{flow_hop, publish, Folder};

use std::{
    net::{IpAddr, SocketAddr},
    time::{Duration, Instant},
};

use steerer_lab::{
    lab::SERVER_V4,
    steerer::SteererProcess,
    traffic::{run_all_must_complete, Server},
    Lab, LabSpec,
};
use steerer_user::dataplane::PinnedMaps;

const PORT: u16 = 5001;
const POOL: usize = 5_000;

/// `[[hop]]` `pool{i}`: even ones through hop0's real next hop, odd ones
/// through an address on hop1's link that nobody answers for.
fn pool(lab: &Lab) -> String {
    let mut s = String::new();
    for i in 0..POOL {
        let (iface, via) = if i % 2 == 0 {
            (lab.hop_iface(0), lab.hop_next_hop(0).to_string())
        } else {
            (lab.hop_iface(1), format!("198.18.2.{}", 10 + (i / 2) % 200))
        };
        s.push_str(&format!(
            "[[hop]]\nname = \"pool{i}\"\ninterface = \"{iface}\"\nnext_hop = \"{via}\"\n\
             estimated_speed_mbit = 100\nestimated_capacity_mbit = 100\n"
        ));
    }
    s
}

#[test]
fn a_pool_of_thousands_of_hops_starts_in_seconds_and_steers() {
    let lab = Lab::build(LabSpec::equal_hops(2)).expect("lab");
    let _server = Server::start(&lab.server_ns(), &[PORT]).unwrap();
    let folder = Folder(std::env::temp_dir().join(format!("steerer-{}-largepool", lab.prefix)));
    std::fs::create_dir_all(&folder.0).unwrap();
    let dir = folder.0.join("hops.toml");
    publish(&dir, &pool(&lab));
    let config = format!(
        "hop_directory = \"{}\"\n{}",
        dir.display(),
        lab.steerer_config_for(2, &[(0, 100.0), (1, 100.0)])
    );
    let started = Instant::now();
    let steerer = SteererProcess::start(&lab, &config, &[], false).expect("steerer starts");
    let took = started.elapsed();
    // The unresolved next hops are waited for once, 3 s at most, together.
    assert!(took < Duration::from_secs(20), "start took {took:?}");
    let log = steerer.log();
    assert!(
        log.contains(&format!("hops={} unusable={}", POOL + 2, POOL / 2)),
        "one summary line for the pool:\n{}",
        &log[..log.len().min(4000)]
    );
    steerer
        .wait_tick(2, Duration::from_secs(10))
        .expect("ticks every K = 2 s");

    let maps = PinnedMaps::open_dir(&lab.pin_dir()).unwrap();
    let names: std::collections::HashMap<u32, String> =
        maps.hop_names().unwrap().into_iter().collect();
    let target = SocketAddr::new(IpAddr::V4(SERVER_V4), PORT);
    let done = run_all_must_complete(&lab.client_ns(), target, 40, 8, 20_000, &|| steerer.log());
    for r in &done {
        let id = flow_hop(&maps, r.local.unwrap().port(), PORT).expect("steered");
        let name = &names[&id];
        // Never a hop whose next hop did not resolve.
        let odd = name
            .strip_prefix("pool")
            .and_then(|n| n.parse::<usize>().ok())
            .is_some_and(|n| n % 2 == 1);
        assert!(!odd, "flow on unresolved hop {name}");
    }
    eprintln!("start {took:?}; {} connections completed", done.len());
}
