//! Prometheus metrics (issue 16): with `metrics_listen`, the daemon serves
//! `GET /metrics` in the OpenMetrics text format, updated at each tick:
//! ticks, hop shares (summing to 1), slots, speeds, usability, and the data
//! plane's packet counters, which agree with `steerer stats`; the per-hop
//! packet and byte counters agree with each hop's own interface counters,
//! with `steerer flows`, and with the bytes the traffic generator sent.

use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use steerer_lab::{
    lab::SERVER_V4,
    netns::command_in,
    scrape::value,
    steerer::{steerer_bin, SteererProcess},
    traffic::{run_all_must_complete, Server},
    Lab, LabSpec,
};

const PORT: u16 = 5001;
const LISTEN: &str = "198.18.0.1:9470";

fn scrape(lab: &Lab) -> (String, String) {
    steerer_lab::scrape::scrape(&lab.gw_ns(), LISTEN).expect("scrape")
}

#[test]
fn metrics_follow_the_ticks_and_agree_with_the_data_plane() {
    let lab = Lab::build(LabSpec::equal_hops(2)).expect("lab");
    let _server = Server::start(&lab.server_ns(), &[PORT]).unwrap();
    let config = format!(
        "metrics_listen = \"{LISTEN}\"\n{}",
        lab.steerer_config(1, &[100.0; 2])
    );
    let steerer = SteererProcess::start(&lab, &config, &[], false).expect("steerer starts");
    let target = SocketAddr::new(IpAddr::V4(SERVER_V4), PORT);
    let tx_before = gateway_tx_bytes(&lab);
    run_all_must_complete(&lab.client_ns(), target, 30, 4, 20_000, &|| steerer.log());
    let tx_after = gateway_tx_bytes(&lab);
    let done = steerer
        .status()
        .and_then(|s| s["tick"].as_u64())
        .unwrap_or(0);
    // Two ticks after the traffic: the last one has counted all of it.
    let ticks = steerer
        .wait_tick((done + 2).max(3), Duration::from_secs(10))
        .expect("ticks")["tick"]
        .as_u64()
        .unwrap();
    let flows = command_in(&lab.gw_ns(), steerer_bin().unwrap())
        .unwrap()
        .args(["flows", "--iface", &lab.lan_iface(), "--json"])
        .output()
        .unwrap();
    let flows: Vec<serde_json::Value> = serde_json::from_slice(&flows.stdout).unwrap();
    let stats = command_in(&lab.gw_ns(), steerer_bin().unwrap())
        .unwrap()
        .args(["stats", "--iface", &lab.lan_iface(), "--json"])
        .output()
        .unwrap();
    let stats: serde_json::Value = serde_json::from_slice(&stats.stdout).unwrap();
    let (head, body) = scrape(&lab);

    assert!(head.contains("application/openmetrics-text"), "{head}");
    assert!(body.trim_end().ends_with("# EOF"), "{body}");
    let t = value(&body, "steerer_ticks_total").expect("ticks");
    assert!(
        t >= ticks as f64,
        "{t} ticks in the metrics, status says {ticks}"
    );
    let share: f64 = (0..2)
        .map(|i| value(&body, &format!("steerer_hop_share{{hop=\"hop{i}\"}}")).expect("share"))
        .sum();
    assert!((share - 1.0).abs() < 0.01, "shares sum to {share}:\n{body}");
    for i in 0..2 {
        assert_eq!(
            value(&body, &format!("steerer_hop_usable{{hop=\"hop{i}\"}}")),
            Some(1.0)
        );
    }
    // Counted at the last tick: at least the 30 connections, at most what
    // the data plane says now.
    let new = value(
        &body,
        "steerer_dataplane_packets_total{reason=\"new_flow\"}",
    )
    .expect("new_flow");
    let now = stats["new_flow"].as_f64().unwrap();
    assert!(new >= 30.0 && new <= now, "metrics {new}, stats {now}");
    let bytes: f64 = (0..2)
        .filter_map(|i| value(&body, &format!("steerer_hop_bytes_total{{hop=\"hop{i}\"}}")))
        .sum();
    assert!(
        bytes >= 30.0 * 20_000.0,
        "{bytes} bytes counted for 30 x 20 kB"
    );

    // Per hop: what the data plane sent to it (HOP_STATS, in `stats` and
    // the metrics) against the kernel's count of what the gateway's
    // interface towards the hop sent (the same frames; the hop's own
    // counters see fewer, larger packets after its GRO) and against the
    // sum over `steerer flows` (the same packets counted per flow).
    let mut total = 0.0;
    for i in 0..2 {
        let name = format!("hop{i}");
        let dp = stats["hops"][&name]["bytes"].as_f64().unwrap_or(0.0);
        let sent = (tx_after[i] - tx_before[i]) as f64;
        let in_flows: f64 = flows
            .iter()
            .filter(|f| f["hop_name"] == name.as_str())
            .map(|f| f["bytes"].as_f64().unwrap())
            .sum();
        let metric = value(
            &body,
            &format!("steerer_hop_dataplane_bytes_total{{hop=\"{name}\",direction=\"out\"}}"),
        )
        .unwrap_or(0.0);
        eprintln!("{name}: data plane {dp}, interface {sent}, flows {in_flows}, metric {metric}");
        assert!(dp > 0.0, "{name} carried nothing: {stats:#}");
        within(
            dp,
            sent,
            0.02,
            &format!("{name}: data plane vs its interface"),
        );
        within(
            dp,
            in_flows,
            0.02,
            &format!("{name}: data plane vs steerer flows"),
        );
        within(
            metric,
            dp,
            0.02,
            &format!("{name}: metric vs steerer stats"),
        );
        assert!(stats["hops"][&name]["reply_packets"].as_u64() > Some(0));
        total += dp;
    }
    // The generator sent 30 x 20,000 bytes of payload; frames add their
    // headers (at most 10% at these sizes).
    let payload = 30.0 * 20_000.0;
    assert!(
        total >= payload && total <= 1.1 * payload,
        "{total} bytes out for {payload} bytes of payload"
    );
}

/// Bytes the gateway's interface towards each hop sent.
fn gateway_tx_bytes(lab: &Lab) -> Vec<u64> {
    (0..lab.hop_count())
        .map(|i| {
            let out = command_in(&lab.gw_ns(), "ip")
                .unwrap()
                .args(["-s", "-j", "link", "show", "dev", &lab.hop_iface(i)])
                .output()
                .unwrap();
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            v[0]["stats64"]["tx"]["bytes"].as_u64().unwrap()
        })
        .collect()
}

fn within(a: f64, b: f64, tolerance: f64, what: &str) {
    assert!(
        (a - b).abs() <= tolerance * b.max(1.0),
        "{what}: {a} against {b} (more than {}% apart)",
        tolerance * 100.0
    );
}
