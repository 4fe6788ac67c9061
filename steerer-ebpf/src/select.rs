//! Hop selection for a new flow: keyed hash of the 5-tuple into a slot
//! table: the destination's own table when it has one (SPEC 5.4), else
//! the table of its port set (class).

use steerer_common::{
    config::CONFIG_READY,
    flow::DestKey,
    limits::{DEST_SLOTS_BASE, DEST_SLOT_COUNT, MAX_CLASSES, MAX_DEST_TABLES, MAX_SLOT_COUNT},
    siphash::flow_hash_salted,
    FlowKey, StatReason,
};

use crate::maps::{CONFIG, DEST_TABLES, PORT_SETS, SLOTS};

/// Class (port set) of the flow's destination port; an out-of-range entry
/// falls back to set 0.
#[inline(always)]
pub fn class_of(key: &FlowKey) -> u32 {
    match PORT_SETS.get(key.dst_port as u32) {
        Some(&set) if (set as u32) < MAX_CLASSES => set as u32,
        _ => 0,
    }
}

/// Pick the hop for a new flow.
#[inline(always)]
pub fn pick_hop(key: &FlowKey) -> Result<u32, StatReason> {
    let c = choose(key, 0)?;
    hop_at(&c, c.slot)
}

/// Where a choice landed: a table (its first entry in `SLOTS`) and the
/// slot in it.
pub struct Choice {
    /// Index of the table's slot 0 in `SLOTS`.
    pub base: u32,
    pub slot: u32,
    pub slot_count: u32,
}

/// The `salt`-th choice for `key` from its table (salt 0 is the first
/// choice): fast failover's way to another hop of the window, chosen in
/// proportion to the weights like any first choice.
#[inline(always)]
pub fn choose(key: &FlowKey, salt: u16) -> Result<Choice, StatReason> {
    let cfg = CONFIG.get(0).ok_or(StatReason::PassNotReady)?;
    // Copied out once checked: a map value may change under a later helper
    // call, and the division below must see the value that was checked.
    let slot_count = cfg.slot_count;
    if cfg.flags & CONFIG_READY == 0 || slot_count == 0 || slot_count > MAX_SLOT_COUNT {
        return Err(StatReason::PassNotReady);
    }
    let hash = flow_hash_salted(&cfg.hash_key, key, salt);
    let dest = DestKey::of(key);
    match unsafe { DEST_TABLES.get(&dest) } {
        Some(&index) if index < MAX_DEST_TABLES => Ok(Choice {
            base: DEST_SLOTS_BASE + index * DEST_SLOT_COUNT,
            slot: (hash % DEST_SLOT_COUNT as u64) as u32,
            slot_count: DEST_SLOT_COUNT,
        }),
        _ => Ok(Choice {
            base: class_of(key) * MAX_SLOT_COUNT,
            slot: (hash % slot_count as u64) as u32,
            slot_count,
        }),
    }
}

/// The hop in `slot` of the table `c` chose.
#[inline(always)]
pub fn hop_at(c: &Choice, slot: u32) -> Result<u32, StatReason> {
    let hop = *SLOTS.get(c.base + slot).ok_or(StatReason::PassNotReady)?;
    if hop == steerer_common::limits::NO_HOP {
        return Err(StatReason::PassNoHop);
    }
    Ok(hop)
}
