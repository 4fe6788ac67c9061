//! The data plane's rare error paths report through aya-log (issue 16):
//! with its devmap entry removed under it, hop 0's redirects fail; the
//! daemon's log names the hop, its ifindex and the action code, at most
//! once per CPU per second however many packets fail, while the
//! `redirect_failed` counter counts every one of them.

use std::{
    net::{IpAddr, SocketAddr, UdpSocket},
    time::{Duration, Instant},
};

use steerer_lab::{
    lab::SERVER_V4,
    netns::{command_in, spawn_in},
    steerer::SteererProcess,
    Lab, LabSpec,
};
use steerer_user::dataplane::PinnedMaps;

#[test]
fn a_failed_redirect_is_reported_with_its_hop_and_ifindex_rate_limited() {
    let lab = Lab::build(LabSpec::equal_hops(1)).expect("lab");
    let steerer = SteererProcess::start(&lab, &lab.steerer_config(1, &[100.0]), &[], false)
        .expect("steerer starts");
    steerer.wait_tick(1, Duration::from_secs(10)).unwrap();
    let maps = PinnedMaps::open_dir(&lab.pin_dir()).unwrap();
    let id = maps
        .hop_names()
        .unwrap()
        .into_iter()
        .find(|(_, n)| n == "hop0")
        .map(|(id, _)| id)
        .expect("hop0 holds an id");
    let ifindex = maps.hop(id).unwrap().ifindex;
    // The hop stays enabled in HOPS; only its way out is gone.
    let key: Vec<String> = id.to_le_bytes().iter().map(|b| b.to_string()).collect();
    let devmap = lab.pin_dir().join("HOP_DEVS");
    let out = command_in(&lab.gw_ns(), "bpftool")
        .unwrap()
        .args(["map", "delete", "pinned"])
        .arg(&devmap)
        .arg("key")
        .args(&key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Three seconds of datagrams, each a new flow to hop 0.
    let target = SocketAddr::new(IpAddr::V4(SERVER_V4), 9);
    let sent = spawn_in(&lab.client_ns(), move || {
        let sock = UdpSocket::bind("0.0.0.0:0").unwrap();
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed() < Duration::from_secs(3) {
            if sock.send_to(b"x", target).is_ok() {
                n += 1;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        n
    })
    .unwrap()
    .join()
    .unwrap()
    .unwrap();
    let failed = maps
        .stats()
        .unwrap()
        .into_iter()
        .find(|(r, _)| r.name() == "redirect_failed")
        .map(|(_, n)| n)
        .unwrap_or(0);
    assert!(
        failed as f64 >= 0.9 * sent as f64,
        "{failed} failed redirects of {sent} datagrams"
    );
    // The reports arrive through the ring buffer as they are made.
    let want =
        format!("redirect to hop {id} (ifindex {ifindex}) failed (XDP action or helper error");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !steerer.log().contains(&want) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = steerer.log();
    let reports = log.matches(&want).count();
    eprintln!("{}", log.lines().find(|l| l.contains(&want)).unwrap_or(""));
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    assert!(reports >= 1, "no report {want:?} in the log:\n{log}");
    // At most one per CPU per started second of the 3 s.
    assert!(
        reports <= cpus * 4,
        "{reports} reports for {failed} failures:\n{log}"
    );
}
