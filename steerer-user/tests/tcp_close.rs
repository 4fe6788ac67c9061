//! The end of a TCP connection in the flow table (issue 15, item 2):
//! BPF_PROG_TEST_RUN of a flow's FIN from the LAN (XDP), the far side's
//! FIN (the TC reply program) and an RST; the control plane expires a
//! closed flow after `closed_tcp_ns`, an open one only after the idle
//! timeout.

mod support;

use etherparse::PacketBuilder;
use steerer_common::flow::{TCP_FIN_BACK, TCP_FIN_OUT, TCP_RST};
use support::*;

const CLIENT: [u8; 4] = [198, 18, 0, 2];
const SERVER: [u8; 4] = [198, 19, 0, 2];

/// A TCP segment with FIN (`fin`) or RST set, from `src` to `dst`.
fn segment(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, fin: bool) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(CLIENT_MAC, GW_LAN_MAC)
        .ipv4(src, dst, 64)
        .tcp(sport, dport, 7, 65535)
        .ack(1);
    let b = if fin { b.fin() } else { b.rst() };
    let mut out = Vec::new();
    b.write(&mut out, &[]).expect("build packet");
    out
}

fn closing(t: &TestDataplane, sport: u16) -> u8 {
    t.dp.flows()
        .unwrap()
        .into_iter()
        .find(|(k, _)| k.src_port == sport)
        .expect("flow")
        .1
        .tcp_closing
}

#[test]
fn fins_both_ways_and_an_rst_mark_a_flow_closed() {
    let t = TestDataplane::new(true);
    let open = tcp_v4(CLIENT, SERVER, 41000, 80, 64, b"data");
    assert_eq!(run_xdp(&t, &open).verdict, XDP_REDIRECT);
    assert_eq!(closing(&t, 41000), 0, "a data segment marks nothing");

    // FIN out (XDP), then FIN back (TC reply): closed.
    assert_eq!(
        run_xdp(&t, &segment(CLIENT, SERVER, 41000, 80, true)).verdict,
        XDP_REDIRECT
    );
    assert_eq!(closing(&t, 41000), TCP_FIN_OUT);
    let v = t.dp.flows().unwrap()[0].1;
    assert!(!v.tcp_closed(), "one FIN: half closed");
    run_tc_reply(&t, &segment(SERVER, CLIENT, 80, 41000, true));
    assert_eq!(closing(&t, 41000), TCP_FIN_OUT | TCP_FIN_BACK);
    assert!(t.dp.flows().unwrap()[0].1.tcp_closed());

    // An RST from the far side alone closes another flow.
    let other = tcp_v4(CLIENT, SERVER, 42000, 80, 64, b"data");
    assert_eq!(run_xdp(&t, &other).verdict, XDP_REDIRECT);
    run_tc_reply(&t, &segment(SERVER, CLIENT, 80, 42000, false));
    assert_eq!(closing(&t, 42000), TCP_RST);
}

#[test]
fn a_closed_flow_expires_after_the_short_timeout_an_open_one_after_the_idle_one() {
    use steerer_user::policy::{Admin, Controller, ControllerHop, HopSpec, Params};
    const SEC: u64 = 1_000_000_000;
    let hop = ControllerHop {
        spec: HopSpec {
            name: "h0".into(),
            initial_estimate: 1e8,
            operator: None,
            subnet: None,
            fresh: false,
            latency_ms: None,
        },
        id: Some(0),
        accepts: steerer_user::portsets::PortSet::all(),
        usable: true,
        admin: Admin::Active,
    };
    let params = Params {
        closed_tcp_ns: 10 * SEC,
        idle_tcp_ns: 1800 * SEC,
        ..Params::default()
    };
    let mut c = Controller::new(vec![hop], params);
    c.initial();
    let key = |sport: u16| steerer_common::FlowKey {
        src_port: sport,
        dst_port: 80,
        proto: 6,
        family: 4,
        ..Default::default()
    };
    let value = |closing: u8| steerer_common::FlowValue {
        hop: 0,
        packets: 10,
        bytes: 1000,
        reply_packets: 10,
        reply_bytes: 1000,
        first_seen_ns: SEC,
        last_seen_ns: 2 * SEC,
        tcp_closing: closing,
        ..Default::default()
    };
    let flows = vec![
        (key(1), value(TCP_FIN_OUT | TCP_FIN_BACK)),
        (key(2), value(TCP_RST)),
        (key(3), value(TCP_FIN_OUT)),
        (key(4), value(0)),
    ];
    // 9 s idle: nothing yet; 11 s: the closed ones (FINs both ways, RST).
    let d = c.handle_tick(11 * SEC, &flows, &[]);
    assert!(d.expired_flows.is_empty(), "{:?}", d.expired_flows);
    let mut d = c.handle_tick(13 * SEC + 1, &flows, &[]).expired_flows;
    d.sort_by_key(|k| k.src_port);
    assert_eq!(d, vec![key(1), key(2)]);
}
