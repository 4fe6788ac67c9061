//! The lab shoot-out: the same seeded workload through the same lab under
//! steerer and under what operators run today (`baselines`), interleaved
//! round by round, with each request's fate and each hop's bytes counted.

mod scenario;
mod stats;

use std::{
    collections::BTreeMap,
    net::IpAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{bail, Result};

pub use scenario::{scenarios, LabEvent, Scenario, BLOCKED_PORT, PORT};
pub use stats::{stats, RunStats};

use crate::{
    baselines::{flush_conntrack, hop_uplink_bytes, Baseline},
    health_check::HealthCheck,
    lab::SERVER_V4,
    steerer::SteererProcess,
    traffic::{run_workload, ConnResult, Progress},
    Lab,
};
use stats::by_hop;

/// Fewer bytes than this through a hop in a run: the hop was not used.
const UNUSED_HOP_BYTES: u64 = 10_000;

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
    /// Open loop: requests per second arriving at seeded Poisson times
    /// (the same for every contender), instead of `workers` closed loops.
    pub arrivals: Option<f64>,
}

fn drive(
    lab: &Lab,
    sc: &Scenario,
    opts: &RunOptions,
    seed: u64,
) -> Result<(Vec<ConnResult>, Duration)> {
    let mut w = sc.workload(opts.workers, opts.duration, seed);
    w.arrivals = opts.arrivals;
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
