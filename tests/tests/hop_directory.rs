//! A hop directory file that changes while steering (issue 14, item 4):
//! it adds two hops and removes one; within a tick new connections use the
//! new hops, and connections on the unchanged hop (and on the removed one,
//! which drains) keep their hops and complete. A broken file is rejected
//! and the running pool stays.

mod common;
use common::{directory_entries, flow_hop, hop_id, publish, Folder};

use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use steerer_lab::{
    lab::SERVER_V4,
    steerer::SteererProcess,
    traffic::{run_all_must_complete, trickle, Server},
    Lab, LabSpec,
};
use steerer_user::dataplane::PinnedMaps;

const PORT: u16 = 5001;
const SIZE: u64 = 300_000;

#[test]
fn a_changing_directory_adds_and_removes_hops_without_moving_flows() {
    let lab = Lab::build(LabSpec::equal_hops(4)).expect("lab");
    let _server = Server::start(&lab.server_ns(), &[PORT]).unwrap();
    let folder = Folder(std::env::temp_dir().join(format!("steerer-{}-directory", lab.prefix)));
    std::fs::create_dir_all(&folder.0).unwrap();
    let dir = folder.0.join("hops.toml");
    publish(&dir, &directory_entries(&lab, &[1]));
    let config = format!(
        "hop_directory = \"{}\"\n{}",
        dir.display(),
        lab.steerer_config_for(2, &[(0, 100.0)])
    );
    let steerer = SteererProcess::start(&lab, &config, &[], false).expect("steerer starts");
    steerer
        .wait_tick(1, Duration::from_secs(10))
        .expect("a tick");
    let maps = PinnedMaps::open_dir(&lab.pin_dir()).unwrap();
    let (hop0, hop1) = (
        hop_id(&maps, "hop0").unwrap(),
        hop_id(&maps, "hop1").unwrap(),
    );

    let target = SocketAddr::new(IpAddr::V4(SERVER_V4), PORT);
    let conns: Vec<_> = (0..8)
        .map(|_| {
            trickle(
                &lab.client_ns(),
                target,
                SIZE,
                20_000,
                Duration::from_millis(500),
            )
            .unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    let before: Vec<(u16, u32)> = maps
        .flows()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.dst_port == PORT)
        .map(|(k, v)| (k.src_port, v.hop))
        .collect();
    assert_eq!(before.len(), 8);

    // A broken file: rejected, the pool stays.
    publish(&dir, "[[hop]]\nname = \"half-written\"\n");
    steerer
        .wait_log("hop directory rejected", 1, Duration::from_secs(6))
        .unwrap();
    assert!(maps.slots(0).unwrap().contains(&hop1));

    // hop1 leaves, hop2 and hop3 join.
    publish(&dir, &directory_entries(&lab, &[2, 3]));
    steerer
        .wait_log("reloaded", 1, Duration::from_secs(6))
        .unwrap();
    let (hop2, hop3) = (
        hop_id(&maps, "hop2").unwrap(),
        hop_id(&maps, "hop3").unwrap(),
    );
    let table = maps.slots(0).unwrap();
    for id in [hop0, hop2, hop3] {
        assert!(table.contains(&id), "hop id {id} in the class table");
    }
    assert!(!table.contains(&hop1), "hop1 takes no new flows");
    let fresh = run_all_must_complete(&lab.client_ns(), target, 40, 8, 10_000, &|| steerer.log());
    let on: Vec<Option<u32>> = fresh
        .iter()
        .map(|r| flow_hop(&maps, r.local.unwrap().port(), PORT))
        .collect();
    assert!(on.iter().all(|h| *h != Some(hop1) && h.is_some()), "{on:?}");
    assert!(
        on.contains(&Some(hop2)) && on.contains(&Some(hop3)),
        "{on:?}"
    );

    for c in conns {
        let (port, count) = c.join().unwrap().unwrap().expect("connection completes");
        assert_eq!(count, SIZE);
        let was = before.iter().find(|(p, _)| *p == port).unwrap().1;
        assert_eq!(
            flow_hop(&maps, port, PORT),
            Some(was),
            "flow {port} kept its hop"
        );
    }
}
