//! Destination windows (SPEC 5.4, 5.3): a destination with more than R new
//! connections in a tick, or one a hop is blocked for, gets a window and a
//! table of its own, sized N + (connections over L / R) * S, weighted by
//! what its hops moved to it where there is enough data (dual weights).

use std::hash::Hash;

use super::{
    engine::Engine,
    hop_window::{destination_window_size, HopWindow},
    measure::TickMeasure,
    params::BAD_SPEED_FRACTION,
    report::SpeedSource,
    window::WindowSequence,
};

#[derive(Debug, Clone)]
pub(super) struct DestinationWindow {
    pub window: HopWindow,
    /// The destination's L window (SPEC 5.2): data, busy time and
    /// connections started, per K-second sub-window.
    pub sequence: WindowSequence,
    pub last_used_tick: u64,
    pub table: Vec<u32>,
}

impl<K: Hash + Eq + Copy> Engine<K> {
    /// Open windows for destinations that earned one this tick (more than
    /// R new connections) and for `pinned` ones; the least recently used
    /// unpinned window gives way beyond `max_destination_windows`; size
    /// every window to N + (connections over L / R) * S; above that it
    /// loses its member that moved the least data to it; after L without
    /// connections (and not pinned) it closes. Returns the pinned
    /// destinations that found no room.
    pub(super) fn maintain_destinations(
        &mut self,
        m: &TickMeasure,
        window_start: u64,
        allowed: &dyn Fn(u64, u32) -> bool,
        pinned: &[u64],
        (speeds, sources): (&[f64], &[SpeedSource]),
    ) -> Vec<u64> {
        let tick = self.tick_count;
        for (d, w) in self.destinations.iter_mut() {
            if m.started.get(d).is_some_and(|&c| c > 0) {
                w.last_used_tick = tick;
            }
        }
        // Pinned first (a window keeps a blocked hop away), then the
        // busiest.
        let mut busy: Vec<(u64, u64)> = m
            .started
            .iter()
            .filter(|(d, &c)| c > self.params.grow_after && !self.destinations.contains_key(d))
            .map(|(&d, &c)| (d, c))
            .collect();
        busy.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut unplaced = Vec::new();
        for &d in pinned {
            if !self.destinations.contains_key(&d)
                && !self.open_destination(d, m, window_start, pinned)
            {
                unplaced.push(d);
            }
        }
        for (d, _) in busy {
            if !self.destinations.contains_key(&d) {
                self.open_destination(d, m, window_start, pinned);
            }
        }
        self.size_destinations(m, allowed, pinned, speeds, sources);
        unplaced
    }

    /// A window for `d`, taking the place of the least recently used
    /// unpinned one when all are held. `false`: no room.
    fn open_destination(
        &mut self,
        d: u64,
        m: &TickMeasure,
        window_start: u64,
        pinned: &[u64],
    ) -> bool {
        if self.params.max_destination_windows == 0 {
            return false;
        }
        if self.destinations.len() >= self.params.max_destination_windows {
            let lru = self
                .destinations
                .iter()
                .filter(|(d, _)| pinned.binary_search(d).is_err())
                .min_by_key(|(&d, w)| (w.last_used_tick, d))
                .map(|(&d, _)| d);
            match lru {
                Some(old) => {
                    self.destinations.remove(&old);
                }
                None => return false,
            }
        }
        let mut sequence = WindowSequence::new(
            self.params.tick_ns,
            self.params.memory_ns,
            self.params.group_tolerance_ns,
            window_start,
        );
        // The connections that earned it the window.
        sequence.count_started(m.started.get(&d).copied().unwrap_or(0));
        self.destinations.insert(
            d,
            DestinationWindow {
                window: self.window.clone(),
                sequence,
                last_used_tick: self.tick_count,
                table: Vec::new(),
            },
        );
        true
    }

    /// A destination window follows the class window: it holds the class
    /// window's members that may serve the destination, and the hops of
    /// its own that joined to make up its size (SPEC 5.4: at least
    /// N + (connections over L / R) * S, and never smaller than the class
    /// window it stands in for), less any that turned bad (far slower than
    /// the class window's best, SPEC 5.5). Above its size it loses one
    /// hop per tick, the one that moved the least data to it.
    fn size_destinations(
        &mut self,
        m: &TickMeasure,
        allowed: &dyn Fn(u64, u32) -> bool,
        pinned: &[u64],
        speeds: &[f64],
        sources: &[SpeedSource],
    ) {
        let usable: Vec<bool> = (0..self.hops.len()).map(|h| self.usable_now(h)).collect();
        let (base, r, s) = (
            self.params.window_base.max(1),
            self.params.grow_after,
            self.params.grow_by,
        );
        let class: Vec<u32> = self.window.members.clone();
        let known = |h: u32| sources[h as usize] != SpeedSource::Estimated;
        let best = class
            .iter()
            .filter(|&&h| known(h))
            .map(|&h| speeds[h as usize])
            .fold(0.0, f64::max);
        let bad = |h: u32| known(h) && best > 0.0 && speeds[h as usize] < BAD_SPEED_FRACTION * best;
        let cap = self.params.max_window.max(base);
        let mut gone = Vec::new();
        for (&d, w) in self.destinations.iter_mut() {
            let over_l = w.sequence.connections_started();
            if over_l == 0 && pinned.binary_search(&d).is_err() {
                gone.push(d);
                continue;
            }
            let eligible = |h: u32| usable[h as usize] && allowed(d, h);
            let mut members: Vec<u32> = class.iter().copied().filter(|&h| eligible(h)).collect();
            for &h in &w.window.members {
                if eligible(h) && !bad(h) && !members.contains(&h) {
                    members.push(h);
                }
            }
            let want = destination_window_size(base, r, s, over_l)
                .max(class.len())
                .min(cap);
            // Only whether `want` hops are eligible matters: stop there.
            let available = (0..usable.len() as u32)
                .filter(|&h| eligible(h))
                .take(want)
                .count();
            let size = want.min(available);
            if members.len() > size {
                // Its own hops go first, then class members, least data first.
                let least = members
                    .iter()
                    .min_by_key(|&&h| {
                        let data = m.destination.get(&(d, h)).map_or(0, |x| x.0);
                        (class.contains(&h), data, h)
                    })
                    .copied();
                if let Some(h) = least {
                    members.retain(|&x| x != h);
                }
            }
            w.window.members = members;
            let (operators, subnets) = (&self.operators, &self.subnets);
            w.window.fill(size, &mut self.pool, eligible, |h| {
                (operators[h as usize], subnets[h as usize])
            });
        }
        for d in gone {
            self.destinations.remove(&d);
        }
    }

    /// Dual weights (SPEC 5.3): in a destination's window, a hop's weight is
    /// its speed to that destination where it moved enough data there this
    /// tick, its global speed otherwise.
    pub(super) fn build_destination_tables(
        &mut self,
        m: &TickMeasure,
        speeds: &[f64],
        sources: &[SpeedSource],
        allowed: &dyn Fn(u64, u32) -> bool,
    ) {
        let slots = self.params.destination_slot_count;
        let mut tables = Vec::with_capacity(self.destinations.len());
        for (&d, w) in &self.destinations {
            let mut sp = speeds.to_vec();
            let mut src = sources.to_vec();
            // The load rule takes a per-destination speed as the hop's
            // capacity towards the destination.
            let mut cap = self.capacity.clone();
            for &h in &w.window.members {
                if let Some((_, Some(s))) = m.destination.get(&(d, h)) {
                    sp[h as usize] = *s;
                    src[h as usize] = SpeedSource::Measured;
                    if let Some(c) = cap.get_mut(h as usize) {
                        *c = *s;
                    }
                }
            }
            let members: Vec<u32> = w
                .window
                .members
                .iter()
                .copied()
                .filter(|&h| self.usable_now(h as usize) && allowed(d, h))
                .collect();
            tables.push((d, self.window_table(&members, &sp, &src, &cap, slots).1));
        }
        for (d, t) in tables {
            if let Some(w) = self.destinations.get_mut(&d) {
                w.table = t;
            }
        }
    }
}
