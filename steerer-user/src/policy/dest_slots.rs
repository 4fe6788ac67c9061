//! Which data-plane destination table (`DEST_TABLES` index) holds which
//! destination window. An index freed by a closed window rests one tick
//! before another destination gets it: a packet that looked the old
//! destination up just before its entry went never reads a table being
//! rewritten for someone else.

use std::collections::BTreeMap;

use steerer_common::{flow::DestKey, limits::MAX_DEST_TABLES};

use super::decisions::{DestinationDecision, Event};

#[derive(Debug, Clone, Default)]
pub struct DestSlots {
    /// Destination id -> (key, table index).
    held: BTreeMap<u64, (DestKey, u32)>,
    free: Vec<u32>,
    /// Freed this tick; free from the next.
    resting: Vec<u32>,
    next: u32,
}

impl DestSlots {
    /// The index of every destination in `wanted` (id, table): kept where
    /// it has one, a free one for a new destination whose key `key_of`
    /// knows (a destination whose key is unknown waits a tick). Returns
    /// the desired destination tables; `events` gets openings and closings.
    pub fn sync(
        &mut self,
        wanted: &[(u64, &[u32])],
        key_of: impl Fn(u64) -> Option<DestKey>,
        events: &mut Vec<Event>,
    ) -> Vec<DestinationDecision> {
        self.free.append(&mut self.resting);
        let gone: Vec<u64> = self
            .held
            .keys()
            .filter(|d| !wanted.iter().any(|(w, _)| w == *d))
            .copied()
            .collect();
        for d in gone {
            if let Some((dest, index)) = self.held.remove(&d) {
                self.resting.push(index);
                events.push(Event::DestinationClosed { dest });
            }
        }
        let mut out = Vec::with_capacity(wanted.len());
        for &(d, table) in wanted {
            if let Some(&(dest, index)) = self.held.get(&d) {
                out.push(DestinationDecision {
                    dest,
                    index,
                    table: table.to_vec(),
                });
                continue;
            }
            let Some(dest) = key_of(d) else { continue };
            let Some(index) = self.take_index() else {
                continue;
            };
            self.held.insert(d, (dest, index));
            events.push(Event::DestinationOpened { dest, index });
            out.push(DestinationDecision {
                dest,
                index,
                table: table.to_vec(),
            });
        }
        out
    }

    fn take_index(&mut self) -> Option<u32> {
        // Lowest free first, so a short run reuses few tables.
        self.free.sort_unstable_by(|a, b| b.cmp(a));
        if let Some(i) = self.free.pop() {
            return Some(i);
        }
        (self.next < MAX_DEST_TABLES).then(|| {
            self.next += 1;
            self.next - 1
        })
    }

    /// Does the destination hold a table?
    pub fn holds(&self, id: u64) -> bool {
        self.held.contains_key(&id)
    }

    /// The held destinations (for the controller's memory of keys).
    pub fn held(&self) -> impl Iterator<Item = (u64, &DestKey, u32)> + '_ {
        self.held.iter().map(|(&d, (k, i))| (d, k, *i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> DestKey {
        DestKey {
            addr: [n; 16],
            port: 443,
            proto: 6,
            family: 6,
        }
    }

    #[test]
    fn a_freed_index_rests_a_tick_before_it_is_reused() {
        let mut s = DestSlots::default();
        let mut ev = Vec::new();
        let t = vec![1u32; 3];
        let a = s.sync(&[(1, &t), (2, &t)], |d| Some(key(d as u8)), &mut ev);
        assert_eq!(a.iter().map(|d| d.index).collect::<Vec<_>>(), vec![0, 1]);
        // Destination 1 closes, 3 opens in the same tick: not in index 0.
        let b = s.sync(&[(2, &t), (3, &t)], |d| Some(key(d as u8)), &mut ev);
        assert_eq!(
            b.iter().map(|d| (d.dest, d.index)).collect::<Vec<_>>(),
            vec![(key(2), 1), (key(3), 2)]
        );
        // A tick later index 0 is free again.
        let c = s.sync(
            &[(2, &t), (3, &t), (4, &t)],
            |d| Some(key(d as u8)),
            &mut ev,
        );
        assert_eq!(c[2].index, 0);
        assert!(ev.contains(&Event::DestinationClosed { dest: key(1) }));
        assert!(ev.contains(&Event::DestinationOpened {
            dest: key(4),
            index: 0
        }));
    }

    #[test]
    fn a_destination_with_an_unknown_key_waits() {
        let mut s = DestSlots::default();
        let t = vec![1u32; 3];
        let out = s.sync(&[(9, &t)], |_| None, &mut Vec::new());
        assert!(out.is_empty() && !s.holds(9));
    }
}
