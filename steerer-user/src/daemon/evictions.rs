//! The flow table's LRU evictions, estimated from counters the daemon
//! has: the kernel counts no evictions of an LRU hash map.
//!
//! Every entry that left the table since the daemon started was deleted
//! by the daemon (idle expiry, a flow reset) or evicted by the LRU, so
//!
//! ```text
//! evicted = inserted − (entries now − entries at start) − deleted
//! ```
//!
//! with `inserted` the data plane's `new_flow` counter (a CPU that lost
//! the race to insert the same tuple counts one the table did not get:
//! the estimate errs high by those, a handful per second at most) and
//! `deleted` what the daemon's batch deletes removed. The counter is read
//! before the flow table, so flows inserted in between make the estimate
//! low for a tick, never high; the total is kept monotonic.

/// The running estimate. Feed it every tick with [`EvictionCount::observe`]
/// and every deletion with [`EvictionCount::deleted`].
#[derive(Debug, Default)]
pub struct EvictionCount {
    /// `new_flow` and the table's entries at the first observation (of
    /// these counters: maps made anew start another).
    start: Option<(u64, u64)>,
    deleted: u64,
    /// The most evictions the counters since `start` have shown.
    since_start: u64,
    /// Evictions counted before `start`.
    before: u64,
}

impl EvictionCount {
    /// The daemon deleted `n` entries from the flow table.
    pub fn deleted(&mut self, n: usize) {
        if self.start.is_some() {
            self.deleted += n as u64;
        }
    }

    /// One reading: the `new_flow` counter (all CPUs), then the number of
    /// entries in the flow table. Returns the evictions since the last
    /// reading.
    pub fn observe(&mut self, inserted: u64, entries: usize) -> u64 {
        let entries = entries as u64;
        let (inserted0, entries0) = match self.start {
            Some((i, _)) if inserted < i => {
                // A counter went back: the maps were made anew.
                self.before += self.since_start;
                self.since_start = 0;
                self.deleted = 0;
                self.start = Some((inserted, entries));
                return 0;
            }
            Some(s) => s,
            None => {
                self.start = Some((inserted, entries));
                return 0;
            }
        };
        let left = (inserted - inserted0 + entries0).saturating_sub(entries);
        let evicted = left.saturating_sub(self.deleted);
        let new = evicted.saturating_sub(self.since_start);
        self.since_start = self.since_start.max(evicted);
        new
    }

    /// Evictions since the daemon started (estimated).
    pub fn total(&self) -> u64 {
        self.before + self.since_start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A model table: an LRU of `cap` entries fed `inserts` new flows, of
    /// which the daemon deletes some; the estimate must match the
    /// evictions the model made.
    struct Model {
        cap: u64,
        entries: u64,
        inserted: u64,
        evicted: u64,
    }

    impl Model {
        fn insert(&mut self, n: u64) {
            self.inserted += n;
            self.entries += n;
            if self.entries > self.cap {
                self.evicted += self.entries - self.cap;
                self.entries = self.cap;
            }
        }
        fn delete(&mut self, n: u64) -> usize {
            let n = n.min(self.entries);
            self.entries -= n;
            n as usize
        }
    }

    #[test]
    fn counts_what_the_lru_evicted_and_not_what_the_daemon_deleted() {
        // Pinned maps of an earlier run: 300 entries, 1,000 inserts.
        let mut m = Model {
            cap: 1000,
            entries: 300,
            inserted: 1000,
            evicted: 0,
        };
        let mut c = EvictionCount::default();
        assert_eq!(c.observe(m.inserted, m.entries as usize), 0);
        let mut seen = 0;
        // Ticks of 400 inserts with 150 deleted by the daemon each: the
        // table fills at the 4th tick and evicts from then on.
        for _ in 0..10 {
            m.insert(400);
            seen += c.observe(m.inserted, m.entries as usize);
            c.deleted(m.delete(150));
            assert_eq!(seen, m.evicted);
            assert_eq!(c.total(), m.evicted);
        }
        assert!(
            m.evicted > 0,
            "the model never filled: the test tests nothing"
        );
    }

    #[test]
    fn deletions_alone_are_no_evictions() {
        let mut c = EvictionCount::default();
        c.observe(50, 50);
        c.deleted(50);
        assert_eq!(c.observe(50, 0), 0);
        assert_eq!(c.observe(70, 20), 0);
        assert_eq!(c.total(), 0);
    }

    #[test]
    fn a_late_insert_makes_it_low_for_a_tick_never_high_or_backwards() {
        let mut c = EvictionCount::default();
        c.observe(0, 0);
        // 10 inserted into a full table of 5: 5 evicted.
        assert_eq!(c.observe(10, 5), 5);
        // 3 more flows made it into the table after the counter was read
        // (the table was not full): the estimate drops, the total stays.
        assert_eq!(c.observe(10, 8), 0);
        assert_eq!(c.total(), 5);
    }

    #[test]
    fn recreated_counters_start_over() {
        let mut c = EvictionCount::default();
        c.observe(100, 10);
        assert_eq!(c.observe(200, 10), 100);
        assert_eq!(c.observe(5, 5), 0);
        assert_eq!(c.observe(25, 5), 20);
        assert_eq!(c.total(), 120);
    }
}
