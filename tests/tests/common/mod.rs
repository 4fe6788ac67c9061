//! Lookups in a running steerer's pinned maps that several lab tests make.
#![allow(dead_code)] // each test uses part of it

use steerer_user::dataplane::PinnedMaps;

/// The data-plane id the pinned `HOP_NAMES` give hop `name`.
pub fn hop_id(maps: &PinnedMaps, name: &str) -> Option<u32> {
    maps.hop_names()
        .ok()?
        .into_iter()
        .find(|(_, n)| n == name)
        .map(|(id, _)| id)
}

/// The hop id of the flow from client port `src_port` to `dst_port`, if it
/// is in the flow table.
pub fn flow_hop(maps: &PinnedMaps, src_port: u16, dst_port: u16) -> Option<u32> {
    maps.flows()
        .ok()?
        .into_iter()
        .find(|(k, _)| k.src_port == src_port && k.dst_port == dst_port)
        .map(|(_, v)| v.hop)
}

/// A test's folder, removed also when the test fails.
pub struct Folder(pub std::path::PathBuf);

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `[[hop]]` entries (a hop directory's document) for the lab's hops
/// `which`, each claiming 100 Mbit/s.
pub fn directory_entries(lab: &steerer_lab::Lab, which: &[usize]) -> String {
    let hops: Vec<(usize, f64)> = which.iter().map(|&i| (i, 100.0)).collect();
    let text = lab.steerer_config_for(2, &hops);
    text.split_once('\n')
        .map(|(_, rest)| rest.to_string())
        .unwrap_or_default()
}

/// Replace the file at once (write aside, rename), as a publisher should.
pub fn publish(path: &std::path::Path, text: &str) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Whether hop `id` is enabled and holds class-table slots.
pub fn in_tables(maps: &PinnedMaps, id: u32) -> (bool, bool) {
    let enabled = maps.hop(id).expect("hop entry").is_enabled();
    let slots = maps.slots(0).expect("class table").contains(&id);
    (enabled, slots)
}

/// Wait until `f` holds, at most `timeout`; how long it took.
pub fn wait_until(
    timeout: std::time::Duration,
    what: &str,
    f: impl Fn() -> bool,
) -> std::time::Duration {
    let start = std::time::Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "{what}: not within {timeout:?}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    start.elapsed()
}

/// The operator's policy routing for a `mark` hop: packets with `mark`
/// leave through lab hop 1's next hop (198.18.2.2), via route table 110.
pub fn route_mark_through_hop1(lab: &steerer_lab::Lab, mark: u32) {
    let gw = lab.gw_ns();
    let run = |args: &[&str]| steerer_lab::netns::run_in(&gw, "ip", args).unwrap();
    run(&["rule", "add", "fwmark", &mark.to_string(), "lookup", "110"]);
    run(&[
        "route",
        "add",
        "default",
        "via",
        "198.18.2.2",
        "table",
        "110",
    ]);
}
