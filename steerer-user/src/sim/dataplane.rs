//! The simulator's data plane: an in-memory copy of the maps the eBPF
//! programs read (`CONFIG`, `SLOTS`, `PORT_SETS`, `DEST_TABLES`, `HOPS`,
//! `FAILOVERS`), written through the same [`DataplaneWriter`] as the real
//! maps, and read by the very functions the eBPF programs call
//! (`steerer_common::select`). Per-flow state lives in the simulator's
//! connections, which are its flow table.

use std::{collections::HashMap, convert::Infallible};

use steerer_common::{
    config::CONFIG_READY,
    flow::{DestKey, FailoverKey},
    limits::{MAX_HOPS, SLOTS_LEN},
    select::{self, SteeringTables, NO_DEST_TABLE, SLOT_UNREADABLE},
    DataplaneConfig, FlowKey,
};

use crate::apply::DataplaneWriter;

pub struct ModelDataplane {
    config: DataplaneConfig,
    slots: Vec<u32>,
    port_sets: Vec<u8>,
    dest_tables: HashMap<DestKey, u32>,
    /// Per data-plane id (`MAX_HOPS` of them, as in the kernel).
    enabled: Vec<bool>,
    /// The simulated hop each id's entry leads to.
    hop_of_id: Vec<Option<u32>>,
    id_of_hop: HashMap<u32, u32>,
    /// Simulated hop of each name (how the daemon's entries know the
    /// way to a name).
    names: HashMap<String, u32>,
    failovers: HashMap<FailoverKey, u64>,
    /// Flows the controller reset since the simulator last took them.
    resets: Vec<FlowKey>,
}

impl ModelDataplane {
    /// Empty maps, as the kernel creates them; ready to steer with
    /// `hash_key` once tables are written (what the daemon sets before
    /// attaching). The hop table holds the data plane's `MAX_HOPS` ids,
    /// whatever the size of the pool; `names[h]` is simulated hop `h`'s.
    pub fn new(hash_key: [u64; 2], slot_count: u32, names: &[String]) -> ModelDataplane {
        ModelDataplane {
            config: DataplaneConfig {
                hash_key,
                slot_count,
                flags: CONFIG_READY,
            },
            slots: vec![0; SLOTS_LEN as usize],
            port_sets: vec![0; 65536],
            dest_tables: HashMap::new(),
            enabled: vec![false; MAX_HOPS as usize],
            hop_of_id: vec![None; MAX_HOPS as usize],
            id_of_hop: HashMap::new(),
            names: names
                .iter()
                .enumerate()
                .map(|(i, n)| (n.clone(), i as u32))
                .collect(),
            failovers: HashMap::new(),
            resets: Vec::new(),
        }
    }

    /// The simulated hop of a new flow (`steer::decide`'s miss path):
    /// `None` when the data plane would pass it unsteered.
    pub fn new_flow(&self, key: &FlowKey) -> Option<u32> {
        self.hop_of_id(self.new_flow_id(key)?)
    }

    /// The data-plane id a new flow gets (what the kernel's flow table
    /// would hold).
    pub fn new_flow_id(&self, key: &FlowKey) -> Option<u32> {
        let id = select::pick_hop(self, key).ok()?;
        self.hop_usable(id).then_some(id)
    }

    /// A repeated SYN of a flow on simulated hop `old` that never had a
    /// reply (the hit path's fast failover): the new hop, counted against
    /// (old's id, destination), or `None` to stay.
    pub fn failover(&mut self, key: &FlowKey, old: u32, moves: u32) -> Option<u32> {
        let old_id = self.id_of(old)?;
        let id = self.failover_id(key, old_id, moves)?;
        self.hop_of_id(id)
    }

    /// [`Self::failover`] in data-plane ids.
    pub fn failover_id(&mut self, key: &FlowKey, old_id: u32, moves: u32) -> Option<u32> {
        let id = select::failover_hop(self, key, old_id, moves)?;
        *self
            .failovers
            .entry(FailoverKey {
                hop: old_id,
                dest: DestKey::of(key),
            })
            .or_default() += 1;
        Some(id)
    }

    /// The data-plane id simulated hop `hop` holds (the id its flows
    /// point at).
    pub fn id_of(&self, hop: u32) -> Option<u32> {
        self.id_of_hop.get(&hop).copied()
    }

    /// The simulated hop of a name.
    pub fn hop_named(&self, name: &str) -> Option<u32> {
        self.names.get(name).copied()
    }

    pub fn hop_of_id(&self, id: u32) -> Option<u32> {
        self.hop_of_id.get(id as usize).copied().flatten()
    }

    /// The `FAILOVERS` map as the daemon reads it.
    pub fn failover_counters(&self) -> Vec<(FailoverKey, u64)> {
        let mut v: Vec<(FailoverKey, u64)> = self.failovers.iter().map(|(k, n)| (*k, *n)).collect();
        v.sort_unstable();
        v
    }

    /// Flows the controller reset since the last call.
    pub fn take_resets(&mut self) -> Vec<FlowKey> {
        std::mem::take(&mut self.resets)
    }

    /// A slot table as written (for tests).
    pub fn slots(&self, base: u32, count: u32) -> &[u32] {
        &self.slots[base as usize..(base + count) as usize]
    }

    pub fn port_set_of(&self, port: u16) -> u8 {
        self.port_sets[port as usize]
    }

    pub fn destination_tables(&self) -> &HashMap<DestKey, u32> {
        &self.dest_tables
    }

    pub fn is_enabled(&self, hop: u32) -> bool {
        self.enabled.get(hop as usize).copied().unwrap_or(false)
    }
}

impl SteeringTables for ModelDataplane {
    fn config(&self) -> Option<&DataplaneConfig> {
        Some(&self.config)
    }

    fn destination_table(&self, dest: &DestKey) -> u32 {
        self.dest_tables.get(dest).copied().unwrap_or(NO_DEST_TABLE)
    }

    fn port_set(&self, port: u16) -> u32 {
        self.port_sets[port as usize] as u32
    }

    fn slot(&self, index: u32) -> u32 {
        self.slots
            .get(index as usize)
            .copied()
            .unwrap_or(SLOT_UNREADABLE)
    }

    fn hop_usable(&self, hop: u32) -> bool {
        self.is_enabled(hop)
    }
}

impl ModelDataplane {
    /// Id `id` leads nowhere; its old hop's id is forgotten unless that
    /// hop holds another one by now.
    fn unbind(&mut self, id: u32) {
        if let Some(old) = self.hop_of_id[id as usize].take() {
            if self.id_of_hop.get(&old) == Some(&id) {
                self.id_of_hop.remove(&old);
            }
        }
    }
}

impl DataplaneWriter for ModelDataplane {
    type Error = Infallible;

    fn set_hop(&mut self, id: u32, name: &str, enabled: bool) -> Result<(), Infallible> {
        let Some(e) = self.enabled.get_mut(id as usize) else {
            return Ok(());
        };
        *e = enabled;
        self.unbind(id);
        let hop = self.names.get(name).copied();
        self.hop_of_id[id as usize] = hop;
        if let Some(h) = hop {
            self.id_of_hop.insert(h, id);
        }
        Ok(())
    }

    fn clear_hop(&mut self, id: u32) -> Result<(), Infallible> {
        if let Some(e) = self.enabled.get_mut(id as usize) {
            *e = false;
            self.unbind(id);
        }
        Ok(())
    }

    fn write_slots(
        &mut self,
        base: u32,
        table: &[u32],
        previous: Option<&[u32]>,
    ) -> Result<usize, Infallible> {
        let mut n = 0;
        for (i, &hop) in table.iter().enumerate() {
            if previous.is_some_and(|p| p.get(i) == Some(&hop)) {
                continue;
            }
            if let Some(s) = self.slots.get_mut(base as usize + i) {
                *s = hop;
                n += 1;
            }
        }
        Ok(n)
    }

    fn write_port_sets(&mut self, map: &[u8], _previous: Option<&[u8]>) -> Result<(), Infallible> {
        for (p, &s) in self.port_sets.iter_mut().zip(map) {
            *p = s;
        }
        Ok(())
    }

    fn point_destination(&mut self, dest: &DestKey, index: u32) -> Result<(), Infallible> {
        self.dest_tables.insert(*dest, index);
        Ok(())
    }

    fn remove_destination(&mut self, dest: &DestKey) -> Result<(), Infallible> {
        self.dest_tables.remove(dest);
        Ok(())
    }

    fn remove_flows(&mut self, keys: &[FlowKey]) -> Result<usize, Infallible> {
        self.resets.extend_from_slice(keys);
        Ok(keys.len())
    }
}
