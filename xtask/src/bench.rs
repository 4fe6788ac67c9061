//! `cargo xtask bench`: performance as ratios to baselines measured in the
//! same run (never absolute thresholds in tests).

use std::{
    process::{Child, Stdio},
    time::Duration,
};

use anyhow::{bail, Context as _, Result};
use clap::{Args, ValueEnum};
use steerer_lab::{
    lab::SERVER_V4,
    netns::command_in,
    steerer::{steerer_bin, SteererProcess},
    Lab, LabSpec,
};

use crate::{
    cmd::{cargo, status},
    setup,
};

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Suite {
    /// Cost per packet (BPF_PROG_TEST_RUN) and lab throughput.
    Dataplane,
    /// Time of one policy-engine tick for 10k/100k/1M flows and 1k hops.
    Policy,
    /// The simulator on scenarios/scale.toml (1M connections, 1k hops).
    Sim,
    /// Reading the flow table: batch calls against walking it, 100k and
    /// 1M flows in the production-size table.
    Flows,
    /// One whole daemon tick (maps, controller, writes) over 100k and 1M
    /// flows in a real flow table, against one batch read.
    Tick,
    /// An iperf3 flow's throughput during a new-tuple flood against the
    /// same flow alone (the flood guard at work).
    Flood,
    /// The lab shoot-out: steerer against ECMP (equal and capacity
    /// weights) and nft numgen random on the same seeded workload.
    Lab,
}

#[derive(Args)]
pub struct BenchArgs {
    /// Which benchmark (default: all but `lab`, which takes most of an
    /// hour and runs only when named).
    suite: Option<Suite>,
    /// Seconds per iperf3 run in the throughput comparison.
    #[arg(long, default_value_t = 5)]
    seconds: u32,
    /// iperf3 runs per side (plain forwarding / steerer), interleaved;
    /// for `lab`, rounds of every contender.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// `lab`: seconds of traffic per run.
    #[arg(long, default_value_t = 60)]
    lab_seconds: u64,
    /// `lab`: only the scenarios whose name contains this (demo,
    /// dying-hop, silent-death, slowing-hop, blackhole, small-and-large).
    #[arg(long)]
    scenario: Option<String>,
    /// `lab`: only the contenders whose name contains this (steerer,
    /// ecmp, mwan3, nft).
    #[arg(long)]
    contender: Option<String>,
    /// `lab`: also run steerer with these configuration lines (repeat for
    /// several variants), to judge a policy change on real packets, e.g.
    /// `--steerer-variant "max_share = 0.6"`.
    #[arg(long)]
    steerer_variant: Vec<String>,
    /// `lab`: an open-loop workload instead of 12 closed loops: this many
    /// requests per second arriving at seeded Poisson times, the same for
    /// every contender (a closed loop lets a policy that completes more
    /// also offer more load). The demo's sizes average 0.82 MB, so 20/s
    /// offers about 130 Mbit/s.
    #[arg(long)]
    arrivals: Option<f64>,
}

pub fn run(args: BenchArgs) -> Result<()> {
    setup::ensure_all()?;
    let all = args.suite.is_none();
    if all || args.suite == Some(Suite::Dataplane) {
        if !nix::unistd::geteuid().is_root() {
            bail!("benchmarks load eBPF programs and build a lab: run as root");
        }
        println!("bench: dataplane cost per packet (BPF_PROG_TEST_RUN)");
        // `bench`: the eBPF object with the reference programs (not in the
        // production object).
        status(cargo().args([
            "bench",
            "-p",
            "steerer-user",
            "--features",
            "bench",
            "--bench",
            "dataplane",
        ]))?;
        status(cargo().args(["build", "-p", "steerer-user", "--bins"]))?;
        throughput(args.seconds, args.rounds)?;
    }
    if all || args.suite == Some(Suite::Policy) {
        println!("bench: policy engine tick");
        status(cargo().args(["bench", "-p", "steerer-user", "--bench", "policy"]))?;
    }
    if all || args.suite == Some(Suite::Flows) {
        if !nix::unistd::geteuid().is_root() {
            bail!("the flow-table bench loads the data plane: run as root");
        }
        println!("bench: reading the flow table (batch against walk)");
        status(cargo().args(["bench", "-p", "steerer-user", "--bench", "flow_read"]))?;
    }
    if all || args.suite == Some(Suite::Tick) {
        if !nix::unistd::geteuid().is_root() {
            bail!("the tick bench loads the data plane: run as root");
        }
        println!("bench: one whole daemon tick");
        status(cargo().args(["bench", "-p", "steerer-user", "--bench", "daemon_tick"]))?;
    }
    if all || args.suite == Some(Suite::Flood) {
        if !nix::unistd::geteuid().is_root() {
            bail!("the flood bench builds a lab: run as root");
        }
        println!("bench: an iperf3 flow during a new-tuple flood");
        // The production build: a debug daemon's ticks over a full flow
        // table would take this machine's cores from the flow measured.
        status(cargo().args(["build", "--release", "-p", "steerer-user", "--bins"]))?;
        std::env::set_var(
            "STEERER_BIN",
            crate::cmd::workspace_root().join("target/release/steerer"),
        );
        crate::flood_bench::run(args.seconds, args.rounds)?;
    }
    if all || args.suite == Some(Suite::Sim) {
        println!("bench: simulator scale");
        status(cargo().args(["bench", "-p", "steerer-user", "--bench", "simulator"]))?;
    }
    // Not part of "all": it runs for most of an hour.
    if args.suite == Some(Suite::Lab) {
        crate::shootout::run(
            &args.scenario,
            &args.contender,
            &args.steerer_variant,
            args.lab_seconds,
            args.rounds,
            args.arrivals,
        )?;
    }
    Ok(())
}

pub(crate) struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An iperf3 server in the lab's server namespace (port 5201), ready.
pub(crate) fn iperf3_server(lab: &Lab) -> Result<KillOnDrop> {
    let server = KillOnDrop(
        command_in(&lab.server_ns(), "iperf3")?
            .args(["-s", "-p", "5201"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting iperf3 server")?,
    );
    std::thread::sleep(Duration::from_millis(500));
    Ok(server)
}

pub(crate) fn iperf3(lab: &Lab, seconds: u32) -> Result<f64> {
    let out = command_in(&lab.client_ns(), "iperf3")?
        .args([
            "-c",
            &SERVER_V4.to_string(),
            "-p",
            "5201",
            "-J",
            "-t",
            &seconds.to_string(),
        ])
        .output()
        .context("running iperf3")?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("iperf3 output: {}", String::from_utf8_lossy(&out.stderr)))?;
    if let Some(e) = v["error"].as_str() {
        bail!("iperf3: {e}");
    }
    v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .context("iperf3 JSON has no end.sum_received.bits_per_second")
}

/// iperf3 client -> server through the lab gateway (one hop, no rate
/// limit): plain kernel forwarding against steerer's XDP redirect (native
/// on veth), rounds interleaved so drift hits both alike.
fn throughput(seconds: u32, rounds: usize) -> Result<()> {
    let lab = Lab::build(LabSpec::equal_hops(1))?;
    let _server = iperf3_server(&lab)?;
    let config = lab.steerer_config(5, &[1000.0]);
    let (mut plain, mut steered) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let p = iperf3(&lab, seconds)?;
        let steerer = SteererProcess::start(&lab, &config, &[], false)?;
        let s = iperf3(&lab, seconds)?;
        // Every packet of the run must have been steered, or the
        // comparison measures the kernel twice.
        let stats = command_in(&lab.gw_ns(), steerer_bin()?)?
            .args(["stats", "--iface", &lab.lan_iface(), "--json"])
            .output()?;
        let stats: serde_json::Value = serde_json::from_slice(&stats.stdout)?;
        let steered_packets = stats["established"].as_u64().unwrap_or(0);
        drop(steerer);
        if steered_packets < 1000 {
            bail!("steerer redirected only {steered_packets} packets of the iperf3 run: {stats}");
        }
        println!(
            "bench: round {}: plain {:.0} Mbit/s, steerer {:.0} Mbit/s ({steered_packets} packets redirected)",
            round + 1,
            p / 1e6,
            s / 1e6,
        );
        plain.push(p);
        steered.push(s);
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (p, s) = (med(&mut plain), med(&mut steered));
    println!("throughput: iperf3 TCP client -> server through the gateway, {seconds} s runs, median of {rounds}");
    println!("  plain kernel forwarding  {:>8.0} Mbit/s", p / 1e6);
    println!("  steerer (XDP native)     {:>8.0} Mbit/s", s / 1e6);
    println!(
        "  ratio steerer / plain    {:>8.2}  (target >= 1.0: {})",
        s / p,
        if s >= p { "met" } else { "NOT met" }
    );
    Ok(())
}
