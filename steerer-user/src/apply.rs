//! Writing the controller's [`Decisions`] into a data plane: the daemon's
//! BPF maps or the simulator's copy of them, through one
//! [`DataplaneWriter`] interface, in one order:
//!
//! 1. hops: each held id's entry (whose it is, enabled or not), before
//!    any table names it;
//! 2. class tables (only slots that differ from what was written);
//! 3. the port map, once every table it points at is written ("table
//!    before pointer");
//! 4. destination tables, each table before its `DEST_TABLES` entry;
//!    destinations no longer wanted lose their entry;
//! 5. flow resets;
//! 6. entries of ids no longer held are cleared (no table names them and
//!    no flow points at them).
//!
//! A failed write is reported and forgotten: what was not written is
//! written whole the next time, because decisions always carry the whole
//! desired state. Nothing here decides anything.

use std::collections::HashMap;

use steerer_common::{
    flow::DestKey,
    limits::{DEST_SLOTS_BASE, DEST_SLOT_COUNT, MAX_SLOT_COUNT},
    FlowKey,
};

use crate::policy::Decisions;

/// The writes a data plane offers.
pub trait DataplaneWriter {
    type Error: std::fmt::Display;
    /// Hop id `id` is hop `name`'s: write its entry (how `name` is
    /// reached) with `enabled`.
    fn set_hop(&mut self, id: u32, name: &str, enabled: bool) -> Result<(), Self::Error>;
    /// Hop id `id` is free: clear its entry and name.
    fn clear_hop(&mut self, id: u32) -> Result<(), Self::Error>;
    /// Write `table` into `SLOTS` from `base`; with `previous`, only the
    /// slots that differ.
    fn write_slots(
        &mut self,
        base: u32,
        table: &[u32],
        previous: Option<&[u32]>,
    ) -> Result<usize, Self::Error>;
    /// Write the port -> class table map; with `previous`, only the
    /// entries that differ.
    fn write_port_sets(&mut self, map: &[u8], previous: Option<&[u8]>) -> Result<(), Self::Error>;
    fn point_destination(&mut self, dest: &DestKey, index: u32) -> Result<(), Self::Error>;
    fn remove_destination(&mut self, dest: &DestKey) -> Result<(), Self::Error>;
    /// Delete flow entries; returns how many were still there.
    fn remove_flows(&mut self, keys: &[FlowKey]) -> Result<usize, Self::Error>;
}

/// What is known to be in the data plane (what the last writes put there).
#[derive(Debug, Default, Clone)]
pub struct Applied {
    /// Per id: the name and enabled flag written, or `None` for an id
    /// left as it is (its flows drain).
    hops: HashMap<u32, Option<(String, bool)>>,
    class: HashMap<u32, Vec<u32>>,
    port_sets: Option<Vec<u8>>,
    dest_tables: HashMap<u32, Vec<u32>>,
    dest_pointers: HashMap<DestKey, u32>,
}

/// What one `apply` did.
#[derive(Debug, Default, Clone)]
pub struct ApplyOutcome {
    pub slots_written: usize,
    pub flows_reset: usize,
    pub flows_expired: usize,
    /// Each failed write, with what it was.
    pub failures: Vec<String>,
}

impl Applied {
    /// Forget everything (maps of unknown content: write all of it).
    pub fn clear(&mut self) {
        *self = Applied::default();
    }

    /// Forget what hop `id`'s entry holds (it changed behind `apply`).
    pub fn forget_hop(&mut self, id: u32) {
        self.hops.remove(&id);
    }
}

/// Write `d` into `w`.
pub fn apply<W: DataplaneWriter>(w: &mut W, known: &mut Applied, d: &Decisions) -> ApplyOutcome {
    let mut out = ApplyOutcome::default();
    apply_hops(w, known, d, &mut out);
    let mut tables_ok = true;
    for t in &d.class_tables {
        let prev = known.class.get(&t.index).map(Vec::as_slice);
        match w.write_slots(t.index * MAX_SLOT_COUNT, &t.table, prev) {
            Ok(n) => {
                out.slots_written += n;
                known.class.insert(t.index, t.table.clone());
            }
            Err(e) => {
                tables_ok = false;
                known.class.remove(&t.index);
                out.failures.push(format!("class table {}: {e}", t.index));
            }
        }
    }
    if tables_ok && known.port_sets.as_ref() != Some(&d.port_sets) {
        match w.write_port_sets(&d.port_sets, known.port_sets.as_deref()) {
            Ok(()) => known.port_sets = Some(d.port_sets.clone()),
            Err(e) => {
                known.port_sets = None;
                out.failures.push(format!("port map: {e}"));
            }
        }
    }
    apply_destinations(w, known, d, &mut out);
    if !d.reset_flows.is_empty() {
        match w.remove_flows(&d.reset_flows) {
            Ok(n) => out.flows_reset = n,
            Err(e) => out
                .failures
                .push(format!("resetting {} flows: {e}", d.reset_flows.len())),
        }
    }
    if !d.expired_flows.is_empty() {
        match w.remove_flows(&d.expired_flows) {
            Ok(n) => out.flows_expired = n,
            Err(e) => out.failures.push(format!(
                "expiring {} idle flows: {e}",
                d.expired_flows.len()
            )),
        }
    }
    clear_freed_hops(w, known, d, &mut out);
    out
}

fn apply_hops<W: DataplaneWriter>(
    w: &mut W,
    known: &mut Applied,
    d: &Decisions,
    out: &mut ApplyOutcome,
) {
    for h in &d.hops {
        if !h.pooled {
            known.hops.insert(h.id, None);
            continue;
        }
        let want = Some((h.name.clone(), h.enabled));
        if known.hops.get(&h.id) == Some(&want) {
            continue;
        }
        match w.set_hop(h.id, &h.name, h.enabled) {
            Ok(()) => {
                known.hops.insert(h.id, want);
            }
            Err(e) => {
                known.hops.remove(&h.id);
                out.failures
                    .push(format!("hop {} (id {}): {e}", h.name, h.id));
            }
        }
    }
}

fn clear_freed_hops<W: DataplaneWriter>(
    w: &mut W,
    known: &mut Applied,
    d: &Decisions,
    out: &mut ApplyOutcome,
) {
    let held: std::collections::HashSet<u32> = d.hops.iter().map(|h| h.id).collect();
    let mut freed: Vec<u32> = known
        .hops
        .keys()
        .filter(|id| !held.contains(id))
        .copied()
        .collect();
    freed.sort_unstable();
    for id in freed {
        match w.clear_hop(id) {
            Ok(()) => {
                known.hops.remove(&id);
            }
            Err(e) => out.failures.push(format!("clearing hop id {id}: {e}")),
        }
    }
}

fn apply_destinations<W: DataplaneWriter>(
    w: &mut W,
    known: &mut Applied,
    d: &Decisions,
    out: &mut ApplyOutcome,
) {
    let wanted: HashMap<DestKey, u32> = d.destinations.iter().map(|t| (t.dest, t.index)).collect();
    let gone: Vec<DestKey> = known
        .dest_pointers
        .keys()
        .filter(|k| wanted.get(k) != known.dest_pointers.get(k))
        .copied()
        .collect();
    for dest in gone {
        match w.remove_destination(&dest) {
            Ok(()) => {
                known.dest_pointers.remove(&dest);
            }
            Err(e) => out
                .failures
                .push(format!("removing destination table entry: {e}")),
        }
    }
    for t in &d.destinations {
        let base = DEST_SLOTS_BASE + t.index * DEST_SLOT_COUNT;
        let prev = known.dest_tables.get(&t.index).map(Vec::as_slice);
        match w.write_slots(base, &t.table, prev) {
            Ok(n) => {
                out.slots_written += n;
                known.dest_tables.insert(t.index, t.table.clone());
            }
            Err(e) => {
                known.dest_tables.remove(&t.index);
                out.failures
                    .push(format!("destination table {}: {e}", t.index));
                continue;
            }
        }
        if known.dest_pointers.get(&t.dest) == Some(&t.index) {
            continue;
        }
        match w.point_destination(&t.dest, t.index) {
            Ok(()) => {
                known.dest_pointers.insert(t.dest, t.index);
            }
            Err(e) => out
                .failures
                .push(format!("destination table entry {}: {e}", t.index)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::decisions::{ClassTable, DestinationDecision, HopDecision};

    /// Records every write; fails the writes of class table `fail_base`.
    #[derive(Default)]
    struct Recorder {
        log: Vec<String>,
        fail_base: Option<u32>,
    }

    impl DataplaneWriter for Recorder {
        type Error = String;
        fn set_hop(&mut self, id: u32, name: &str, enabled: bool) -> Result<(), String> {
            self.log.push(format!("hop {id} {name} {enabled}"));
            Ok(())
        }
        fn clear_hop(&mut self, id: u32) -> Result<(), String> {
            self.log.push(format!("clear {id}"));
            Ok(())
        }
        fn write_slots(
            &mut self,
            base: u32,
            table: &[u32],
            previous: Option<&[u32]>,
        ) -> Result<usize, String> {
            if self.fail_base == Some(base) {
                return Err("map full".into());
            }
            let n = table
                .iter()
                .enumerate()
                .filter(|(i, h)| previous.is_none_or(|p| p.get(*i) != Some(h)))
                .count();
            self.log.push(format!("slots {base} {n}"));
            Ok(n)
        }
        fn write_port_sets(&mut self, _map: &[u8], _previous: Option<&[u8]>) -> Result<(), String> {
            self.log.push("ports".into());
            Ok(())
        }
        fn point_destination(&mut self, _dest: &DestKey, index: u32) -> Result<(), String> {
            self.log.push(format!("point {index}"));
            Ok(())
        }
        fn remove_destination(&mut self, _dest: &DestKey) -> Result<(), String> {
            self.log.push("unpoint".into());
            Ok(())
        }
        fn remove_flows(&mut self, keys: &[FlowKey]) -> Result<usize, String> {
            self.log.push(format!("reset {}", keys.len()));
            Ok(keys.len())
        }
    }

    fn decisions(tables: &[(u32, u32)], dest: Option<u32>) -> Decisions {
        Decisions {
            hops: vec![HopDecision {
                id: 3,
                name: "a".into(),
                enabled: true,
                pooled: true,
            }],
            class_tables: tables
                .iter()
                .map(|&(index, hop)| ClassTable {
                    index,
                    table: vec![hop; 5],
                })
                .collect(),
            port_sets: vec![tables.last().map_or(0, |t| t.0) as u8; 65536],
            destinations: dest
                .map(|index| DestinationDecision {
                    dest: DestKey::default(),
                    index,
                    table: vec![3; 4],
                })
                .into_iter()
                .collect(),
            reset_flows: vec![FlowKey::default()],
            ..Decisions::default()
        }
    }

    #[test]
    fn tables_go_before_what_points_at_them_and_only_changes_are_written() {
        let mut w = Recorder::default();
        let mut known = Applied::default();
        let out = apply(&mut w, &mut known, &decisions(&[(0, 3), (1, 3)], Some(2)));
        assert!(out.failures.is_empty());
        let dest_base = DEST_SLOTS_BASE + 2 * DEST_SLOT_COUNT;
        assert_eq!(
            w.log,
            vec![
                "hop 3 a true".to_string(),
                "slots 0 5".into(),
                format!("slots {MAX_SLOT_COUNT} 5"),
                "ports".into(),
                format!("slots {dest_base} 4"),
                "point 2".into(),
                "reset 1".into(),
            ]
        );
        // The same decisions again: nothing but the resets is written.
        w.log.clear();
        apply(&mut w, &mut known, &decisions(&[(0, 3), (1, 3)], Some(2)));
        assert_eq!(
            w.log,
            vec![
                format!("slots 0 0"),
                format!("slots {MAX_SLOT_COUNT} 0"),
                format!("slots {dest_base} 0"),
                "reset 1".into()
            ]
        );
        // The destination goes: its entry is removed.
        w.log.clear();
        apply(&mut w, &mut known, &decisions(&[(0, 3), (1, 3)], None));
        assert!(w.log.contains(&"unpoint".to_string()));
    }

    #[test]
    fn a_failed_table_write_holds_the_port_map_back_and_is_written_whole_next_time() {
        let mut w = Recorder {
            fail_base: Some(MAX_SLOT_COUNT),
            ..Recorder::default()
        };
        let mut known = Applied::default();
        let out = apply(&mut w, &mut known, &decisions(&[(0, 3), (1, 3)], None));
        assert_eq!(out.failures.len(), 1, "{:?}", out.failures);
        assert!(out.failures[0].contains("class table 1"));
        assert!(
            !w.log.contains(&"ports".to_string()),
            "no port may point at a table that failed"
        );
        // Next time the write works: the table is written whole, then the map.
        w.fail_base = None;
        w.log.clear();
        let out = apply(&mut w, &mut known, &decisions(&[(0, 3), (1, 3)], None));
        assert!(out.failures.is_empty());
        assert_eq!(w.log[1], format!("slots {MAX_SLOT_COUNT} 5"));
        assert_eq!(w.log[2], "ports");
    }

    #[test]
    fn an_id_reassigned_is_written_again_and_an_id_no_longer_held_is_cleared() {
        let mut w = Recorder::default();
        let mut known = Applied::default();
        let mut d = decisions(&[(0, 3)], None);
        d.hops.push(HopDecision {
            id: 7,
            name: "old".into(),
            enabled: true,
            pooled: false,
        });
        apply(&mut w, &mut known, &d);
        assert!(
            !w.log.iter().any(|l| l.starts_with("hop 7")),
            "a draining id's entry is left as it is: {:?}",
            w.log
        );
        // Id 3 now belongs to b; id 7's flows are gone (not held).
        d.hops = vec![HopDecision {
            id: 3,
            name: "b".into(),
            enabled: true,
            pooled: true,
        }];
        w.log.clear();
        apply(&mut w, &mut known, &d);
        assert_eq!(w.log.first().map(String::as_str), Some("hop 3 b true"));
        assert_eq!(w.log.last().map(String::as_str), Some("clear 7"));
        w.log.clear();
        apply(&mut w, &mut known, &d);
        assert!(!w.log.iter().any(|l| l.starts_with("clear")), "{:?}", w.log);
    }
}
