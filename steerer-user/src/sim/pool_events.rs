//! What happens to the hop pool during a run: the scenario's scripted
//! events (a hop vanishing or slowing down) and the directory's churn
//! (hops retired and published).

use std::collections::HashSet;

use super::{scenario::EventKind, HopSpec, Simulation};

impl Simulation<'_> {
    pub(super) fn apply_events(&mut self, from: u64, to: u64) {
        let mut changed = false;
        for e in &self.sc.file.events {
            let at = (e.at_secs * 1e9) as u64;
            if at < from || at >= to {
                continue;
            }
            match e.kind {
                EventKind::Disappear => self.up[e.hop as usize] = false,
                EventKind::Slow => {
                    self.capacity[e.hop as usize] = e.mbit.unwrap_or(1.0) * 125_000.0
                }
            }
            changed = true;
        }
        if changed {
            self.policy.hops_changed(&self.up);
            for i in 0..self.conns.len() {
                self.refresh_flowing(i);
            }
        }
    }

    /// The directory changed: retired hops vanish, new ones are up and
    /// published (steerer's controller gets the new pool, new hops fresh).
    pub(super) fn apply_churn(&mut self, now: u64) {
        let Some(change) = self.churn.as_mut().and_then(|c| c.due(now)) else {
            return;
        };
        for &h in &change.retired {
            self.up[h as usize] = false;
        }
        for &h in &change.added {
            self.up[h as usize] = true;
        }
        self.policy.hops_changed(&self.up);
        let (up, specs) = (&self.up, &self.specs);
        let added: HashSet<u32> = change.added.iter().copied().collect();
        if let Some(s) = self.policy.steerer() {
            let pool = (0..specs.len())
                .filter(|&h| up[h])
                .map(|h| HopSpec {
                    fresh: added.contains(&(h as u32)),
                    ..specs[h].clone()
                })
                .collect();
            s.pool_changed(now, pool);
        }
        for i in 0..self.conns.len() {
            self.refresh_flowing(i);
        }
    }
}
