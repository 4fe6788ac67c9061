//! Hop selection for a new flow: keyed hash of the 5-tuple into the class's
//! slot table.

use steerer_common::{
    config::CONFIG_READY,
    limits::{MAX_CLASSES, MAX_SLOT_COUNT},
    siphash::flow_hash_salted,
    FlowKey, StatReason,
};

use crate::maps::{CONFIG, PORT_SETS, SLOTS};

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
    pick_hop_salted(key, 0)
}

/// Where a choice landed: the class's table and the slot in it.
pub struct Choice {
    pub class: u32,
    pub slot: u32,
    pub slot_count: u32,
}

/// The `salt`-th choice for `key` from the same slot table (salt 0 is the
/// first choice): fast failover's way to another hop of the window, chosen
/// in proportion to the weights like any first choice.
#[inline(always)]
pub fn pick_hop_salted(key: &FlowKey, salt: u16) -> Result<u32, StatReason> {
    let c = choose(key, salt)?;
    hop_at(c.class, c.slot)
}

#[inline(always)]
pub fn choose(key: &FlowKey, salt: u16) -> Result<Choice, StatReason> {
    let cfg = CONFIG.get(0).ok_or(StatReason::PassNotReady)?;
    if cfg.flags & CONFIG_READY == 0 || cfg.slot_count == 0 || cfg.slot_count > MAX_SLOT_COUNT {
        return Err(StatReason::PassNotReady);
    }
    let hash = flow_hash_salted(&cfg.hash_key, key, salt);
    Ok(Choice {
        class: class_of(key),
        slot: (hash % cfg.slot_count as u64) as u32,
        slot_count: cfg.slot_count,
    })
}

/// The hop in `slot` of `class`'s table.
#[inline(always)]
pub fn hop_at(class: u32, slot: u32) -> Result<u32, StatReason> {
    let hop = *SLOTS
        .get(class * MAX_SLOT_COUNT + slot)
        .ok_or(StatReason::PassNotReady)?;
    if hop == steerer_common::limits::NO_HOP {
        return Err(StatReason::PassNoHop);
    }
    Ok(hop)
}
