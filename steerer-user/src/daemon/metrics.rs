//! `metrics_listen`: Prometheus metrics over HTTP (`GET /metrics`, the
//! OpenMetrics text format, prometheus-client), updated at every tick from
//! the tick's status and the data plane's counters. Off unless configured.

use std::{net::SocketAddr, sync::Arc};

use anyhow::{Context as _, Result};
use axum::{extract::State, http::header, response::IntoResponse, routing::get, Router};
use prometheus_client::{
    encoding::{text::encode, EncodeLabelSet},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{exponential_buckets, Histogram},
    },
    registry::Registry,
};
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;
use steerer_common::{hop::HopCounters, StatReason};
use tracing::{info, warn};

use crate::report::TickStatus;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HopLabel {
    hop: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HopWayLabel {
    hop: String,
    /// `out` (to the hop) or `back` (replies from it).
    direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HopStateLabel {
    hop: String,
    /// `up`, `draining`, `disabled`, `link_down`, `held_down`,
    /// `probes_lost`, `disappeared`.
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ExclusionLabel {
    hop: String,
    destination: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// Every metric, and the last data-plane counter values (the kernel's are
/// totals; the counters here grow by the difference).
pub struct Metrics {
    registry: Registry,
    ticks: Counter,
    flows: Gauge,
    hop_share: Family<HopLabel, FloatGauge>,
    hop_slots: Family<HopLabel, Gauge>,
    hop_speed: Family<HopLabel, FloatGauge>,
    hop_active_flows: Family<HopLabel, Gauge>,
    hop_usable: Family<HopLabel, Gauge>,
    hop_bytes: Family<HopLabel, Counter>,
    hop_failed: Family<HopLabel, Counter>,
    hop_probe_rtt: Family<HopLabel, FloatGauge>,
    hop_state: Family<HopStateLabel, Gauge>,
    hop_exclusions: Family<HopLabel, Gauge>,
    exclusion_expiry: Family<ExclusionLabel, FloatGauge>,
    hop_failovers: Family<HopLabel, Counter>,
    flow_table_size: Gauge,
    hop_packets: Family<HopWayLabel, Counter>,
    hop_dp_bytes: Family<HopWayLabel, Counter>,
    tick_seconds: Histogram,
    packets: Family<ReasonLabel, Counter>,
    not_inserted: Counter,
    evicted: Counter,
    probe_rounds: Counter,
    probe_answered: Counter,
    last: Mutex<Last>,
}

#[derive(Default)]
struct Last {
    stats: Vec<(StatReason, u64)>,
    /// Per hop: the kernel's fast-failover total.
    failovers: std::collections::HashMap<String, u64>,
    /// Per (hop, direction): the kernel's packet and byte totals.
    hops: std::collections::HashMap<(String, &'static str), (u64, u64)>,
    probe_rounds: u64,
    probe_answered: u64,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut m = Metrics {
            registry: Registry::with_prefix("steerer"),
            ticks: Counter::default(),
            flows: Gauge::default(),
            hop_share: Family::default(),
            hop_slots: Family::default(),
            hop_speed: Family::default(),
            hop_active_flows: Family::default(),
            hop_usable: Family::default(),
            hop_bytes: Family::default(),
            hop_failed: Family::default(),
            hop_probe_rtt: Family::default(),
            hop_state: Family::default(),
            hop_exclusions: Family::default(),
            exclusion_expiry: Family::default(),
            hop_failovers: Family::default(),
            flow_table_size: Gauge::default(),
            hop_packets: Family::default(),
            hop_dp_bytes: Family::default(),
            // 1 ms .. 8 s: a tick over a full flow table takes seconds.
            tick_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 14)),
            packets: Family::default(),
            not_inserted: Counter::default(),
            evicted: Counter::default(),
            probe_rounds: Counter::default(),
            probe_answered: Counter::default(),
            last: Mutex::new(Last::default()),
        };
        // The registry holds clones (each metric shares its value).
        let r = &mut m.registry;
        r.register("ticks", "Control-plane ticks", m.ticks.clone());
        r.register(
            "flows",
            "Entries in the flow table at the last tick",
            m.flows.clone(),
        );
        r.register(
            "hop_share",
            "Share of the class table's slots",
            m.hop_share.clone(),
        );
        r.register("hop_slots", "Class-table slots", m.hop_slots.clone());
        r.register(
            "hop_speed_bytes_per_second",
            "Speed the tick measured (or the claim, before any)",
            m.hop_speed.clone(),
        );
        r.register(
            "hop_active_flows",
            "Flows on the hop at the last tick",
            m.hop_active_flows.clone(),
        );
        r.register(
            "hop_usable",
            "1 when link, next hop and probes allow the hop",
            m.hop_usable.clone(),
        );
        r.register(
            "hop_bytes",
            "Bytes the hop's flows moved",
            m.hop_bytes.clone(),
        );
        r.register(
            "hop_failed_flows",
            "Flows judged failed on the hop",
            m.hop_failed.clone(),
        );
        r.register(
            "hop_probe_rtt_seconds",
            "Smoothed probe round-trip time through the hop",
            m.hop_probe_rtt.clone(),
        );
        r.register(
            "flow_table_size",
            "Entries the flow table (an LRU) holds at most",
            m.flow_table_size.clone(),
        );
        r.register(
            "hop_state",
            "1 for the hop's state (up, draining, disabled, link_down, held_down, probes_lost, disappeared)",
            m.hop_state.clone(),
        );
        r.register(
            "hop_exclusions",
            "Destinations the hop is excluded for (no answer through it)",
            m.hop_exclusions.clone(),
        );
        r.register(
            "exclusion_expiry_timestamp_seconds",
            "When an exclusion of a hop for a destination ends (Unix time), then re-tested",
            m.exclusion_expiry.clone(),
        );
        r.register(
            "hop_failovers",
            "Flows the data plane moved off the hop by fast failover (a SYN repeated without an answer)",
            m.hop_failovers.clone(),
        );
        r.register(
            "hop_packets",
            "Packets the data plane sent to the hop (out) and received back on its flows (back)",
            m.hop_packets.clone(),
        );
        r.register(
            "hop_dataplane_bytes",
            "Bytes the data plane sent to the hop (out) and received back on its flows (back), per packet",
            m.hop_dp_bytes.clone(),
        );
        r.register(
            "tick_duration_seconds",
            "Time a tick took: reading the flow table, the controller, writing the maps",
            m.tick_seconds.clone(),
        );
        r.register(
            "dataplane_packets",
            "Data-plane packet outcomes by reason",
            m.packets.clone(),
        );
        r.register(
            "new_flows_not_inserted",
            "New flows the flood guard steered without a flow-table entry",
            m.not_inserted.clone(),
        );
        r.register(
            "flow_table_evictions",
            "Flows the flow table's LRU evicted (estimated: new flows minus growth minus the daemon's deletions)",
            m.evicted.clone(),
        );
        r.register(
            "probe_rounds",
            "Probe rounds started",
            m.probe_rounds.clone(),
        );
        r.register(
            "probe_rounds_answered",
            "Probe rounds answered",
            m.probe_answered.clone(),
        );
        m
    }

    /// One tick: the status the daemon wrote and the data plane's totals.
    pub fn observe(&self, status: &TickStatus, dp: &DataplaneTotals) {
        let stats = &dp.stats;
        self.ticks.inc();
        self.tick_seconds.observe(dp.tick_seconds);
        self.flows.set(status.flows as i64);
        self.hop_share.clear();
        self.hop_slots.clear();
        self.hop_speed.clear();
        self.hop_active_flows.clear();
        self.hop_usable.clear();
        self.hop_probe_rtt.clear();
        self.hop_state.clear();
        self.hop_exclusions.clear();
        self.exclusion_expiry.clear();
        self.flow_table_size.set(i64::from(dp.flow_table_size));
        for e in &status.exclusions {
            let l = HopLabel { hop: e.hop.clone() };
            self.hop_exclusions.get_or_create(&l).inc();
            let l = ExclusionLabel {
                hop: e.hop.clone(),
                destination: e.destination.clone(),
            };
            self.exclusion_expiry.get_or_create(&l).set(e.until_unix);
        }
        for h in &status.hops {
            let l = HopLabel {
                hop: h.name.clone(),
            };
            self.hop_share.get_or_create(&l).set(h.share);
            self.hop_slots.get_or_create(&l).set(h.slots as i64);
            self.hop_speed
                .get_or_create(&l)
                .set(h.speed_mbit * 1e6 / 8.0);
            self.hop_active_flows
                .get_or_create(&l)
                .set(h.active_flows as i64);
            self.hop_usable
                .get_or_create(&l)
                .set(i64::from(h.usable && !h.probe_down));
            if !h.state.is_empty() {
                let s = HopStateLabel {
                    hop: h.name.clone(),
                    state: h.state.replace(' ', "_"),
                };
                self.hop_state.get_or_create(&s).set(1);
            }
            if !status.exclusions.iter().any(|e| e.hop == h.name) {
                self.hop_exclusions.get_or_create(&l).set(0);
            }
            self.hop_bytes.get_or_create(&l).inc_by(h.bytes);
            self.hop_failed.get_or_create(&l).inc_by(h.failed_new);
            if let Some(ms) = h.probe_rtt_ms {
                self.hop_probe_rtt.get_or_create(&l).set(ms / 1e3);
            }
        }
        self.not_inserted.inc_by(status.new_flows_not_inserted);
        self.evicted.inc_by(status.flows_evicted);
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        for &(reason, total) in stats {
            let before = last
                .stats
                .iter()
                .find(|(r, _)| *r == reason)
                .map_or(0, |&(_, n)| n);
            // A total below the last one: the maps were made anew.
            let grew = total.checked_sub(before).unwrap_or(total);
            let l = ReasonLabel {
                reason: reason.name().to_string(),
            };
            self.packets.get_or_create(&l).inc_by(grew);
        }
        last.stats = stats.to_vec();
        for (name, total) in &dp.failovers {
            let before = last.failovers.insert(name.clone(), *total).unwrap_or(0);
            let l = HopLabel { hop: name.clone() };
            self.hop_failovers
                .get_or_create(&l)
                // FAILOVERS is an LRU: a sum that fell lost old keys.
                .inc_by(total.saturating_sub(before));
        }
        for (name, c) in &dp.hops {
            for (way, packets, bytes) in [
                ("out", c.packets, c.bytes),
                ("back", c.reply_packets, c.reply_bytes),
            ] {
                let (p0, b0) = last
                    .hops
                    .insert((name.clone(), way), (packets, bytes))
                    .unwrap_or((0, 0));
                let l = HopWayLabel {
                    hop: name.clone(),
                    direction: way,
                };
                self.hop_packets
                    .get_or_create(&l)
                    .inc_by(packets.checked_sub(p0).unwrap_or(packets));
                self.hop_dp_bytes
                    .get_or_create(&l)
                    .inc_by(bytes.checked_sub(b0).unwrap_or(bytes));
            }
        }
        self.probe_rounds
            .inc_by(status.probe_rounds.saturating_sub(last.probe_rounds));
        self.probe_answered.inc_by(
            status
                .probe_rounds_answered
                .saturating_sub(last.probe_answered),
        );
        last.probe_rounds = status.probe_rounds;
        last.probe_answered = status.probe_rounds_answered;
    }

    /// The OpenMetrics text.
    pub fn text(&self) -> String {
        let mut out = String::new();
        if let Err(e) = encode(&mut out, &self.registry) {
            warn!(error = %e, "encoding the metrics failed");
        }
        out
    }
}

/// The data plane's totals at a tick, and how long the tick took.
#[derive(Debug, Default)]
pub struct DataplaneTotals {
    pub stats: Vec<(StatReason, u64)>,
    /// Per hop name: its `HOP_STATS` totals (all CPUs).
    pub hops: Vec<(String, HopCounters)>,
    /// Per hop name: flows moved off it by fast failover (`FAILOVERS`
    /// summed over destinations).
    pub failovers: Vec<(String, u64)>,
    /// The flow table's size (entries at most).
    pub flow_table_size: u32,
    pub tick_seconds: f64,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

async fn scrape(State(m): State<Arc<Metrics>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        m.text(),
    )
}

/// Serve `GET /metrics` on `listen` in the background (bound now, so a
/// taken address is an error at start).
pub async fn serve(
    listen: SocketAddr,
    metrics: Arc<Metrics>,
) -> Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("metrics_listen {listen}: cannot listen"))?;
    info!(%listen, "Prometheus metrics at GET /metrics");
    let app = Router::new()
        .route("/metrics", get(scrape))
        .with_state(metrics);
    Ok(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            warn!(error = %e, "the metrics server stopped");
        }
    }))
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
