//! `steerer hop drain|disable|enable NAME --iface IF` against a running
//! steerer (issue 14, item 6): the state is applied by a reload without a
//! restart; enable gives the hop back; an unknown name lists the hops.

mod common;
use common::hop_id;

use std::{process::Output, time::Duration};

use steerer_lab::{
    netns::command_in,
    steerer::{steerer_bin, HopOverrideFile, SteererProcess},
    Lab, LabSpec,
};
use steerer_user::dataplane::PinnedMaps;

fn hop(lab: &Lab, verb: &str, name: &str) -> Output {
    command_in(&lab.gw_ns(), steerer_bin().expect("steerer built"))
        .unwrap()
        .args(["hop", verb, name, "--iface", &lab.lan_iface()])
        .output()
        .unwrap()
}

#[test]
fn drain_and_enable_a_hop_of_a_running_steerer() {
    let lab = Lab::build(LabSpec::equal_hops(2)).expect("lab");
    let _clean = HopOverrideFile::of(&lab);
    let steerer = SteererProcess::start(&lab, &lab.steerer_config(2, &[100.0; 2]), &[], false)
        .expect("steerer starts");
    steerer.wait_tick(1, Duration::from_secs(10)).unwrap();
    let maps = PinnedMaps::open_dir(&lab.pin_dir()).unwrap();
    let hop0 = hop_id(&maps, "hop0").expect("hop0 has an id");

    let out = hop(&lab, "drain", "hop0");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("drain"));
    steerer
        .wait_log("reloaded", 1, Duration::from_secs(5))
        .unwrap();
    assert!(!maps.slots(0).unwrap().contains(&hop0), "hop0 drained");
    assert!(maps.hop(hop0).unwrap().is_enabled(), "its flows still go");
    assert!(steerer.log().contains("hop state set by `steerer hop`"));

    let out = hop(&lab, "enable", "hop0");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    steerer
        .wait_log("reloaded", 2, Duration::from_secs(5))
        .unwrap();
    assert!(maps.slots(0).unwrap().contains(&hop0), "hop0 back");

    let out = hop(&lab, "disable", "nosuch");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("nosuch") && err.contains("hop0, hop1"),
        "{err}"
    );
}

#[test]
fn without_a_running_steerer_the_error_says_so() {
    let lab = Lab::build(LabSpec::equal_hops(1)).expect("lab");
    let out = hop(&lab, "drain", "hop0");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no steerer is running on"), "{err}");
}
