//! Hop selection for a new flow: the shared rule of
//! `steerer_common::select` over this program's maps.

use steerer_common::{
    flow::DestKey,
    select::{self, SteeringTables, NO_DEST_TABLE, SLOT_UNREADABLE},
    DataplaneConfig, FlowKey, StatReason,
};

use crate::{
    act::usable_hop,
    maps::{CONFIG, DEST_TABLES, PORT_SETS, SLOTS},
};

/// The data plane's maps as the selection rule reads them; `allow_mark`:
/// whether the calling program can apply the `mark` action.
pub struct Maps {
    pub allow_mark: bool,
}

impl SteeringTables for Maps {
    #[inline(always)]
    fn config(&self) -> Option<&DataplaneConfig> {
        CONFIG.get(0)
    }

    #[inline(always)]
    fn destination_table(&self, dest: &DestKey) -> u32 {
        match unsafe { DEST_TABLES.get(dest) } {
            Some(&index) => index,
            None => NO_DEST_TABLE,
        }
    }

    #[inline(always)]
    fn port_set(&self, port: u16) -> u32 {
        match PORT_SETS.get(port as u32) {
            Some(&set) => set as u32,
            None => 0,
        }
    }

    #[inline(always)]
    fn slot(&self, index: u32) -> u32 {
        match SLOTS.get(index) {
            Some(&hop) => hop,
            None => SLOT_UNREADABLE,
        }
    }

    #[inline(always)]
    fn hop_usable(&self, hop: u32) -> bool {
        usable_hop(hop, self.allow_mark).is_ok()
    }
}

/// Pick the hop for a new flow.
#[inline(always)]
pub fn pick_hop(key: &FlowKey, allow_mark: bool) -> Result<u32, StatReason> {
    select::pick_hop(&Maps { allow_mark }, key)
}
