//! The steerer lab: network namespaces wired with veth pairs into
//! client -> gateway -> hops -> "internet" -> server, plus a traffic
//! generator. Used by the integration tests and by `cargo xtask run`.
//!
//! Network rule: everything lives in namespaces created here, with
//! addresses from 198.18.0.0/15 and 2001:db8::/32; the root namespace is
//! never touched (veth ends are created directly inside the namespaces).

pub mod baselines;
pub mod check;
pub mod flood;
pub mod health_check;
pub mod lab;
pub mod live;
pub mod netns;
pub mod open_loop;
pub mod scrape;
pub mod shaper;
pub mod shootout;
mod shootout_report;
pub use shootout_report::report;
pub mod server;
pub mod sizes;
pub mod steerer;
pub mod traffic;

pub use lab::{HopOptions, Lab, LabSpec};
