//! steerer's control plane: configuration, the sans-IO policy engine, and
//! the glue to the kernel data plane (loading, maps, netlink).

pub mod apply;
pub mod config;
pub mod daemon;
pub mod dataplane;
pub mod directory_server;
pub mod hop_control;
pub mod instance_lock;
pub mod link_events;
pub mod netlink;
pub mod policy;
pub mod portsets;
pub mod privileges;
pub mod report;
pub mod sim;
pub mod status_view;
pub mod why;

pub use steerer_common as common;

/// Nanoseconds on CLOCK_MONOTONIC, the clock `bpf_ktime_get_ns` uses, so
/// user-space times compare directly with the flow table's timestamps.
pub fn monotonic_ns() -> u64 {
    match nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC) {
        Ok(ts) => ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64,
        Err(_) => 0,
    }
}
