//! The flood guard in the lab (issue 15, items 2 and 3): for 30 s a LAN
//! host sprays new UDP tuples at 10,000 datagrams a second, far past
//! `new_flows_per_sec` (1,000) and past the flow table (16,384 entries),
//! while a bulk TCP upload runs through a 200 Mbit/s hop. The upload keeps
//! its hop and at least 80% of its throughput before the flood; the flows
//! over the limit are steered without an entry (counted, and the log says
//! so); `steerer flows` answers in under a second on the churned table;
//! once the flood stops, idle expiry (udp_idle_secs = 4) empties the table
//! of it.

mod common;

use std::{
    io::Write as _,
    net::{IpAddr, SocketAddr, TcpStream},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use steerer_lab::{
    flood::{allow_flood_at_server, drop_flood_at_server, flood, FLOOD_PORT},
    lab::SERVER_V4,
    netns::{command_in, spawn_in},
    steerer::{steerer_bin, SteererProcess},
    traffic::Server,
    HopOptions, Lab, LabSpec,
};
use steerer_user::dataplane::PinnedMaps;

const PORT: u16 = 5001;
const FLOOD: Duration = Duration::from_secs(30);
const FLOOD_RATE: u64 = 10_000;
const LIMIT: u64 = 1_000;

/// A TCP upload as fast as the path takes it until `stop`, counting bytes.
fn bulk(
    lab: &Lab,
    written: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) -> std::sync::mpsc::Receiver<u16> {
    let (tx, rx) = std::sync::mpsc::channel();
    let target = SocketAddr::new(IpAddr::V4(SERVER_V4), PORT);
    spawn_in(&lab.client_ns(), move || -> std::io::Result<()> {
        let mut s = TcpStream::connect_timeout(&target, Duration::from_secs(3))?;
        tx.send(s.local_addr()?.port()).ok();
        s.write_all(&u64::MAX.to_be_bytes())?;
        let chunk = vec![0x5au8; 64 * 1024];
        while !stop.load(Ordering::Relaxed) {
            s.write_all(&chunk)?;
            written.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
        Ok(())
    })
    .expect("bulk upload thread");
    rx
}

/// Bytes per second written over `span`, starting now.
fn rate(written: &AtomicU64, span: Duration) -> f64 {
    let before = written.load(Ordering::Relaxed);
    std::thread::sleep(span);
    (written.load(Ordering::Relaxed) - before) as f64 / span.as_secs_f64()
}

#[test]
fn a_flood_of_new_tuples_leaves_an_established_upload_its_hop_and_its_throughput() {
    let mut spec = LabSpec::equal_hops(2);
    for h in &mut spec.hops {
        *h = HopOptions {
            rate_mbit: Some(200),
            ..HopOptions::default()
        };
    }
    let lab = Lab::build(spec).expect("lab");
    let _server = Server::start(&lab.server_ns(), &[PORT]).unwrap();
    drop_flood_at_server(&lab).unwrap();
    let config = format!(
        "udp_idle_secs = 4\nnew_flows_per_sec = {LIMIT}\n{}",
        lab.steerer_config(2, &[200.0; 2])
    );
    let steerer = SteererProcess::start(&lab, &config, &["--flow-table-size", "16384"], false)
        .expect("steerer starts");
    steerer
        .wait_tick(1, Duration::from_secs(10))
        .expect("a tick");
    assert!(steerer.log().contains("flood guard"), "{}", steerer.log());
    let maps = PinnedMaps::open_dir(&lab.pin_dir()).unwrap();

    let (written, stop) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let sport = bulk(&lab, written.clone(), stop.clone())
        .recv_timeout(Duration::from_secs(5))
        .expect("connected");
    let hop_of = || {
        maps.flows()
            .unwrap()
            .into_iter()
            .find(|(k, _)| k.src_port == sport && k.dst_port == PORT)
            .map(|(_, v)| v.hop)
    };
    std::thread::sleep(Duration::from_secs(2));
    let hop = hop_of().expect("the upload is in the flow table");
    let before = rate(&written, Duration::from_secs(5));

    let new_flows = || {
        maps.stats()
            .unwrap()
            .into_iter()
            .find(|(r, _)| *r == steerer_common::StatReason::NewFlow)
            .map_or(0, |(_, n)| n)
    };
    let new_before = new_flows();
    let target = SocketAddr::new(IpAddr::V4(SERVER_V4), FLOOD_PORT);
    let flooding = spawn_in(&lab.client_ns(), move || {
        flood(target, FLOOD_RATE, 2, FLOOD)
    })
    .unwrap();
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    // `steerer flows` on the churned table.
    let asked = Instant::now();
    let out = command_in(&lab.gw_ns(), steerer_bin().unwrap())
        .unwrap()
        .args(["flows", "--iface", &lab.lan_iface(), "--limit", "5"])
        .output()
        .unwrap();
    let answered = asked.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        answered < Duration::from_secs(1),
        "steerer flows took {answered:?}"
    );
    let during = rate(&written, FLOOD - Duration::from_secs(6));
    let sent = flooding.join().unwrap().unwrap();
    let flood_secs = started.elapsed().as_secs_f64();
    assert!(
        sent as f64 > FLOOD_RATE as f64 * flood_secs * 0.5,
        "flood sent {sent}"
    );
    assert!(
        during >= 0.8 * before,
        "upload {:.0} Mbit/s during the flood, {:.0} before",
        during * 8e-6,
        before * 8e-6
    );
    assert_eq!(hop_of(), Some(hop), "the upload kept its hop");
    // At most the limit was let in: per CPU, each second (+1 window).
    let let_in = new_flows() - new_before;
    let bound = (LIMIT as f64 * (flood_secs + 1.0)) as u64;
    assert!(
        let_in <= bound,
        "{let_in} new flows inserted, limit {LIMIT}/s over {flood_secs:.0} s"
    );
    // Over the limit: steered without an entry, counted, said.
    let refused = maps.new_flows_refused().unwrap();
    assert!(
        refused > sent / 2,
        "{refused} of {sent} datagrams steered without an entry"
    );
    steerer
        .wait_log(
            "new flows over new_flows_per_sec",
            1,
            Duration::from_secs(4),
        )
        .unwrap();

    // Idle expiry empties the table of the flood.
    let flood_flows = || {
        maps.flows()
            .unwrap()
            .iter()
            .filter(|(k, _)| k.dst_port == FLOOD_PORT)
            .count()
    };
    assert!(flood_flows() > 0, "some flood flows were let in");
    let end = Instant::now() + Duration::from_secs(12);
    while flood_flows() > 0 {
        assert!(
            Instant::now() < end,
            "{} flood flows left after 12 s",
            flood_flows()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(hop_of(), Some(hop), "the upload stays");
    stop.store(true, Ordering::Relaxed);
    allow_flood_at_server(&lab);
    let log = steerer.log();
    let guard = log
        .lines()
        .find(|l| l.contains("flood guard"))
        .unwrap_or("");
    eprintln!(
        "upload {:.0} -> {:.0} Mbit/s, {sent} datagrams, {refused} without an entry; {guard}",
        before * 8e-6,
        during * 8e-6
    );
}
