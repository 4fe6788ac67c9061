//! The class window (SPEC 5.4, 5.5): the N hops new flows of a class are
//! steered to; a bad member is replaced, a saturated window grows, an idle
//! grown one gives a member back; hops answering nothing are taken out.

use std::hash::Hash;

use super::{
    engine::Engine,
    measure::TickMeasure,
    params::{BAD_FAILURE_RATIO, BAD_SPEED_FRACTION, IDLE_BUSY, SATURATED_BUSY, SILENT_FAILURES},
    report::SpeedSource,
};

impl<K: Hash + Eq + Copy> Engine<K> {
    /// SPEC 5.5, disappeared: "no reply on any flow -> removed from every
    /// window within one tick". A hop with at least `SILENT_FAILURES` flows
    /// of strong evidence (`failed`: TCP flows and SYN failovers) failing
    /// this tick and not one reply byte on any flow is taken out until
    /// `memory_ns` (L) has passed, then offered flows again. Flows of weak
    /// evidence (UDP) alone take a hop out only when it has answered
    /// nothing for L while they failed: a one-way burst must not. A hop
    /// that blackholes only some destinations still answers the others and
    /// is left to the block list. While the hop's probes answer (issue 14:
    /// "declared disappeared only if probes agree or it has answered
    /// nothing over L"), strong evidence too needs L of silence. Returns
    /// the hops newly taken out.
    pub(super) fn judge_silence(
        &mut self,
        now_ns: u64,
        failed: &[u64],
        m: &TickMeasure,
    ) -> Vec<u32> {
        let memory = self.params.memory_ns;
        let mut out = Vec::new();
        for (h, s) in self.state.iter_mut().enumerate() {
            if s.silent_until.is_some_and(|t| now_ns >= t) {
                s.silent_until = None;
                s.quiet_since = None;
            }
            let failing = failed[h] + m.weak_failed[h] > 0;
            if m.answered[h] > 0 {
                s.quiet_since = None;
            } else if failing && s.quiet_since.is_none() {
                s.quiet_since = Some(now_ns);
            }
            if s.silent_until.is_some() || m.answered[h] > 0 {
                continue;
            }
            // Probes that answer outvote failed flows (a burst of SYNs to a
            // dead service is not a dead hop) unless nothing answered for L.
            let strong = failed[h] >= SILENT_FAILURES && !s.probes_answer;
            // (With answering probes, strong evidence counts here too.)
            let quiet_failures = m.weak_failed[h] + if s.probes_answer { failed[h] } else { 0 };
            let quiet_for_l = failing
                && quiet_failures >= SILENT_FAILURES
                && s.quiet_since
                    .is_some_and(|t| now_ns.saturating_sub(t) >= memory);
            if strong || quiet_for_l {
                s.silent_until = Some(now_ns.saturating_add(memory));
                out.push(h as u32);
            }
        }
        out
    }

    /// Which hops are far slower than the best measured member of the class
    /// window (below `BAD_SPEED_FRACTION` of it).
    pub(super) fn judge_slow(&mut self, speeds: &[f64], sources: &[SpeedSource]) {
        let known = |h: usize| sources[h] != SpeedSource::Estimated;
        let best = self
            .window
            .members
            .iter()
            .map(|&h| h as usize)
            .filter(|&h| known(h))
            .map(|h| speeds[h])
            .fold(0.0, f64::max);
        for (h, slow) in self.slow.iter_mut().enumerate() {
            *slow = known(h) && best > 0.0 && speeds[h] < BAD_SPEED_FRACTION * best;
        }
    }

    /// Usable by link state and not declared disappeared.
    pub(super) fn usable_now(&self, h: usize) -> bool {
        self.state[h].usable && self.state[h].silent_until.is_none()
    }

    pub(super) fn fill_window(&mut self) {
        let state = &self.state;
        let (operators, subnets) = (&self.operators, &self.subnets);
        self.window.fill(
            self.window_size,
            &mut self.pool,
            |h| state[h as usize].usable && state[h as usize].silent_until.is_none(),
            |h| (operators[h as usize], subnets[h as usize]),
        );
    }

    /// SPEC 5.4/5.5 for the class window: unusable members leave; one bad
    /// member (far slower than the best, or failing most of its flows) is
    /// replaced per tick; a saturated window grows, and a grown one that
    /// is no longer busy loses the member that moved the least data.
    pub(super) fn maintain_window(
        &mut self,
        m: &TickMeasure,
        speeds: &[f64],
        sources: &[SpeedSource],
        unanswered: &[u64],
        tick_len: u64,
    ) {
        let usable: Vec<bool> = (0..self.hops.len()).map(|h| self.usable_now(h)).collect();
        self.window.members.retain(|&h| usable[h as usize]);
        if let Some(h) = self.worst_member(m, speeds, sources, unanswered) {
            // Replace only if the pool has someone else to offer.
            let spare =
                (0..self.hops.len() as u32).any(|x| usable[x as usize] && !self.window.contains(x));
            if spare {
                self.window.remove(h);
            }
        }
        self.resize_window(m, tick_len);
        self.window_size = self
            .window_size
            .max(self.params.window_base.max(1))
            .min(self.params.class_window_cap());
        self.fill_window();
    }

    /// The member that is most clearly bad, if any: failing most of its
    /// flows, or far slower than the best measured member.
    fn worst_member(
        &self,
        m: &TickMeasure,
        speeds: &[f64],
        sources: &[SpeedSource],
        unanswered: &[u64],
    ) -> Option<u32> {
        let known = |h: u32| sources[h as usize] != SpeedSource::Estimated;
        let best = self
            .window
            .members
            .iter()
            .filter(|&&h| known(h))
            .map(|&h| speeds[h as usize])
            .fold(0.0, f64::max);
        let badness = |h: u32| -> Option<f64> {
            let i = h as usize;
            let failures = unanswered[i];
            let ratio = failures as f64 / (failures + m.answered[i]).max(1) as f64;
            if failures >= SILENT_FAILURES && ratio > BAD_FAILURE_RATIO {
                return Some(ratio);
            }
            if known(h) && best > 0.0 && speeds[i] < BAD_SPEED_FRACTION * best {
                return Some(1.0 - speeds[i] / best);
            }
            None
        };
        self.window
            .members
            .iter()
            .filter_map(|&h| badness(h).map(|b| (b, h)))
            .max_by(|a, b| a.0.total_cmp(&b.0).then(b.1.cmp(&a.1)))
            .map(|(_, h)| h)
    }

    /// Saturated (each member moved, over the whole tick, close to the
    /// best speed it showed within L; a hop with one idle long flow is busy
    /// all the time but far from its best): grow fourfold. Idle: shrink by
    /// the member that moved the least, down to N.
    fn resize_window(&mut self, m: &TickMeasure, tick_len: u64) {
        let members = &self.window.members;
        let load = |h: u32| -> Option<f64> {
            let i = h as usize;
            let peak = self.state[i].sequence.peak_speed()?;
            m.measured[i]?;
            (peak > 0.0).then(|| m.bytes[i] as f64 / (tick_len as f64 / 1e9) / peak)
        };
        let loads: Vec<f64> = members.iter().filter_map(|&h| load(h)).collect();
        // Judged on the members measured this tick (new ones have not
        // been yet), once at least half of them are.
        if loads.is_empty() || 2 * loads.len() < members.len() {
            return;
        }
        let busy = loads.iter().sum::<f64>() / loads.len() as f64;
        if busy >= SATURATED_BUSY {
            // Four times (at least S more): a gateway whose load needs
            // hundreds of hops gets there in a few ticks, not hundreds.
            self.window_size = (members.len() + self.params.grow_by)
                .max(members.len() * 4)
                .min(self.params.class_window_cap());
        } else if busy < IDLE_BUSY && self.window_size > self.params.window_base {
            self.window_size -= 1;
            // "a window above its baseline loses the one hop that routed
            // the least data in the past K seconds" (SPEC 5.4)
            if let Some(&least) = members.iter().min_by_key(|&&h| (m.bytes[h as usize], h)) {
                self.window.remove(least);
            }
        }
    }
}
