//! Human and machine renderings of a tick.

use serde::Serialize;

use crate::{
    policy::TickReport,
    status_view::{DestinationStatus, EventLine, ExclusionStatus},
};

/// One hop's line, as written to the status file (JSON).
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq)]
pub struct HopStatus {
    pub name: String,
    pub usable: bool,
    /// Member of the class window.
    #[serde(default)]
    pub in_window: bool,
    pub share: f64,
    pub slots: u32,
    pub active_flows: u64,
    pub bytes: u64,
    pub speed_mbit: f64,
    pub speed_source: String,
    pub failed_new: u64,
    pub failed_total: u64,
    /// The probes' smoothed round-trip time through the hop, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_rtt_ms: Option<f64>,
    /// Out of the tables because its probes went unanswered.
    #[serde(default)]
    pub probe_down: bool,
    /// Its condition (`up`, `draining`, `link down`, `held down`, ...;
    /// see `policy::HopCondition`), and when it ends by itself.
    #[serde(default)]
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_until_unix: Option<f64>,
    /// The last events about the hop that say why it is as it is, one of
    /// each kind, oldest first: its last weight change (and the rule that
    /// set it), its last change of condition (link, probes, silence), its
    /// last exclusion or readmission.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub why: Vec<EventLine>,
}

/// The status file: the latest tick.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq)]
pub struct TickStatus {
    pub tick: u64,
    pub elapsed_secs: f64,
    pub flows: u64,
    pub moved_slots: usize,
    /// The fewest slots the change had to move.
    #[serde(default)]
    pub min_moved_slots: usize,
    pub slot_count: usize,
    /// Destinations with a window and table of their own.
    #[serde(default)]
    pub destination_windows: usize,
    /// New flows the flood guard steered without a flow-table entry since
    /// the last tick.
    #[serde(default)]
    pub new_flows_not_inserted: u64,
    /// Flows the flow table's LRU evicted since the last tick and since
    /// the daemon started (estimated from the counters: the kernel counts
    /// no evictions). Evictions of live flows mean the table is too small.
    #[serde(default)]
    pub flows_evicted: u64,
    #[serde(default)]
    pub flows_evicted_total: u64,
    /// Probe rounds started and answered since the start.
    #[serde(default)]
    pub probe_rounds: u64,
    #[serde(default)]
    pub probe_rounds_answered: u64,
    pub hops: Vec<HopStatus>,
    /// When it was written (Unix seconds) and by which process.
    #[serde(default)]
    pub written_unix: f64,
    #[serde(default)]
    pub pid: u32,
    #[serde(default)]
    pub exclusions: Vec<ExclusionStatus>,
    #[serde(default)]
    pub destinations: Vec<DestinationStatus>,
    /// Recent events, newest last (at most `status_view::RECENT_EVENTS`).
    #[serde(default)]
    pub events: Vec<EventLine>,
}

impl TickStatus {
    pub fn new<K>(tick: u64, elapsed_secs: f64, flows: u64, r: &TickReport<K>) -> Self {
        TickStatus {
            tick,
            elapsed_secs,
            flows,
            moved_slots: r.moved_slots,
            min_moved_slots: r.min_moved_slots,
            slot_count: r.table.len(),
            destination_windows: r.destination_tables.len(),
            hops: r
                .hops
                .iter()
                .map(|h| HopStatus {
                    name: h.name.clone(),
                    usable: h.usable,
                    in_window: h.in_window,
                    share: h.share,
                    slots: h.slots,
                    active_flows: h.active_flows,
                    bytes: h.bytes,
                    speed_mbit: h.speed * 8.0 / 1e6,
                    speed_source: h.speed_source.label().into(),
                    failed_new: h.newly_failed,
                    failed_total: h.failed_total,
                    probe_rtt_ms: None,
                    probe_down: false,
                    state: String::new(),
                    state_until_unix: None,
                    why: Vec::new(),
                })
                .collect(),
            new_flows_not_inserted: 0,
            flows_evicted: 0,
            flows_evicted_total: 0,
            probe_rounds: 0,
            probe_rounds_answered: 0,
            written_unix: 0.0,
            pid: 0,
            exclusions: Vec::new(),
            destinations: Vec::new(),
            events: Vec::new(),
        }
    }

    /// The table printed every tick.
    pub fn table(&self) -> String {
        let mut s = format!(
            "tick {} at {:.1}s: {} flows in table, {} of {} slots moved (fewest possible {}), {} destination windows\n",
            self.tick,
            self.elapsed_secs,
            self.flows,
            self.moved_slots,
            self.slot_count,
            self.min_moved_slots,
            self.destination_windows
        );
        s.push_str(&format!(
            "  {:<12} {:>7} {:>6} {:>7} {:>12} {:>12} {:<10} {:>7}\n",
            "hop", "weight", "slots", "active", "bytes", "speed Mb/s", "speed from", "failed"
        ));
        let probed = self.probe_rounds > 0;
        for h in &self.hops {
            let name = if h.probe_down {
                format!("{} (probes lost)", h.name)
            } else if !h.usable {
                format!("{} (down)", h.name)
            } else if !h.in_window {
                format!("{} (out)", h.name)
            } else {
                h.name.clone()
            };
            s.push_str(&format!(
                "  {:<12} {:>6.1}% {:>6} {:>7} {:>12} {:>12.1} {:<10} {:>7}\n",
                name,
                h.share * 100.0,
                h.slots,
                h.active_flows,
                h.bytes,
                h.speed_mbit,
                h.speed_source,
                format!("{}/{}", h.failed_new, h.failed_total),
            ));
            if probed {
                // Trailing the row: the probes' time, when they measured one.
                s.pop();
                match h.probe_rtt_ms {
                    Some(ms) => s.push_str(&format!("  rtt {ms:.1} ms\n")),
                    None => s.push_str("  rtt -\n"),
                }
            }
        }
        if probed || self.new_flows_not_inserted > 0 {
            s.push_str(&format!(
                "  probes: {} rounds, {} answered; flood guard: {} new flows without an entry this tick\n",
                self.probe_rounds, self.probe_rounds_answered, self.new_flows_not_inserted
            ));
        }
        if self.flows_evicted_total > 0 {
            s.push_str(&format!(
                "  flow table: {} flows evicted this tick, {} since the start (estimated; raise --flow-table-size)\n",
                self.flows_evicted, self.flows_evicted_total
            ));
        }
        s
    }
}

/// One flow-table entry, as `steerer flows --json` prints it.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct FlowRecord {
    pub src: std::net::IpAddr,
    pub dst: std::net::IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub proto: u8,
    pub hop: u32,
    pub packets: u64,
    pub bytes: u64,
    pub reply_packets: u64,
    pub reply_bytes: u64,
    pub failovers: u32,
    pub first_seen_ns: u64,
    pub last_seen_ns: u64,
    /// The hop's name (from the pinned `HOP_NAMES`), if it has one.
    #[serde(default)]
    pub hop_name: Option<String>,
    /// Seconds since the flow's first packet, and since its last.
    #[serde(default)]
    pub age_secs: f64,
    #[serde(default)]
    pub idle_secs: f64,
    /// TCP `closed` (FIN both ways, or an RST) or `closing` (one FIN);
    /// else `answered` (a reply came back), `waiting` (none yet, within
    /// `fail_after_secs` of its start: 3 s by default) or `no reply`.
    #[serde(default)]
    pub state: String,
}

impl FlowRecord {
    /// `now_ns`: CLOCK_MONOTONIC, the clock of the flow's times; `name` of
    /// the hop id.
    pub fn new(
        k: &steerer_common::FlowKey,
        v: &steerer_common::FlowValue,
        now_ns: u64,
        name: Option<&str>,
    ) -> Self {
        let state = if v.tcp_closed() {
            "closed"
        } else if v.tcp_closing != 0 {
            "closing"
        } else if v.reply_packets > 0 {
            "answered"
        } else if now_ns.saturating_sub(v.first_seen_ns) < 3_000_000_000 {
            "waiting"
        } else {
            "no reply"
        };
        FlowRecord {
            hop_name: name.map(str::to_string),
            age_secs: now_ns.saturating_sub(v.first_seen_ns) as f64 / 1e9,
            idle_secs: now_ns.saturating_sub(v.last_seen_ns) as f64 / 1e9,
            state: state.to_string(),
            src: key_addr(k.family, &k.src_addr),
            dst: key_addr(k.family, &k.dst_addr),
            src_port: k.src_port,
            dst_port: k.dst_port,
            proto: k.proto,
            hop: v.hop,
            packets: v.packets,
            bytes: v.bytes,
            reply_packets: v.reply_packets,
            reply_bytes: v.reply_bytes,
            failovers: v.failovers.into(),
            first_seen_ns: v.first_seen_ns,
            last_seen_ns: v.last_seen_ns,
        }
    }
}

/// `steerer flows` as a table: one line per flow, hop by name.
pub fn flow_table(records: &[FlowRecord]) -> String {
    use std::fmt::Write as _;
    let mut out = format!(
        "{:<40} {:<40} {:>5} {:<12} {:>10} {:>12} {:>12} {:>8} {:>8} {:<8}\n",
        "source",
        "destination",
        "proto",
        "hop",
        "packets",
        "bytes",
        "reply bytes",
        "age s",
        "idle s",
        "state"
    );
    for r in records {
        let hop = r
            .hop_name
            .clone()
            .unwrap_or_else(|| format!("id {}", r.hop));
        let _ = writeln!(
            out,
            "{:<40} {:<40} {:>5} {:<12} {:>10} {:>12} {:>12} {:>8.1} {:>8.1} {:<8}",
            format!("{}:{}", r.src, r.src_port),
            format!("{}:{}", r.dst, r.dst_port),
            r.proto,
            hop,
            r.packets,
            r.bytes,
            r.reply_bytes,
            r.age_secs,
            r.idle_secs,
            r.state
        );
    }
    out
}

/// An address from a flow key (IPv4 lives in the first four bytes).
pub fn key_addr(family: u8, a: &[u8; 16]) -> std::net::IpAddr {
    if family == steerer_common::flow::FAMILY_IPV4 {
        std::net::IpAddr::from([a[0], a[1], a[2], a[3]])
    } else {
        std::net::IpAddr::from(*a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(probe_rounds: u64) -> TickStatus {
        let hop = |name: &str, rtt: Option<f64>, down: bool| HopStatus {
            name: name.into(),
            usable: !down,
            in_window: !down,
            share: if down { 0.0 } else { 1.0 },
            slots: 0,
            active_flows: 0,
            bytes: 0,
            speed_mbit: 0.0,
            speed_source: "claimed".into(),
            failed_new: 0,
            failed_total: 0,
            probe_rtt_ms: rtt,
            probe_down: down,
            ..HopStatus::default()
        };
        TickStatus {
            tick: 3,
            elapsed_secs: 15.0,
            flows: 0,
            moved_slots: 0,
            min_moved_slots: 0,
            slot_count: 101,
            destination_windows: 0,
            new_flows_not_inserted: 7,
            probe_rounds,
            probe_rounds_answered: probe_rounds.saturating_sub(2),
            hops: vec![hop("a", Some(4.25), false), hop("b", None, true)],
            ..TickStatus::default()
        }
    }

    #[test]
    fn the_tick_table_shows_probe_times_and_the_flood_guard() {
        let t = status(10).table();
        let rows: Vec<&str> = t.lines().collect();
        assert!(
            rows[2].ends_with("rtt 4.2 ms") || rows[2].ends_with("rtt 4.3 ms"),
            "{t}"
        );
        assert!(
            rows[3].contains("b (probes lost)") && rows[3].ends_with("rtt -"),
            "{t}"
        );
        assert!(
            t.contains("probes: 10 rounds, 8 answered; flood guard: 7 new flows without an entry"),
            "{t}"
        );
        // Without probes: no rtt column, the flood guard line still.
        let t = status(0).table();
        assert!(!t.contains("rtt"), "{t}");
        assert!(t.contains("flood guard: 7"), "{t}");
        // Old status files (no probe fields) still read.
        let json = serde_json::to_value(status(0)).unwrap();
        let mut old = json.clone();
        for h in old["hops"].as_array_mut().unwrap() {
            h.as_object_mut().unwrap().remove("probe_down");
        }
        old.as_object_mut().unwrap().remove("probe_rounds");
        let back: TickStatus = serde_json::from_value(old).unwrap();
        assert_eq!(back.probe_rounds, 0);
        // No evictions, no line; evictions since the start, a line even
        // in a tick without any.
        assert!(!t.contains("evicted"), "{t}");
        let mut st = status(0);
        st.flows_evicted_total = 12;
        let t = st.table();
        assert!(
            t.contains("flow table: 0 flows evicted this tick, 12 since the start"),
            "{t}"
        );
    }
}
