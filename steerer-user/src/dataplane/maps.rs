//! Reading and writing the data plane's maps.

use aya::maps::{Array, DevMap, HashMap, Map, PerCpuArray};
use steerer_common::{
    flood::{NewFlowBucket, NewFlowLimit},
    flow::{DestKey, FailoverKey, HopName, LocalAddrKey, HOP_NAME_MAX},
    hop::HopCounters,
    limits::{DEST_SLOTS_BASE, DEST_SLOT_COUNT, MAX_DEST_TABLES, MAX_HOPS, MAX_SLOT_COUNT},
    DataplaneConfig, HopEntry, StatReason,
};

use super::{
    flow_table::{read_failovers, read_hash},
    *,
};

impl Dataplane {
    pub fn config(&self) -> Result<DataplaneConfig, DataplaneError> {
        let a: Array<_, DataplaneConfig> =
            Array::try_from(self.map(map_names::CONFIG)?).map_err(map_err(map_names::CONFIG))?;
        a.get(&0, 0).map_err(map_err(map_names::CONFIG))
    }

    pub fn set_config(&mut self, cfg: &DataplaneConfig) -> Result<(), DataplaneError> {
        let mut a: Array<_, DataplaneConfig> = Array::try_from(self.map_mut(map_names::CONFIG)?)
            .map_err(map_err(map_names::CONFIG))?;
        a.set(0, cfg, 0).map_err(map_err(map_names::CONFIG))
    }

    /// Install hop `id`: its action parameters and its redirect target.
    pub fn set_hop(&mut self, id: u32, entry: &HopEntry) -> Result<(), DataplaneError> {
        if id >= MAX_HOPS {
            return Err(DataplaneError::Map {
                name: map_names::HOPS,
                message: format!("hop id {id} >= {MAX_HOPS}"),
            });
        }
        if entry.ifindex != 0 {
            let mut d = DevMap::try_from(self.map_mut(map_names::HOP_DEVS)?)
                .map_err(map_err(map_names::HOP_DEVS))?;
            d.set(id, entry.ifindex, None, 0)
                .map_err(|e| DataplaneError::Map {
                    name: map_names::HOP_DEVS,
                    message: e.to_string(),
                })?;
        }
        let mut a: Array<_, HopEntry> =
            Array::try_from(self.map_mut(map_names::HOPS)?).map_err(map_err(map_names::HOPS))?;
        a.set(id, entry, 0).map_err(map_err(map_names::HOPS))
    }

    /// Every hop id with a name (`HOP_NAMES`): which name owns which id.
    pub fn hop_names(&self) -> Result<Vec<(u32, String)>, DataplaneError> {
        read_hop_names(self.map(map_names::HOP_NAMES)?)
    }

    /// Record that `name` owns hop id `id` (`None`: the id is free).
    pub fn set_hop_name(&mut self, id: u32, name: Option<&str>) -> Result<(), DataplaneError> {
        let value = match name {
            Some(n) => HopName::new(n).ok_or(DataplaneError::Map {
                name: map_names::HOP_NAMES,
                message: format!("hop name {n:?} is empty or longer than {HOP_NAME_MAX} bytes"),
            })?,
            None => HopName::default(),
        };
        let mut a: Array<_, HopName> = Array::try_from(self.map_mut(map_names::HOP_NAMES)?)
            .map_err(map_err(map_names::HOP_NAMES))?;
        a.set(id, value, 0).map_err(map_err(map_names::HOP_NAMES))
    }

    pub fn hop(&self, id: u32) -> Result<HopEntry, DataplaneError> {
        let a: Array<_, HopEntry> =
            Array::try_from(self.map(map_names::HOPS)?).map_err(map_err(map_names::HOPS))?;
        a.get(&id, 0).map_err(map_err(map_names::HOPS))
    }

    /// Write class `class`'s slot table. With `previous`, only changed slots
    /// are written (a tick usually moves few).
    pub fn write_slots(
        &mut self,
        class: u32,
        table: &[u32],
        previous: Option<&[u32]>,
    ) -> Result<usize, DataplaneError> {
        if table.len() > MAX_SLOT_COUNT as usize {
            return Err(DataplaneError::Map {
                name: map_names::SLOTS,
                message: format!("{} slots > {MAX_SLOT_COUNT}", table.len()),
            });
        }
        self.write_slot_range(class * MAX_SLOT_COUNT, table, previous)
    }

    /// Write `table` into `SLOTS` from `base`; with `previous`, only the
    /// slots that changed. Returns how many were written.
    pub fn write_slot_range(
        &mut self,
        base: u32,
        table: &[u32],
        previous: Option<&[u32]>,
    ) -> Result<usize, DataplaneError> {
        let mut a: Array<_, u32> =
            Array::try_from(self.map_mut(map_names::SLOTS)?).map_err(map_err(map_names::SLOTS))?;
        let mut written = 0;
        for (i, &hop) in table.iter().enumerate() {
            if previous.is_some_and(|p| p.get(i) == Some(&hop)) {
                continue;
            }
            a.set(base + i as u32, hop, 0)
                .map_err(map_err(map_names::SLOTS))?;
            written += 1;
        }
        Ok(written)
    }

    /// Write destination table `index` (`DEST_SLOT_COUNT` slots; with
    /// `previous`, only changed slots) and point `dest` at it. The table is
    /// written before the pointer, so no flow ever sees it half-written.
    pub fn set_destination_table(
        &mut self,
        dest: &DestKey,
        index: u32,
        table: &[u32],
        previous: Option<&[u32]>,
    ) -> Result<usize, DataplaneError> {
        if index >= MAX_DEST_TABLES || table.len() != DEST_SLOT_COUNT as usize {
            return Err(DataplaneError::Map {
                name: map_names::SLOTS,
                message: format!(
                    "table {index} of {} slots (need index < {MAX_DEST_TABLES}, {DEST_SLOT_COUNT} slots)",
                    table.len()
                ),
            });
        }
        let written =
            self.write_slot_range(DEST_SLOTS_BASE + index * DEST_SLOT_COUNT, table, previous)?;
        let mut m: HashMap<_, DestKey, u32> =
            HashMap::try_from(self.map_mut(map_names::DEST_TABLES)?)
                .map_err(map_err(map_names::DEST_TABLES))?;
        m.insert(dest, index, 0)
            .map_err(map_err(map_names::DEST_TABLES))?;
        Ok(written)
    }

    /// Point `dest` at destination table `index` (written before).
    pub fn point_destination(&mut self, dest: &DestKey, index: u32) -> Result<(), DataplaneError> {
        if index >= MAX_DEST_TABLES {
            return Err(DataplaneError::Map {
                name: map_names::DEST_TABLES,
                message: format!("table index {index} >= {MAX_DEST_TABLES}"),
            });
        }
        let mut m: HashMap<_, DestKey, u32> =
            HashMap::try_from(self.map_mut(map_names::DEST_TABLES)?)
                .map_err(map_err(map_names::DEST_TABLES))?;
        m.insert(dest, index, 0)
            .map_err(map_err(map_names::DEST_TABLES))
    }

    /// Forget `dest`'s own table: its new flows use their port set's table.
    pub fn remove_destination(&mut self, dest: &DestKey) -> Result<(), DataplaneError> {
        let mut m: HashMap<_, DestKey, u32> =
            HashMap::try_from(self.map_mut(map_names::DEST_TABLES)?)
                .map_err(map_err(map_names::DEST_TABLES))?;
        match m.remove(dest) {
            Ok(()) | Err(aya::maps::MapError::KeyNotFound) => Ok(()),
            Err(e) => Err(map_err(map_names::DEST_TABLES)(e)),
        }
    }

    /// Every destination with its own table (from an earlier run's pins).
    pub fn destinations(&self) -> Result<Vec<(DestKey, u32)>, DataplaneError> {
        read_hash(self.map(map_names::DEST_TABLES)?, map_names::DEST_TABLES)
    }

    pub fn read_slots(&self, class: u32, count: u32) -> Result<Vec<u32>, DataplaneError> {
        read_slots(self.map(map_names::SLOTS)?, class, count)
    }

    /// `count` entries of `SLOTS` from `base` (a destination table:
    /// `DEST_SLOTS_BASE + index * DEST_SLOT_COUNT`).
    pub fn read_slot_range(&self, base: u32, count: u32) -> Result<Vec<u32>, DataplaneError> {
        let a: Array<_, u32> =
            Array::try_from(self.map(map_names::SLOTS)?).map_err(map_err(map_names::SLOTS))?;
        (base..base + count)
            .map(|i| a.get(&i, 0).map_err(map_err(map_names::SLOTS)))
            .collect()
    }

    /// The class table index `PORT_SETS` gives a destination port.
    pub fn read_port_set(&self, port: u16) -> Result<u8, DataplaneError> {
        let a: Array<_, u8> = Array::try_from(self.map(map_names::PORT_SETS)?)
            .map_err(map_err(map_names::PORT_SETS))?;
        a.get(&(port as u32), 0)
            .map_err(map_err(map_names::PORT_SETS))
    }

    pub fn set_local_addrs(&mut self, addrs: &[LocalAddrKey]) -> Result<(), DataplaneError> {
        let mut m: HashMap<_, LocalAddrKey, u8> =
            HashMap::try_from(self.map_mut(map_names::LOCAL_ADDRS)?)
                .map_err(map_err(map_names::LOCAL_ADDRS))?;
        let old: Vec<LocalAddrKey> = m.keys().filter_map(Result::ok).collect();
        for k in old.iter().filter(|k| !addrs.contains(k)) {
            m.remove(k).map_err(map_err(map_names::LOCAL_ADDRS))?;
        }
        for a in addrs {
            m.insert(a, 1, 0).map_err(map_err(map_names::LOCAL_ADDRS))?;
        }
        Ok(())
    }

    /// Packets by outcome, all CPUs (`established` derived: see
    /// [`super::stats::with_established`]).
    pub fn stats(&self) -> Result<Vec<(StatReason, u64)>, DataplaneError> {
        let stats = read_stats(self.map(map_names::STATS)?)?;
        let to_hops = self.hop_counters()?.iter().map(|(_, c)| c.packets).sum();
        Ok(super::stats::with_established(
            stats,
            to_hops,
            self.new_flows_refused()?,
        ))
    }

    /// The flood guard's limit: new flow-table entries per CPU per second
    /// (0: none).
    pub fn set_new_flow_limit(&mut self, per_cpu_per_sec: u32) -> Result<(), DataplaneError> {
        let name = map_names::NEW_FLOW_LIMIT;
        let mut a: Array<_, NewFlowLimit> =
            Array::try_from(self.map_mut(name)?).map_err(map_err(name))?;
        let limit = NewFlowLimit {
            per_cpu_per_sec,
            _pad: 0,
        };
        a.set(0, limit, 0).map_err(map_err(name))
    }

    /// New flows steered without a flow-table entry (over the limit), all
    /// CPUs, since the map was made.
    pub fn new_flows_refused(&self) -> Result<u64, DataplaneError> {
        read_refused(self.map(map_names::NEW_FLOW_BUCKETS)?)
    }

    /// Every hop id's packet and byte counters, all CPUs, since the map
    /// was made (ids that never carried a packet are left out).
    pub fn hop_counters(&self) -> Result<Vec<(u32, HopCounters)>, DataplaneError> {
        read_hop_counters(self.map(map_names::HOP_STATS)?)
    }

    /// Fill the port -> port-set array (`sets[port]`, each below
    /// `MAX_CLASSES`); only entries that differ are written: from
    /// `previous` (what was written last), else from the map itself.
    pub fn set_port_sets(
        &mut self,
        sets: &[u8],
        previous: Option<&[u8]>,
    ) -> Result<(), DataplaneError> {
        if sets.len() != 65536 {
            return Err(DataplaneError::Map {
                name: map_names::PORT_SETS,
                message: format!("expected 65536 entries, got {}", sets.len()),
            });
        }
        if let Some(bad) = sets
            .iter()
            .find(|&&s| s as u32 >= steerer_common::limits::MAX_CLASSES)
        {
            return Err(DataplaneError::Map {
                name: map_names::PORT_SETS,
                message: format!(
                    "port set {bad} is beyond the {} slot tables",
                    steerer_common::limits::MAX_CLASSES
                ),
            });
        }
        let mut a: Array<_, u8> = Array::try_from(self.map_mut(map_names::PORT_SETS)?)
            .map_err(map_err(map_names::PORT_SETS))?;
        for (port, &set) in sets.iter().enumerate() {
            let old = match previous {
                Some(p) => p.get(port).copied(),
                None => Some(
                    a.get(&(port as u32), 0)
                        .map_err(map_err(map_names::PORT_SETS))?,
                ),
            };
            if old != Some(set) {
                a.set(port as u32, set, 0)
                    .map_err(map_err(map_names::PORT_SETS))?;
            }
        }
        Ok(())
    }

    /// Fast-failover counters: (hop moved off, destination port) -> flows.
    pub fn failovers(&self) -> Result<Vec<(FailoverKey, u64)>, DataplaneError> {
        read_failovers(self.map(map_names::FAILOVERS)?)
    }

    /// Remove every pin of this data plane (maps stay alive while loaded).
    pub fn unpin(&self) -> Result<(), DataplaneError> {
        remove_pins(&self.pin_dir)
    }
}

pub(super) fn read_refused(map: &Map) -> Result<u64, DataplaneError> {
    let name = map_names::NEW_FLOW_BUCKETS;
    let a: PerCpuArray<_, NewFlowBucket> = PerCpuArray::try_from(map).map_err(map_err(name))?;
    let v = a.get(&0, 0).map_err(map_err(name))?;
    Ok(v.iter().map(|b| b.refused).sum())
}

pub(super) fn read_hop_counters(map: &Map) -> Result<Vec<(u32, HopCounters)>, DataplaneError> {
    let name = map_names::HOP_STATS;
    let a: PerCpuArray<_, HopCounters> = PerCpuArray::try_from(map).map_err(map_err(name))?;
    let mut out = Vec::new();
    for id in 0..MAX_HOPS {
        let per_cpu = a.get(&id, 0).map_err(map_err(name))?;
        let sum = per_cpu
            .iter()
            .fold(HopCounters::default(), |s, c| HopCounters {
                packets: s.packets + c.packets,
                bytes: s.bytes + c.bytes,
                reply_packets: s.reply_packets + c.reply_packets,
                reply_bytes: s.reply_bytes + c.reply_bytes,
            });
        if sum != HopCounters::default() {
            out.push((id, sum));
        }
    }
    Ok(out)
}

pub(super) fn read_stats(map: &Map) -> Result<Vec<(StatReason, u64)>, DataplaneError> {
    let a: PerCpuArray<_, u64> = PerCpuArray::try_from(map).map_err(map_err(map_names::STATS))?;
    StatReason::ALL
        .iter()
        .map(|&r| {
            let v = a.get(&(r as u32), 0).map_err(map_err(map_names::STATS))?;
            Ok((r, v.iter().sum()))
        })
        .collect()
}

pub(super) fn read_slots(map: &Map, class: u32, count: u32) -> Result<Vec<u32>, DataplaneError> {
    let a: Array<_, u32> = Array::try_from(map).map_err(map_err(map_names::SLOTS))?;
    (0..count)
        .map(|i| {
            a.get(&(class * MAX_SLOT_COUNT + i), 0)
                .map_err(map_err(map_names::SLOTS))
        })
        .collect()
}

pub(super) fn read_hop_names(map: &Map) -> Result<Vec<(u32, String)>, DataplaneError> {
    let a: Array<_, HopName> = Array::try_from(map).map_err(map_err(map_names::HOP_NAMES))?;
    let mut out = Vec::new();
    for id in 0..MAX_HOPS {
        let n = a.get(&id, 0).map_err(map_err(map_names::HOP_NAMES))?;
        if n.len > 0 {
            out.push((id, String::from_utf8_lossy(n.as_bytes()).into_owned()));
        }
    }
    Ok(out)
}
