//! Active probes through each hop (issue 14, item 2), in the lab. A hop
//! whose far side dies (its uplink to the internet: the gateway's link
//! stays up, so link state cannot see it) while it carries only an
//! established UDP flow leaves the tables within 2 probe intervals (plus
//! the probe timeout), and comes back after the hold-down when it answers
//! again, each logged with its reason. Round-trip times measured through
//! each hop (a queueing delay made with tbf, this kernel has no netem)
//! decide which of equal hops a window of one takes. The probes' policy
//! routes are removed at exit.

mod common;
use common::{flow_hop, hop_id, in_tables, wait_until as wait_for};

use std::{
    net::UdpSocket,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use steerer_lab::{
    lab::{SERVER2_V4, SERVER_V4},
    netns::{run_in, spawn_in},
    shaper::{ping_ms, set_uplink, QueueDelay},
    steerer::SteererProcess,
    Lab, LabSpec,
};
use steerer_user::dataplane::PinnedMaps;

const INTERVAL_SECS: u64 = 1;
const TIMEOUT_MS: u64 = 500;
const HOLD_DOWN_SECS: u64 = 3;
const RULE_PRIORITY: &str = "20555";

fn probe_section(down_after: u32) -> String {
    format!(
        "\n[probe]\ntargets = [\"{SERVER_V4}\", \"{SERVER2_V4}\"]\ninterval_secs = {INTERVAL_SECS}\n\
         timeout_ms = {TIMEOUT_MS}\ndown_after_rounds = {down_after}\n"
    )
}

/// `ip rule` lines of the probes' priority in the gateway.
fn probe_rules(lab: &Lab) -> Vec<String> {
    let out = run_in(&lab.gw_ns(), "ip", &["rule", "show"]).expect("ip rule");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with(&format!("{RULE_PRIORITY}:")))
        .map(str::to_string)
        .collect()
}

/// A UDP flow of 20 datagrams a second from the client, no replies.
struct UdpTrickle {
    stop: Arc<AtomicBool>,
    port: u16,
}

impl UdpTrickle {
    fn start(lab: &Lab) -> UdpTrickle {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        spawn_in(&lab.client_ns(), move || {
            let s = UdpSocket::bind("0.0.0.0:0").expect("udp socket");
            tx.send(s.local_addr().expect("addr").port()).expect("port");
            while !flag.load(Ordering::Relaxed) {
                let _ = s.send_to(b"trickle", (SERVER_V4, 9999));
                std::thread::sleep(Duration::from_millis(50));
            }
        })
        .expect("client thread");
        let port = rx
            .recv_timeout(Duration::from_secs(2))
            .expect("trickle port");
        UdpTrickle { stop, port }
    }
}

impl Drop for UdpTrickle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[test]
fn probes_take_out_a_hop_whose_far_side_died_and_bring_it_back_after_the_hold_down() {
    let lab = Lab::build(LabSpec::equal_hops(3)).expect("lab");
    // K = 30 s: everything below happens between the first two ticks.
    let config = format!(
        "link_hold_down_secs = {HOLD_DOWN_SECS}\n{}{}",
        lab.steerer_config(30, &[100.0; 3]),
        probe_section(2)
    );
    let mut steerer = SteererProcess::start(&lab, &config, &[], false).expect("steerer starts");
    steerer
        .wait_tick(1, Duration::from_secs(10))
        .expect("the first tick");
    assert_eq!(
        probe_rules(&lab).len(),
        3,
        "one probe route per redirect hop"
    );
    let maps = PinnedMaps::open_dir(&lab.pin_dir()).expect("pinned maps");

    let udp = UdpTrickle::start(&lab);
    let mut carrier = None;
    wait_for(
        Duration::from_secs(3),
        "the UDP flow in the flow table",
        || flow_hop(&maps, udp.port, 9999).is_some(),
    );
    let id = flow_hop(&maps, udp.port, 9999).unwrap();
    for i in 0..3 {
        if hop_id(&maps, &format!("hop{i}")) == Some(id) {
            carrier = Some(i);
        }
    }
    let i = carrier.expect("the flow's hop is one of the lab's");
    let name = format!("hop{i}");
    assert_eq!(in_tables(&maps, id), (true, true));

    // Its far side dies: the gateway's link to it stays up.
    set_uplink(&lab, i, false).unwrap();
    let limit = Duration::from_millis(2 * INTERVAL_SECS * 1000 + TIMEOUT_MS + 500);
    let took = wait_for(Duration::from_secs(6), "out after its uplink died", || {
        in_tables(&maps, id) == (false, false)
    });
    assert!(
        took <= limit,
        "out after {took:?}, more than 2 intervals + timeout ({limit:?})"
    );
    let log = steerer.log();
    assert!(
        log.contains(&format!("hop {name} answered no probe in 2 rounds")),
        "{log}"
    );
    assert!(
        !log.contains(&format!("hop {name} is down (link")),
        "not link state: {log}"
    );

    // It answers again: held down, then back.
    set_uplink(&lab, i, true).unwrap();
    let back = Instant::now();
    steerer
        .wait_log(
            &format!("hop {name} answers its probes again: held down for {HOLD_DOWN_SECS} s"),
            1,
            Duration::from_secs(4),
        )
        .unwrap();
    wait_for(
        Duration::from_secs(HOLD_DOWN_SECS + 4),
        "back after the hold-down",
        || in_tables(&maps, id) == (true, true),
    );
    assert!(
        back.elapsed() >= Duration::from_secs(HOLD_DOWN_SECS),
        "back after {:?}, before the hold-down",
        back.elapsed()
    );
    // Logged right after the tables are written.
    steerer
        .wait_log(
            &format!("hop {name} is up again: offered new flows"),
            1,
            Duration::from_secs(1),
        )
        .unwrap();
    let tick = steerer.status().and_then(|s| s["tick"].as_u64());
    assert_eq!(tick, Some(1), "all of it between the first and second tick");
    drop(udp);

    assert!(steerer.stop().unwrap(), "clean exit");
    assert!(probe_rules(&lab).is_empty(), "probe rules removed at exit");
    assert!(steerer
        .log()
        .contains("probes stopped; their policy routes removed"));
}

/// Slots of the class table per lab hop.
fn slots_per_hop(maps: &PinnedMaps) -> [usize; 3] {
    let slots = maps.slots(0).expect("class table");
    let mut out = [0; 3];
    for (i, n) in out.iter_mut().enumerate() {
        // A hop no table names holds no id.
        if let Some(id) = hop_id(maps, &format!("hop{i}")) {
            *n = slots.iter().filter(|&&s| s == id).count();
        }
    }
    out
}

#[test]
fn probe_round_trip_times_decide_which_equal_hop_a_window_of_one_takes() {
    let lab = Lab::build(LabSpec::equal_hops(3)).expect("lab");
    // Three equal hops and a window of one: the hop not delayed is taken,
    // whichever it is (so the enumeration order alone cannot pass both).
    for (delayed, nearest) in [([0usize, 1], 2usize), ([1, 2], 0)] {
        let delays: Vec<QueueDelay> = delayed
            .iter()
            .map(|&d| QueueDelay::start(&lab, d, 40).expect("delay"))
            .collect();
        for &d in &delayed {
            let ms = ping_ms(&lab.hop_ns(d), &SERVER_V4.to_string()).unwrap();
            assert!(ms > 20.0, "hop{d} delayed: {ms} ms");
        }
        let ms = ping_ms(&lab.hop_ns(nearest), &SERVER_V4.to_string()).unwrap();
        assert!(ms < 10.0, "hop{nearest} not delayed: {ms} ms");

        // The filled queues drop some probes: 5 rounds before a hop is out.
        let config = format!(
            "window = 1\n{}{}",
            lab.steerer_config(30, &[100.0; 3]),
            probe_section(5)
        );
        let mut steerer = SteererProcess::start(&lab, &config, &[], false).expect("steerer starts");
        let maps = PinnedMaps::open_dir(&lab.pin_dir()).expect("pinned maps");
        let slots = slots_per_hop(&maps);
        for &d in &delayed {
            assert!(
                slots[nearest] > 2 * slots[d],
                "delayed {delayed:?}: hop{nearest} should hold the window: {slots:?}\n{}",
                steerer.log()
            );
        }
        assert!(
            steerer.log().contains("first probe round"),
            "{}",
            steerer.log()
        );
        eprintln!(
            "delayed {delayed:?}: slots {slots:?}; {}",
            steerer
                .log()
                .lines()
                .find(|l| l.contains("first probe round"))
                .unwrap_or("")
        );
        assert!(steerer.stop().unwrap());
        drop(maps);
        drop(delays);
    }
}
