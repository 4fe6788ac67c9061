//! The pinned maps a hop choice reads, as `select::SteeringTables`: the
//! data plane's own rule (`steerer_common::select`) run in user space over
//! the running data plane's maps, one lookup per read, so `steerer why`
//! says which table, slot and hop a tuple gets without guessing.

use aya::maps::{Array, HashMap, MapData};
use steerer_common::{
    flow::DestKey,
    select::{SteeringTables, NO_DEST_TABLE, SLOT_UNREADABLE},
    DataplaneConfig, HopEntry,
};

use super::{map_err, map_names, DataplaneError, PinnedMaps};

pub struct PinnedTables {
    config: DataplaneConfig,
    dests: HashMap<MapData, DestKey, u32>,
    ports: Array<MapData, u8>,
    slots: Array<MapData, u32>,
    hops: Array<MapData, HopEntry>,
}

impl PinnedTables {
    pub fn open(maps: &PinnedMaps) -> Result<Self, DataplaneError> {
        let m = |name| maps.map(name);
        Ok(PinnedTables {
            config: maps.config()?,
            dests: HashMap::try_from(m(map_names::DEST_TABLES)?)
                .map_err(map_err(map_names::DEST_TABLES))?,
            ports: Array::try_from(m(map_names::PORT_SETS)?)
                .map_err(map_err(map_names::PORT_SETS))?,
            slots: Array::try_from(m(map_names::SLOTS)?).map_err(map_err(map_names::SLOTS))?,
            hops: Array::try_from(m(map_names::HOPS)?).map_err(map_err(map_names::HOPS))?,
        })
    }
}

impl SteeringTables for PinnedTables {
    fn config(&self) -> Option<&DataplaneConfig> {
        Some(&self.config)
    }

    fn destination_table(&self, dest: &DestKey) -> u32 {
        self.dests.get(dest, 0).unwrap_or(NO_DEST_TABLE)
    }

    fn port_set(&self, port: u16) -> u32 {
        self.ports.get(&(port as u32), 0).map_or(0, u32::from)
    }

    fn slot(&self, index: u32) -> u32 {
        self.slots.get(&index, 0).unwrap_or(SLOT_UNREADABLE)
    }

    /// Enabled; a `mark` hop counts as usable (the TC program applies it;
    /// the XDP program would pass such a flow on).
    fn hop_usable(&self, hop: u32) -> bool {
        self.hops.get(&hop, 0).is_ok_and(|e| e.is_enabled())
    }
}
