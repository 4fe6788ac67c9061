//! What the lab does to a hop beyond its link: its far side (the uplink to
//! the internet) set down, where the gateway's link state cannot see it;
//! the hop dropping everything it would forward, silently (a dead
//! upstream behind a modem whose link stays up); and a queueing delay on
//! that uplink, since this kernel has no netem: a tbf shaper whose queue
//! a paced UDP stream from the hop itself keeps full, so every packet
//! through it waits about the queue's length.

use std::{
    net::{Ipv4Addr, SocketAddrV4, UdpSocket},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result};

use crate::{
    netns::{run_in, spawn_in},
    Lab,
};

/// Hop `i`'s uplink (its side towards the internet) down or up.
pub fn set_uplink(lab: &Lab, i: usize, up: bool) -> Result<()> {
    let h = lab.hop_ns(i);
    run_in(
        &h,
        "ip",
        &[
            "link",
            "set",
            "dev",
            "uplink",
            if up { "up" } else { "down" },
        ],
    )?;
    if up {
        // The default route went with the link.
        let via = format!("198.18.{}.1", 100 + i);
        run_in(&h, "ip", &["route", "replace", "default", "via", &via])?;
    }
    Ok(())
}

/// Hop `i` drops every packet it would forward (no ICMP error back), or
/// forwards again.
pub fn set_forwarding(lab: &Lab, i: usize, forwards: bool) -> Result<()> {
    let h = lab.hop_ns(i);
    if forwards {
        let _ = run_in(&h, "nft", &["delete", "table", "inet", DEAD_TABLE]);
        return Ok(());
    }
    run_in(&h, "nft", &["add", "table", "inet", DEAD_TABLE])?;
    run_in(
        &h,
        "nft",
        &[
            "add",
            "chain",
            "inet",
            DEAD_TABLE,
            "forward",
            "{ type filter hook forward priority -10 ; policy drop ; }",
        ],
    )?;
    Ok(())
}

const DEAD_TABLE: &str = "steerer_lab_dead";

/// A standing queue of `delay_ms` on hop `i`'s uplink while it lives.
pub struct QueueDelay {
    ns: String,
    stop: Arc<AtomicBool>,
    filler: Option<JoinHandle<Result<Result<()>>>>,
}

/// The shaper's rate: the filler sends a quarter more than it.
const RATE_MBIT: u64 = 8;

impl QueueDelay {
    pub fn start(lab: &Lab, i: usize, delay_ms: u64) -> Result<QueueDelay> {
        let ns = lab.hop_ns(i);
        let _ = run_in(&ns, "tc", &["qdisc", "del", "dev", "uplink", "root"]);
        // tbf's `latency` sizes its queue: rate x latency bytes.
        run_in(
            &ns,
            "tc",
            &[
                "qdisc",
                "add",
                "dev",
                "uplink",
                "root",
                "tbf",
                "rate",
                &format!("{RATE_MBIT}mbit"),
                "burst",
                "4000",
                "latency",
                &format!("{delay_ms}ms"),
            ],
        )?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        // The internet side of the uplink: no server there, the datagrams
        // only fill the queue (the ICMP unreachables back are rate-limited).
        let sink = SocketAddrV4::new(Ipv4Addr::new(198, 18, 100 + i as u8, 1), 9);
        let filler = spawn_in(&ns, move || fill(sink, flag))?;
        let d = QueueDelay {
            ns,
            stop,
            filler: Some(filler),
        };
        std::thread::sleep(Duration::from_millis(500));
        Ok(d)
    }
}

/// 1,200-byte datagrams at 1.25 x the shaper's rate, paced every 5 ms.
fn fill(sink: SocketAddrV4, stop: Arc<AtomicBool>) -> Result<()> {
    let s = UdpSocket::bind("0.0.0.0:0").context("filler socket")?;
    let payload = [0u8; 1200];
    let per_sec = RATE_MBIT * 1_000_000 / 8 * 5 / 4 / payload.len() as u64;
    let start = Instant::now();
    let mut sent = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let due = start.elapsed().as_secs_f64() * per_sec as f64;
        while (sent as f64) < due {
            // A full queue drops; that is the point.
            let _ = s.send_to(&payload, sink);
            sent += 1;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

impl Drop for QueueDelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(f) = self.filler.take() {
            let _ = f.join();
        }
        let _ = run_in(&self.ns, "tc", &["qdisc", "del", "dev", "uplink", "root"]);
    }
}

/// The mean round-trip time of 3 pings from namespace `ns` to `to`, ms.
pub fn ping_ms(ns: &str, to: &str) -> Result<f64> {
    let out = run_in(ns, "ping", &["-c", "3", "-i", "0.2", "-q", to])?;
    let text = String::from_utf8_lossy(&out.stdout);
    // "rtt min/avg/max/mdev = 0.041/0.052/0.061/0.008 ms"
    let avg = text
        .lines()
        .find(|l| l.contains("min/avg/max"))
        .and_then(|l| l.split('=').nth(1))
        .and_then(|v| v.trim().split('/').nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .with_context(|| format!("no ping summary in {text:?}"))?;
    Ok(avg)
}
