//! What the controller hands out: the data plane's desired state
//! (class tables, port map, destination tables, hops), flow resets, and
//! the translation from engine hop indices to data-plane ids.

use std::collections::BTreeSet;

use steerer_common::{flow::DestKey, FlowKey, FlowValue};

use super::{
    controller::{Admin, Controller},
    decisions::{ClassTable, Decisions, Event, HopDecision},
    id_table::IdHolder,
    report::{FlowSample, TickReport},
    slot_table::EMPTY,
};

/// A slot whose hop has no id yet (never written).
const UNMAPPED: u32 = EMPTY - 1;

impl Controller {
    /// Keys of newly windowed destinations, from the flows that made them.
    pub(super) fn learn_keys(
        &mut self,
        report: &TickReport<FlowKey>,
        flows: &[(FlowKey, FlowValue)],
    ) {
        let missing = report
            .destination_tables
            .iter()
            .any(|d| !self.dest_keys.contains_key(&d.destination));
        if !missing {
            return;
        }
        let wanted: BTreeSet<u64> = report
            .destination_tables
            .iter()
            .map(|d| d.destination)
            .filter(|d| !self.dest_keys.contains_key(d))
            .collect();
        for (k, _) in flows {
            let key = DestKey::of(k);
            let id = key.id();
            if wanted.contains(&id) {
                self.dest_keys.entry(id).or_insert(key);
            }
        }
    }

    /// Keys are kept while a destination is blocked or windowed.
    pub(super) fn forget_keys(&mut self) {
        let blocked: BTreeSet<u64> = self.blocks.destinations().copied().collect();
        let dests = &self.dests;
        self.dest_keys
            .retain(|d, _| blocked.contains(d) || dests.holds(*d));
    }

    /// Flows of hops that disappeared this tick or went down since the last.
    pub(super) fn resets(
        &mut self,
        report: &TickReport<FlowKey>,
        flows: &[(FlowKey, FlowValue)],
        events: &mut Vec<Event>,
    ) -> Vec<FlowKey> {
        let mut out = Vec::new();
        let down = std::mem::take(&mut self.pending_resets);
        let admin: Vec<Admin> = self.hops.iter().map(|h| h.admin).collect();
        let why = |h: &u32| {
            if admin[*h as usize] == Admin::Disabled {
                "the operator disabled it"
            } else if down.contains(h) {
                "its link went down"
            } else {
                "it answered no flow"
            }
        };
        let hops: BTreeSet<u32> = report.disappeared.iter().chain(&down).copied().collect();
        for h in &hops {
            let before = out.len();
            if let Some(id) = self.ids.id(*h) {
                out.extend(flows.iter().filter(|(_, v)| v.hop == id).map(|(k, _)| *k));
            }
            events.push(Event::FlowsReset {
                hop: self.hops[*h as usize].spec.name.clone(),
                flows: out.len() - before,
                why: why(h),
            });
        }
        out
    }

    /// Flows idle past their protocol's timeout (not already reset).
    pub(super) fn expired(
        &self,
        now_ns: u64,
        flows: &[(FlowKey, FlowValue)],
        resets: &[FlowKey],
    ) -> Vec<FlowKey> {
        let p = self.engine.params();
        let idle = |k: &FlowKey, v: &FlowValue| {
            if k.proto != steerer_common::flow::PROTO_TCP {
                p.idle_other_ns
            } else if v.tcp_closed() {
                // FIN both ways or an RST: over, whatever comes late.
                p.closed_tcp_ns.min(p.idle_tcp_ns)
            } else {
                p.idle_tcp_ns
            }
        };
        let mut out: Vec<FlowKey> = flows
            .iter()
            .filter(|(k, v)| now_ns.saturating_sub(v.last_seen_ns) > idle(k, v))
            .map(|(k, _)| *k)
            .collect();
        if !resets.is_empty() && !out.is_empty() {
            let reset: std::collections::HashSet<&FlowKey> = resets.iter().collect();
            out.retain(|k| !reset.contains(k));
        }
        out
    }

    /// The desired data-plane state: every table in engine hops first,
    /// then data-plane ids for the hops they name (`IdTable::settle`;
    /// `after_read`: this call comes with a read of the flow table, so
    /// ids may be released), then the tables in ids.
    pub(super) fn decide(
        &mut self,
        mut events: Vec<Event>,
        report: Option<TickReport<FlowKey>>,
        after_read: bool,
    ) -> Decisions {
        let class = self.class_tables_of_hops();
        // Borrowed, not copied: `settle` below changes only the ids.
        let (engine, dest_slots) = (&self.engine, &self.dests);
        let dests: Vec<(u64, &[u32])> = match &report {
            Some(r) => r
                .destination_tables
                .iter()
                .map(|d| (d.destination, d.table.as_slice()))
                .collect(),
            None => dest_slots
                .held()
                .filter_map(|(d, _, _)| Some((d, engine.table_for_destination(d)?)))
                .collect(),
        };
        let mut wanted: Vec<u32> = class
            .iter()
            .flat_map(|(_, t)| t.iter())
            .chain(dests.iter().flat_map(|(_, t)| t.iter()))
            .copied()
            .filter(|&h| h != EMPTY)
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        let left = self.ids.settle(&wanted, after_read);
        if !left.is_empty() {
            events.push(Event::IdsExhausted {
                hops: left.len(),
                capacity: self.ids.capacity(),
            });
        }
        let class_tables = class
            .into_iter()
            .map(|(index, t)| ClassTable {
                index,
                table: self.to_ids(&t),
            })
            .collect();
        let id_tables: Vec<(u64, Vec<u32>)> =
            dests.iter().map(|(d, t)| (*d, self.to_ids(t))).collect();
        let wanted: Vec<(u64, &[u32])> =
            id_tables.iter().map(|(d, t)| (*d, t.as_slice())).collect();
        let keys = &self.dest_keys;
        let destinations = self
            .dests
            .sync(&wanted, |d| keys.get(&d).copied(), &mut events);
        Decisions {
            hops: self.hop_decisions(),
            class_tables,
            port_sets: self.ports.port_map(),
            destinations,
            reset_flows: Vec::new(),
            expired_flows: Vec::new(),
            events,
            report,
        }
    }

    /// Every id held: pool hops with whether they take flows, and the
    /// ids whose flows drain on a name the pool no longer has.
    fn hop_decisions(&self) -> Vec<HopDecision> {
        self.ids
            .held()
            .filter_map(|(id, holder)| match holder {
                IdHolder::Hop(i) => {
                    let h = &self.hops[*i as usize];
                    Some(HopDecision {
                        id,
                        name: h.spec.name.clone(),
                        // A drained hop still forwards its established flows.
                        enabled: self.hop_usable(*i) && h.admin != Admin::Disabled,
                        pooled: true,
                    })
                }
                IdHolder::Draining(name) => Some(HopDecision {
                    id,
                    name: name.clone().unwrap_or_default(),
                    enabled: true,
                    pooled: false,
                }),
                IdHolder::Free => None,
            })
            .collect()
    }

    /// Every port set's table, in engine hops.
    fn class_tables_of_hops(&self) -> Vec<(u32, Vec<u32>)> {
        if self.ports.is_trivial() {
            let (index, _) = self.ports.sets().next().unwrap_or((0, &[]));
            return vec![(index, self.engine.table().to_vec())];
        }
        self.ports
            .sets()
            .map(|(index, allowed)| (index, self.engine.table_for(allowed)))
            .collect()
    }

    /// Engine hops -> data-plane ids. A hop left without an id (every id
    /// held, see `IdHolder`) gives its slots to the table's other hops:
    /// each takes the id of the nearest slot before it that has one.
    pub(super) fn to_ids(&self, table: &[u32]) -> Vec<u32> {
        let mut out: Vec<u32> = table
            .iter()
            .map(|&h| {
                if h == EMPTY {
                    EMPTY
                } else {
                    self.ids.id(h).unwrap_or(UNMAPPED)
                }
            })
            .collect();
        if out.contains(&UNMAPPED) {
            let last = out
                .iter()
                .rev()
                .find(|&&i| i != UNMAPPED && i != EMPTY)
                .copied();
            let mut prev = last.unwrap_or(EMPTY);
            for slot in out.iter_mut() {
                if *slot == UNMAPPED {
                    *slot = prev;
                } else if *slot != EMPTY {
                    prev = *slot;
                }
            }
        }
        out
    }

    pub(super) fn index(&self, id: u32) -> Option<u32> {
        self.ids.hop(id)
    }

    pub(super) fn sample(&self, k: &FlowKey, v: &FlowValue) -> Option<FlowSample<FlowKey>> {
        Some(FlowSample {
            key: *k,
            destination: DestKey::of(k).id(),
            hop: self.index(v.hop)?,
            bytes: v.bytes,
            reply_bytes: v.reply_bytes,
            packets: v.packets,
            reply_packets: v.reply_packets,
            first_seen_ns: v.first_seen_ns,
            last_seen_ns: v.last_seen_ns,
            // TCP's SYN gets an answer from any live path; other protocols
            // may be one-way.
            weak_evidence: k.proto != steerer_common::flow::PROTO_TCP,
        })
    }
}
