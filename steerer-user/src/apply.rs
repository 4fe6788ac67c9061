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
