//! What the controller can say about its hops and destinations right now,
//! for an operator's status view (issue 16: a state and a reason per hop,
//! the exclusions with their ends, the destinations with windows). Read
//! only; times are the controller's clock (the caller turns them into wall
//! time).

use steerer_common::flow::DestKey;

use super::{controller::Admin, Controller};

/// A hop's condition, the first that applies in this order: the
/// operator's word, then the link, then the probes, then the flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HopCondition {
    /// Takes new flows.
    Up,
    /// `state = "drain"`: no new flows, established ones stay.
    Draining,
    /// `state = "disabled"`: no flows.
    Disabled,
    /// Link or carrier down, or its next hop unresolved.
    LinkDown,
    /// Its link came back; new flows after the hold-down, at `until_ns`.
    HeldDown { until_ns: u64 },
    /// Its probes went unanswered.
    ProbesLost,
    /// No reply on any of its flows: out until `until_ns`, then re-tested.
    Disappeared { until_ns: u64 },
}

impl HopCondition {
    /// One word for a table column.
    pub fn label(self) -> &'static str {
        match self {
            HopCondition::Up => "up",
            HopCondition::Draining => "draining",
            HopCondition::Disabled => "disabled",
            HopCondition::LinkDown => "link down",
            HopCondition::HeldDown { .. } => "held down",
            HopCondition::ProbesLost => "probes lost",
            HopCondition::Disappeared { .. } => "disappeared",
        }
    }

    /// When the condition ends by itself, if it does.
    pub fn until_ns(self) -> Option<u64> {
        match self {
            HopCondition::HeldDown { until_ns } | HopCondition::Disappeared { until_ns } => {
                Some(until_ns)
            }
            _ => None,
        }
    }
}

/// One (hop, destination) exclusion in force.
#[derive(Debug, Clone, PartialEq)]
pub struct ExclusionView {
    pub hop: String,
    pub dest: DestKey,
    pub until_ns: u64,
}

/// A destination with a window and table of its own.
#[derive(Debug, Clone, PartialEq)]
pub struct DestinationView {
    pub dest: DestKey,
    /// Its window's members, by name.
    pub hops: Vec<String>,
}

impl Controller {
    /// Hop `name`'s condition (None: no such hop).
    pub fn hop_condition(&self, name: &str) -> Option<HopCondition> {
        let i = *self.by_name.get(name)?;
        let hop = &self.hops[i as usize];
        let state = &self.engine.state[i as usize];
        Some(match hop.admin {
            Admin::Disabled => HopCondition::Disabled,
            Admin::Drain => HopCondition::Draining,
            Admin::Active => {
                if let Some(&(_, until_ns)) = self.rejoin_at.iter().find(|&&(h, _)| h == i) {
                    HopCondition::HeldDown { until_ns }
                } else if !hop.usable {
                    HopCondition::LinkDown
                } else if self.probes.is_down(i) {
                    HopCondition::ProbesLost
                } else if let Some(until_ns) = state.silent_until {
                    HopCondition::Disappeared { until_ns }
                } else {
                    HopCondition::Up
                }
            }
        })
    }

    /// Every exclusion in force at the last tick, hop by name; ordered by
    /// hop, then destination.
    pub fn exclusions(&self) -> Vec<ExclusionView> {
        let mut out: Vec<ExclusionView> = self
            .excluded
            .iter()
            .filter_map(|&(h, d)| {
                Some(ExclusionView {
                    hop: self.hops.get(h as usize)?.spec.name.clone(),
                    dest: *self.dest_keys.get(&d)?,
                    until_ns: self.blocks.excluded_until(h, &d)?,
                })
            })
            .collect();
        out.sort_by(|a, b| {
            (&a.hop, a.dest.addr, a.dest.port).cmp(&(&b.hop, b.dest.addr, b.dest.port))
        });
        out
    }

    /// Every destination with a window of its own, its members by name.
    pub fn destination_windows(&self) -> Vec<DestinationView> {
        self.engine
            .destinations
            .keys()
            .filter_map(|&d| {
                let dest = *self.dest_keys.get(&d)?;
                let members = self.engine.destination_window(d)?;
                let hops = members
                    .iter()
                    .filter_map(|&h| Some(self.hops.get(h as usize)?.spec.name.clone()))
                    .collect();
                Some(DestinationView { dest, hops })
            })
            .collect()
    }
}
