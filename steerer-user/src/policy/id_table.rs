//! Data-plane hop ids for a pool larger than the data plane (issue 14:
//! "only members get a data-plane id"). The data plane has `capacity` hop
//! ids (`MAX_HOPS`, or fewer by `Params::hop_ids`); the pool may hold any number of hops. A hop holds an id
//! while some table names it or some flow points at it; an id is handed
//! to another hop only when no flow can point at it any more.
//!
//! When can none? Flows are made by the data plane from the tables in
//! effect. At a tick the controller reads every flow; a flow made after
//! that read came from the tables of the last decision (or of a later
//! one). So an id is released at a tick when that read found no flow on
//! it, the last decision's tables did not name it, and the new ones do
//! not either. Between ticks (link events, timeouts) ids are handed out
//! from free ones but never released: there is no read to prove it safe.
//! At start every id the pins name counts as named by the last tables
//! (an earlier run's tables may still be in effect).
//!
//! A hop is its name (SPEC 5): the table is kept by name over a reload,
//! and a name that leaves the pool keeps its id while its flows drain.

use std::collections::HashMap;

/// Who holds an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdHolder {
    Free,
    /// A pool hop (the controller's index).
    Hop(u32),
    /// A name no longer in the pool, or unknown (pins of an older build),
    /// whose flows still point at the id: they drain on it, its entry
    /// stays as it is.
    Draining(Option<String>),
}

#[derive(Debug, Clone)]
pub struct IdTable {
    holders: Vec<IdHolder>,
    /// Per pool hop.
    id_of: Vec<Option<u32>>,
    /// Flows per id at the last read.
    flows: Vec<u32>,
    /// Ids the last decision's tables named.
    tabled: Vec<bool>,
}

impl IdTable {
    /// `held[h]`: the id pool hop `h` holds now (from the pins), if any;
    /// ids `capacity` and above, or held twice, are dropped.
    pub fn new(capacity: u32, held: &[Option<u32>]) -> IdTable {
        let mut t = IdTable {
            holders: vec![IdHolder::Free; capacity as usize],
            id_of: vec![None; held.len()],
            flows: vec![0; capacity as usize],
            tabled: vec![false; capacity as usize],
        };
        for (h, id) in held.iter().enumerate() {
            if let Some(id) = *id {
                if t.holders.get(id as usize) == Some(&IdHolder::Free) {
                    t.take(id, h as u32);
                }
            }
        }
        t
    }

    fn take(&mut self, id: u32, hop: u32) {
        self.holders[id as usize] = IdHolder::Hop(hop);
        self.id_of[hop as usize] = Some(id);
        // Named by tables that may still be in effect.
        self.tabled[id as usize] = true;
    }

    /// An id that flows point at while its name is not in the pool.
    pub fn hold_draining(&mut self, id: u32, name: Option<String>) {
        if self.holders.get(id as usize) == Some(&IdHolder::Free) {
            self.holders[id as usize] = IdHolder::Draining(name);
            self.tabled[id as usize] = true;
        }
    }

    pub fn capacity(&self) -> u32 {
        self.holders.len() as u32
    }

    pub fn id(&self, hop: u32) -> Option<u32> {
        self.id_of.get(hop as usize).copied().flatten()
    }

    /// The pool hop holding `id`.
    pub fn hop(&self, id: u32) -> Option<u32> {
        match self.holders.get(id as usize)? {
            IdHolder::Hop(h) => Some(*h),
            _ => None,
        }
    }

    /// Every id not free, with its holder.
    pub fn held(&self) -> impl Iterator<Item = (u32, &IdHolder)> {
        self.holders
            .iter()
            .enumerate()
            .filter(|(_, h)| **h != IdHolder::Free)
            .map(|(i, h)| (i as u32, h))
    }

    /// A read of the flow table: the data-plane id of every flow.
    pub fn count_flows(&mut self, ids: impl Iterator<Item = u32>) {
        self.flows.iter_mut().for_each(|n| *n = 0);
        for id in ids {
            if let Some(n) = self.flows.get_mut(id as usize) {
                *n += 1;
            }
        }
    }

    /// The next decision's tables name `wanted` (pool hops). At a tick
    /// (`after_read`), ids no flow, no last and no new table holds are
    /// released first. Every wanted hop without an id gets a free one;
    /// the hops left without one (all ids held) are returned.
    pub fn settle(&mut self, wanted: &[u32], after_read: bool) -> Vec<u32> {
        let mut want = vec![false; self.id_of.len()];
        for &h in wanted {
            if let Some(w) = want.get_mut(h as usize) {
                *w = true;
            }
        }
        if after_read {
            for id in 0..self.holders.len() {
                let releasable = match &self.holders[id] {
                    IdHolder::Free => false,
                    IdHolder::Hop(h) => !want[*h as usize],
                    IdHolder::Draining(_) => true,
                };
                if releasable && self.flows[id] == 0 && !self.tabled[id] {
                    if let IdHolder::Hop(h) = self.holders[id] {
                        self.id_of[h as usize] = None;
                    }
                    self.holders[id] = IdHolder::Free;
                }
            }
        }
        let mut free = (0..self.holders.len() as u32)
            .filter(|&i| self.holders[i as usize] == IdHolder::Free && !self.tabled[i as usize]);
        let mut assigned = Vec::new();
        let mut left = Vec::new();
        for (h, _) in want.iter().enumerate().filter(|(_, w)| **w) {
            if self.id_of[h].is_some() {
                continue;
            }
            match free.next() {
                Some(id) => assigned.push((id, h as u32)),
                None => left.push(h as u32),
            }
        }
        for (id, h) in assigned {
            self.take(id, h);
        }
        self.tabled.iter_mut().for_each(|t| *t = false);
        for h in wanted {
            if let Some(id) = self.id(*h) {
                self.tabled[id as usize] = true;
            }
        }
        left
    }

    /// The table for a new pool (a reload): names that stay keep their
    /// ids, names that left drain on theirs; `names[h]` is the new pool's
    /// hop `h`, `old_names` the old pool's.
    pub fn renamed(&self, old_names: &[&str], names: &[&str]) -> IdTable {
        let index: HashMap<&str, u32> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (*n, i as u32))
            .collect();
        let mut t = IdTable {
            holders: vec![IdHolder::Free; self.holders.len()],
            id_of: vec![None; names.len()],
            flows: self.flows.clone(),
            tabled: self.tabled.clone(),
        };
        for (id, holder) in self.held() {
            let name = match holder {
                IdHolder::Hop(h) => Some(old_names[*h as usize]),
                IdHolder::Draining(n) => n.as_deref(),
                IdHolder::Free => None,
            };
            t.holders[id as usize] = match name.and_then(|n| index.get(n)) {
                Some(&h) => {
                    t.id_of[h as usize] = Some(id);
                    IdHolder::Hop(h)
                }
                None => IdHolder::Draining(name.map(str::to_string)),
            };
        }
        t
    }
}

#[cfg(test)]
#[path = "id_table_tests.rs"]
mod tests;
