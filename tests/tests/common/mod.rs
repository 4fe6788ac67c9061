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
