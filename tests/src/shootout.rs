//! The lab shoot-out: the same seeded workload through the same lab under
//! steerer and under what operators run today (`baselines`), interleaved
//! round by round, with each request's fate and each hop's bytes counted.

use std::{
    collections::BTreeMap,
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{bail, Result};

use crate::{
    baselines::{flush_conntrack, hop_uplink_bytes, Baseline},
    health_check::HealthCheck,
    lab::{SERVER2_V4, SERVER_V4, SERVER_V6},
    sizes::{SizeCdf, WEBSEARCH},
    steerer::SteererProcess,
    traffic::{run_workload, ConnResult, Progress, Sizes, Workload},
    HopOptions, Lab, LabSpec,
};

/// Fewer bytes than this through a hop in a run: the hop was not used.
const UNUSED_HOP_BYTES: u64 = 10_000;

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

/// The health check both steerer's probes and the mwan3-style baseline
/// use, the same in every scenario: a ping to the server through each hop
/// every second, a hop out after 3 unanswered in a row (mwan3's defaults
/// are 5 s and 3, so this is the quicker baseline).
pub fn health_check() -> HealthCheck {
    HealthCheck {
        target: IpAddr::V4(SERVER_V4),
        interval: Duration::from_secs(1),
        timeout: Duration::from_secs(1),
        down_after: 3,
        up_after: 3,
    }
}

/// steerer's `[probe]` section with the settings of [`health_check`].
pub fn probe_section() -> String {
    let c = health_check();
    format!(
        "\n[probe]\ntargets = [\"{}\"]\ninterval_secs = {}\ntimeout_ms = {}\ndown_after_rounds = {}\n",
        c.target,
        c.interval.as_secs(),
        c.timeout.as_millis(),
        c.down_after
    )
}

/// Who steers the gateway in a run.
#[derive(Debug, Clone)]
pub enum Contender {
    /// steerer with the demo's configuration, plus these lines (a variant
    /// under test, e.g. `max_share = 0.6`; empty: as shipped).
    Steerer {
        extra: String,
    },
    Baseline(Baseline),
}

impl Contender {
    pub fn label(&self) -> String {
        match self {
            Contender::Steerer { extra } if extra.is_empty() => "steerer".into(),
            Contender::Steerer { extra } => {
                format!("steerer ({})", extra.trim().replace('\n', "; "))
            }
            Contender::Baseline(b) => b.label(),
        }
    }
}

/// The contenders of a scenario: steerer, ECMP equal, ECMP weighted by
/// the true rates, the same with the health check (mwan3-style), nft
/// numgen random.
pub fn contenders(sc: &Scenario) -> Vec<Contender> {
    let capacities: Vec<u32> = sc.rates.iter().map(|r| (r / 10).max(1)).collect();
    vec![
        Contender::Steerer {
            extra: String::new(),
        },
        Contender::Baseline(Baseline::Ecmp {
            weights: vec![1; sc.rates.len()],
        }),
        Contender::Baseline(Baseline::Ecmp {
            weights: capacities.clone(),
        }),
        Contender::Baseline(Baseline::HealthChecked {
            weights: capacities,
            check: health_check(),
        }),
        Contender::Baseline(Baseline::NftRandom),
    ]
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
        }
    }
}

/// What one contender's run measured.
#[derive(Debug, Clone)]
pub struct RunStats {
    pub contender: String,
    pub requests: usize,
    pub completed: usize,
    /// Requests that needed more than one attempt.
    pub retried: usize,
    /// Attempts abandoned (no progress for 4 s, refused, reset).
    pub abandoned: usize,
    /// Requests that failed every attempt.
    pub given_up: usize,
    /// Completion time of each completed request (all its attempts), s.
    pub times: Vec<f64>,
    /// The same, per destination port.
    pub times_by_port: BTreeMap<u16, Vec<f64>>,
    pub goodput_mbit: f64,
    /// Share of the uploaded bytes each hop carried.
    pub hop_share: Vec<f64>,
}

/// Requests, their attempts and the hops' bytes into figures.
pub fn stats(
    contender: &str,
    results: &[ConnResult],
    hop_bytes: &[u64],
    wall: Duration,
) -> RunStats {
    let mut by_request: BTreeMap<u64, Vec<&ConnResult>> = BTreeMap::new();
    for r in results {
        by_request.entry(r.request).or_default().push(r);
    }
    let mut s = RunStats {
        contender: contender.to_string(),
        requests: by_request.len(),
        completed: 0,
        retried: 0,
        abandoned: results.iter().filter(|r| !r.ok).count(),
        given_up: 0,
        times: Vec::new(),
        times_by_port: BTreeMap::new(),
        goodput_mbit: 0.0,
        hop_share: Vec::new(),
    };
    let mut bytes = 0u64;
    for attempts in by_request.values() {
        if attempts.len() > 1 {
            s.retried += 1;
        }
        match attempts.iter().find(|a| a.ok) {
            Some(ok) => {
                s.completed += 1;
                bytes += ok.size;
                let t: f64 = attempts.iter().map(|a| a.elapsed.as_secs_f64()).sum();
                s.times.push(t);
                s.times_by_port.entry(ok.remote.port()).or_default().push(t);
            }
            None => s.given_up += 1,
        }
    }
    s.goodput_mbit = bytes as f64 * 8.0 / 1e6 / wall.as_secs_f64().max(1e-9);
    let total: u64 = hop_bytes.iter().sum();
    s.hop_share = hop_bytes
        .iter()
        .map(|&b| b as f64 / total.max(1) as f64)
        .collect();
    s
}

/// Run `contender` once on `lab` (built from `sc`): fresh connection
/// tracking, the workload with `seed` for `duration`, the scenario's
/// events; the lab is put back as it was afterwards, also on failure.
pub fn run_once(
    lab: &Lab,
    sc: &Scenario,
    contender: &Contender,
    opts: &RunOptions,
    seed: u64,
) -> Result<RunStats> {
    flush_conntrack(lab)?;
    let before = hop_uplink_bytes(lab)?;
    let mut steerer = None;
    let mut installed = None;
    match contender {
        Contender::Steerer { extra } => {
            let config = format!(
                "{extra}\n{}{}",
                lab.steerer_config(opts.tick_secs, &vec![100.0; sc.rates.len()]),
                probe_section()
            );
            steerer = Some(SteererProcess::start(lab, &config, &["--fresh"], false)?);
        }
        // A half-installed baseline removes itself.
        Contender::Baseline(b) => installed = Some(b.install(lab)?),
    }
    let result = drive(lab, sc, opts, seed);
    let flow_hops = steerer.as_ref().map(|_| flow_hops(lab));
    if let Some(mut s) = steerer.take() {
        let _ = s.stop();
    }
    if let Some(b) = installed {
        for line in b.remove(lab)? {
            eprintln!("  {}: {line}", contender.label());
        }
    }
    restore(lab, sc)?;
    let (results, wall) = result?;
    let after = hop_uplink_bytes(lab)?;
    let hop_bytes: Vec<u64> = after
        .iter()
        .zip(&before)
        .map(|(a, b)| a.saturating_sub(*b))
        .collect();
    let s = stats(&contender.label(), &results, &hop_bytes, wall);
    if let Some(Ok(hops)) = flow_hops {
        eprintln!("{}", by_hop(&results, &hops, sc.rates.len()));
    }
    if let Contender::Baseline(_) = contender {
        // A baseline that left a live hop unused measures something else.
        // Unused: less than one small request's worth of bytes (neighbour
        // discovery alone moves a few hundred); a share would not do, as a
        // hop weighted 1 in 36 may carry under 0.1% of a short run's bytes.
        for (i, &bytes) in hop_bytes.iter().enumerate() {
            let died = sc
                .events
                .iter()
                .any(|(_, e)| matches!(e, LabEvent::LinkDown(h) if *h == i));
            if bytes < UNUSED_HOP_BYTES && !died {
                bail!(
                    "{} sent nothing through hop{i} ({bytes} bytes): {:?}",
                    s.contender,
                    s.hop_share
                );
            }
        }
    }
    Ok(s)
}

/// How long and how wide each run is.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub duration: Duration,
    pub workers: usize,
    pub tick_secs: u64,
    /// Only the contenders whose label contains this.
    pub only: Option<String>,
    /// steerer variants to add (configuration lines each).
    pub variants: Vec<String>,
}

fn drive(
    lab: &Lab,
    sc: &Scenario,
    opts: &RunOptions,
    seed: u64,
) -> Result<(Vec<ConnResult>, Duration)> {
    let w = sc.workload(opts.workers, opts.duration, seed);
    let progress = Arc::new(Progress::default());
    let started = Instant::now();
    let client = lab.client_ns();
    let traffic = std::thread::spawn({
        let progress = progress.clone();
        move || run_workload(&client, &w, progress)
    });
    let mut events = sc.events.clone();
    events.sort_by_key(|(at, _)| *at);
    for (at, event) in events {
        if let Some(wait) = at.checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
        apply_event(lab, event)?;
    }
    let results = traffic
        .join()
        .map_err(|_| anyhow::anyhow!("workload thread panicked"))??;
    Ok((results, started.elapsed()))
}

fn apply_event(lab: &Lab, event: LabEvent) -> Result<()> {
    match event {
        LabEvent::LinkDown(i) => lab.set_hop_link(i, false)?,
        LabEvent::Rate(i, mbit) => lab.set_rate(i, mbit)?,
        LabEvent::Dead(i) => crate::shaper::set_forwarding(lab, i, false)?,
    }
    Ok(())
}

/// The lab as the scenario built it: links up, rates back.
fn restore(lab: &Lab, sc: &Scenario) -> Result<()> {
    for (_, event) in &sc.events {
        match *event {
            LabEvent::LinkDown(i) => lab.set_hop_link(i, true)?,
            LabEvent::Rate(i, _) => lab.set_rate(i, sc.rates[i])?,
            LabEvent::Dead(i) => crate::shaper::set_forwarding(lab, i, true)?,
        }
    }
    // Let ARP and carrier settle before the next run.
    std::thread::sleep(Duration::from_millis(500));
    Ok(())
}

/// Build the scenario's lab once and run every contender `rounds` times,
/// interleaved (round r runs each in turn, the order rotated per round);
/// the same seed per round for every contender.
pub fn run_scenario(sc: &Scenario, opts: &RunOptions, rounds: usize) -> Result<Vec<Vec<RunStats>>> {
    let lab = Lab::build(sc.lab_spec())?;
    let _server = crate::traffic::Server::start(&lab.server_ns(), &[PORT, BLOCKED_PORT])?;
    let mut contenders: Vec<Contender> = contenders(sc)
        .into_iter()
        .filter(|c| opts.only.as_deref().is_none_or(|o| c.label().contains(o)))
        .collect();
    contenders.extend(
        opts.variants
            .iter()
            .map(|v| Contender::Steerer { extra: v.clone() }),
    );
    let mut per: Vec<Vec<RunStats>> = vec![Vec::new(); contenders.len()];
    for round in 0..rounds {
        for k in 0..contenders.len() {
            let i = (k + round) % contenders.len();
            let s = run_once(&lab, sc, &contenders[i], opts, 1000 + round as u64)?;
            eprintln!(
                "shoot-out {} round {}: {:<20} {} requests, {} completed, {} retried, {} abandoned attempts",
                sc.name,
                round + 1,
                s.contender,
                s.requests,
                s.completed,
                s.retried,
                s.abandoned
            );
            per[i].push(s);
        }
    }
    Ok(per)
}

/// Source port -> hop id of every TCP flow in steerer's flow table.
fn flow_hops(lab: &Lab) -> Result<BTreeMap<u16, u64>> {
    let out = crate::netns::command_in(&lab.gw_ns(), crate::steerer::steerer_bin()?)?
        .args(["flows", "--iface", &lab.lan_iface(), "--json"])
        .output()?;
    let flows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout)?;
    Ok(flows
        .iter()
        .filter(|f| f["proto"].as_u64() == Some(6))
        .filter_map(|f| Some((f["src_port"].as_u64()? as u16, f["hop"].as_u64()?)))
        .collect())
}

/// steerer's attempts by the hop their flow ended on: how many, how long
/// on average, how many took over 2 s.
fn by_hop(results: &[ConnResult], hops: &BTreeMap<u16, u64>, n: usize) -> String {
    let mut per: Vec<(usize, f64, usize)> = vec![(0, 0.0, 0); n + 1];
    for r in results {
        let h = r
            .local
            .and_then(|l| hops.get(&l.port()))
            .map_or(n, |&h| (h as usize).min(n));
        per[h].0 += 1;
        per[h].1 += r.elapsed.as_secs_f64();
        per[h].2 += usize::from(r.elapsed > Duration::from_secs(2));
    }
    per.iter()
        .enumerate()
        .map(|(h, (c, t, slow))| {
            let name = if h == n {
                "unknown".to_string()
            } else {
                format!("hop{h}")
            };
            format!(
                "  {name}: {c} attempts, mean {:.2} s, {slow} over 2 s",
                t / (*c).max(1) as f64
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}
