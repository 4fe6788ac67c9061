//! Why a hop's weight changed (issue 16: "logs that explain every weight
//! change"): at a tick, a hop whose share of the class table is
//! `LOGGED_SHARE_CHANGE` or more away from the share last logged for it
//! gets an event that says from what to what and which rule set it (its
//! measured speed, its speed over L, its claim, the max-share cap, the
//! slow-hop weight, the load rule, or it left the window or cannot be
//! used). Compared with the last *logged* share, not the last tick's, so
//! a drift of small steps is logged once it adds up: the log then
//! accounts for every change of 5 points or more, however slowly it came.

use std::collections::HashMap;

use steerer_common::FlowKey;

use super::{
    controller::Controller,
    decisions::{Event, WeightReason},
    report::{SpeedSource, TickReport},
};

/// A share change (absolute, of 1) that is worth a log line.
pub const LOGGED_SHARE_CHANGE: f64 = 0.05;

/// The share each hop was last logged at (by name; zero when absent).
#[derive(Debug, Clone, Default)]
pub struct LoggedShares(HashMap<String, f64>);

impl LoggedShares {
    /// This tick's shares (every hop of the report); returns the hops to
    /// log with the share they were last logged at, and remembers theirs.
    /// Hops missing from `now` are forgotten (a hop that comes back starts
    /// from zero, and is logged from zero).
    pub fn update<'a>(&mut self, now: impl Iterator<Item = (&'a str, f64)>) -> Vec<(usize, f64)> {
        let mut kept = HashMap::new();
        let mut moved = Vec::new();
        for (i, (name, share)) in now.enumerate() {
            let logged = self.0.get(name).copied().unwrap_or(0.0);
            let remembered = if (share - logged).abs() >= LOGGED_SHARE_CHANGE {
                moved.push((i, logged));
                share
            } else {
                logged
            };
            if remembered > 0.0 {
                kept.insert(name.to_string(), remembered);
            }
        }
        self.0 = kept;
        moved
    }
}

impl Controller {
    pub(super) fn weight_events(&mut self, report: &TickReport<FlowKey>, events: &mut Vec<Event>) {
        let cap = self.engine.params().max_share;
        let load_rule = self.engine.params().load_aware;
        let members = report.window.len();
        let shares = report.hops.iter().map(|r| (r.name.as_str(), r.share));
        for (h, before) in self.logged_shares.update(shares) {
            let r = &report.hops[h];
            let reason = if !r.usable {
                WeightReason::Unusable
            } else if !r.in_window {
                WeightReason::LeftWindow
            } else if self.engine.slow.get(h) == Some(&true) {
                WeightReason::Slow
            } else if members > 1 && (r.share - cap).abs() < 0.005 {
                WeightReason::Capped(cap)
            } else {
                match r.speed_source {
                    SpeedSource::Estimated => WeightReason::Claimed,
                    _ if load_rule => WeightReason::Load,
                    SpeedSource::Measured => WeightReason::Measured,
                    SpeedSource::Remembered => WeightReason::Remembered,
                }
            };
            events.push(Event::WeightChanged {
                hop: r.name.clone(),
                from: before,
                to: r.share,
                speed_mbit: r.speed * 8.0 / 1e6,
                reason,
            });
        }
    }
}
