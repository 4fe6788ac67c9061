//! `steerer flows` as an operator uses it: hops by name, age, idle time
//! and state per flow, a filter by hop, an order and a limit; an unknown
//! hop name is an error that lists the hops.

use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use steerer_lab::{
    lab::SERVER_V4,
    netns::command_in,
    steerer::{steerer_bin, SteererProcess},
    traffic::{run_all_must_complete, Server},
    Lab, LabSpec,
};
use steerer_user::report::FlowRecord;

const PORT: u16 = 5001;

fn flows(lab: &Lab, args: &[&str]) -> (bool, String, String) {
    let out = command_in(&lab.gw_ns(), steerer_bin().expect("steerer built"))
        .unwrap()
        .args(["flows", "--iface", &lab.lan_iface()])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn flows_by_hop_name_with_age_state_order_and_limit() {
    let lab = Lab::build(LabSpec::equal_hops(2)).expect("lab");
    let _server = Server::start(&lab.server_ns(), &[PORT]).unwrap();
    let steerer = SteererProcess::start(&lab, &lab.steerer_config(5, &[100.0; 2]), &[], false)
        .expect("steerer starts");
    let target = SocketAddr::new(IpAddr::V4(SERVER_V4), PORT);
    run_all_must_complete(&lab.client_ns(), target, 20, 4, 20_000, &|| steerer.log());
    std::thread::sleep(Duration::from_millis(300));

    let (ok, all, err) = flows(&lab, &["--json"]);
    assert!(ok, "{err}");
    let all: Vec<FlowRecord> = serde_json::from_str(&all).unwrap();
    assert!(all.len() >= 20, "{}", all.len());
    for r in &all {
        let name = r.hop_name.as_deref().expect("every hop has a name");
        assert_eq!(name, format!("hop{}", r.hop));
        // Completed connections: both FINs went through the data plane.
        assert_eq!(r.state, "closed", "{r:?}");
        assert!(r.age_secs >= r.idle_secs && r.age_secs < 60.0, "{r:?}");
    }
    // Most bytes first (the default), limited, on one hop only.
    let (ok, some, err) = flows(&lab, &["--json", "--hop", "hop1", "--limit", "3"]);
    assert!(ok, "{err}");
    let some: Vec<FlowRecord> = serde_json::from_str(&some).unwrap();
    let on_hop1 = all
        .iter()
        .filter(|r| r.hop_name.as_deref() == Some("hop1"))
        .count();
    assert_eq!(some.len(), on_hop1.min(3));
    assert!(some.iter().all(|r| r.hop_name.as_deref() == Some("hop1")));
    assert!(some
        .windows(2)
        .all(|w| w[0].bytes + w[0].reply_bytes >= w[1].bytes + w[1].reply_bytes));
    // The table says the same with names and a count.
    let (ok, table, _) = flows(&lab, &["--limit", "2"]);
    assert!(
        ok && table.contains("hop") && table.contains(&format!("2 of {} flows", all.len())),
        "{table}"
    );

    let (ok, _, err) = flows(&lab, &["--hop", "nosuch"]);
    assert!(!ok);
    assert!(
        err.contains("nosuch") && err.contains("hop0, hop1"),
        "{err}"
    );
}
