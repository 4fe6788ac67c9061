//! Why a hop's weight changed (issue 16: "logs that explain every weight
//! change"): at a tick, a hop whose share of the class table moved by
//! `LOGGED_SHARE_CHANGE` or more since the last tick gets an event that
//! says from what to what and which rule set it (its measured speed, its
//! speed over L, its claim, the max-share cap, the slow-hop weight, or it
//! left the window or cannot be used).

use std::collections::HashMap;

use steerer_common::FlowKey;

use super::{
    controller::Controller,
    decisions::{Event, WeightReason},
    report::{SpeedSource, TickReport},
};

/// A share change (absolute, of 1) that is worth a log line.
pub const LOGGED_SHARE_CHANGE: f64 = 0.05;

impl Controller {
    pub(super) fn weight_events(&mut self, report: &TickReport<FlowKey>, events: &mut Vec<Event>) {
        let cap = self.engine.params().max_share;
        let members = report.window.len();
        let mut shares = HashMap::new();
        for (h, r) in report.hops.iter().enumerate() {
            if r.share > 0.0 {
                shares.insert(r.name.clone(), r.share);
            }
            let before = self.last_shares.get(&r.name).copied().unwrap_or(0.0);
            if (r.share - before).abs() < LOGGED_SHARE_CHANGE {
                continue;
            }
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
                    SpeedSource::Measured => WeightReason::Measured,
                    SpeedSource::Remembered => WeightReason::Remembered,
                    SpeedSource::Estimated => WeightReason::Claimed,
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
        self.last_shares = shares;
    }
}
