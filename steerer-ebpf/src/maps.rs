//! Every map of the data plane. All are pinned by name, so a restarted
//! control plane finds them again under `/sys/fs/bpf/steerer/<iface>/`.

use aya_ebpf::{
    macros::map,
    maps::{Array, DevMap, HashMap, LruHashMap, PerCpuArray},
};
use steerer_common::{
    flood::{NewFlowBucket, NewFlowLimit},
    flow::{DestKey, FailoverKey, HopName, LocalAddrKey},
    hop::HopCounters,
    limits::{MAX_DEST_TABLES, MAX_FAILOVER_KEYS, MAX_HOPS, MAX_LOCAL_ADDRS, SLOTS_LEN},
    DataplaneConfig, FlowKey, FlowValue, HopEntry, StatReason,
};

/// Size compiled into the object; user space may override it at load time.
pub const FLOW_TABLE_DEFAULT: u32 = steerer_common::limits::FLOW_TABLE_DEFAULT;

#[map(name = "FLOWS")]
pub static FLOWS: LruHashMap<FlowKey, FlowValue> = LruHashMap::pinned(FLOW_TABLE_DEFAULT, 0);

/// Slot tables: one per class at `class * MAX_SLOT_COUNT + slot`, then one
/// per destination with a window of its own at
/// `DEST_SLOTS_BASE + index * DEST_SLOT_COUNT + slot`.
#[map(name = "SLOTS")]
pub static SLOTS: Array<u32> = Array::pinned(SLOTS_LEN, 0);

/// Destination (dst ip, dst port, proto) -> index of its own slot table
/// (SPEC 5.4). User space keeps at most `MAX_DEST_TABLES`
/// and evicts the least recently used destination itself, so the map is a
/// plain hash (an LRU map would drop entries behind its back).
#[map(name = "DEST_TABLES")]
pub static DEST_TABLES: HashMap<DestKey, u32> = HashMap::pinned(MAX_DEST_TABLES, 0);

/// Destination port -> port set (selection class, index of its slot
/// table). All ports start in set 0.
#[map(name = "PORT_SETS")]
pub static PORT_SETS: Array<u8> = Array::pinned(65536, 0);

#[map(name = "HOPS")]
pub static HOPS: Array<HopEntry> = Array::pinned(MAX_HOPS, 0);

/// Hop id -> egress interface, for `bpf_redirect_map`.
/// Hop id -> the name of the hop that owns it. Only user space reads it:
/// it lives with the pins so that a restarted control plane gives every
/// hop name the id its flows already point at.
#[map(name = "HOP_NAMES")]
pub static HOP_NAMES: Array<HopName> = Array::pinned(MAX_HOPS, 0);

#[map(name = "HOP_DEVS")]
pub static HOP_DEVS: DevMap = DevMap::pinned(MAX_HOPS, 0);

#[map(name = "CONFIG")]
pub static CONFIG: Array<DataplaneConfig> = Array::pinned(1, 0);

#[map(name = "STATS")]
pub static STATS: PerCpuArray<u64> = PerCpuArray::pinned(StatReason::COUNT, 0);

#[map(name = "LOCAL_ADDRS")]
pub static LOCAL_ADDRS: HashMap<LocalAddrKey, u8> = HashMap::pinned(MAX_LOCAL_ADDRS, 0);

/// (old hop, destination) -> flows moved off that hop by fast failover.
#[map(name = "FAILOVERS")]
pub static FAILOVERS: LruHashMap<FailoverKey, u64> = LruHashMap::pinned(MAX_FAILOVER_KEYS, 0);

/// The flood guard's limit (`flood.rs`); a map of its own, so that pins
/// of a build without it are reused as they are.
#[map(name = "NEW_FLOW_LIMIT")]
pub static NEW_FLOW_LIMIT: Array<NewFlowLimit> = Array::pinned(1, 0);

#[map(name = "NEW_FLOW_BUCKETS")]
pub static NEW_FLOW_BUCKETS: PerCpuArray<NewFlowBucket> = PerCpuArray::pinned(1, 0);

/// Hop id -> packets and bytes sent to it and back, per CPU (a map of its
/// own: older pins are reused as they are).
#[map(name = "HOP_STATS")]
pub static HOP_STATS: PerCpuArray<HopCounters> = PerCpuArray::pinned(MAX_HOPS, 0);

/// A packet of `bytes` steered to hop `hop`.
#[inline(always)]
pub fn count_to_hop(hop: u32, bytes: u64) {
    if let Some(c) = HOP_STATS.get_ptr_mut(hop) {
        // Per-CPU slot: plain adds are exact.
        unsafe {
            (*c).packets += 1;
            (*c).bytes += bytes;
        }
    }
}

/// A reply of `bytes` on a flow of hop `hop`.
#[inline(always)]
pub fn count_from_hop(hop: u32, bytes: u64) {
    if let Some(c) = HOP_STATS.get_ptr_mut(hop) {
        unsafe {
            (*c).reply_packets += 1;
            (*c).reply_bytes += bytes;
        }
    }
}

#[inline(always)]
pub fn count(reason: StatReason) {
    if let Some(c) = STATS.get_ptr_mut(reason as u32) {
        // Per-CPU slot: no other CPU writes it, a plain add is exact.
        unsafe { *c += 1 };
    }
}
