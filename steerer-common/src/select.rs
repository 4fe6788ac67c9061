//! How the data plane chooses a hop, written once for both sides: the eBPF
//! programs call these functions over their maps, and the simulator calls
//! the very same functions over its in-memory copy of those maps, so a
//! simulated flow lands where a real one would (SPEC 4.1 steps 3 and 5).
//!
//! A new flow hashes its 5-tuple with the keyed SipHash into its table:
//! the destination's own table when it has one (SPEC 5.4), else the table
//! of its port's set. A TCP SYN repeated by a flow that never had a reply
//! asks again with salted hashes, then walks the following slots, until it
//! finds another usable hop (fast failover).

use crate::{
    config::CONFIG_READY,
    flow::DestKey,
    limits::{
        DEST_SLOTS_BASE, DEST_SLOT_COUNT, MAX_CLASSES, MAX_DEST_TABLES, MAX_SLOT_COUNT, NO_HOP,
    },
    siphash::flow_hash_salted,
    DataplaneConfig, FlowKey, StatReason,
};

/// Salted choices a failover tries before walking the table (a window of
/// one hop, or one hop holding most slots, may offer nothing else).
pub const FAILOVER_TRIES: u16 = 4;
/// Slots a failover walks after the salted choices kept landing on the
/// old hop.
pub const FAILOVER_SCAN: u32 = 64;

/// What [`SteeringTables::destination_table`] returns for a destination
/// without a table of its own.
pub const NO_DEST_TABLE: u32 = u32::MAX;
/// What [`SteeringTables::slot`] returns for an index outside `SLOTS`
/// (hop ids are below `MAX_HOPS`, so it is never a hop).
pub const SLOT_UNREADABLE: u32 = u32::MAX - 1;

/// The maps a choice reads. The eBPF side reads its BPF maps; the
/// simulator reads plain vectors. Plain values with sentinels rather than
/// `Option<u8>` and the like: the BPF backend leaves the payload of a
/// `None` uninitialised, and the verifier refuses any read of it.
pub trait SteeringTables {
    /// Entry 0 of `CONFIG`.
    fn config(&self) -> Option<&DataplaneConfig>;
    /// `DEST_TABLES`: the index of `dest`'s own table, or
    /// [`NO_DEST_TABLE`].
    fn destination_table(&self, dest: &DestKey) -> u32;
    /// `PORT_SETS`: the set (class) of a destination port (0 when missing).
    fn port_set(&self, port: u16) -> u32;
    /// `SLOTS[index]`, or [`SLOT_UNREADABLE`].
    fn slot(&self, index: u32) -> u32;
    /// The hop exists, is enabled, and the caller can apply its action.
    fn hop_usable(&self, hop: u32) -> bool;
}

/// Where a choice landed: a table (its slot 0 in `SLOTS`) and a slot in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Choice {
    pub base: u32,
    pub slot: u32,
    pub slot_count: u32,
}

/// Class (port set) of the flow's destination port; an out-of-range entry
/// falls back to set 0.
#[inline(always)]
pub fn class_of<T: SteeringTables>(t: &T, key: &FlowKey) -> u32 {
    let set = t.port_set(key.dst_port);
    if set < MAX_CLASSES {
        set
    } else {
        0
    }
}

/// The `salt`-th choice for `key` from its table (salt 0: a new flow's).
#[inline(always)]
pub fn choose<T: SteeringTables>(t: &T, key: &FlowKey, salt: u16) -> Result<Choice, StatReason> {
    let cfg = t.config().ok_or(StatReason::PassNotReady)?;
    // Copied out once checked: a map value may change under a later helper
    // call, and the division below must see the value that was checked.
    let slot_count = cfg.slot_count;
    if cfg.flags & CONFIG_READY == 0 || slot_count == 0 || slot_count > MAX_SLOT_COUNT {
        return Err(StatReason::PassNotReady);
    }
    let hash = flow_hash_salted(&cfg.hash_key, key, salt);
    let index = t.destination_table(&DestKey::of(key));
    if index < MAX_DEST_TABLES {
        Ok(Choice {
            base: DEST_SLOTS_BASE + index * DEST_SLOT_COUNT,
            slot: (hash % DEST_SLOT_COUNT as u64) as u32,
            slot_count: DEST_SLOT_COUNT,
        })
    } else {
        Ok(Choice {
            base: class_of(t, key) * MAX_SLOT_COUNT,
            slot: (hash % slot_count as u64) as u32,
            slot_count,
        })
    }
}

/// The hop in `slot` of the table `c` chose.
#[inline(always)]
pub fn hop_at<T: SteeringTables>(t: &T, c: &Choice, slot: u32) -> Result<u32, StatReason> {
    let hop = t.slot(c.base + slot);
    if hop == SLOT_UNREADABLE {
        return Err(StatReason::PassNotReady);
    }
    if hop == NO_HOP {
        return Err(StatReason::PassNoHop);
    }
    Ok(hop)
}

/// The hop of a new flow (before its usability is checked).
#[inline(always)]
pub fn pick_hop<T: SteeringTables>(t: &T, key: &FlowKey) -> Result<u32, StatReason> {
    let c = choose(t, key, 0)?;
    hop_at(t, &c, c.slot)
}

/// Fast failover: the hop a flow on `old` that has failed over `moves`
/// times moves to, or `None` to stay (no other usable hop found).
///
/// First a few fresh choices by weight (salted hashes); if they all land
/// on the old hop, the slots after the last choice are walked until
/// another usable hop turns up.
#[inline(always)]
pub fn failover_hop<T: SteeringTables>(t: &T, key: &FlowKey, old: u32, moves: u32) -> Option<u32> {
    let mut salt = (moves as u16).wrapping_add(1);
    let mut last = None;
    let mut i = 0;
    while i < FAILOVER_TRIES {
        if let Ok(c) = choose(t, key, salt) {
            if let Ok(hop) = hop_at(t, &c, c.slot) {
                if hop != old && t.hop_usable(hop) {
                    return Some(hop);
                }
            }
            last = Some(c);
        }
        salt = salt.wrapping_add(1);
        i += 1;
    }
    let c = last?;
    // Wrap by hand: no division (and no division-by-zero path) in the loop.
    let mut slot = c.slot;
    let mut step = 1;
    while step <= FAILOVER_SCAN {
        slot += 1;
        if slot >= c.slot_count {
            slot = 0;
        }
        if let Ok(hop) = hop_at(t, &c, slot) {
            if hop != old && t.hop_usable(hop) {
                return Some(hop);
            }
        }
        step += 1;
    }
    None
}
