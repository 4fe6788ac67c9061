//! `steerer status` on a running steerer (issue 16): one hop of four
//! blackholes one destination and another is drained by `steerer hop
//! drain`; the status names both with their reasons, lists the exclusion
//! with its end and the destination's own window, and says which process
//! runs. After a clean stop it says that none runs.

use std::{
    net::{IpAddr, SocketAddr},
    process::Output,
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use steerer_lab::{
    lab::SERVER_V4,
    netns::command_in,
    scrape::{scrape, value},
    steerer::{steerer_bin, HopOverrideFile, SteererProcess},
    traffic::{run_workload, Progress, Server, Workload},
    HopOptions, Lab, LabSpec,
};

const OPEN: u16 = 5001;
const BLOCKED: u16 = 8443;
const LISTEN: &str = "198.18.0.1:9471";

fn steerer_cmd(lab: &Lab, args: &[&str]) -> Output {
    command_in(&lab.gw_ns(), steerer_bin().expect("steerer built"))
        .unwrap()
        .args(args)
        .output()
        .unwrap()
}

fn status_json(lab: &Lab) -> serde_json::Value {
    let out = steerer_cmd(lab, &["status", "--iface", &lab.lan_iface(), "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn status_names_a_blocked_destination_and_a_drained_hop_with_their_reasons() {
    let mut spec = LabSpec::equal_hops(4);
    spec.hops[0] = HopOptions {
        rate_mbit: None,
        blackhole_port: None,
        blackhole_dest: Some((SERVER_V4, BLOCKED)),
    };
    let lab = Lab::build(spec).expect("lab");
    let _clean = HopOverrideFile::of(&lab);
    let _server = Server::start(&lab.server_ns(), &[OPEN, BLOCKED]).unwrap();
    let config = format!(
        "metrics_listen = \"{LISTEN}\"\n{}",
        lab.steerer_config(2, &[100.0; 4])
    );
    let mut steerer = SteererProcess::start(&lab, &config, &[], false).expect("steerer starts");
    steerer.wait_tick(1, Duration::from_secs(10)).unwrap();
    let drained = steerer_cmd(&lab, &["hop", "drain", "hop3", "--iface", &lab.lan_iface()]);
    assert!(
        drained.status.success(),
        "{}",
        String::from_utf8_lossy(&drained.stderr)
    );

    let targets = vec![
        SocketAddr::new(IpAddr::V4(SERVER_V4), OPEN),
        SocketAddr::new(IpAddr::V4(SERVER_V4), BLOCKED),
    ];
    let mut w = Workload::fixed(targets, usize::MAX, 6, 20_000);
    w.connections = None;
    w.duration = Some(Duration::from_secs(10));
    w.connect_timeout = Duration::from_secs(4);
    let ns = lab.client_ns();
    let traffic = std::thread::spawn(move || run_workload(&ns, &w, Arc::new(Progress::default())));

    // Wait until a status lists the exclusion.
    let dest = format!("{SERVER_V4}:{BLOCKED}/tcp");
    let deadline = Instant::now() + Duration::from_secs(20);
    let s = loop {
        let s = status_json(&lab);
        if s["exclusions"].as_array().is_some_and(|e| !e.is_empty()) {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "no exclusion in the status within 20 s:\n{s:#}\n{}",
            steerer.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let now = unix_now();
    assert_eq!(
        s["running_pid"].as_u64(),
        Some(steerer.pid().into()),
        "{s:#}"
    );
    assert!(
        (now - s["written_unix"].as_f64().unwrap()).abs() < 5.0,
        "written within a tick or two: {s:#}"
    );
    let ex = &s["exclusions"][0];
    assert_eq!(ex["hop"], "hop0", "{s:#}");
    assert_eq!(ex["destination"], dest.as_str(), "{s:#}");
    // A first exclusion lasts 20 s (one fast failover) or 60 s (two flows
    // that went unanswered) from the tick that made it.
    let until = ex["until_unix"].as_f64().unwrap();
    assert!(
        until > now && until <= now + 61.0,
        "until {until}, now {now}"
    );
    let hop = |name: &str| {
        s["hops"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {s:#}"))
            .clone()
    };
    assert_eq!(hop("hop3")["state"], "draining", "{s:#}");
    assert_eq!(hop("hop0")["state"], "up", "{s:#}");
    let why0: Vec<String> = hop("hop0")["why"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["text"].as_str().map(str::to_string))
        .collect();
    assert!(
        why0.iter()
            .any(|t| t.contains(&format!("drops connections to {dest}"))),
        "hop0's reasons: {why0:?}"
    );
    let window = s["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["destination"] == dest.as_str())
        .unwrap_or_else(|| panic!("a window for {dest}: {s:#}"));
    let members: Vec<&str> = window["hops"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h.as_str())
        .collect();
    assert!(
        !members.is_empty() && !members.contains(&"hop0"),
        "{members:?}"
    );
    assert!(
        s["events"].as_array().unwrap().iter().any(|e| e["text"]
            .as_str()
            .unwrap_or("")
            .contains("drops connections")),
        "{s:#}"
    );

    // So do the metrics: the drained hop's state, the exclusion and its
    // end.
    let (_, body) = scrape(&lab.gw_ns(), LISTEN).expect("scrape");
    let sample = |s: &str| value(&body, s);
    assert_eq!(
        sample("steerer_hop_state{hop=\"hop3\",state=\"draining\"}"),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        sample("steerer_hop_state{hop=\"hop0\",state=\"up\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample("steerer_hop_exclusions{hop=\"hop0\"}"),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        sample("steerer_hop_exclusions{hop=\"hop1\"}"),
        Some(0.0),
        "{body}"
    );
    let expiry = sample(&format!(
        "steerer_exclusion_expiry_timestamp_seconds{{hop=\"hop0\",destination=\"{dest}\"}}"
    ))
    .unwrap_or_else(|| panic!("no expiry for hop0 and {dest}:\n{body}"));
    assert!(
        (expiry - until).abs() < 1.0,
        "expiry {expiry}, status {until}"
    );

    // The human view says the same.
    let out = steerer_cmd(&lab, &["status", "--iface", &lab.lan_iface()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    eprintln!("{text}");
    for want in [
        "running",
        "hop3",
        "draining",
        "Excluded for one destination",
        &format!("hop0 for {dest} until"),
        "Recent events",
    ] {
        assert!(text.contains(want), "no {want:?} in:\n{text}");
    }

    // `steerer why`: a flow of the table is told its hop; a new tuple to
    // the blocked destination its own table, a hop other than hop0, and
    // hop0's exclusion.
    let out = steerer_cmd(&lab, &["flows", "--iface", &lab.lan_iface(), "--json"]);
    let flows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let f = flows
        .iter()
        .find(|f| f["hop_name"].is_string() && f["proto"] == 6)
        .expect("a TCP flow");
    let src = format!("{}:{}", f["src"].as_str().unwrap(), f["src_port"]);
    let dst = format!("{}:{}", f["dst"].as_str().unwrap(), f["dst_port"]);
    let iface = lab.lan_iface();
    let out = steerer_cmd(&lab, &["why", "--iface", &iface, "tcp", &src, &dst]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let on = format!(
        "in the flow table: on hop {} (id {})",
        f["hop_name"].as_str().unwrap(),
        f["hop"]
    );
    assert!(text.contains(&on), "{on:?} in:\n{text}");
    let new_src = format!("{}:1", f["src"].as_str().unwrap());
    let blocked = format!("{SERVER_V4}:{BLOCKED}");
    let out = steerer_cmd(&lab, &["why", "--iface", &iface, "tcp", &new_src, &blocked]);
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("{text}");
    assert!(text.contains("not in the flow table"), "{text}");
    assert!(text.contains("its destination's own table"), "{text}");
    assert!(
        text.contains(&format!("hop hop0 is excluded for {dest}")),
        "{text}"
    );
    let chosen = text
        .lines()
        .find(|l| l.starts_with("a new flow now"))
        .unwrap_or("");
    assert!(
        chosen.contains(": hop hop") && !chosen.contains("hop hop0 "),
        "{text}"
    );
    traffic.join().unwrap().expect("workload");

    // A clean stop takes the status along.
    assert!(steerer.stop().unwrap());
    let out = steerer_cmd(&lab, &["status", "--iface", &lab.lan_iface()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "status after the stop succeeded");
    assert!(err.contains("no steerer runs on"), "{err}");
}
