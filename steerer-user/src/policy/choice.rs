//! Choosing a flow's hop from a slot table, in user space: the rule the
//! data plane applies (`steerer-ebpf/src/select.rs` and `failover.rs`),
//! for the simulator, which has no kernel. Slot = keyed hash of the
//! 5-tuple modulo the table size; when the hop there may not be used
//! (excluded for the destination, or the hop being failed over from),
//! a few salted re-choices by weight, then a walk over the following slots.

use steerer_common::{
    siphash::{flow_hash, flow_hash_salted},
    FlowKey,
};

use super::slot_table::EMPTY;

/// Salted re-choices before walking the table (the data plane's `TRIES`).
pub const TRIES: u16 = 4;
/// Slots walked after the re-choices (the data plane's `SCAN`).
pub const SCAN: usize = 64;

/// The hop for `flow`, skipping hops for which `allowed` says no.
/// `salt_start` is 0 for a new flow, and 1 + the flow's failover count for
/// a failover (so each failover asks a fresh question). `None`: no allowed
/// hop found (the data plane would pass such a packet unsteered).
pub fn choose(
    table: &[u32],
    hash_key: &[u64; 2],
    flow: &FlowKey,
    salt_start: u16,
    mut allowed: impl FnMut(u32) -> bool,
) -> Option<u32> {
    if table.is_empty() {
        return None;
    }
    let n = table.len() as u64;
    let slot_of = |salt: u16| -> usize {
        let h = if salt == 0 {
            flow_hash(hash_key, flow)
        } else {
            flow_hash_salted(hash_key, flow, salt)
        };
        (h % n) as usize
    };
    let mut last = 0;
    for i in 0..=TRIES {
        let salt = salt_start.wrapping_add(i);
        last = slot_of(salt);
        let hop = table[last];
        if hop != EMPTY && allowed(hop) {
            return Some(hop);
        }
    }
    (1..=SCAN.min(table.len()))
        .map(|d| table[(last + d) % table.len()])
        .find(|&hop| hop != EMPTY && allowed(hop))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(sport: u16) -> FlowKey {
        FlowKey {
            src_port: sport,
            dst_port: 443,
            proto: 6,
            family: 4,
            ..FlowKey::default()
        }
    }

    #[test]
    fn slot_is_the_keyed_hash_of_the_tuple() {
        let table: Vec<u32> = (0..101).collect();
        let k = [1, 2];
        for sport in 1000..1100 {
            let want = (flow_hash(&k, &key(sport)) % 101) as u32;
            assert_eq!(choose(&table, &k, &key(sport), 0, |_| true), Some(want));
        }
    }

    #[test]
    fn an_excluded_hop_is_never_returned() {
        // "a hop blocked for D is never chosen for D" (SPEC 5.5).
        let table: Vec<u32> = (0..211).map(|i| if i % 10 == 0 { 1 } else { 0 }).collect();
        for sport in 0..2000 {
            let h = choose(&table, &[7, 9], &key(sport), 0, |h| h != 0);
            assert_eq!(h, Some(1), "sport {sport}");
        }
        assert_eq!(choose(&table, &[7, 9], &key(1), 0, |_| false), None);
    }
}
