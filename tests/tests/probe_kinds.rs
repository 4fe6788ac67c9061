//! Probe kinds and hop actions (issue 14, item 2): TCP connect and UDP
//! probes answer through a `redirect` hop (its probe policy route) and a
//! `mark` hop (its own mark, the operator's policy routing), and a TCP
//! probe through the mark hop notices its far side dying.

mod common;

use std::time::{Duration, Instant};

use steerer_lab::{
    lab::SERVER_V4, shaper::set_uplink, steerer::SteererProcess, traffic::Server, Lab, LabSpec,
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
    // The operator's policy routing for the mark hop.
    common::route_mark_through_hop1(&lab, 16);
    let _server = Server::start(&lab.server_ns(), &[PORT]).unwrap();

    // UDP to a port nobody serves (the server's port unreachable
    // answers), then TCP connects to the server's port.
    let mut steerer = None;
    for (kind, port) in [("udp", 9999), ("tcp", PORT)] {
        if let Some(mut running) = steerer.take() {
            assert!(SteererProcess::stop(&mut running).unwrap());
        }
        let s = SteererProcess::start(&lab, &config(&lab, kind, port), &["--attach", "tc"], false)
            .expect("steerer starts");
        s.wait_log("first probe round", 1, Duration::from_secs(5))
            .unwrap();
        assert!(
            s.log().contains("probed=2 answered=2"),
            "{kind}: {}",
            s.log()
        );
        steerer = Some(s);
    }
    let steerer = steerer.unwrap();
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
