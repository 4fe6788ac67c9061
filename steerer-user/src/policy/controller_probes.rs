//! Active probes through each hop as controller inputs (issue 14, item 2).
//! `poll_probes` says which hops are due for a round (the rate bound and
//! the interval are the book's); `handle_probe` takes a round's outcome.
//! A hop whose rounds go unanswered `down_after_rounds` times in a row
//! leaves every table as a link down would (its flows reset at the next
//! tick), whatever its flows say; when it answers again it waits out the
//! link hold-down and comes back. The round-trip time ranks a hop among
//! equals when windows take new members; a hop declared disappeared while
//! its probes were lost is re-tested as soon as they answer, not after L.

use std::collections::HashSet;

use super::{
    controller::{Admin, Controller},
    decisions::{Decisions, Event},
    id_table::IdHolder,
    probe_book::ProbeChange,
};

impl Controller {
    /// The hops (by name) to probe now: every hop of a pool the rate bound
    /// can probe once per interval (so that windows can prefer the nearest
    /// of equal hops); of a larger pool, the hops holding a data-plane id
    /// (table members, hops flows still point at). Besides, hops lost by
    /// their probes and disappeared hops waiting for a re-test. Each at
    /// most once per interval, all together at most at the configured rate.
    /// Call it after every `handle_*`; `poll_timeout` includes the next
    /// round due.
    pub fn poll_probes(&mut self, now_ns: u64) -> Vec<String> {
        let Some(p) = self.engine.params().probe.clone() else {
            return Vec::new();
        };
        let budget = p.max_rounds_per_sec * p.interval_ns as f64 / 1e9;
        let mut wanted: HashSet<u32> = if (self.hops.len() as f64) <= budget {
            (0..self.hops.len() as u32).collect()
        } else {
            self.ids
                .held()
                .filter_map(|(_, holder)| match holder {
                    IdHolder::Hop(h) => Some(*h),
                    _ => None,
                })
                .collect()
        };
        wanted.extend(self.retest.iter().copied());
        // A disabled hop is the operator's: no probe traffic through it.
        wanted.retain(|&h| self.hops[h as usize].admin != Admin::Disabled);
        self.probes
            .due(now_ns, &wanted)
            .into_iter()
            .map(|h| self.hops[h as usize].spec.name.clone())
            .collect()
    }

    /// A probe round through hop `name` ended at `now_ns`: answered with
    /// the best round-trip time of its targets, or by none (`None`).
    pub fn handle_probe(&mut self, now_ns: u64, name: &str, rtt_ns: Option<u64>) -> Decisions {
        let mut events = Vec::new();
        if let Some(&i) = self.by_name.get(name) {
            self.probe_outcome(now_ns, i, rtt_ns, &mut events);
        }
        self.decide(events, None, false)
    }

    fn probe_outcome(&mut self, now_ns: u64, i: u32, rtt_ns: Option<u64>, events: &mut Vec<Event>) {
        let hold = self.engine.params().link_hold_down_ns;
        let hop = self.hops[i as usize].spec.name.clone();
        let change = self.probes.record(now_ns, i, rtt_ns, hold);
        self.engine.set_probes_answer(i as usize, rtt_ns.is_some());
        if rtt_ns.is_some() {
            self.engine.set_latency(i as usize, self.probes.rtt_ms(i));
        }
        match change {
            ProbeChange::WentDown { rounds } => {
                self.refresh_usable(i);
                events.push(Event::ProbesLost {
                    hop: hop.clone(),
                    rounds,
                });
            }
            ProbeChange::CameBack => {
                events.push(Event::ProbesBack {
                    hop: hop.clone(),
                    for_ns: hold,
                });
                // No hold-down: back at once.
                self.probes_recovered(now_ns, events);
            }
            ProbeChange::Nothing => {}
        }
        if rtt_ns.is_some() && self.retest.remove(&i) && self.engine.retest(i as usize) {
            events.push(Event::Retested { hop });
        }
    }

    /// Hops whose probe recovery (hold-down) ended take flows again.
    pub(super) fn probes_recovered(&mut self, now_ns: u64, events: &mut Vec<Event>) {
        for i in self.probes.recovered(now_ns) {
            self.refresh_usable(i);
            if self.hop_usable(i) && self.hops[i as usize].admin == Admin::Active {
                events.push(Event::HopUp {
                    hop: self.hops[i as usize].spec.name.clone(),
                });
            }
        }
    }

    /// A hop was declared disappeared at a tick: if its probes were not
    /// answering (they agree), a probe answer re-tests it.
    pub(super) fn note_disappeared(&mut self, h: u32) {
        if self.probes.enabled() && !self.probes.answering(h) {
            self.retest.insert(h);
        }
    }

    /// The probes' smoothed round-trip time through hop `name`, ms.
    pub fn probe_rtt_ms(&self, name: &str) -> Option<f64> {
        self.probes.rtt_ms(*self.by_name.get(name)?)
    }

    /// Whether hop `name` is out of the tables by its probes.
    pub fn probe_down(&self, name: &str) -> bool {
        self.by_name
            .get(name)
            .is_some_and(|&i| self.probes.is_down(i))
    }
}
