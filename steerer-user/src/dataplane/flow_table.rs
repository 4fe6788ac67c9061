//! The flow table (`FLOWS`, an LRU hash) and the failover counters: read
//! and written in batches (`batch.rs`), with the walk entry by entry kept
//! for kernels without batch calls and as the benchmarks' baseline.

use aya::maps::{HashMap, Map};
use steerer_common::{flow::FailoverKey, FlowKey, FlowValue};

use super::{map_err, map_names, Dataplane, DataplaneError};

impl Dataplane {
    pub fn flows(&self) -> Result<Vec<(FlowKey, FlowValue)>, DataplaneError> {
        read_flows(self.map(map_names::FLOWS)?)
    }
    /// The flow table read entry by entry (two syscalls each), as before
    /// batch reads: the baseline the batch read is measured against.
    pub fn flows_walking(&self) -> Result<Vec<(FlowKey, FlowValue)>, DataplaneError> {
        read_hash_walking(self.map(map_names::FLOWS)?, map_names::FLOWS)
    }
    /// Write one flow entry as given (tools and tests that replay a flow
    /// table; the data plane itself inserts flows).
    pub fn put_flow(&mut self, key: &FlowKey, value: &FlowValue) -> Result<(), DataplaneError> {
        let mut m: HashMap<_, FlowKey, FlowValue> =
            HashMap::try_from(self.map_mut(map_names::FLOWS)?)
                .map_err(map_err(map_names::FLOWS))?;
        m.insert(key, value, 0).map_err(map_err(map_names::FLOWS))
    }
    /// Write many flow entries as given, in batches (tools and benchmarks
    /// that fill a flow table).
    pub fn put_flows(&mut self, entries: &[(FlowKey, FlowValue)]) -> Result<usize, DataplaneError> {
        use std::os::fd::AsFd as _;
        let map = self.map(map_names::FLOWS)?;
        let (Map::HashMap(d) | Map::LruHashMap(d)) = map else {
            return Err(DataplaneError::Map {
                name: map_names::FLOWS,
                message: "not a hash map".into(),
            });
        };
        super::batch::update_all(d.fd().as_fd(), entries).map_err(|e| DataplaneError::Map {
            name: map_names::FLOWS,
            message: format!("BPF_MAP_UPDATE_BATCH: {e}"),
        })
    }
    /// Delete these flows' entries (a reset, SPEC 5.5: their next packet,
    /// such as the sender's retry, is steered afresh). Returns how many
    /// were still there.
    pub fn remove_flows(&mut self, keys: &[FlowKey]) -> Result<usize, DataplaneError> {
        use std::os::fd::AsFd as _;
        let map = self.map(map_names::FLOWS)?;
        let (Map::HashMap(d) | Map::LruHashMap(d)) = map else {
            return Err(DataplaneError::Map {
                name: map_names::FLOWS,
                message: "not a hash map".into(),
            });
        };
        match super::batch::delete_keys(d.fd().as_fd(), keys) {
            Ok(n) => Ok(n),
            // A kernel without batch calls: one by one.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => self.remove_flows_one_by_one(keys),
            Err(e) => Err(DataplaneError::Map {
                name: map_names::FLOWS,
                message: format!("BPF_MAP_DELETE_BATCH: {e}"),
            }),
        }
    }
    fn remove_flows_one_by_one(&mut self, keys: &[FlowKey]) -> Result<usize, DataplaneError> {
        let mut m: HashMap<_, FlowKey, FlowValue> =
            HashMap::try_from(self.map_mut(map_names::FLOWS)?)
                .map_err(map_err(map_names::FLOWS))?;
        let mut removed = 0;
        for k in keys {
            match m.remove(k) {
                Ok(()) => removed += 1,
                // Evicted or ended meanwhile.
                Err(aya::maps::MapError::KeyNotFound) => {}
                Err(e) => return Err(map_err(map_names::FLOWS)(e)),
            }
        }
        Ok(removed)
    }
}

pub(super) fn read_flows(map: &Map) -> Result<Vec<(FlowKey, FlowValue)>, DataplaneError> {
    read_hash(map, map_names::FLOWS)
}

pub(super) fn read_failovers(map: &Map) -> Result<Vec<(FailoverKey, u64)>, DataplaneError> {
    read_hash(map, map_names::FAILOVERS)
}

/// Every entry of a (LRU) hash map: in batches of `BATCH_ENTRIES` per
/// syscall (`batch::lookup_all`), or, where the kernel refuses batch calls,
/// by walking it (two syscalls per entry).
pub(super) fn read_hash<K: aya::Pod + Default, V: aya::Pod + Default>(
    map: &Map,
    name: &'static str,
) -> Result<Vec<(K, V)>, DataplaneError> {
    use std::os::fd::AsFd as _;
    if let Map::HashMap(d) | Map::LruHashMap(d) = map {
        match super::batch::lookup_all::<K, V>(d.fd().as_fd()) {
            Ok(all) => return Ok(all),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
            Err(e) => {
                return Err(DataplaneError::Map {
                    name,
                    message: format!("BPF_MAP_LOOKUP_BATCH: {e}"),
                })
            }
        }
    }
    read_hash_walking(map, name)
}

/// Every entry of a (LRU) hash map, one `get_next_key` and one `lookup`
/// per entry.
pub(super) fn read_hash_walking<K: aya::Pod, V: aya::Pod>(
    map: &Map,
    name: &'static str,
) -> Result<Vec<(K, V)>, DataplaneError> {
    let m: HashMap<_, K, V> = HashMap::try_from(map).map_err(map_err(name))?;
    let mut out = Vec::new();
    for item in m.iter() {
        match item {
            Ok(kv) => out.push(kv),
            // An LRU entry evicted between `next_key` and `lookup`: skip it.
            Err(aya::maps::MapError::KeyNotFound) => continue,
            Err(e) => return Err(map_err(name)(e)),
        }
    }
    Ok(out)
}
