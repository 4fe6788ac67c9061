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
    hop_packets: Family<HopWayLabel, Counter>,
    hop_dp_bytes: Family<HopWayLabel, Counter>,
    tick_seconds: Histogram,
    packets: Family<ReasonLabel, Counter>,
    not_inserted: Counter,
    probe_rounds: Counter,
    probe_answered: Counter,
    last: Mutex<Last>,
}

#[derive(Default)]
struct Last {
    stats: Vec<(StatReason, u64)>,
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
            hop_packets: Family::default(),
            hop_dp_bytes: Family::default(),
            // 1 ms .. 8 s: a tick over a full flow table takes seconds.
            tick_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 14)),
            packets: Family::default(),
            not_inserted: Counter::default(),
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
            self.hop_bytes.get_or_create(&l).inc_by(h.bytes);
            self.hop_failed.get_or_create(&l).inc_by(h.failed_new);
            if let Some(ms) = h.probe_rtt_ms {
                self.hop_probe_rtt.get_or_create(&l).set(ms / 1e3);
            }
        }
        self.not_inserted.inc_by(status.new_flows_not_inserted);
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
mod tests {
    use super::*;
    use crate::report::{HopStatus, TickStatus};

    fn status(hops: &[(&str, f64, u64)]) -> TickStatus {
        TickStatus {
            tick: 1,
            elapsed_secs: 1.0,
            flows: 5,
            moved_slots: 0,
            min_moved_slots: 0,
            slot_count: 101,
            destination_windows: 0,
            new_flows_not_inserted: 2,
            probe_rounds: 0,
            probe_rounds_answered: 0,
            hops: hops
                .iter()
                .map(|&(name, share, bytes)| HopStatus {
                    name: name.into(),
                    usable: true,
                    in_window: true,
                    share,
                    slots: 0,
                    active_flows: 1,
                    bytes,
                    speed_mbit: 8.0,
                    speed_source: "measured".into(),
                    failed_new: 0,
                    failed_total: 0,
                    probe_rtt_ms: None,
                    probe_down: false,
                    ..HopStatus::default()
                })
                .collect(),
            ..TickStatus::default()
        }
    }

    fn sample(text: &str, name: &str) -> Option<f64> {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
    }

    #[test]
    fn counters_grow_by_the_kernel_totals_difference_and_hops_that_leave_vanish() {
        let m = Metrics::new();
        let totals = |new: u64, a_out: u64| DataplaneTotals {
            stats: vec![(StatReason::NewFlow, new)],
            hops: vec![(
                "a".to_string(),
                HopCounters {
                    packets: a_out,
                    bytes: a_out * 100,
                    reply_packets: 1,
                    reply_bytes: 60,
                },
            )],
            tick_seconds: 0.003,
        };
        m.observe(&status(&[("a", 0.6, 100), ("b", 0.4, 50)]), &totals(10, 5));
        m.observe(&status(&[("a", 1.0, 30)]), &totals(25, 12));
        let t = m.text();
        assert_eq!(sample(&t, "steerer_ticks_total"), Some(2.0));
        assert_eq!(
            sample(&t, "steerer_dataplane_packets_total{reason=\"new_flow\"}"),
            Some(25.0)
        );
        assert_eq!(
            sample(&t, "steerer_hop_bytes_total{hop=\"a\"}"),
            Some(130.0)
        );
        assert_eq!(sample(&t, "steerer_hop_share{hop=\"a\"}"), Some(1.0));
        assert_eq!(
            sample(&t, "steerer_hop_share{hop=\"b\"}"),
            None,
            "b left the pool:\n{t}"
        );
        assert_eq!(
            sample(&t, "steerer_hop_speed_bytes_per_second{hop=\"a\"}"),
            Some(1e6)
        );
        assert_eq!(
            sample(&t, "steerer_new_flows_not_inserted_total"),
            Some(4.0)
        );
        // New maps (a total below the last): counted from zero again.
        // The per-hop counters follow the kernel's totals the same way.
        assert_eq!(
            sample(&t, "steerer_hop_packets_total{hop=\"a\",direction=\"out\"}"),
            Some(12.0)
        );
        assert_eq!(
            sample(
                &t,
                "steerer_hop_dataplane_bytes_total{hop=\"a\",direction=\"back\"}"
            ),
            Some(60.0)
        );
        assert_eq!(sample(&t, "steerer_tick_duration_seconds_count"), Some(2.0));
        m.observe(&status(&[("a", 1.0, 0)]), &totals(3, 2));
        let t = m.text();
        assert_eq!(
            sample(&t, "steerer_dataplane_packets_total{reason=\"new_flow\"}"),
            Some(28.0)
        );
        assert_eq!(
            sample(&t, "steerer_hop_packets_total{hop=\"a\",direction=\"out\"}"),
            Some(14.0)
        );
    }

    /// Every metric the shipped Grafana dashboard queries is one the
    /// daemon exports (a renamed metric would leave a panel empty).
    #[test]
    fn the_dashboard_queries_only_exported_metrics() {
        let m = Metrics::new();
        let mut st = status(&[("a", 1.0, 10)]);
        st.hops[0].probe_rtt_ms = Some(3.0);
        let totals = DataplaneTotals {
            stats: vec![(StatReason::NewFlow, 1)],
            hops: vec![("a".into(), HopCounters::default())],
            tick_seconds: 0.01,
        };
        m.observe(&st, &totals);
        let text = m.text();
        let exported: std::collections::HashSet<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split(['{', ' ']).next())
            .collect();
        let dash: serde_json::Value =
            serde_json::from_str(include_str!("../../../contrib/grafana-dashboard.json")).unwrap();
        let mut queried = 0;
        for panel in dash["panels"].as_array().unwrap() {
            for t in panel["targets"].as_array().unwrap() {
                let expr = t["expr"].as_str().unwrap();
                for name in expr
                    .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .filter(|w| w.starts_with("steerer_"))
                {
                    queried += 1;
                    assert!(
                        exported.contains(name),
                        "{name} in {expr:?} is not exported:\n{text}"
                    );
                }
            }
        }
        assert!(queried >= 15, "{queried}");
    }
}
