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
