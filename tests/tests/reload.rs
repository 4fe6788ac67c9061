//! SIGHUP reloads the configuration (issue 14, item 6): a bad file is
//! rejected and steering goes on as it was; a good one that drops a hop,
//! adds another and reorders the rest takes effect at once without moving
//! a flow: an open connection on any hop keeps its hop (on the removed one
//! it drains) and completes; hops keep their ids by name; new connections
//! go to the new list only; `state = "drain"` then keeps new connections
//! off a hop without touching its flows.

mod common;
use common::{flow_hop, hop_id};

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
const SIZE: u64 = 400_000;

fn ids(maps: &PinnedMaps) -> Vec<(u32, String)> {
    let mut v = maps.hop_names().expect("hop names");
    v.sort();
    v
}

#[test]
fn sighup_rejects_a_bad_config_and_applies_a_good_one_without_moving_flows() {
    let lab = Lab::build(LabSpec::equal_hops(3)).expect("lab");
    let _server = Server::start(&lab.server_ns(), &[PORT]).unwrap();
    let first = lab.steerer_config_for(2, &[(0, 100.0), (1, 100.0)]);
    let steerer = SteererProcess::start(&lab, &first, &[], false).expect("steerer starts");
    steerer
        .wait_tick(1, Duration::from_secs(10))
        .expect("a tick");
    let maps = PinnedMaps::open_dir(&lab.pin_dir()).unwrap();
    let before = ids(&maps);
    let (hop0, hop1) = (
        hop_id(&maps, "hop0").unwrap(),
        hop_id(&maps, "hop1").unwrap(),
    );

    // Open connections trickling data across both reloads, on both hops.
    let target = SocketAddr::new(IpAddr::V4(SERVER_V4), PORT);
    let conns: Vec<_> = (0..8)
        .map(|_| {
            trickle(
                &lab.client_ns(),
                target,
                SIZE,
                20_000,
                Duration::from_millis(400),
            )
            .unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    let flows_before: Vec<(u16, u32)> = maps
        .flows()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.dst_port == PORT)
        .map(|(k, v)| (k.src_port, v.hop))
        .collect();
    assert_eq!(flows_before.len(), 8);

    // A bad file: rejected, nothing changes.
    steerer.reload(&format!("max_share = 7\n{first}")).unwrap();
    steerer
        .wait_log("reload rejected", 1, Duration::from_secs(5))
        .unwrap();
    assert!(
        steerer.log().contains("max_share"),
        "the error names the key"
    );
    assert_eq!(ids(&maps), before);
    let tick = steerer.status().unwrap()["tick"].as_u64().unwrap();
    steerer
        .wait_tick(tick + 1, Duration::from_secs(5))
        .expect("still ticking");

    // A good one: hop1 removed, hop2 added, order changed.
    let second = lab.steerer_config_for(2, &[(2, 100.0), (0, 100.0)]);
    steerer.reload(&second).unwrap();
    steerer
        .wait_log("reloaded", 1, Duration::from_secs(10))
        .unwrap();
    assert_eq!(hop_id(&maps, "hop0"), Some(hop0), "hop0 keeps its id");
    let hop2 = hop_id(&maps, "hop2").expect("hop2 has an id");
    assert!(hop2 != hop0 && hop2 != hop1, "hop2 takes a free id");
    let table = maps.slots(0).unwrap();
    assert!(table.contains(&hop2) && table.contains(&hop0));
    assert!(!table.contains(&hop1), "hop1 takes no new flows");
    assert!(
        steerer
            .log()
            .contains("no longer configured: its established flows drain"),
        "{}",
        steerer.log()
    );

    for c in conns {
        let (port, count) = c.join().unwrap().unwrap().expect("connection completes");
        assert_eq!(count, SIZE);
        let was = flows_before.iter().find(|(p, _)| *p == port).unwrap().1;
        let now = flow_hop(&maps, port, PORT);
        assert_eq!(now, Some(was), "flow {port} kept its hop");
    }

    // New connections use the new list only.
    let fresh = run_all_must_complete(&lab.client_ns(), target, 30, 6, 10_000, &|| steerer.log());
    for r in &fresh {
        let port = r.local.unwrap().port();
        let hop = flow_hop(&maps, port, PORT);
        assert!(
            hop == Some(hop0) || hop == Some(hop2),
            "flow {port} on {hop:?}"
        );
    }
}
