//! From speeds to shares and slot tables (SPEC 5.3, 5.6): measured speeds
//! first, then the speed over L, then the claim, capped at the best
//! measured member; caps per hop and per operator; exploration share.

use std::hash::Hash;

use super::{engine::Engine, params::SLOW_WEIGHT, report::SpeedSource, slot_table, weights};

/// See [`Engine::apply_load_rule`].
const MIN_LOAD_FACTOR: f64 = 0.01;

impl<K: Hash + Eq + Copy> Engine<K> {
    /// Speed per hop: this tick's measurement, else its speed over the L
    /// window (SPEC 5.2: the larger window answers from its sub-windows),
    /// else the operator's estimate.
    pub(super) fn speeds(&self) -> (Vec<f64>, Vec<SpeedSource>) {
        let mut speeds = Vec::with_capacity(self.hops.len());
        let mut sources = Vec::with_capacity(self.hops.len());
        for (h, state) in self.state.iter().enumerate() {
            let seq = &state.sequence;
            if let Some(speed) = seq.current().speed() {
                speeds.push(speed);
                sources.push(SpeedSource::Measured);
            } else if let Some(speed) = seq.speed() {
                speeds.push(speed);
                sources.push(SpeedSource::Remembered);
            } else {
                speeds.push(self.hops[h].initial_estimate);
                sources.push(SpeedSource::Estimated);
            }
        }
        (speeds, sources)
    }

    /// What each hop carried this tick, into its smoothed load, and its
    /// capacity for the load rule.
    pub(super) fn follow_load(&mut self, bytes: &[u64], tick_ns: u64, speeds: &[f64]) {
        let secs = tick_ns as f64 / 1e9;
        let fresh = self.carried.len() != bytes.len();
        self.carried = (0..bytes.len())
            .map(|h| {
                let now = bytes[h] as f64 / secs;
                if fresh {
                    now
                } else {
                    (self.carried[h] + now) / 2.0
                }
            })
            .collect();
        // A hop's capacity is at least the best it did within L: one
        // tick's figure of a hop that was not saturated reads low, and
        // the load rule would amplify that noise between equal hops.
        self.capacity = (0..speeds.len())
            .map(|h| speeds[h].max(self.state[h].sequence.peak_speed().unwrap_or(0.0)))
            .collect();
    }

    /// The load rule over one window (`Params::load_aware`): each measured
    /// member's weight times the part of its capacity new flows should
    /// fill, given what the measured members carry together
    /// (`weights::load_factors`). Members known only by their claim keep
    /// their weight: a claim is no capacity to concentrate load on (nor to
    /// starve a hop by). A member the rule leaves out keeps
    /// `MIN_LOAD_FACTOR` of its weight and is returned: the caller gives it
    /// the exploration floor, so it stays in the table and measured.
    fn apply_load_rule(
        &self,
        members: &[u32],
        sources: &[SpeedSource],
        capacity: &[f64],
        w: &mut [f64],
    ) -> Vec<u32> {
        let mut left_out = Vec::new();
        if !self.params.load_aware || self.carried.len() != w.len() {
            return left_out;
        }
        let measured: Vec<u32> = members
            .iter()
            .copied()
            .filter(|&h| {
                sources
                    .get(h as usize)
                    .is_some_and(|&s| s != SpeedSource::Estimated)
            })
            .collect();
        let at = |v: &[f64], h: u32| v.get(h as usize).copied().unwrap_or(0.0);
        let load: f64 = measured.iter().map(|&h| at(&self.carried, h)).sum();
        let capacity: Vec<f64> = measured.iter().map(|&h| at(capacity, h)).collect();
        let factors = weights::load_factors(&capacity, load);
        let before: f64 = measured.iter().map(|&h| w[h as usize]).sum();
        for (&h, f) in measured.iter().zip(factors) {
            if f < MIN_LOAD_FACTOR {
                left_out.push(h);
            }
            w[h as usize] *= f.max(MIN_LOAD_FACTOR);
        }
        // The measured members keep their weight together: the rule moves
        // new flows among them, not towards the hops known by claim.
        let after: f64 = measured.iter().map(|&h| w[h as usize]).sum();
        if after > 0.0 {
            for &h in &measured {
                w[h as usize] *= before / after;
            }
        }
        left_out
    }

    /// The slot table for a port set served only by the hops in `allowed`
    /// (those accepting every port of the set), from the speeds of the last
    /// tick: the class window's allowed members, topped up to N from the
    /// pool's enumeration order. No allowed usable hop: an empty table (the
    /// data plane passes such flows unsteered and counts them).
    pub fn table_for(&self, allowed: &[bool]) -> Vec<u32> {
        self.class_table(&self.last_speeds, &self.last_sources, Some(allowed))
            .1
    }

    /// Shares and table of the class window (restricted to `allowed`).
    pub(super) fn class_table(
        &self,
        speeds: &[f64],
        sources: &[SpeedSource],
        allowed: Option<&[bool]>,
    ) -> (Vec<f64>, Vec<u32>) {
        let ok = |h: u32| {
            self.usable_now(h as usize)
                && allowed.is_none_or(|a| a.get(h as usize).copied().unwrap_or(false))
        };
        let mut members: Vec<u32> = self
            .window
            .members
            .iter()
            .copied()
            .filter(|&h| ok(h))
            .collect();
        if allowed.is_some() {
            for h in self.pool.order() {
                if members.len() >= self.params.window_base.max(1) {
                    break;
                }
                if ok(h) && !members.contains(&h) {
                    members.push(h);
                }
            }
        }
        let slots = self.params.slot_count;
        self.window_table(&members, speeds, sources, &self.capacity, slots)
    }

    /// Shares (over all hops, zero outside `members`) and the table of a
    /// window: weights by speed, estimates capped at the best measured
    /// member ("claimed figures never outweigh measured ones"), caps per
    /// hop and per operator, exploration share.
    /// `capacity`: per hop, what the load rule takes as its capacity.
    pub(super) fn window_table(
        &self,
        members: &[u32],
        speeds: &[f64],
        sources: &[SpeedSource],
        capacity: &[f64],
        slots: u32,
    ) -> (Vec<f64>, Vec<u32>) {
        let n = self.hops.len();
        if members.is_empty() {
            return (vec![0.0; n], vec![slot_table::EMPTY; slots as usize]);
        }
        let best_known = members
            .iter()
            .filter(|&&h| sources[h as usize] != SpeedSource::Estimated)
            .map(|&h| speeds[h as usize])
            .fold(0.0, f64::max);
        let mut w = vec![0.0; n];
        let mut in_window = vec![false; n];
        for &h in members {
            let i = h as usize;
            in_window[i] = true;
            w[i] = if sources[i] == SpeedSource::Estimated && best_known > 0.0 {
                speeds[i].min(best_known)
            } else if self.slow.get(i).copied().unwrap_or(false) {
                // Bad (SPEC 5.5): "low weight, then replaced"; while the
                // pool has nobody to replace it with, the low weight stays.
                speeds[i] * SLOW_WEIGHT
            } else {
                speeds[i]
            };
        }
        let left_out = self.apply_load_rule(members, sources, capacity, &mut w);
        // Fresh hops, and members the load rule leaves out, keep the
        // exploration floor: both must stay measured.
        let mut floored: Vec<bool> = sources
            .iter()
            .map(|&s| s == SpeedSource::Estimated)
            .collect();
        for h in left_out {
            floored[h as usize] = true;
        }
        let mut shares = weights::shares(
            &w,
            &in_window,
            &floored,
            self.params.max_share,
            self.params.exploration_share,
        );
        weights::cap_groups(&mut shares, &self.operators, self.params.max_operator_share);
        let ids: Vec<u32> = (0..n as u32).collect();
        let table = slot_table::build(&ids, &self.seeds, &shares, slots);
        (shares, table)
    }
}
