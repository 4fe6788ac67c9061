//! What the controller hands out: the data plane's desired state
//! (class tables, port map, destination tables, hops), flow resets, and
//! the translation from engine hop indices to data-plane ids.

use std::collections::BTreeSet;

use steerer_common::{flow::DestKey, FlowKey, FlowValue};

use super::{
    controller::{Admin, Controller},
    decisions::{ClassTable, Decisions, DestinationDecision, Event, HopDecision},
    report::{FlowSample, TickReport},
    slot_table::EMPTY,
};

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

    pub(super) fn destination_decisions(
        &mut self,
        events: &mut Vec<Event>,
        report: Option<&TickReport<FlowKey>>,
    ) -> Vec<DestinationDecision> {
        let tables: Vec<(u64, Vec<u32>)> = match report {
            Some(r) => r
                .destination_tables
                .iter()
                .map(|d| (d.destination, self.to_ids(&d.table)))
                .collect(),
            None => self
                .dests
                .held()
                .filter_map(|(d, _, _)| {
                    self.engine
                        .table_for_destination(d)
                        .map(|t| (d, self.to_ids(t)))
                })
                .collect(),
        };
        let wanted: Vec<(u64, &[u32])> = tables.iter().map(|(d, t)| (*d, t.as_slice())).collect();
        let keys = &self.dest_keys;
        self.dests.sync(&wanted, |d| keys.get(&d).copied(), events)
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
            let id = self.hops[*h as usize].id;
            let before = out.len();
            out.extend(flows.iter().filter(|(_, v)| v.hop == id).map(|(k, _)| *k));
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
        let idle = |k: &FlowKey| {
            if k.proto == steerer_common::flow::PROTO_TCP {
                p.idle_tcp_ns
            } else {
                p.idle_other_ns
            }
        };
        let mut out: Vec<FlowKey> = flows
            .iter()
            .filter(|(k, v)| now_ns.saturating_sub(v.last_seen_ns) > idle(k))
            .map(|(k, _)| *k)
            .collect();
        if !resets.is_empty() && !out.is_empty() {
            let reset: std::collections::HashSet<&FlowKey> = resets.iter().collect();
            out.retain(|k| !reset.contains(k));
        }
        out
    }

    /// The desired data-plane state.
    pub(super) fn state(
        &self,
        events: Vec<Event>,
        destinations: Vec<DestinationDecision>,
        report: Option<TickReport<FlowKey>>,
    ) -> Decisions {
        Decisions {
            hops: self
                .hops
                .iter()
                .map(|h| HopDecision {
                    id: h.id,
                    name: h.spec.name.clone(),
                    // A drained hop still forwards its established flows.
                    enabled: h.usable && h.admin != Admin::Disabled,
                })
                .collect(),
            class_tables: self.class_tables(),
            port_sets: self.ports.port_map(),
            destinations,
            reset_flows: Vec::new(),
            expired_flows: Vec::new(),
            events,
            report,
        }
    }

    pub(super) fn class_tables(&self) -> Vec<ClassTable> {
        if self.ports.is_trivial() {
            let (index, _) = self.ports.sets().next().unwrap_or((0, &[]));
            return vec![ClassTable {
                index,
                table: self.to_ids(self.engine.table()),
            }];
        }
        self.ports
            .sets()
            .map(|(index, allowed)| ClassTable {
                index,
                table: self.to_ids(&self.engine.table_for(allowed)),
            })
            .collect()
    }

    /// Engine indices -> data-plane ids.
    pub(super) fn to_ids(&self, table: &[u32]) -> Vec<u32> {
        table
            .iter()
            .map(|&h| match self.hops.get(h as usize) {
                Some(hop) if h != EMPTY => hop.id,
                _ => EMPTY,
            })
            .collect()
    }

    pub(super) fn index(&self, id: u32) -> Option<u32> {
        self.index_of.get(id as usize).copied().flatten()
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
