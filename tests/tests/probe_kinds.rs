//! Probe kinds and hop actions (issue 14, item 2): TCP connect and UDP
//! probes answer through a `redirect` hop (its probe policy route) and a
//! `mark` hop (its own mark, the operator's policy routing), and a TCP
//! probe through the mark hop notices its far side dying.

use std::time::{Duration, Instant};

use steerer_lab::{
    lab::SERVER_V4, netns::run_in, shaper::set_uplink, steerer::SteererProcess, traffic::Server,
    Lab, LabSpec,
};

const PORT: u16 = 5001;

fn config(lab: &Lab, kind: &str, port: u16) -> String {
    format!(
        "tick_secs = 30\n\
         [probe]\ntargets = [\"{SERVER_V4}\"]\nkind = \"{kind}\"\nport = {port}\n\
         interval_secs = 1\ntimeout_ms = 500\n\
         [[hop]]\nname = \"direct\"\ninterface = \"{}\"\nnext_hop = \"{}\"\n\
         estimated_speed_mbit = 100.0\nestimated_capacity_mbit = 100.0\n\
         [[hop]]\nname = \"marked\"\ninterface = \"{}\"\naction = \"mark\"\nmark = 16\n\
         estimated_speed_mbit = 100.0\nestimated_capacity_mbit = 100.0\n",
        lab.hop_iface(0),
        lab.hop_next_hop(0),
        lab.hop_iface(1)
    )
}

#[test]
fn tcp_and_udp_probes_answer_through_redirect_and_mark_hops() {
    let lab = Lab::build(LabSpec::equal_hops(2)).expect("lab");
    let gw = lab.gw_ns();
    // The operator's policy routing for the mark hop.
    run_in(&gw, "ip", &["rule", "add", "fwmark", "16", "lookup", "110"]).unwrap();
    run_in(
        &gw,
        "ip",
        &[
            "route",
            "add",
            "default",
            "via",
            "198.18.2.2",
            "table",
            "110",
        ],
    )
    .unwrap();
    let _server = Server::start(&lab.server_ns(), &[PORT]).unwrap();

    // UDP to a port nobody serves: the server's port unreachable answers.
    let mut steerer =
        SteererProcess::start(&lab, &config(&lab, "udp", 9999), &["--attach", "tc"], false)
            .expect("steerer starts");
    steerer
        .wait_log("first probe round", 1, Duration::from_secs(5))
        .unwrap();
    assert!(
        steerer.log().contains("probed=2 answered=2"),
        "{}",
        steerer.log()
    );
    assert!(steerer.stop().unwrap());

    // TCP connects to the server's port.
    let steerer =
        SteererProcess::start(&lab, &config(&lab, "tcp", PORT), &["--attach", "tc"], false)
            .expect("steerer starts");
    steerer
        .wait_log("first probe round", 1, Duration::from_secs(5))
        .unwrap();
    assert!(
        steerer.log().contains("probed=2 answered=2"),
        "{}",
        steerer.log()
    );
    // The mark hop's far side dies: its probes (with its mark) go unanswered.
    set_uplink(&lab, 1, false).unwrap();
    let down = Instant::now();
    steerer
        .wait_log(
            "hop marked answered no probe in 2 rounds",
            1,
            Duration::from_secs(5),
        )
        .unwrap();
    assert!(
        down.elapsed() < Duration::from_millis(3_500),
        "{:?}",
        down.elapsed()
    );
    assert!(!steerer.log().contains("hop direct answered no probe"));
}
