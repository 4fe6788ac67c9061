//! The shoot-out's baselines in the lab (issue 22): each one really sends
//! through every hop (the per-hop uplink counters), and each leaves the
//! gateway's routes, rules and nftables as the lab built them, also when
//! its installation fails half-way; the mwan3-style health check takes a
//! hop that silently drops everything out of the route and brings it back.

use std::time::Duration;

use std::time::Instant;

use steerer_lab::{
    baselines::Baseline,
    health_check::v4_next_hop,
    netns::run_in,
    open_loop,
    shaper::set_forwarding,
    shootout::{health_check, run_once, scenarios, Contender, RunOptions},
    Lab, LabSpec,
};

/// What the baselines touch on the gateway, as text.
fn gateway_state(lab: &Lab) -> String {
    let gw = lab.gw_ns();
    let mut out = String::new();
    for args in [
        &["-4", "route", "show", "table", "all"][..],
        &["-6", "route", "show", "table", "all"][..],
        &["-4", "rule", "show"][..],
        &["-6", "rule", "show"][..],
    ] {
        let o = run_in(&gw, "ip", args).expect("ip in the gateway");
        out.push_str(&String::from_utf8_lossy(&o.stdout));
    }
    let o = run_in(&gw, "nft", &["list", "ruleset"]).expect("nft in the gateway");
    out.push_str(&String::from_utf8_lossy(&o.stdout));
    out
}

fn options() -> RunOptions {
    RunOptions {
        duration: Duration::from_secs(8),
        workers: 6,
        tick_secs: 2,
        only: None,
        variants: Vec::new(),
        arrivals: None,
    }
}

#[test]
fn every_baseline_uses_every_hop_and_is_removed_whole() {
    // The small-and-large scenario: no blackhole, so each baseline's
    // requests all complete; 95% are 10 kB, so 8 s give every hop flows.
    let sc = scenarios()
        .into_iter()
        .find(|s| s.name == "small-and-large")
        .expect("scenario");
    let lab = Lab::build(sc.lab_spec()).expect("lab");
    let _server =
        steerer_lab::traffic::Server::start(&lab.server_ns(), &[steerer_lab::shootout::PORT])
            .expect("server");
    let built = gateway_state(&lab);
    for baseline in [
        Baseline::Ecmp {
            weights: vec![1; sc.rates.len()],
        },
        Baseline::Ecmp {
            weights: vec![20, 10, 5, 1],
        },
        Baseline::HealthChecked {
            weights: vec![20, 10, 5, 1],
            check: health_check(),
        },
        Baseline::NftRandom,
    ] {
        let label = baseline.label();
        // run_once fails if a live hop carried nothing.
        let s = run_once(&lab, &sc, &Contender::Baseline(baseline), &options(), 1)
            .unwrap_or_else(|e| panic!("{label}: {e:#}"));
        assert!(s.completed > 0, "{label}: nothing completed");
        assert_eq!(s.given_up, 0, "{label}: no hop blackholes anything");
        assert!(
            s.hop_share.iter().all(|&x| x > 0.0),
            "{label}: {:?}",
            s.hop_share
        );
        assert_eq!(gateway_state(&lab), built, "{label} left state behind");
    }
    // The open-loop workload: every arrival of the seeded schedule is one
    // request, and here (no blackhole) each completes.
    let open = RunOptions {
        arrivals: Some(20.0),
        ..options()
    };
    let baseline = Baseline::Ecmp {
        weights: vec![20, 10, 5, 1],
    };
    let s = run_once(&lab, &sc, &Contender::Baseline(baseline), &open, 1).expect("open loop");
    let w = sc.workload(open.workers, open.duration, 1);
    let scheduled = open_loop::schedule(&w, 20.0, open.duration).len();
    assert!(scheduled > 100, "{scheduled} arrivals in 8 s at 20/s");
    assert_eq!(s.requests, scheduled, "one request per arrival");
    assert_eq!((s.completed, s.given_up), (scheduled, 0));
    assert_eq!(
        gateway_state(&lab),
        built,
        "the open loop left state behind"
    );
}

#[test]
fn the_health_check_takes_a_dead_hop_out_of_the_route_and_brings_it_back() {
    let lab = Lab::build(LabSpec::equal_hops(3)).expect("lab");
    let built = gateway_state(&lab);
    let check = health_check();
    let baseline = Baseline::HealthChecked {
        weights: vec![1, 1, 1],
        check: check.clone(),
    };
    let installed = baseline.install(&lab).expect("installs");
    let route = || {
        let o = run_in(&lab.gw_ns(), "ip", &["-4", "route", "show", "default"]).unwrap();
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    let has = |r: &str, i: usize| r.contains(&format!("via {} ", v4_next_hop(i)));
    let wait_for = |want: bool| {
        // `down_after` (or `up_after`) rounds, one round's timeout, slack.
        let rounds = check.down_after.max(check.up_after) + 2;
        let deadline = Instant::now() + check.interval * rounds + check.timeout;
        let started = Instant::now();
        while has(&route(), 1) != want {
            assert!(
                Instant::now() < deadline,
                "hop1 in the route: {want}? {}",
                route()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        started.elapsed()
    };
    let r = route();
    assert!((0..3).all(|i| has(&r, i)), "{r}");
    set_forwarding(&lab, 1, false).unwrap();
    let took = wait_for(false);
    // Three unanswered pings a second apart: not before two intervals.
    assert!(took >= check.interval * (check.down_after - 1), "{took:?}");
    let r = route();
    assert!(has(&r, 0) && has(&r, 2), "the live hops stay: {r}");
    set_forwarding(&lab, 1, true).unwrap();
    wait_for(true);
    let log = installed.remove(&lab).expect("removes");
    assert_eq!(log.len(), 2, "{log:?}");
    assert!(
        log[0].ends_with("hop1 down") && log[1].ends_with("hop1 up"),
        "{log:?}"
    );
    assert_eq!(gateway_state(&lab), built, "the tracker left state behind");
}

#[test]
fn a_baseline_that_fails_to_install_leaves_nothing_behind() {
    let sc = scenarios()
        .into_iter()
        .find(|s| s.name == "demo")
        .expect("scenario");
    let lab = Lab::build(sc.lab_spec()).expect("lab");
    let built = gateway_state(&lab);
    // `ip route` accepts weights 1-256: the IPv4 route fails after the
    // sysctls are set, nothing else is installed.
    let bad = Baseline::Ecmp {
        weights: vec![1, 1, 1, 1000],
    };
    let err = run_once(&lab, &sc, &Contender::Baseline(bad), &options(), 1)
        .expect_err("weight 1000 is rejected by ip route");
    assert!(format!("{err:#}").contains("installing"), "{err:#}");
    assert_eq!(gateway_state(&lab), built);
}

#[test]
fn a_hop_whose_link_went_down_and_up_carries_traffic_again() {
    // The dying-hop scenario sets hop0's link down and, between runs, up
    // again: the kernel drops the hop's routes back to the client with the
    // link, and the next run must find them restored. Without steerer the
    // gateway routes via hop0, so every connection crosses it.
    let lab = Lab::build(LabSpec::equal_hops(2)).expect("lab");
    let _server =
        steerer_lab::traffic::Server::start(&lab.server_ns(), &[steerer_lab::shootout::PORT])
            .expect("server");
    lab.set_hop_link(0, false).unwrap();
    lab.set_hop_link(0, true).unwrap();
    let target = std::net::SocketAddr::new(
        std::net::IpAddr::V4(steerer_lab::lab::SERVER_V4),
        steerer_lab::shootout::PORT,
    );
    let before = steerer_lab::baselines::hop_uplink_bytes(&lab).unwrap();
    steerer_lab::traffic::run_all_must_complete(
        &lab.client_ns(),
        target,
        5,
        2,
        50_000,
        &String::new,
    );
    let after = steerer_lab::baselines::hop_uplink_bytes(&lab).unwrap();
    assert!(
        after[0] >= before[0] + 5 * 50_000,
        "{before:?} -> {after:?}"
    );
}
