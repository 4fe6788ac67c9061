//! `cargo xtask bench flood` (issue 15): an established iperf3 flow's
//! throughput while a LAN host floods new UDP tuples as fast as the lab
//! generator goes, against the same flow without the flood, rounds
//! interleaved; and what the flood guard did (new flows let into the flow
//! table, new flows steered without an entry). Two hops shaped to 200
//! Mbit/s (the flow is limited by its hop, not by this machine's two
//! cores), steerer with its default configuration (K = 2 s: the guard lets
//! in 65,536 new flows a second into the 262,144-entry table).

use std::{net::SocketAddr, time::Duration};

use anyhow::{Context as _, Result};
use steerer_lab::{
    flood::{allow_flood_at_server, drop_flood_at_server, flood, FLOOD_PORT},
    lab::SERVER_V4,
    netns::{command_in, spawn_in},
    steerer::{steerer_bin, SteererProcess},
    HopOptions, Lab, LabSpec,
};

use crate::bench::{iperf3, iperf3_server};

/// Datagrams per second the generator is asked for: more than it reaches,
/// so it never waits.
const UNBOUNDED: u64 = 1_000_000_000;

fn counters(lab: &Lab) -> Result<(u64, u64)> {
    let out = command_in(&lab.gw_ns(), steerer_bin()?)?
        .args(["stats", "--iface", &lab.lan_iface(), "--json"])
        .output()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).context("steerer stats")?;
    Ok((
        v["new_flow"].as_u64().unwrap_or(0),
        v["new_flow_not_inserted"].as_u64().unwrap_or(0),
    ))
}

pub fn run(seconds: u32, rounds: usize) -> Result<()> {
    let mut spec = LabSpec::equal_hops(2);
    for h in &mut spec.hops {
        *h = HopOptions {
            rate_mbit: Some(200),
            ..HopOptions::default()
        };
    }
    let lab = Lab::build(spec)?;
    let _server = iperf3_server(&lab)?;
    drop_flood_at_server(&lab)?;
    let steerer = SteererProcess::start(&lab, &lab.steerer_config(2, &[200.0; 2]), &[], false)?;
    std::thread::sleep(Duration::from_secs(3));
    let target = SocketAddr::new(SERVER_V4.into(), FLOOD_PORT);
    let (mut quiet, mut flooded, mut rates) = (Vec::new(), Vec::new(), Vec::new());
    let (mut let_in, mut refused) = (0u64, 0u64);
    for round in 0..rounds {
        let q = iperf3(&lab, seconds)?;
        let before = counters(&lab)?;
        let how_long = Duration::from_secs(seconds as u64 + 2);
        let sender = spawn_in(&lab.client_ns(), move || {
            flood(target, UNBOUNDED, 1, how_long)
        })?;
        std::thread::sleep(Duration::from_secs(1));
        let f = iperf3(&lab, seconds)?;
        let sent = sender
            .join()
            .map_err(|_| anyhow::anyhow!("flood thread panicked"))??;
        let after = counters(&lab)?;
        let rate = sent as f64 / how_long.as_secs_f64();
        let_in += after.0 - before.0;
        refused += after.1 - before.1;
        println!(
            "bench: round {}: iperf3 {:.0} Mbit/s alone, {:.0} Mbit/s in a flood of {:.0} new tuples/s \
             ({} let into the flow table, {} steered without an entry)",
            round + 1,
            q / 1e6,
            f / 1e6,
            rate,
            after.0 - before.0,
            after.1 - before.1
        );
        quiet.push(q);
        flooded.push(f);
        rates.push(rate);
    }
    drop(steerer);
    allow_flood_at_server(&lab);
    let med = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (q, f, r) = (med(&mut quiet), med(&mut flooded), med(&mut rates));
    println!(
        "flood: iperf3 through a 200 Mbit/s hop, {seconds} s runs, median of {rounds}, flood at the \
         generator's highest rate ({r:.0} new tuples/s)"
    );
    println!("  alone                    {:>8.0} Mbit/s", q / 1e6);
    println!("  during the flood         {:>8.0} Mbit/s", f / 1e6);
    println!(
        "  ratio flood / alone      {:>8.2}  (target >= 0.8: {})",
        f / q,
        if f >= 0.8 * q { "met" } else { "NOT met" }
    );
    println!("  flood flows let in {let_in}, steered without an entry {refused} (all rounds)");
    Ok(())
}
