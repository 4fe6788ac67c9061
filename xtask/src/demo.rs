//! `cargo xtask run`: the demo lab, or `steerer run` on a real interface.

use std::{
    collections::BTreeMap,
    os::unix::process::CommandExt as _,
    process::Command,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};
use clap::Args;
use steerer_lab::{
    baselines, check,
    netns::command_in,
    shootout,
    steerer::{steerer_bin, SteererProcess},
    traffic::{run_workload, ConnResult, Progress, Server},
    Lab,
};

use crate::{
    cmd::{cargo, status, workspace_root},
    setup,
};

/// Rates of the demo's hops (Mbit/s), and the port one of them blackholes
/// (the shoot-out's `demo` scenario, `steerer_lab::shootout`).
const HOP_RATES: [u32; 4] = [200, 100, 50, 10];
const BLACKHOLE_HOP: usize = 1;
const PORT: u16 = shootout::PORT;
const BLOCKED_PORT: u16 = shootout::BLOCKED_PORT;

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
    /// After steerer, run the same workload once more under Linux ECMP
    /// (equal weights, L4 hash) and print both side by side (also
    /// accepted as `cargo xtask run -- --compare`).
    #[arg(long)]
    compare: bool,
    /// Arguments for `steerer run` on a real interface, after `--`
    /// (e.g. `cargo xtask run -- --iface eth1 --config steerer.toml`).
    #[arg(last = true)]
    steerer_args: Vec<String>,
}

pub fn run(mut args: RunArgs) -> Result<()> {
    if args.steerer_args == ["--compare"] {
        args.compare = true;
        args.steerer_args.clear();
    }
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

fn demo(args: &RunArgs) -> Result<()> {
    let scenario = shootout::scenarios()
        .into_iter()
        .find(|s| s.name == "demo")
        .context("the demo scenario")?;
    let lab = Lab::build(scenario.lab_spec()).context("building the demo lab")?;
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
    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let interrupted = interrupted.clone();
        ctrlc::set_handler(move || interrupted.store(true, Ordering::Relaxed))
            .context("installing the Ctrl-C handler")?;
    }
    // The operator's estimates are deliberately all the same: steerer has
    // to find out which hop is fast.
    let config = lab.steerer_config(args.tick, &[100.0; HOP_RATES.len()]);
    println!(
        "run: starting steerer on {} (every hop estimated at 100 Mbit/s, K = {} s); \
         driving {} s of web-search-sized uploads from {} client loops \
         (an attempt without progress for 4 s is abandoned and retried)\n",
        lab.lan_iface(),
        args.tick,
        args.duration,
        args.workers
    );
    let workload = scenario.workload(args.workers, Duration::from_secs(args.duration), 7);
    let before = baselines::hop_uplink_bytes(&lab)?;
    let mut steerer = SteererProcess::start(&lab, &config, &["--print-ticks"], true)?;
    let started = Instant::now();
    let Some(results) = drive(&lab, &workload, &interrupted)? else {
        println!("\nrun: interrupted; stopping steerer and removing the lab");
        let _ = steerer.stop();
        drop(steerer);
        remove_lab(lab);
        std::process::exit(130);
    };
    let elapsed = started.elapsed();
    let flows = read_flows(&lab).unwrap_or_else(|e| {
        eprintln!("run: could not read the flow table: {e:#}");
        Vec::new()
    });
    let last = steerer.status();
    println!();
    let clean = steerer.stop()?;
    drop(steerer);
    summary(&results, &flows, last.as_ref(), elapsed);
    let steered = shootout::stats("steerer", &results, &bytes_since(&lab, &before)?, elapsed);
    if args.compare {
        compare(&lab, &scenario, &workload, steered, &interrupted)?;
    }
    remove_lab(lab);
    if !clean {
        bail!("steerer did not exit cleanly");
    }
    Ok(())
}

/// The same workload once more under ECMP with equal weights; both side
/// by side.
fn compare(
    lab: &Lab,
    scenario: &shootout::Scenario,
    workload: &steerer_lab::traffic::Workload,
    steered: shootout::RunStats,
    interrupted: &Arc<AtomicBool>,
) -> Result<()> {
    let ecmp = baselines::Baseline::Ecmp {
        weights: vec![1; HOP_RATES.len()],
    };
    println!(
        "\nrun: the same workload under {} (the kernel's L4 hash, no steerer)",
        ecmp.label()
    );
    baselines::flush_conntrack(lab)?;
    let installed = ecmp.install(lab)?;
    let before = baselines::hop_uplink_bytes(lab)?;
    let started = Instant::now();
    let results = drive(lab, workload, interrupted);
    let elapsed = started.elapsed();
    installed.remove(lab)?;
    let Some(results) = results? else {
        println!("\nrun: interrupted; removing the lab");
        return Ok(());
    };
    let other = shootout::stats(
        &ecmp.label(),
        &results,
        &bytes_since(lab, &before)?,
        elapsed,
    );
    println!(
        "\n{}",
        steerer_lab::report(scenario, &[vec![steered], vec![other]])
    );
    Ok(())
}

/// Bytes each hop forwarded since `before`.
fn bytes_since(lab: &Lab, before: &[u64]) -> Result<Vec<u64>> {
    let after = baselines::hop_uplink_bytes(lab)?;
    Ok(after
        .iter()
        .zip(before)
        .map(|(a, b)| a.saturating_sub(*b))
        .collect())
}

/// Run `workload` from the lab's client; `None` when Ctrl-C came first.
fn drive(
    lab: &Lab,
    workload: &steerer_lab::traffic::Workload,
    interrupted: &Arc<AtomicBool>,
) -> Result<Option<Vec<ConnResult>>> {
    let progress = Arc::new(Progress::default());
    let handle = {
        let (ns, w, progress) = (lab.client_ns(), workload.clone(), progress.clone());
        std::thread::spawn(move || run_workload(&ns, &w, progress))
    };
    while !handle.is_finished() {
        if interrupted.load(Ordering::Relaxed) {
            progress.stop.store(true, Ordering::Relaxed);
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let results = handle
        .join()
        .map_err(|_| anyhow::anyhow!("workload thread panicked"))??;
    Ok(Some(results))
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
        "  (a connection to port {BLOCKED_PORT} that lands on hop{BLACKHOLE_HOP} is moved to \
         another hop when its SYN is retransmitted, and the first such move excludes hop{BLACKHOLE_HOP} \
         for the server's port {BLOCKED_PORT} only, that one destination, at the next tick; \
         `cargo xtask run --compare` runs the same workload under ECMP as well)"
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
