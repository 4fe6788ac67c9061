//! The shoot-out's scenarios: one lab and workload that every contender
//! faces, and what happens to the lab during a run.

use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use crate::{
    lab::{SERVER2_V4, SERVER_V4, SERVER_V6},
    sizes::{SizeCdf, WEBSEARCH},
    traffic::{Sizes, Workload},
    HopOptions, LabSpec,
};

/// The open port and the one the demo's hop 1 drops.
pub const PORT: u16 = 5001;
pub const BLOCKED_PORT: u16 = 8443;

/// Something that happens to the lab during a run.
#[derive(Debug, Clone, Copy)]
pub enum LabEvent {
    /// Hop i's link to the gateway goes down (the gateway loses carrier).
    LinkDown(usize),
    /// Hop i's rate changes to this many Mbit/s.
    Rate(usize, u32),
    /// Hop i drops everything it would forward, silently, while the
    /// gateway's link to it stays up (its upstream died).
    Dead(usize),
}

/// One lab and workload that every contender faces.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: &'static str,
    pub description: &'static str,
    pub hops: Vec<HopOptions>,
    /// Each hop's true rate, Mbit/s (the capacity-weighted ECMP's weights).
    pub rates: Vec<u32>,
    pub targets: Vec<SocketAddr>,
    pub sizes: Sizes,
    pub events: Vec<(Duration, LabEvent)>,
}

fn websearch() -> Sizes {
    Sizes::Cdf {
        cdf: SizeCdf::parse(WEBSEARCH).unwrap_or_else(|e| panic!("built-in CDF: {e}")),
        scale: 0.5,
        max: 10_000_000,
    }
}

fn hops(rates: &[u32], blocked: Option<(usize, HopOptions)>) -> Vec<HopOptions> {
    rates
        .iter()
        .enumerate()
        .map(|(i, &r)| match &blocked {
            Some((b, o)) if *b == i => HopOptions {
                rate_mbit: Some(r),
                ..o.clone()
            },
            _ => HopOptions {
                rate_mbit: Some(r),
                blackhole_port: None,
                blackhole_dest: None,
            },
        })
        .collect()
}

/// The demo's targets: the open port over IPv4 (twice) and IPv6, and the
/// port hop 1 drops.
fn demo_targets() -> Vec<SocketAddr> {
    vec![
        SocketAddr::new(IpAddr::V4(SERVER_V4), PORT),
        SocketAddr::new(IpAddr::V4(SERVER_V4), PORT),
        SocketAddr::new(IpAddr::V6(SERVER_V6), PORT),
        SocketAddr::new(IpAddr::V4(SERVER_V4), BLOCKED_PORT),
    ]
}

/// Every scenario of the shoot-out.
pub fn scenarios() -> Vec<Scenario> {
    let rates = vec![200, 100, 50, 10];
    let port_block = HopOptions {
        rate_mbit: None,
        blackhole_port: Some(BLOCKED_PORT),
        blackhole_dest: None,
    };
    let demo = Scenario {
        name: "demo",
        description:
            "the demo: 200/100/50/10 Mbit/s, hop1 drops TCP 8443 (a quarter of the requests)",
        hops: hops(&rates, Some((1, port_block.clone()))),
        rates: rates.clone(),
        targets: demo_targets(),
        sizes: websearch(),
        events: Vec::new(),
    };
    let dying = Scenario {
        name: "dying-hop",
        description: "the demo, and hop0 (200 Mbit/s) loses its link after 15 s",
        events: vec![(Duration::from_secs(15), LabEvent::LinkDown(0))],
        ..demo.clone()
    };
    let slowing = Scenario {
        name: "slowing-hop",
        description: "the demo, and hop0 slows from 200 to 20 Mbit/s after 15 s",
        events: vec![(Duration::from_secs(15), LabEvent::Rate(0, 20))],
        ..demo.clone()
    };
    let silent = Scenario {
        name: "silent-death",
        description: "the demo, and hop0 (200 Mbit/s) silently drops everything after 15 s (its link stays up)",
        events: vec![(Duration::from_secs(15), LabEvent::Dead(0))],
        ..demo.clone()
    };
    let dest_block = HopOptions {
        rate_mbit: None,
        blackhole_port: None,
        blackhole_dest: Some((SERVER_V4, PORT)),
    };
    let blackhole = Scenario {
        name: "blackhole",
        description:
            "hop0 (200 Mbit/s) drops one destination, 198.19.0.2:5001; 198.19.0.3:5001 passes",
        hops: hops(&rates, Some((0, dest_block))),
        rates: rates.clone(),
        targets: vec![
            SocketAddr::new(IpAddr::V4(SERVER_V4), PORT),
            SocketAddr::new(IpAddr::V4(SERVER2_V4), PORT),
        ],
        sizes: websearch(),
        events: Vec::new(),
    };
    let small_large = Scenario {
        name: "small-and-large",
        description: "95% requests of 10 kB (latency-bound) next to 5% of 5 MB, no blackhole",
        hops: hops(&rates, None),
        rates,
        targets: vec![SocketAddr::new(IpAddr::V4(SERVER_V4), PORT)],
        sizes: Sizes::Mix(vec![(10_000, 0.95), (5_000_000, 0.05)]),
        events: Vec::new(),
    };
    vec![demo, dying, silent, slowing, blackhole, small_large]
}

impl Scenario {
    pub fn lab_spec(&self) -> LabSpec {
        LabSpec {
            hops: self.hops.clone(),
            lan_iface: None,
        }
    }

    /// The workload: `workers` closed loops; an attempt without progress
    /// for 4 s is abandoned and retried on a new connection, twice at most.
    pub fn workload(&self, workers: usize, duration: Duration, seed: u64) -> Workload {
        Workload {
            targets: self.targets.clone(),
            workers,
            connections: None,
            duration: Some(duration),
            sizes: self.sizes.clone(),
            seed,
            connect_timeout: Duration::from_secs(4),
            io_timeout: Duration::from_secs(4),
            retries: 2,
            arrivals: None,
        }
    }
}
