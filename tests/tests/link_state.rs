//! Link state from the kernel's announcements (issue 14, item 1), between
//! ticks: K is 30 s here, so everything below happens long before the next
//! tick. A hop whose link loses carrier (its far end set down) or is set
//! down on the gateway leaves every table at once; when it comes back it
//! waits out the hold-down (3 s) and rejoins; a new MAC of a next hop (a
//! VRRP failover) is written at once.

mod common;
use common::{hop_id, in_tables, wait_until as wait_for};

use std::time::{Duration, Instant};

use steerer_lab::{netns::run_in, steerer::SteererProcess, Lab, LabSpec};
use steerer_user::dataplane::PinnedMaps;

const HOLD_DOWN_SECS: u64 = 3;

#[test]
fn link_changes_reach_the_tables_between_ticks_and_a_link_back_waits_out_the_hold_down() {
    let lab = Lab::build(LabSpec::equal_hops(3)).expect("lab");
    let config = format!(
        "link_hold_down_secs = {HOLD_DOWN_SECS}\n{}",
        lab.steerer_config(30, &[100.0; 3])
    );
    let steerer = SteererProcess::start(&lab, &config, &[], false).expect("steerer starts");
    steerer
        .wait_tick(1, Duration::from_secs(10))
        .expect("the first tick");
    let maps = PinnedMaps::open_dir(&lab.pin_dir()).expect("pinned maps");
    let (hop1, hop2) = (
        hop_id(&maps, "hop1").expect("hop1"),
        hop_id(&maps, "hop2").expect("hop2"),
    );
    assert_eq!(in_tables(&maps, hop1), (true, true));
    assert_eq!(in_tables(&maps, hop2), (true, true));

    // Carrier loss: hop1's far end goes down.
    lab.set_hop_link(1, false).unwrap();
    wait_for(
        Duration::from_secs(2),
        "hop1 out after losing carrier",
        || in_tables(&maps, hop1) == (false, false),
    );
    // Admin down on the gateway: hop2's own interface.
    run_in(
        &lab.gw_ns(),
        "ip",
        &["link", "set", "dev", &lab.hop_iface(2), "down"],
    )
    .unwrap();
    wait_for(Duration::from_secs(2), "hop2 out after admin down", || {
        in_tables(&maps, hop2) == (false, false)
    });
    // hop0 alone holds the class table.
    let hop0 = hop_id(&maps, "hop0").expect("hop0");
    assert!(maps.slots(0).unwrap().iter().all(|&h| h == hop0));

    // Both come back: out for the hold-down, then in (long before the
    // next tick at 31 s).
    lab.set_hop_link(1, true).unwrap();
    run_in(
        &lab.gw_ns(),
        "ip",
        &["link", "set", "dev", &lab.hop_iface(2), "up"],
    )
    .unwrap();
    let back = Instant::now();
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(in_tables(&maps, hop1), (false, false), "hop1 held down");
    assert_eq!(in_tables(&maps, hop2), (false, false), "hop2 held down");
    wait_for(Duration::from_secs(HOLD_DOWN_SECS + 3), "both back", || {
        in_tables(&maps, hop1) == (true, true) && in_tables(&maps, hop2) == (true, true)
    });
    assert!(
        back.elapsed() >= Duration::from_secs(HOLD_DOWN_SECS),
        "back after {:?}, before the hold-down",
        back.elapsed()
    );
    let tick = steerer.status().and_then(|s| s["tick"].as_u64());
    assert_eq!(tick, Some(1), "all of it between the first and second tick");

    // A VRRP-style failover: the next hop's address now answers from
    // another MAC (the neighbour entry says so).
    let new_mac = [0x02, 0x5e, 0x00, 0x00, 0x01, 0x01];
    let mac_text = new_mac.map(|b| format!("{b:02x}")).join(":");
    run_in(
        &lab.gw_ns(),
        "ip",
        &[
            "neigh",
            "replace",
            &lab.hop_next_hop(1).to_string(),
            "lladdr",
            &mac_text,
            "dev",
            &lab.hop_iface(1),
            "nud",
            "permanent",
        ],
    )
    .unwrap();
    wait_for(
        Duration::from_secs(2),
        "the new next-hop MAC written",
        || maps.hop(hop1).unwrap().dst_mac == new_mac,
    );

    let log = steerer.log();
    assert!(
        !log.contains('\x1b'),
        "no colour codes in a log file:\n{log}"
    );
    for want in [
        "hop interface lost carrier",
        "hop hop1 is down",
        "hop hop2 is down",
        "hop hop1's link is back: held down for 3 s",
        "hop hop1 is up again: offered new flows",
        "next hop MAC changed",
    ] {
        assert!(log.contains(want), "log lacks {want:?}:\n{log}");
    }
}
