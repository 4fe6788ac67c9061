//! `cargo xtask run`: the demo lab, or `steerer run` on a real interface.

use std::{
    collections::BTreeMap,
    net::{IpAddr, SocketAddr},
    os::unix::process::CommandExt as _,
    process::Command,
    sync::{atomic::Ordering, mpsc, Arc},
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};
use clap::Args;
use steerer_lab::{
    check,
    lab::{SERVER_V4, SERVER_V6},
    netns::command_in,
    sizes::{SizeCdf, WEBSEARCH},
    steerer::{steerer_bin, SteererProcess},
    traffic::{run_workload, ConnResult, Progress, Server, Sizes, Workload},
    HopOptions, Lab, LabSpec,
};

use crate::{
    cmd::{cargo, status, workspace_root},
    setup,
};

/// Rates of the demo's hops (Mbit/s), and the port one of them blackholes.
const HOP_RATES: [u32; 4] = [200, 100, 50, 10];
const BLACKHOLE_HOP: usize = 1;
const PORT: u16 = 5001;
const BLOCKED_PORT: u16 = 8443;

#[derive(Args)]
pub struct RunArgs {
    /// How long the demo drives traffic, seconds.
    #[arg(long, default_value_t = 60)]
    duration: u64,
    /// steerer's tick K, seconds (a table is printed every tick).
    #[arg(long, default_value_t = 5)]
    tick: u64,
    /// Parallel client loops, each opening one connection after another.
    #[arg(long, default_value_t = 12)]
    workers: usize,
    /// Arguments for `steerer run` on a real interface, after `--`
    /// (e.g. `cargo xtask run -- --iface eth1 --config steerer.toml`).
    #[arg(last = true)]
    steerer_args: Vec<String>,
}

pub fn run(args: RunArgs) -> Result<()> {
    if !args.steerer_args.is_empty() {
        return run_real(&args.steerer_args);
    }
    if args.duration == 0 || args.tick == 0 || args.workers == 0 {
        bail!("--duration, --tick and --workers must be at least 1");
    }
    setup::ensure_all()?;
    if !nix::unistd::geteuid().is_root() {
        bail!("the demo creates network namespaces and attaches XDP: run it as root");
    }
    println!("run: building steerer");
    status(cargo().args(["build", "-p", "steerer-user", "--bins"]))?;
    demo(&args)
}

/// `steerer run ARGS`, built in release mode, replacing this process so
/// signals reach steerer directly.
fn run_real(steerer_args: &[String]) -> Result<()> {
    setup::ensure_build_tools()?;
    status(cargo().args(["build", "--release", "-p", "steerer-user", "--bins"]))?;
    let bin = workspace_root().join("target/release/steerer");
    let err = Command::new(&bin).arg("run").args(steerer_args).exec();
    Err(err).with_context(|| format!("starting {}", bin.display()))
}

enum Event {
    Done(Result<Vec<ConnResult>>),
    Interrupted,
}

fn demo(args: &RunArgs) -> Result<()> {
    let mut spec = LabSpec::default();
    for (i, &rate) in HOP_RATES.iter().enumerate() {
        spec.hops.push(HopOptions {
            rate_mbit: Some(rate),
            blackhole_port: (i == BLACKHOLE_HOP).then_some(BLOCKED_PORT),
            blackhole_dest: None,
        });
    }
    let lab = Lab::build(spec).context("building the demo lab")?;
    println!(
        "run: lab {} built: client -> gateway -> {} hops -> internet -> server",
        lab.prefix,
        HOP_RATES.len()
    );
    for (i, rate) in HOP_RATES.iter().enumerate() {
        let note = if i == BLACKHOLE_HOP {
            format!(", drops TCP port {BLOCKED_PORT}")
        } else {
            String::new()
        };
        println!(
            "       hop{i}: {} next hop {}, {rate} Mbit/s{note}",
            lab.hop_iface(i),
            lab.hop_next_hop(i)
        );
    }
    let _server = Server::start(&lab.server_ns(), &[PORT, BLOCKED_PORT])?;
    // The operator's estimates are deliberately all the same: steerer has
    // to find out which hop is fast.
    let config = lab.steerer_config(args.tick, &[100.0; HOP_RATES.len()]);
    println!(
        "run: starting steerer on {} (every hop estimated at 100 Mbit/s, K = {} s); \
         driving {} s of web-search-sized uploads from {} client loops\n",
        lab.lan_iface(),
        args.tick,
        args.duration,
        args.workers
    );
    let mut steerer = SteererProcess::start(&lab, &config, &[], true)?;

    let (tx, rx) = mpsc::channel();
    let ctrl_tx = tx.clone();
    ctrlc::set_handler(move || {
        let _ = ctrl_tx.send(Event::Interrupted);
    })
    .context("installing the Ctrl-C handler")?;

    let workload = Workload {
        // Mostly the open port, over IPv4 and IPv6; a quarter to the port
        // one hop blackholes.
        targets: vec![
            SocketAddr::new(IpAddr::V4(SERVER_V4), PORT),
            SocketAddr::new(IpAddr::V4(SERVER_V4), PORT),
            SocketAddr::new(IpAddr::V6(SERVER_V6), PORT),
            SocketAddr::new(IpAddr::V4(SERVER_V4), BLOCKED_PORT),
        ],
        workers: args.workers,
        connections: None,
        duration: Some(Duration::from_secs(args.duration)),
        sizes: Sizes::Cdf {
            cdf: SizeCdf::parse(WEBSEARCH).map_err(anyhow::Error::msg)?,
            scale: 0.5,
            max: 10_000_000,
        },
        seed: 7,
        connect_timeout: Duration::from_secs(2),
        io_timeout: Duration::from_secs(20),
        retries: 2,
    };
    let progress = Arc::new(Progress::default());
    let started = Instant::now();
    {
        let ns = lab.client_ns();
        let progress = progress.clone();
        std::thread::spawn(move || {
            let _ = tx.send(Event::Done(run_workload(&ns, &workload, progress)));
        });
    }
    let event = rx.recv().context("workload thread vanished")?;
    let results = match event {
        Event::Interrupted => {
            println!("\nrun: interrupted; stopping steerer and removing the lab");
            progress.stop.store(true, Ordering::Relaxed);
            let _ = steerer.stop();
            drop(steerer);
            remove_lab(lab);
            // Client loops may sit in a socket call; exiting closes them.
            std::process::exit(130);
        }
        Event::Done(r) => r?,
    };
    let elapsed = started.elapsed();
    let flows = read_flows(&lab).unwrap_or_else(|e| {
        eprintln!("run: could not read the flow table: {e:#}");
        Vec::new()
    });
    let last = steerer.status();
    println!();
    let clean = steerer.stop()?;
    summary(&results, &flows, last.as_ref(), elapsed);
    drop(steerer);
    remove_lab(lab);
    if !clean {
        bail!("steerer did not exit cleanly");
    }
    Ok(())
}

/// The flow table as steerer's own `flows --json` prints it.
fn read_flows(lab: &Lab) -> Result<Vec<serde_json::Value>> {
    let out = command_in(&lab.gw_ns(), steerer_bin()?)?
        .args(["flows", "--iface", &lab.lan_iface(), "--json"])
        .output()?;
    if !out.status.success() {
        bail!("{}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(serde_json::from_slice::<Vec<serde_json::Value>>(
        &out.stdout,
    )?)
}

#[derive(Default)]
struct HopTally {
    flows: u64,
    no_reply: u64,
    bytes: u64,
    blocked_port_flows: u64,
}

fn summary(
    results: &[ConnResult],
    flows: &[serde_json::Value],
    last: Option<&serde_json::Value>,
    elapsed: Duration,
) {
    let requests = results.iter().filter(|r| r.attempt == 0).count();
    let failed_attempts = results.iter().filter(|r| !r.ok).count();
    let rescued = results.iter().filter(|r| r.ok && r.attempt > 0).count();
    let ok = results.iter().filter(|r| r.ok).count();
    let bytes: u64 = results.iter().filter(|r| r.ok).map(|r| r.size).sum();
    println!("summary after {:.0} s", elapsed.as_secs_f64());
    println!(
        "  requests {requests}, completed {ok} ({:.1}%), {failed_attempts} failed connection \
         attempts, {rescued} requests completed on a retry",
        100.0 * ok as f64 / requests.max(1) as f64
    );
    println!(
        "  {:.1} MB delivered, {:.1} Mbit/s on average",
        bytes as f64 / 1e6,
        bytes as f64 * 8.0 / 1e6 / elapsed.as_secs_f64().max(1.0)
    );
    for port in [PORT, BLOCKED_PORT] {
        let of_port: Vec<_> = results.iter().filter(|r| r.remote.port() == port).collect();
        let ok = of_port.iter().filter(|r| r.ok).count();
        println!(
            "  port {port}: {} attempts, {ok} ok, {} failed",
            of_port.len(),
            of_port.len() - ok
        );
    }

    let mut per_hop: BTreeMap<u64, HopTally> = BTreeMap::new();
    for f in flows {
        if f["proto"].as_u64() != Some(6) {
            continue;
        }
        let Some(hop) = f["hop"].as_u64() else {
            continue;
        };
        let t = per_hop.entry(hop).or_default();
        t.flows += 1;
        t.bytes += f["bytes"].as_u64().unwrap_or(0);
        if f["reply_packets"].as_u64() == Some(0) {
            t.no_reply += 1;
        }
        if f["dst_port"].as_u64() == Some(BLOCKED_PORT as u64) {
            t.blocked_port_flows += 1;
        }
    }
    let total_rate: u32 = HOP_RATES.iter().sum();
    println!("\n  what steerer learned (true rates were hidden from it):");
    println!(
        "  hop    true rate  fair share  final weight  measured Mb/s  flows  no-reply flows  MB sent"
    );
    let hops = last
        .and_then(|s| s["hops"].as_array().cloned())
        .unwrap_or_default();
    for (i, rate) in HOP_RATES.iter().enumerate() {
        let h = hops.get(i);
        let weight = h.and_then(|h| h["share"].as_f64()).unwrap_or(f64::NAN);
        let speed = h.and_then(|h| h["speed_mbit"].as_f64()).unwrap_or(f64::NAN);
        let t = per_hop.get(&(i as u64));
        let note = if i == BLACKHOLE_HOP {
            format!("  (drops port {BLOCKED_PORT})")
        } else {
            String::new()
        };
        println!(
            "  hop{i}  {:>6} Mb/s  {:>9.1}%  {:>11.1}%  {:>13.1}  {:>5}  {:>14}  {:>7.1}{note}",
            rate,
            100.0 * *rate as f64 / total_rate as f64,
            100.0 * weight,
            speed,
            t.map_or(0, |t| t.flows),
            t.map_or(0, |t| t.no_reply),
            t.map_or(0, |t| t.bytes) as f64 / 1e6,
        );
    }
    println!(
        "  (uniform random choice would give every hop 25%; a connection to port {BLOCKED_PORT} \
         that lands on hop{BLACKHOLE_HOP} is moved to another hop when its SYN is retransmitted, \
         and after two such moves hop{BLACKHOLE_HOP} is excluded for the server's port \
         {BLOCKED_PORT} only, that one destination)"
    );
}

/// Remove the lab and say whether the machine was left clean.
fn remove_lab(lab: Lab) {
    let (prefix, pin_dir) = (lab.prefix.clone(), lab.pin_dir());
    drop(lab);
    let ns = check::namespaces_with_prefix(&prefix).unwrap_or_default();
    let pins = pin_dir.exists();
    if ns.is_empty() && !pins {
        println!("run: lab {prefix} removed (namespaces, links, programs, pins)");
    } else {
        eprintln!("run: left behind: namespaces {ns:?}, pins {pins}");
    }
}
