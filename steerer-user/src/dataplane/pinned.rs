//! Read-only access to the pinned maps of a running (or crashed) steerer.

use std::path::{Path, PathBuf};

use aya::maps::{Array, Map, MapData};
use steerer_common::{
    flow::{DestKey, FailoverKey},
    hop::HopCounters,
    limits::{DEST_SLOTS_BASE, DEST_SLOT_COUNT},
    DataplaneConfig, FlowKey, FlowValue, HopEntry, StatReason,
};

use super::{
    flow_table::{read_failovers, read_flows, read_hash},
    map_err, map_names,
    maps::*,
    pin_dir_for, DataplaneError,
};

/// Read-only access to the pinned maps of a running (or crashed) steerer,
/// for `steerer flows`, `steerer stats` and tests.
pub struct PinnedMaps {
    dir: PathBuf,
}

impl PinnedMaps {
    /// The data plane of `iface` in this network namespace.
    pub fn open(iface: &str) -> Result<Self, DataplaneError> {
        super::ensure_bpffs()?;
        Self::open_dir(&pin_dir_for(iface)?)
    }

    pub fn open_dir(dir: &Path) -> Result<Self, DataplaneError> {
        if !dir.join(map_names::FLOWS).exists() {
            return Err(DataplaneError::Io {
                context: format!(
                    "no steerer maps pinned in {} (is `steerer run` attached there?)",
                    dir.display()
                ),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            });
        }
        Ok(PinnedMaps {
            dir: dir.to_owned(),
        })
    }

    pub(super) fn map(&self, name: &'static str) -> Result<Map, DataplaneError> {
        let data = MapData::from_pin(self.dir.join(name)).map_err(map_err(name))?;
        Map::from_map_data(data).map_err(map_err(name))
    }

    pub fn flows(&self) -> Result<Vec<(FlowKey, FlowValue)>, DataplaneError> {
        read_flows(&self.map(map_names::FLOWS)?)
    }

    /// The flow-table entry of `key`, if it has one (one lookup).
    pub fn flow(&self, key: &FlowKey) -> Result<Option<FlowValue>, DataplaneError> {
        let name = map_names::FLOWS;
        let m: aya::maps::HashMap<_, FlowKey, FlowValue> =
            aya::maps::HashMap::try_from(self.map(name)?).map_err(map_err(name))?;
        match m.get(key, 0) {
            Ok(v) => Ok(Some(v)),
            Err(aya::maps::MapError::KeyNotFound) => Ok(None),
            Err(e) => Err(map_err(name)(e)),
        }
    }

    /// Packets by outcome, all CPUs (`established` derived: see
    /// [`super::stats::with_established`]; 0 from pins of a build without
    /// per-hop counters).
    pub fn stats(&self) -> Result<Vec<(StatReason, u64)>, DataplaneError> {
        let stats = read_stats(&self.map(map_names::STATS)?)?;
        let to_hops = self.hop_counters()?.iter().map(|(_, c)| c.packets).sum();
        Ok(super::stats::with_established(
            stats,
            to_hops,
            self.new_flows_refused()?,
        ))
    }

    pub fn failovers(&self) -> Result<Vec<(FailoverKey, u64)>, DataplaneError> {
        read_failovers(&self.map(map_names::FAILOVERS)?)
    }

    /// New flows steered without a flow-table entry (the flood guard); 0
    /// from pins of a build without the guard.
    pub fn new_flows_refused(&self) -> Result<u64, DataplaneError> {
        match self.map(map_names::NEW_FLOW_BUCKETS) {
            Ok(m) => super::maps::read_refused(&m),
            Err(_) if !self.dir.join(map_names::NEW_FLOW_BUCKETS).exists() => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// Per hop id: packets and bytes both ways (none from pins of a build
    /// without the counters).
    pub fn hop_counters(&self) -> Result<Vec<(u32, HopCounters)>, DataplaneError> {
        match self.map(map_names::HOP_STATS) {
            Ok(m) => super::maps::read_hop_counters(&m),
            Err(_) if !self.dir.join(map_names::HOP_STATS).exists() => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// The hop table's entry for `id`.
    pub fn hop(&self, id: u32) -> Result<HopEntry, DataplaneError> {
        let m = self.map(map_names::HOPS)?;
        let a: Array<_, HopEntry> = Array::try_from(&m).map_err(map_err(map_names::HOPS))?;
        a.get(&id, 0).map_err(map_err(map_names::HOPS))
    }

    /// Which name owns which hop id.
    pub fn hop_names(&self) -> Result<Vec<(u32, String)>, DataplaneError> {
        read_hop_names(&self.map(map_names::HOP_NAMES)?)
    }

    pub fn config(&self) -> Result<DataplaneConfig, DataplaneError> {
        let m = self.map(map_names::CONFIG)?;
        let a: Array<_, DataplaneConfig> =
            Array::try_from(&m).map_err(map_err(map_names::CONFIG))?;
        a.get(&0, 0).map_err(map_err(map_names::CONFIG))
    }

    pub fn slots(&self, class: u32) -> Result<Vec<u32>, DataplaneError> {
        let count = self.config()?.slot_count;
        read_slots(&self.map(map_names::SLOTS)?, class, count)
    }

    /// Every destination with a table of its own, and that table.
    pub fn destination_tables(&self) -> Result<Vec<(DestKey, Vec<u32>)>, DataplaneError> {
        let dests: Vec<(DestKey, u32)> =
            read_hash(&self.map(map_names::DEST_TABLES)?, map_names::DEST_TABLES)?;
        let slots = self.map(map_names::SLOTS)?;
        let a: Array<_, u32> = Array::try_from(&slots).map_err(map_err(map_names::SLOTS))?;
        dests
            .into_iter()
            .map(|(k, index)| {
                let base = DEST_SLOTS_BASE + index * DEST_SLOT_COUNT;
                let table = (0..DEST_SLOT_COUNT)
                    .map(|i| a.get(&(base + i), 0).map_err(map_err(map_names::SLOTS)))
                    .collect::<Result<Vec<u32>, _>>()?;
                Ok((k, table))
            })
            .collect()
    }
}
