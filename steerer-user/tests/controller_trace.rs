//! One script, two adapters (issue 13): the daemon's adapter over the real
//! maps (packets through the loaded XDP program with BPF_PROG_TEST_RUN, the
//! flow table read back from the kernel) and the simulator's adapter over
//! its model of the maps get the same packets and the same counters, tick
//! by tick, and must decide the same: the same hops for new flows and
//! failovers, the same class and destination tables, blocks and resets.
//! The expected values are computed here from the rules of SPEC 5.
//!
//! Hops alpha, beta, gamma (data-plane ids 7, 2, 4, so positions and ids
//! differ), all claiming 100 MB/s; K = 5 s, T = 3 s, N = 3, 101 slots.

mod support;

use std::collections::BTreeMap;

use etherparse::PacketBuilder;
use steerer_common::{
    config::CONFIG_READY,
    flow::{DestKey, FailoverKey},
    hop::HOP_ENABLED,
    limits::{DEST_SLOTS_BASE, DEST_SLOT_COUNT, NO_HOP},
    DataplaneConfig, FlowKey, FlowValue, HopEntry,
};
use steerer_user::{
    daemon::adapter::Adapter,
    policy::{Controller, ControllerHop, Decisions, Event, HopSpec, Params},
    portsets::PortSet,
    sim::policies::SteererPolicy,
};
use support::*;

const SEC: u64 = 1_000_000_000;
const MB: f64 = 1e6;
const IDS: [u32; 3] = [7, 2, 4];
const NAMES: [&str; 3] = ["alpha", "beta", "gamma"];
const SLOT_COUNT: u32 = 101;
const MAX_SHARE: f64 = 0.5;

fn params() -> Params {
    Params {
        tick_ns: 5 * SEC,
        fail_after_ns: 3 * SEC,
        slot_count: SLOT_COUNT,
        window_base: 3,
        max_share: MAX_SHARE,
        link_hold_down_ns: 2 * SEC,
        seed: 42,
        // Shares by speed, which the expected tables below follow; the
        // load rule has tests of its own (policy::engine_more_tests), and
        // both adapters call the same engine either way.
        load_aware: false,
        ..Params::default()
    }
}

fn hops() -> Vec<ControllerHop> {
    (0..3)
        .map(|i| ControllerHop {
            spec: HopSpec {
                name: NAMES[i].into(),
                initial_estimate: 100.0 * MB,
                operator: None,
                subnet: None,
                fresh: false,
                latency_ms: None,
            },
            id: Some(IDS[i]),
            accepts: PortSet::all(),
            usable: true,
            admin: steerer_user::policy::Admin::Active,
        })
        .collect()
}

fn key(dst: [u8; 4], dport: u16, sport: u16) -> FlowKey {
    let mut k = FlowKey {
        src_port: sport,
        dst_port: dport,
        proto: 6,
        family: 4,
        ..FlowKey::default()
    };
    k.src_addr[..4].copy_from_slice(&[198, 18, 0, 2]);
    k.dst_addr[..4].copy_from_slice(&dst);
    k
}

fn syn_packet(k: &FlowKey) -> Vec<u8> {
    let src: [u8; 4] = k.src_addr[..4].try_into().unwrap();
    let dst: [u8; 4] = k.dst_addr[..4].try_into().unwrap();
    let b = PacketBuilder::ethernet2(CLIENT_MAC, GW_LAN_MAC)
        .ipv4(src, dst, 64)
        .tcp(k.src_port, k.dst_port, 1, 65535)
        .syn();
    let mut out = Vec::new();
    b.write(&mut out, &[]).unwrap();
    out
}

/// The two adapters side by side.
struct Both {
    t: TestDataplane,
    daemon: Adapter,
    sim: SteererPolicy,
    /// The simulator's flow table (its connections).
    sim_flows: BTreeMap<FlowKey, FlowValue>,
}

impl Both {
    fn new() -> Both {
        let mut t = TestDataplane::new(false);
        let entries = NAMES
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let e = HopEntry {
                    ifindex: 1,
                    flags: HOP_ENABLED,
                    src_mac: HOP_SRC_MAC,
                    dst_mac: [2, 0, 0, 0, 9, i as u8],
                    mark: 0,
                };
                (name.to_string(), e)
            })
            .collect();
        let mut daemon = Adapter::new(Controller::new(hops(), params()), entries);
        let initial = daemon.controller.initial();
        let out = daemon.apply(&mut t.dp, &initial);
        assert!(out.failures.is_empty(), "{:?}", out.failures);
        t.dp.set_config(&DataplaneConfig {
            hash_key: HASH_KEY,
            slot_count: SLOT_COUNT,
            flags: CONFIG_READY,
        })
        .unwrap();
        let sim = SteererPolicy::new(hops(), params(), HASH_KEY);
        let both = Both {
            t,
            daemon,
            sim,
            sim_flows: BTreeMap::new(),
        };
        both.assert_same_dataplane("start");
        both
    }

    /// A SYN of `k` through both data planes; the hop it is on after it.
    fn syn(&mut self, k: &FlowKey) -> u32 {
        let verdict = run_xdp(&self.t, &syn_packet(k)).verdict;
        let kernel = self.t.dp.flows().unwrap().into_iter().find(|(f, _)| f == k);
        let model = match self.sim_flows.get_mut(k) {
            Some(v) if v.reply_packets == 0 => {
                if let Some(h) = self.sim.dataplane.failover_id(k, v.hop, v.failovers.into()) {
                    v.hop = h;
                    v.failovers += 1;
                }
                Some(v.hop)
            }
            Some(v) => Some(v.hop),
            None => self.sim.dataplane.new_flow_id(k).inspect(|&h| {
                self.sim_flows.insert(
                    *k,
                    FlowValue {
                        hop: h,
                        packets: 1,
                        ..FlowValue::default()
                    },
                );
            }),
        };
        let kernel_hop = kernel.map(|(_, v)| v.hop);
        assert_eq!(
            kernel_hop, model,
            "the kernel and the model steer {k:?} alike"
        );
        assert_eq!(verdict == XDP_REDIRECT, model.is_some());
        model.expect("steered")
    }

    /// A source port towards `dst:dport` whose new flow lands on `id`.
    fn port_landing_on(&self, dst: [u8; 4], dport: u16, id: u32, from: u16) -> u16 {
        (from..60000)
            .find(|&p| self.sim.dataplane.new_flow_id(&key(dst, dport, p)) == Some(id))
            .expect("some port lands on the hop")
    }

    /// Set a flow's counters in both flow tables (hop and failovers stay
    /// the data plane's).
    fn set(&mut self, k: &FlowKey, bytes: u64, reply: u64, first: u64, last: u64) {
        let cur = self.sim_flows[k];
        let v = FlowValue {
            bytes,
            reply_bytes: reply,
            packets: cur.packets.max(1),
            reply_packets: (reply as f64 / 1448.0).ceil() as u64,
            first_seen_ns: first,
            last_seen_ns: last,
            last_reply_ns: if reply > 0 { last } else { 0 },
            ..cur
        };
        self.t.dp.put_flow(k, &v).unwrap();
        self.sim_flows.insert(*k, v);
    }

    fn tick(&mut self, now: u64) -> Decisions {
        let d = self.daemon.tick(&mut self.t.dp, now).unwrap();
        assert!(d.applied.failures.is_empty(), "{:?}", d.applied.failures);
        let flows: Vec<(FlowKey, FlowValue)> =
            self.sim_flows.iter().map(|(k, v)| (*k, *v)).collect();
        let s = self.sim.handle_tick(now, &flows);
        for k in self.sim.dataplane.take_resets() {
            self.sim_flows.remove(&k);
        }
        same_decisions(&d.decisions, &s);
        self.assert_same_dataplane(&format!("tick at {}s", now / SEC));
        d.decisions
    }

    fn link(&mut self, id: u32, usable: bool, now: u64) -> Decisions {
        let name = NAMES[IDS.iter().position(|&i| i == id).unwrap()];
        let (d, out) = self.daemon.link(&mut self.t.dp, name, usable, now);
        assert!(out.failures.is_empty());
        let s = self.sim.handle_link(now, name, usable);
        same_decisions(&d, &s);
        self.assert_same_dataplane("link change");
        d
    }

    fn timeout(&mut self, now: u64) -> Decisions {
        let (d, out) = self.daemon.timeout(&mut self.t.dp, now);
        assert!(out.failures.is_empty());
        let s = self.sim.handle_timeout(now);
        same_decisions(&d, &s);
        self.assert_same_dataplane("timeout");
        d
    }

    fn class_table(&self) -> Vec<u32> {
        self.t.dp.read_slots(0, SLOT_COUNT).unwrap()
    }

    /// The destination's table in the kernel, if it has one.
    fn dest_table(&self, dest: &DestKey) -> Option<Vec<u32>> {
        let index = self
            .t
            .dp
            .destinations()
            .unwrap()
            .into_iter()
            .find(|(k, _)| k == dest)?
            .1;
        let base = DEST_SLOTS_BASE + index * DEST_SLOT_COUNT;
        Some(self.t.dp.read_slot_range(base, DEST_SLOT_COUNT).unwrap())
    }

    /// Same class table, port map, destination tables, hop flags and flows.
    fn assert_same_dataplane(&self, when: &str) {
        let m = &self.sim.dataplane;
        assert_eq!(
            self.class_table(),
            m.slots(0, SLOT_COUNT),
            "{when}: class table"
        );
        for port in [80u16, 443, 8443] {
            assert_eq!(
                self.t.dp.read_port_set(port).unwrap(),
                m.port_set_of(port),
                "{when}: port {port}"
            );
        }
        let mut kernel: Vec<(DestKey, u32)> = self.t.dp.destinations().unwrap();
        kernel.sort_unstable();
        let mut model: Vec<(DestKey, u32)> = m
            .destination_tables()
            .iter()
            .map(|(k, i)| (*k, *i))
            .collect();
        model.sort_unstable();
        assert_eq!(kernel, model, "{when}: destination entries");
        for (k, i) in &kernel {
            let base = DEST_SLOTS_BASE + i * DEST_SLOT_COUNT;
            assert_eq!(
                self.dest_table(k).unwrap(),
                m.slots(base, DEST_SLOT_COUNT),
                "{when}: table {i}"
            );
        }
        for id in IDS {
            assert_eq!(
                self.t.dp.hop(id).unwrap().is_enabled(),
                m.is_enabled(id),
                "{when}: hop {id}"
            );
        }
        let mut kf: Vec<FlowKey> = self
            .t
            .dp
            .flows()
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        kf.sort_unstable_by_key(|k| (k.dst_addr, k.dst_port, k.src_port));
        let mut mf: Vec<FlowKey> = self.sim_flows.keys().copied().collect();
        mf.sort_unstable_by_key(|k| (k.dst_addr, k.dst_port, k.src_port));
        assert_eq!(kf, mf, "{when}: flow tables");
        let fo = |v: Vec<(FailoverKey, u64)>| {
            let mut v = v;
            v.sort_unstable();
            v
        };
        assert_eq!(
            fo(self.t.dp.failovers().unwrap()),
            fo(m.failover_counters()),
            "{when}: failover counters"
        );
    }
}

/// Both adapters' decisions, equal (shares to 1e-9: they are the same
/// computation, so equal to the bit in fact).
fn same_decisions(a: &Decisions, b: &Decisions) {
    assert_eq!(a.hops, b.hops);
    assert_eq!(a.class_tables, b.class_tables);
    assert_eq!(a.port_sets, b.port_sets);
    assert_eq!(a.destinations, b.destinations);
    let mut ra = a.reset_flows.clone();
    let mut rb = b.reset_flows.clone();
    ra.sort_unstable_by_key(|k| (k.dst_addr, k.src_port));
    rb.sort_unstable_by_key(|k| (k.dst_addr, k.src_port));
    assert_eq!(ra, rb, "resets");
    assert_eq!(
        a.events.len(),
        b.events.len(),
        "{:?}\n{:?}",
        a.events,
        b.events
    );
    if let (Some(x), Some(y)) = (&a.report, &b.report) {
        for (p, q) in x.hops.iter().zip(&y.hops) {
            assert!((p.share - q.share).abs() < 1e-9);
        }
    }
}

/// SPEC 5.6/5.7 as `policy::weights` documents it, for hops that are all
/// measured (no fresh hop, so no exploration floor): shares in proportion
/// to speed; a hop above `MAX_SHARE` is cut to it and the excess goes to
/// the others in proportion to their shares (one round: the test's speeds
/// need no more).
fn expected_shares(speeds: &[f64]) -> Vec<f64> {
    let total: f64 = speeds.iter().sum();
    let raw: Vec<f64> = speeds.iter().map(|s| s / total).collect();
    let Some(top) = (0..raw.len()).find(|&i| raw[i] > MAX_SHARE) else {
        return raw;
    };
    let rest: f64 = (0..raw.len()).filter(|&i| i != top).map(|i| raw[i]).sum();
    let out: Vec<f64> = (0..raw.len())
        .map(|i| {
            if i == top {
                MAX_SHARE
            } else {
                raw[i] * (1.0 - MAX_SHARE) / rest
            }
        })
        .collect();
    assert!(
        out.iter().all(|&s| s <= MAX_SHARE + 1e-12),
        "one round suffices"
    );
    out
}

/// Largest remainder: floor of share x slots, the slots left to the
/// largest fractions (ties to the lower index).
fn expected_slots(shares: &[f64], slots: u32) -> Vec<u32> {
    let exact: Vec<f64> = shares.iter().map(|s| s * slots as f64).collect();
    let mut counts: Vec<u32> = exact.iter().map(|e| e.floor() as u32).collect();
    let mut order: Vec<usize> = (0..shares.len()).filter(|&i| shares[i] > 0.0).collect();
    order.sort_by(|&a, &b| {
        (exact[b] - exact[b].floor())
            .total_cmp(&(exact[a] - exact[a].floor()))
            .then(a.cmp(&b))
    });
    let left = slots - counts.iter().sum::<u32>();
    for &i in order.iter().take(left as usize) {
        counts[i] += 1;
    }
    counts
}

fn count(table: &[u32], id: u32) -> u32 {
    table.iter().filter(|&&h| h == id).count() as u32
}

const A: [u8; 4] = [198, 19, 0, 2];
const B: [u8; 4] = [198, 19, 0, 3];
const OTHER: [u8; 4] = [198, 19, 0, 4];
const E: [u8; 4] = [198, 19, 0, 5];

fn dest(addr: [u8; 4], port: u16) -> DestKey {
    DestKey::of(&key(addr, port, 1))
}

#[test]
fn the_daemon_and_the_simulator_decide_alike_tick_by_tick() {
    let mut b = Both::new();
    let [alpha, beta, gamma] = IDS;

    // Tick 1 (0-5 s). Each hop answers one flow to A:443, busy 1-2 s:
    // alpha 50, beta 25, gamma 10 MB/s of replies (plus 1000 bytes sent).
    let replies = [50.0 * MB, 25.0 * MB, 10.0 * MB];
    for (i, &id) in IDS.iter().enumerate() {
        let p = b.port_landing_on(A, 443, id, 10_000);
        let k = key(A, 443, p);
        assert_eq!(b.syn(&k), id);
        b.set(&k, 1000, replies[i] as u64, SEC, 2 * SEC);
    }
    // beta gets two connections to B:8443 that are never answered (sent
    // at 1 s: failed at the tick, T = 3 s) ...
    let mut blocked = Vec::new();
    for from in [20_000, 30_000] {
        let p = b.port_landing_on(B, 8443, beta, from);
        let k = key(B, 8443, p);
        assert_eq!(b.syn(&k), beta);
        b.set(&k, 60, 0, SEC, SEC);
        blocked.push(k);
    }
    // ... and one to OTHER:8443 that is (1 MB, busy 1-2 s like the
    // others): the same port elsewhere works.
    let p = b.port_landing_on(OTHER, 8443, beta, 40_000);
    let ok = key(OTHER, 8443, p);
    assert_eq!(b.syn(&ok), beta);
    b.set(&ok, 1000, 1_000_000, SEC, 2 * SEC);
    // Two SYNs to E:80 start on gamma and are repeated without an answer:
    // the data plane's fast failover moves each off gamma (counted against
    // (gamma, E)). Sent at 4.5 s: not failed yet at the tick.
    for from in [41_000, 42_000] {
        let p = b.port_landing_on(E, 80, gamma, from);
        let k = key(E, 80, p);
        assert_eq!(b.syn(&k), gamma);
        let moved = b.syn(&k);
        assert_ne!(moved, gamma, "fast failover left gamma");
        b.set(&k, 120, 0, 4 * SEC + SEC / 2, 4 * SEC + SEC / 2);
    }

    let d = b.tick(5 * SEC);
    let r = d.report.as_ref().unwrap();
    // Speeds: (bytes + replies) over 1 s of busy time; beta's two
    // answered flows overlap, so its busy time is 1 s too.
    let mut speeds: Vec<f64> = replies.iter().map(|r| r + 1000.0).collect();
    speeds[1] += 1_000_000.0 + 1000.0;
    for (h, want) in r.hops.iter().zip(&speeds) {
        assert!(
            (h.speed - want).abs() < 1e-6,
            "{} measured {} want {want}",
            h.name,
            h.speed
        );
    }
    let shares = expected_shares(&speeds);
    for (h, want) in r.hops.iter().zip(&shares) {
        assert!(
            (h.share - want).abs() < 1e-9,
            "{}: share {} want {want}",
            h.name,
            h.share
        );
    }
    let table = b.class_table();
    let want = expected_slots(&shares, SLOT_COUNT);
    for (i, &id) in IDS.iter().enumerate() {
        assert_eq!(count(&table, id), want[i], "class slots of {}", NAMES[i]);
    }
    // Blocks per destination: beta for B:8443 (two failed flows), gamma
    // for E:80 (two failovers); each destination gets a table of its own
    // without the blocked hop, split evenly by max share (two hops of
    // equal weight 0.5: 511 and 510 of 1021, the odd slot to the hop
    // listed first).
    let excluded: Vec<(String, DestKey)> = d
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Excluded { hop, dest, .. } => Some((hop.clone(), *dest)),
            _ => None,
        })
        .collect();
    assert_eq!(excluded.len(), 2, "{:?}", d.events);
    assert!(excluded.contains(&("beta".into(), dest(B, 8443))));
    assert!(excluded.contains(&("gamma".into(), dest(E, 80))));
    let tb = b.dest_table(&dest(B, 8443)).expect("B has its own table");
    assert_eq!(
        (count(&tb, alpha), count(&tb, beta), count(&tb, gamma)),
        (511, 0, 510)
    );
    let te = b.dest_table(&dest(E, 80)).expect("E has its own table");
    assert_eq!(
        (count(&te, alpha), count(&te, beta), count(&te, gamma)),
        (511, 510, 0)
    );
    assert!(
        b.dest_table(&dest(OTHER, 8443)).is_none(),
        "OTHER:8443 uses the class table"
    );
    // A new connection to B on a port whose class slot is beta goes
    // elsewhere; the same to OTHER:8443 still goes to beta.
    let p = (50_000..60_000)
        .find(|&p| class_hop(&b, &key(B, 8443, p)) == beta)
        .unwrap();
    assert_ne!(b.syn(&key(B, 8443, p)), beta, "beta excluded for B:8443");
    let q = b.port_landing_on(OTHER, 8443, beta, 50_000);
    assert_eq!(
        b.syn(&key(OTHER, 8443, q)),
        beta,
        "beta still serves OTHER:8443"
    );

    // Between ticks alpha's link goes down: out of every table at once.
    let d = b.link(alpha, false, 6 * SEC);
    assert!(matches!(&d.events[0], Event::HopDown { hop } if hop == "alpha"));
    assert!(!b.t.dp.hop(alpha).unwrap().is_enabled());
    let table = b.class_table();
    assert_eq!(count(&table, alpha), 0);
    // beta and gamma (25 and 10 MB/s): beta capped at 0.5, so 0.5 each:
    // 51 and 50 of 101.
    assert_eq!((count(&table, beta), count(&table, gamma)), (51, 50));
    let tb = b.dest_table(&dest(B, 8443)).unwrap();
    assert_eq!(
        (count(&tb, alpha), count(&tb, beta), count(&tb, gamma)),
        (0, 0, 1021)
    );
    assert!(!table.contains(&NO_HOP));

    // Tick 2: alpha's flows are reset (the one to A), nothing else.
    let on_alpha: Vec<FlowKey> = b
        .sim_flows
        .iter()
        .filter(|(_, v)| v.hop == alpha)
        .map(|(k, _)| *k)
        .collect();
    let d = b.tick(10 * SEC);
    let mut reset = d.reset_flows.clone();
    reset.sort_unstable_by_key(|k| (k.dst_addr, k.src_port));
    let mut want = on_alpha.clone();
    want.sort_unstable_by_key(|k| (k.dst_addr, k.src_port));
    assert_eq!(reset, want, "exactly alpha's flows are reset");
    assert!(b.t.dp.flows().unwrap().iter().all(|(_, v)| v.hop != alpha));
    assert!(d
        .events
        .iter()
        .any(|e| matches!(e, Event::FlowsReset { hop, .. } if hop == "alpha")));
    // The blocks still hold: B's table still lacks beta.
    assert_eq!(count(&b.dest_table(&dest(B, 8443)).unwrap(), beta), 0);
    assert!(
        blocked.iter().all(|k| b.sim_flows.contains_key(k)),
        "B's flows were not reset"
    );

    // alpha's link is back at 11 s: held down for 2 s, then offered new
    // flows again (the controller's timeout says when).
    let d = b.link(alpha, true, 11 * SEC);
    assert!(
        matches!(&d.events[..], [Event::HopHeldDown { hop, for_ns }] if hop == "alpha" && *for_ns == 2 * SEC)
    );
    assert!(!b.t.dp.hop(alpha).unwrap().is_enabled());
    assert_eq!(count(&b.class_table(), alpha), 0);
    assert_eq!(b.daemon.controller.poll_timeout(), 13 * SEC);
    let d = b.timeout(13 * SEC);
    assert!(matches!(&d.events[..], [Event::HopUp { hop }] if hop == "alpha"));
    assert!(b.t.dp.hop(alpha).unwrap().is_enabled());
    assert!(count(&b.class_table(), alpha) > 0);
    // Thirty connections to F:80 retry their SYN three times each: every
    // failover lands alike (`syn` checks each), and the third tick decides
    // alike on the counters they left.
    for p in 0..30u16 {
        let k = key([198, 19, 0, 6], 80, 61_000 + p);
        for _ in 0..4 {
            b.syn(&k);
        }
        b.set(&k, 240, 0, 12 * SEC, 12 * SEC);
    }
    let d = b.tick(15 * SEC);
    assert!(d.events.iter().any(
        |e| matches!(e, Event::Excluded { dest, .. } if dest.port == 80 && dest.addr[3] == 6)
    ));
}

/// The hop the class table gives a new flow (no destination table).
fn class_hop(b: &Both, k: &FlowKey) -> u32 {
    let h = steerer_common::siphash::flow_hash(&HASH_KEY, k);
    b.class_table()[(h % SLOT_COUNT as u64) as usize]
}
