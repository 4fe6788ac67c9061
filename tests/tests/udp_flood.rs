//! Health that one-way traffic cannot fool, in the lab (issue 14): a LAN
//! host sprays UDP for 30 s (new source ports all the time, nothing
//! answers) while a TCP connection stays open. No hop is declared dead,
//! no flow is reset, and the TCP connection keeps its hop and completes.

use std::{
    io::{Read as _, Write as _},
    net::{IpAddr, SocketAddr, TcpStream},
    time::Duration,
};

use steerer_lab::{
    flood::{allow_flood_at_server, drop_flood_at_server, flood, FLOOD_PORT},
    lab::SERVER_V4,
    netns::spawn_in,
    steerer::SteererProcess,
    traffic::Server,
    Lab, LabSpec,
};
use steerer_user::dataplane::PinnedMaps;

const PORT: u16 = 5001;
const FLOOD: Duration = Duration::from_secs(30);
/// Datagrams per second (bounded), a new socket (source port) every 4.
const FLOOD_RATE: u64 = 4_000;

#[test]
fn a_one_way_udp_flood_takes_no_healthy_hop_down_and_moves_no_tcp_flow() {
    let lab = Lab::build(LabSpec::equal_hops(3)).expect("lab");
    let _server = Server::start(&lab.server_ns(), &[PORT]).unwrap();
    drop_flood_at_server(&lab).unwrap();
    let steerer = SteererProcess::start(&lab, &lab.steerer_config(2, &[100.0; 3]), &[], false)
        .expect("steerer starts");
    steerer
        .wait_tick(1, Duration::from_secs(10))
        .expect("first tick");

    // The established connection: announces 1 MB, trickles it over the
    // flood, then reads the server's count.
    const SIZE: u64 = 1_000_000;
    let tcp = SocketAddr::new(IpAddr::V4(SERVER_V4), PORT);
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    let conn = spawn_in(&lab.client_ns(), move || -> std::io::Result<u64> {
        let mut s = TcpStream::connect_timeout(&tcp, Duration::from_secs(3))?;
        port_tx.send(s.local_addr()?.port()).ok();
        s.write_all(&SIZE.to_be_bytes())?;
        let chunk = vec![0x5au8; 25_000];
        for _ in 0..SIZE / 25_000 {
            s.write_all(&chunk)?;
            std::thread::sleep(FLOOD / 36);
        }
        let mut count = [0u8; 8];
        s.read_exact(&mut count)?;
        Ok(u64::from_be_bytes(count))
    })
    .unwrap();
    let sport = port_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("connected");
    std::thread::sleep(Duration::from_secs(1));
    let maps = PinnedMaps::open_dir(&lab.pin_dir()).unwrap();
    let hop_of = |maps: &PinnedMaps| {
        maps.flows()
            .unwrap()
            .into_iter()
            .find(|(k, _)| k.src_port == sport && k.dst_port == PORT)
            .map(|(_, v)| v.hop)
    };
    let hop_before = hop_of(&maps).expect("the TCP flow is in the table");

    let target = SocketAddr::new(IpAddr::V4(SERVER_V4), FLOOD_PORT);
    let sent = spawn_in(&lab.client_ns(), move || {
        flood(target, FLOOD_RATE, 4, FLOOD)
    })
    .unwrap()
    .join()
    .unwrap()
    .unwrap();
    assert!(sent > FLOOD_RATE * FLOOD.as_secs() / 2, "flood sent {sent}");

    let count = conn
        .join()
        .unwrap()
        .unwrap()
        .expect("the TCP upload completes");
    assert_eq!(count, SIZE);
    assert_eq!(hop_of(&maps), Some(hop_before), "the TCP flow kept its hop");
    let udp_flows = maps
        .flows()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.dst_port == FLOOD_PORT)
        .count();
    assert!(udp_flows > 1000, "the flood made flows: {udp_flows}");

    let status = steerer.status().expect("status");
    for h in status["hops"].as_array().unwrap() {
        assert_eq!(h["usable"], true, "{h}");
    }
    let log = steerer.log();
    for bad in ["answered no flow", "is down", "reset ", "excluded"] {
        assert!(!log.contains(bad), "log has {bad:?}:\n{log}");
    }
    allow_flood_at_server(&lab);
}
