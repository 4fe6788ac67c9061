//! The control-plane policy, sans-IO: it never reads a clock, a socket or a
//! map. The daemon (from BPF maps) and the simulator (from its simulated
//! network) feed the same [`Controller`] with observations stamped with
//! time; it answers with [`Decisions`]: slot tables, port sets, destination
//! tables, hops to enable or disable, flows to reset, events with reasons.
//!
//! Per tick (SPEC 5): per-flow deltas give each hop's speed over its busy
//! time, recorded in its L window (5.1, 5.2); hops that answer nothing are
//! declared disappeared (5.5); the class window of N hops replaces a bad
//! member and grows while its hops are saturated; a destination with more
//! than R new connections in a tick, or with a blocked hop, gets a window of
//! its own of N + (connections over L / R) * S hops, weighted by what its
//! hops moved to it where there is enough data and by their global speed
//! otherwise (5.3, 5.4); shares are capped per hop and per operator and keep
//! an exploration share (5.6); tables are built Maglev-like (`slot_table`).
//!
//! Files: `engine` (the tick's two halves), `measure`, `class_window`,
//! `dest_window`, `tables` (the engine's parts); `controller` (inputs),
//! `controller_blocks` (block list at work), `controller_output` (desired
//! state), `controller_probes` (probe rounds in, with `probe_book`),
//! `controller_reload`, `controller_view` (what a status view shows), `decisions`, `port_plan`, `dest_slots`, `id_table`
//! (what surrounds the engine); `blocked`, `hop_window`, `window`, `busy_time`,
//! `slot_table`, `weights` (the building blocks).

pub mod blocked;
pub mod busy_time;
pub mod class_window;
pub mod controller;
mod controller_blocks;
mod controller_output;
mod controller_probes;
mod controller_reload;
pub mod controller_view;
mod controller_weights;
pub mod decisions;
pub mod dest_slots;
pub mod dest_window;
pub mod engine;
mod hop_inputs;
pub mod hop_window;
pub mod id_table;
pub mod measure;
pub mod params;
pub mod port_outcomes;
pub mod port_plan;
pub mod probe_book;
pub mod report;
pub mod slot_table;
pub mod tables;
pub mod weights;
pub mod window;

pub use controller::{Admin, Controller, ControllerHop};
pub use controller_reload::ReloadSummary;
pub use controller_view::{DestinationView, ExclusionView, HopCondition};
pub use decisions::{Decisions, Event, WeightReason};
pub use engine::Engine;
pub use measure::Observed;
pub use params::*;
pub use probe_book::{ProbeHealth, ProbeParams};
pub use report::{DestinationTable, FlowEvent, FlowSample, HopReport, SpeedSource, TickReport};

#[cfg(test)]
#[path = "controller_tests.rs"]
mod controller_tests;
#[cfg(test)]
#[path = "engine_more_tests.rs"]
mod engine_more_tests;
#[cfg(test)]
#[path = "engine_tests.rs"]
mod engine_tests;
#[cfg(test)]
#[path = "evidence_tests.rs"]
mod evidence_tests;
#[cfg(test)]
#[path = "probe_tests.rs"]
mod probe_tests;
#[cfg(test)]
#[path = "reload_tests.rs"]
mod reload_tests;
#[cfg(test)]
mod test_support;
#[cfg(test)]
#[path = "view_tests.rs"]
mod view_tests;
#[cfg(test)]
#[path = "weight_tests.rs"]
mod weight_tests;

#[cfg(test)]
#[path = "id_pool_tests.rs"]
mod id_pool_tests;
