//! Types shared by the kernel programs (`steerer-ebpf`) and the control plane
//! (`steerer-user`). Everything here is `#[repr(C)]` plain data with explicit
//! padding so that both sides agree byte for byte on the map layouts.
#![no_std]

pub mod config;
pub mod flood;
pub mod flow;
pub mod hop;
pub mod limits;
pub mod select;
pub mod siphash;
pub mod stats;

pub use config::DataplaneConfig;
pub use flow::{FlowKey, FlowValue};
pub use hop::HopEntry;
pub use stats::StatReason;

#[cfg(feature = "user")]
mod pod {
    // SAFETY: all of these are repr(C), contain only integers and byte arrays,
    // and have explicit padding fields, so every bit pattern is valid.
    unsafe impl aya::Pod for crate::FlowKey {}
    unsafe impl aya::Pod for crate::FlowValue {}
    unsafe impl aya::Pod for crate::HopEntry {}
    unsafe impl aya::Pod for crate::DataplaneConfig {}
    unsafe impl aya::Pod for crate::flow::LocalAddrKey {}
    unsafe impl aya::Pod for crate::flow::FailoverKey {}
    unsafe impl aya::Pod for crate::flow::DestKey {}
    unsafe impl aya::Pod for crate::flow::HopName {}
    unsafe impl aya::Pod for crate::flood::NewFlowLimit {}
    unsafe impl aya::Pod for crate::flood::NewFlowBucket {}
    unsafe impl aya::Pod for crate::hop::HopCounters {}
}
