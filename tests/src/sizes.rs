//! Flow sizes drawn from a published CDF: the simulator's implementation,
//! included by path (this crate cannot depend on `steerer-user`, which
//! needs the eBPF toolchain that `cargo xtask setup` installs first).

#[path = "../../steerer-user/src/sim/flow_size.rs"]
mod flow_size;

pub use flow_size::FlowSizeCdf as SizeCdf;

/// The web-search flow-size CDF (Alizadeh et al., DCTCP), copied from
/// `../shared/data/flowsize/websearch.txt`.
pub const WEBSEARCH: &str = include_str!("../../scenarios/flowsize/websearch.txt");
/// The Facebook Hadoop flow-size CDF (Roy et al.).
pub const HADOOP: &str = include_str!("../../scenarios/flowsize/fb-hadoop.txt");
