//! Writing the controller's [`Decisions`] into a data plane: the daemon's
//! BPF maps or the simulator's copy of them, through one
//! [`DataplaneWriter`] interface, in one order:
//!
//! 1. hops enabled or disabled;
//! 2. class tables (only slots that differ from what was written);
//! 3. the port map, once every table it points at is written ("table
//!    before pointer");
//! 4. destination tables, each table before its `DEST_TABLES` entry;
//!    destinations no longer wanted lose their entry;
//! 5. flow resets.
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
    fn set_hop_enabled(&mut self, id: u32, enabled: bool) -> Result<(), Self::Error>;
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
    hops: HashMap<u32, bool>,
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
    for h in &d.hops {
        if known.hops.get(&h.id) == Some(&h.enabled) {
            continue;
        }
        match w.set_hop_enabled(h.id, h.enabled) {
            Ok(()) => {
                known.hops.insert(h.id, h.enabled);
            }
            Err(e) => {
                known.hops.remove(&h.id);
                out.failures
                    .push(format!("hop {} (id {}): {e}", h.name, h.id));
            }
        }
    }
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
    out
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
        fn set_hop_enabled(&mut self, id: u32, enabled: bool) -> Result<(), String> {
            self.log.push(format!("hop {id} {enabled}"));
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
                "hop 3 true".to_string(),
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
}
