//! Flow-table evictions are counted (issue 16): with the flood guard off
//! and a 1,024-entry flow table, a LAN host sprays some 12,000 new UDP
//! tuples that no idle expiry removes in time. The kernel counts no LRU
//! evictions, so the truth is taken from the kernel's own state at the
//! end: every new flow the data plane inserted and that is no longer in
//! the table was evicted (the daemon deleted none: nothing was idle long
//! enough). The daemon's estimate in its status must match it,
//! `steerer stats` must list it, the log must warn and name the fix.

mod common;

use std::{
    net::{IpAddr, SocketAddr},
    time::{Duration, Instant},
};

use steerer_common::StatReason;
use steerer_lab::{
    flood::{allow_flood_at_server, drop_flood_at_server, flood_ports, FLOOD_PORT, FLOOD_PORTS},
    lab::SERVER_V4,
    netns::{command_in, spawn_in},
    steerer::{steerer_bin, SteererProcess},
    Lab, LabSpec,
};
use steerer_user::dataplane::PinnedMaps;

const TABLE: usize = 1024;

#[test]
fn lru_evictions_are_estimated_reported_and_warned_about() {
    let lab = Lab::build(LabSpec::equal_hops(2)).expect("lab");
    drop_flood_at_server(&lab).unwrap();
    let config = format!(
        "new_flows_per_sec = 0\nudp_idle_secs = 600\n{}",
        lab.steerer_config(1, &[100.0; 2])
    );
    let steerer = SteererProcess::start(
        &lab,
        &config,
        &["--flow-table-size", &TABLE.to_string()],
        false,
    )
    .expect("steerer starts");
    let first = steerer
        .wait_tick(1, Duration::from_secs(10))
        .expect("a tick");
    assert_eq!(first["flows_evicted_total"].as_u64(), Some(0), "{first}");
    let maps = PinnedMaps::open_dir(&lab.pin_dir()).unwrap();
    let new_flows = || {
        maps.stats()
            .unwrap()
            .into_iter()
            .find(|(r, _)| *r == StatReason::NewFlow)
            .map_or(0, |(_, n)| n)
    };

    let target = SocketAddr::new(IpAddr::V4(SERVER_V4), FLOOD_PORT);
    let sent = spawn_in(&lab.client_ns(), move || {
        flood_ports(target, FLOOD_PORTS, 3_000, 1, Duration::from_secs(4))
    })
    .unwrap()
    .join()
    .unwrap()
    .unwrap();
    assert!(sent > 6_000, "the flood sent only {sent} datagrams");

    // Two ticks after the flood: the daemon has read the table at rest.
    let done = Instant::now();
    let tick = steerer.status().unwrap()["tick"].as_u64().unwrap();
    let status = steerer
        .wait_tick(tick + 2, Duration::from_secs(10))
        .expect("ticks after the flood");
    let (inserted, entries) = (new_flows(), maps.flows().unwrap().len());
    let truth = inserted.saturating_sub(entries as u64);
    let estimate = status["flows_evicted_total"].as_u64().unwrap();
    allow_flood_at_server(&lab);
    assert!(
        entries <= TABLE && truth as usize > sent as usize / 2,
        "{inserted} flows inserted, {entries} in a table of {TABLE}: the table did not overflow"
    );
    // Before its first tick the daemon saw a handful of flows at most
    // (none from the flood); each racing insert may count one too many.
    let slack = 16 + truth / 100;
    assert!(
        estimate + slack >= truth && estimate <= truth + slack,
        "the daemon estimates {estimate} evictions, the kernel's counters say {truth} \
         ({inserted} inserted, {entries} left) {:?} after the flood",
        done.elapsed()
    );
    eprintln!("{sent} datagrams, {inserted} inserted, {entries} left: {truth} evicted, the daemon says {estimate}");
    // `steerer stats` lists the daemon's estimate with the kernel's counters.
    let out = command_in(&lab.gw_ns(), steerer_bin().unwrap())
        .unwrap()
        .args(["stats", "--iface", &lab.lan_iface(), "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let listed = stats["flow_table_evicted"].as_u64();
    assert!(
        listed.is_some_and(|n| n >= estimate),
        "steerer stats: flow_table_evicted {listed:?}, the status said {estimate}"
    );
    steerer
        .wait_log("raise --flow-table-size", 1, Duration::from_secs(2))
        .expect("the log warns of evictions");
}
