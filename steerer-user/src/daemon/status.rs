//! What the daemon keeps for `steerer status` besides the tick's report:
//! the recent events with their wall time, the last event about each hop
//! (its "why"), and, from the controller, each hop's condition, the
//! exclusions and the destination windows. Written every tick next to the
//! daemon's lock (`status_view::status_path`).

use std::collections::{HashMap, VecDeque};

use crate::{
    policy::{decisions::fmt_dest, Controller, Event},
    report::TickStatus,
    status_view::{DestinationStatus, EventLine, ExclusionStatus, RECENT_EVENTS},
};

/// Wall time now, Unix seconds.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[derive(Debug, Default)]
pub struct StatusBook {
    events: VecDeque<EventLine>,
    /// Hop name -> the last event of each kind about it that says why it
    /// is as it is: its weight, its condition, its exclusions.
    why: HashMap<String, [Option<EventLine>; 3]>,
}

/// Which of a hop's reasons an event replaces (None: no reason of its own;
/// a flow reset follows from one already kept: link down, disappeared,
/// disabled).
fn reason_kind(e: &Event) -> Option<usize> {
    match e {
        Event::WeightChanged { .. } => Some(0),
        Event::HopDown { .. }
        | Event::HopUp { .. }
        | Event::HopHeldDown { .. }
        | Event::ProbesLost { .. }
        | Event::ProbesBack { .. }
        | Event::Retested { .. }
        | Event::HopDisappeared { .. } => Some(1),
        Event::Excluded { .. }
        | Event::ExclusionLifted { .. }
        | Event::PortExcluded { .. }
        | Event::PortReadmitted { .. } => Some(2),
        _ => None,
    }
}

impl StatusBook {
    /// The controller's events, at wall time `at_unix`.
    pub fn record(&mut self, events: &[Event], at_unix: f64) {
        for e in events {
            let line = EventLine {
                at_unix,
                warning: e.is_warning(),
                text: e.to_string(),
            };
            if let (Some(hop), Some(kind)) = (e.hop(), reason_kind(e)) {
                self.why.entry(hop.to_string()).or_default()[kind] = Some(line.clone());
            }
            if self.events.len() == RECENT_EVENTS {
                self.events.pop_front();
            }
            self.events.push_back(line);
        }
    }

    /// Fill in what the tick's report does not hold: conditions, reasons,
    /// exclusions, destination windows, events; `mono_now` is the
    /// controller's clock at wall time `wall_now`.
    pub fn fill(&self, status: &mut TickStatus, c: &Controller, mono_now: u64, wall_now: f64) {
        let to_wall = |t: u64| wall_now + (t as f64 - mono_now as f64) / 1e9;
        for h in &mut status.hops {
            if let Some(cond) = c.hop_condition(&h.name) {
                h.state = cond.label().to_string();
                h.state_until_unix = cond.until_ns().map(to_wall);
            }
            let mut why: Vec<EventLine> = self
                .why
                .get(&h.name)
                .into_iter()
                .flatten()
                .flatten()
                .cloned()
                .collect();
            why.sort_by(|a, b| a.at_unix.total_cmp(&b.at_unix));
            h.why = why;
        }
        status.exclusions = c
            .exclusions()
            .into_iter()
            .map(|e| ExclusionStatus {
                hop: e.hop,
                destination: fmt_dest(&e.dest),
                until_unix: to_wall(e.until_ns),
            })
            .collect();
        status.destinations = c
            .destination_windows()
            .into_iter()
            .map(|d| DestinationStatus {
                destination: fmt_dest(&d.dest),
                hops: d.hops,
            })
            .collect();
        status.events = self.events.iter().cloned().collect();
        status.written_unix = wall_now;
        status.pid = std::process::id();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_book_keeps_the_last_reason_per_hop_and_a_bounded_history() {
        let mut b = StatusBook::default();
        b.record(&[Event::HopDown { hop: "a".into() }], 10.0);
        b.record(
            &[Event::FlowsReset {
                hop: "a".into(),
                flows: 3,
                why: "link down",
            }],
            11.0,
        );
        let why = b.why["a"][1].as_ref().expect("a reason");
        assert_eq!(why.at_unix, 10.0, "a flow reset is no reason of its own");
        assert!(why.warning && why.text.contains("is down"), "{why:?}");
        // A weight change is kept next to it, not over it.
        b.record(
            &[Event::WeightChanged {
                hop: "a".into(),
                from: 0.5,
                to: 0.0,
                speed_mbit: 0.0,
                reason: crate::policy::WeightReason::Unusable,
            }],
            12.0,
        );
        assert_eq!(b.why["a"][1].as_ref().map(|e| e.at_unix), Some(10.0));
        assert_eq!(b.why["a"][0].as_ref().map(|e| e.at_unix), Some(12.0));
        for i in 0..RECENT_EVENTS + 5 {
            b.record(&[Event::HopUp { hop: "b".into() }], 20.0 + i as f64);
        }
        assert_eq!(b.events.len(), RECENT_EVENTS);
        assert_eq!(
            b.events.back().map(|e| e.at_unix),
            Some(20.0 + (RECENT_EVENTS + 4) as f64)
        );
        assert!(b.why["a"][2].is_none());
    }
}
