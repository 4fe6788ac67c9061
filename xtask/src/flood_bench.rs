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
    flood::{allow_flood_at_server, drop_flood_at_server, flood_ports, FLOOD_PORT, FLOOD_PORTS},
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

/// iperf3 alone, then during a flood of `rate` datagrams (new tuples) a
/// second at most: (alone, during, tuples/s sent).
fn round(lab: &Lab, seconds: u32, rate: u64) -> Result<(f64, f64, f64)> {
    let alone = iperf3(lab, seconds)?;
    let target = SocketAddr::new(SERVER_V4.into(), FLOOD_PORT);
    let how_long = Duration::from_secs(seconds as u64 + 2);
    let sender = spawn_in(&lab.client_ns(), move || {
        flood_ports(target, FLOOD_PORTS, rate, 1, how_long)
    })?;
    std::thread::sleep(Duration::from_secs(1));
    let during = iperf3(lab, seconds)?;
    let sent = sender
        .join()
        .map_err(|_| anyhow::anyhow!("flood thread panicked"))??;
    Ok((alone, during, sent as f64 / how_long.as_secs_f64()))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
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
    // Plain kernel forwarding first (the same flood costs this machine's
    // two cores whatever forwards it), then steerer.
    let (mut plain, mut steered, mut top) = (Vec::new(), Vec::new(), Vec::new());
    for r in 0..rounds {
        let (a, d, rate) = round(&lab, seconds, UNBOUNDED)?;
        println!(
            "bench: plain round {}: iperf3 {:.0} Mbit/s alone, {:.0} Mbit/s in a flood of {rate:.0} new tuples/s",
            r + 1,
            a / 1e6,
            d / 1e6
        );
        plain.push((a, d, rate));
    }
    // Steerer meets the same flood (the rate plain forwarding let the
    // generator reach), then the generator's top rate through steerer.
    let same = median(plain.iter().map(|x: &(f64, f64, f64)| x.2).collect()) as u64;
    let steerer = SteererProcess::start(&lab, &lab.steerer_config(2, &[200.0; 2]), &[], false)?;
    std::thread::sleep(Duration::from_secs(3));
    let (mut let_in, mut refused) = (0u64, 0u64);
    for r in 0..2 * rounds {
        let rate = if r < rounds { same } else { UNBOUNDED };
        let before = counters(&lab)?;
        let (a, d, rate) = round(&lab, seconds, rate)?;
        let after = counters(&lab)?;
        let_in += after.0 - before.0;
        refused += after.1 - before.1;
        println!(
            "bench: steerer round {}: iperf3 {:.0} Mbit/s alone, {:.0} Mbit/s in a flood of {rate:.0} new tuples/s \
             ({} let into the flow table, {} steered without an entry)",
            r + 1,
            a / 1e6,
            d / 1e6,
            after.0 - before.0,
            after.1 - before.1
        );
        if r < rounds {
            steered.push((a, d, rate));
        } else {
            top.push((a, d, rate));
        }
    }
    drop(steerer);
    allow_flood_at_server(&lab);
    let summary = |v: &[(f64, f64, f64)]| {
        let a = median(v.iter().map(|x| x.0).collect());
        let d = median(v.iter().map(|x| x.1).collect());
        let r = median(v.iter().map(|x| x.2).collect());
        (a, d, r)
    };
    let (pa, pd, pr) = summary(&plain);
    let (sa, sd, sr) = summary(&steered);
    let (ta, td, tr) = summary(&top);
    println!(
        "flood: iperf3 through a 200 Mbit/s hop, {seconds} s runs, median of {rounds}, a flood at the \
         generator's highest rate (new source port and one of {FLOOD_PORTS} destination ports per datagram)"
    );
    println!(
        "  plain forwarding  alone {:>5.0} Mbit/s, in the flood ({pr:.0}/s) {:>5.0} Mbit/s, ratio {:.2}",
        pa / 1e6,
        pd / 1e6,
        pd / pa
    );
    println!(
        "  steerer           alone {:>5.0} Mbit/s, in the flood ({sr:.0}/s) {:>5.0} Mbit/s, ratio {:.2} \
         (target >= 0.8: {})",
        sa / 1e6,
        sd / 1e6,
        sd / sa,
        if sd >= 0.8 * sa { "met" } else { "NOT met" }
    );
    println!(
        "  steerer, top rate alone {:>5.0} Mbit/s, in the flood ({tr:.0}/s) {:>5.0} Mbit/s, ratio {:.2}",
        ta / 1e6,
        td / 1e6,
        td / ta
    );
    println!(
        "  flood flows let in {let_in}, steered without an entry {refused} (all steerer rounds)"
    );
    Ok(())
}
