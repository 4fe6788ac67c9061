//! A pool larger than the data plane's hop ids (issue 14): only hops the
//! tables name hold an id, an id is never named for two hops while a flow
//! points at it, and the class window stays within the ids.

use std::collections::BTreeMap;

use steerer_common::{FlowKey, FlowValue};

use super::*;

const SEC: u64 = 1_000_000_000;
const IDS: u32 = 8;

fn pool(n: usize) -> Vec<ControllerHop> {
    (0..n)
        .map(|i| test_support::hop(&format!("p{i}"), None, 1e7))
        .collect()
}

fn params() -> Params {
    Params {
        tick_ns: 5 * SEC,
        slot_count: 101,
        window_base: 3,
        hop_ids: IDS,
        ..Params::default()
    }
}

fn key(sport: u16) -> FlowKey {
    test_support::flow_key(6, (sport % 200) as u8, 443, sport)
}

/// Every id a table names is held by a pool hop the decision lists, and
/// below the id count.
fn check_ids(d: &Decisions) -> BTreeMap<u32, String> {
    let held: BTreeMap<u32, String> = d
        .hops
        .iter()
        .filter(|h| h.pooled)
        .map(|h| (h.id, h.name.clone()))
        .collect();
    assert!(d.hops.iter().all(|h| h.id < IDS), "{:?}", d.hops);
    let named = d
        .class_tables
        .iter()
        .flat_map(|t| t.table.iter())
        .chain(d.destinations.iter().flat_map(|t| t.table.iter()));
    for id in named {
        assert!(held.contains_key(id), "table names id {id} nobody holds");
    }
    held
}

#[test]
fn a_pool_of_sixty_hops_is_steered_through_eight_ids_and_no_flow_changes_hop() {
    let mut c = Controller::new(pool(60), params());
    let mut owner = check_ids(&c.initial());
    c.handle_start(0, &[], &[]);
    // Flows keep the id they were made on; each tick some finish (idle
    // ones are expired) and new ones are made on the tables' ids.
    let mut flows: BTreeMap<FlowKey, (FlowValue, String)> = BTreeMap::new();
    let mut sport = 1000u16;
    for t in 1..=40u64 {
        let now = t * 5 * SEC;
        let table: Vec<(FlowKey, FlowValue)> = flows.iter().map(|(k, (v, _))| (*k, *v)).collect();
        let d = c.handle_tick(now, &table, &[]);
        let held = check_ids(&d);
        // A flow's id still belongs to the hop it was made on.
        for (v, name) in flows.values() {
            assert_eq!(
                held.get(&v.hop),
                Some(name),
                "tick {t}: a flow's id changed hands"
            );
        }
        owner = held;
        // The window grew under load but within the ids.
        assert!(c.engine().window().len() <= params().class_window_cap());
        // Half the flows end; new ones go to the class table's ids, each
        // busy (so the window grows).
        let ended: Vec<FlowKey> = flows.keys().step_by(2).copied().collect();
        for k in ended {
            flows.remove(&k);
        }
        for slot in d.class_tables[0].table.iter().step_by(7) {
            sport += 1;
            let v = FlowValue {
                hop: *slot,
                packets: 100,
                bytes: 1_000,
                reply_packets: 100,
                reply_bytes: 10_000_000,
                first_seen_ns: now,
                last_seen_ns: now + 4 * SEC,
                last_reply_ns: now + 4 * SEC,
                ..FlowValue::default()
            };
            flows.insert(key(sport), (v, owner[slot].clone()));
        }
    }
    // Busy flows on every member: the window grew to the ids it may use.
    assert_eq!(c.engine().window().len(), params().class_window_cap());
    assert!(owner.len() <= IDS as usize);
}

#[test]
fn the_class_window_never_outgrows_the_ids() {
    let p = Params {
        window_base: 20,
        ..params()
    };
    // A base window larger than the ids is held to them.
    // 8 ids keep 2 in reserve.
    assert_eq!(p.class_window_cap(), 6);
    let c = Controller::new(pool(60), p);
    assert_eq!(c.engine().window().len(), 6);
    let p = Params {
        hop_ids: 1024,
        ..params()
    };
    assert_eq!(p.class_window_cap(), 1024 - 64);
    let p = Params { hop_ids: 256, ..p };
    assert_eq!(p.class_window_cap(), 256 - 32);
}
