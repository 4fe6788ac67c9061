//! What the caller tells the engine about a hop between ticks: its link
//! state, its probes' latency and answers, a re-test. Each takes effect on
//! the tables at once (from the last tick's speeds), not at the next tick.

use std::hash::Hash;

use super::{engine::Engine, hop_window};

impl<K: Hash + Eq + Copy> Engine<K> {
    /// Mark a hop usable or not (its link went down, its next hop stopped
    /// resolving). The class table follows at once (from the last tick's
    /// speeds); destination tables at the next tick.
    pub fn set_usable(&mut self, hop: usize, usable: bool) {
        if self.mark_usable(hop, usable) {
            self.refill_and_rebuild();
        }
    }

    /// `set_usable` for many hops at once, with one rebuild of the tables
    /// (a pool of thousands of hops at start: one rebuild per hop would
    /// be quadratic).
    pub fn set_usable_many(&mut self, hops: impl IntoIterator<Item = (usize, bool)>) {
        let mut changed = false;
        for (hop, usable) in hops {
            changed |= self.mark_usable(hop, usable);
        }
        if changed {
            self.refill_and_rebuild();
        }
    }

    /// The state change of `set_usable` without the rebuild; whether it
    /// changed anything.
    fn mark_usable(&mut self, hop: usize, usable: bool) -> bool {
        let Some(s) = self.state.get_mut(hop) else {
            return false;
        };
        if s.usable == usable {
            return false;
        }
        s.usable = usable;
        if !usable {
            self.window.remove(hop as u32);
            for d in self.destinations.values_mut() {
                d.window.remove(hop as u32);
            }
        }
        true
    }

    /// The probes' latency to hop `hop` (milliseconds): it ranks the hop
    /// among equals when windows take new members.
    pub fn set_latency(&mut self, hop: usize, latency_ms: Option<f64>) {
        let Some(spec) = self.hops.get_mut(hop) else {
            return;
        };
        spec.latency_ms = latency_ms;
        let rank = hop_window::enumeration_rank(spec.fresh, latency_ms);
        self.pool.set_rank(hop as u32, rank);
    }

    /// Whether the probes through `hop` answer (see `HopState::probes_answer`).
    pub fn set_probes_answer(&mut self, hop: usize, answer: bool) {
        if let Some(s) = self.state.get_mut(hop) {
            s.probes_answer = answer;
        }
    }

    /// A hop declared disappeared is offered flows again now (its probes
    /// answer again), not when L has passed. False if it was not out.
    pub fn retest(&mut self, hop: usize) -> bool {
        let Some(s) = self.state.get_mut(hop) else {
            return false;
        };
        if s.silent_until.take().is_none() {
            return false;
        }
        s.quiet_since = None;
        self.refill_and_rebuild();
        true
    }

    /// Fill the class window up to its size and rebuild every table from
    /// the last speeds (between ticks: a hop left or joined).
    pub(super) fn refill_and_rebuild(&mut self) {
        self.fill_window();
        let (speeds, sources) = (self.last_speeds.clone(), self.last_sources.clone());
        self.table = self.class_table(&speeds, &sources, None).1;
        // Destination tables from their (already allowed) members and the
        // last global speeds; the next tick brings back the dual weights.
        let slots = self.params.destination_slot_count;
        let rebuilt: Vec<(u64, Vec<u32>)> = self
            .destinations
            .iter()
            .map(|(&d, w)| {
                let members: Vec<u32> = w
                    .window
                    .members
                    .iter()
                    .copied()
                    .filter(|&h| self.usable_now(h as usize))
                    .collect();
                (
                    d,
                    self.window_table(&members, &speeds, &sources, &self.capacity, slots)
                        .1,
                )
            })
            .collect();
        for (d, t) in rebuilt {
            if let Some(w) = self.destinations.get_mut(&d) {
                w.table = t;
            }
        }
    }
}
