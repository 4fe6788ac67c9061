//! `steerer run`: check everything, take the lock, start (`setup`), then
//! every K seconds check the hops (`hops`) and tick the controller over the
//! maps (`adapter`) until SIGINT/SIGTERM. Nothing after start-up stops
//! steering: a failed tick is logged and retried at the next.

pub mod adapter;
mod directory_fetch;
pub mod hops;
mod probe;
mod probe_routes;
mod reload;
pub mod setup;

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{bail, Context as _, Result};
use tracing::{info, warn};

use crate::{
    apply::ApplyOutcome,
    config::Config,
    dataplane::{self, AttachMode},
    instance_lock::{self, InstanceLock},
    link_events::{LinkEvent, LinkEvents},
    monotonic_ns, netlink,
    policy::Decisions,
    report::TickStatus,
};
use setup::Steering;

pub struct RunOptions {
    pub iface: String,
    pub config: PathBuf,
    pub attach: AttachMode,
    pub fresh: bool,
    pub keep_pins: bool,
    pub status_file: Option<PathBuf>,
    pub flow_table_size: Option<u32>,
}

pub fn run(opts: RunOptions) -> Result<()> {
    let config = check(&opts)?;
    crate::privileges::check().map_err(anyhow::Error::msg)?;
    let netns = dataplane::netns_id()?;
    // Held until this function returns; the kernel releases it if the
    // process dies instead.
    let lock = InstanceLock::acquire(Path::new(instance_lock::LOCK_DIR), &netns, &opts.iface)?;
    info!(lock = %lock.path().display(), pid = std::process::id(), "one steerer per interface: lock taken");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let result = runtime.block_on(run_async(opts, config));
    drop(lock);
    result
}

/// `steerer check`: everything `run` checks before it touches the kernel,
/// and nothing else; what the configuration says, for the operator.
pub fn check_only(opts: &RunOptions) -> Result<String> {
    let config = check(opts)?;
    let (slots, note) = config.effective_slot_count();
    let mut out = format!(
        "{}: good for --iface {} ({} hops, {} slots per table, tick {} s, max share {})\n",
        opts.config.display(),
        opts.iface,
        config.hops.len(),
        slots,
        config.tick_secs,
        config.max_share
    );
    if let Some(n) = note {
        out.push_str(&format!("note: {n}\n"));
    }
    for h in &config.hops {
        let way = match (h.action, h.next_hop, h.mark) {
            (crate::config::HopAction::Mark, _, Some(m)) => format!("mark {m}"),
            (_, Some(ip), _) => format!("via {ip}"),
            _ => String::new(),
        };
        out.push_str(&format!(
            "  {:<16} {:<12} {:<24} {:>8.0} Mbit/s  {:?}\n",
            h.name,
            h.interface,
            way,
            h.initial_estimate_bytes_per_sec() * 8.0 / 1e6,
            h.state
        ));
    }
    Ok(out)
}

/// Everything that can be wrong with the input, checked before the kernel
/// is touched.
fn check(opts: &RunOptions) -> Result<Config> {
    if netlink::ifindex(&opts.iface).is_none() {
        bail!("--iface: unknown interface {:?}", opts.iface);
    }
    let rejected = || format!("rejected config {}", opts.config.display());
    let mut config =
        Config::load(&opts.config, &netlink::interface_exists).with_context(rejected)?;
    apply_hop_overrides(opts, &mut config)?;
    config
        .check_attach(opts.attach == AttachMode::Tc)
        .with_context(rejected)?;
    if config.hops.iter().any(|h| h.interface == opts.iface) {
        bail!(
            "hop interface equals --iface {:?}: hops must be reached through other interfaces",
            opts.iface
        );
    }
    if let (_, Some(note)) = config.effective_slot_count() {
        warn!("{note}");
    }
    if config.hop_directory_url.is_some() {
        // The CA file is read before anything is attached.
        directory_fetch::client_tls(config.directory_ca(&opts.config).as_deref())
            .with_context(rejected)?;
    }
    if let Some(path) = &opts.status_file {
        check_status_file(path)?;
    }
    Ok(config)
}

/// `steerer hop drain|disable|enable` overrides of this interface's hop
/// states (see `hop_control`), each logged.
fn apply_hop_overrides(opts: &RunOptions, config: &mut Config) -> Result<()> {
    let netns = dataplane::netns_id()?;
    let path =
        crate::hop_control::overrides_path(Path::new(instance_lock::LOCK_DIR), &netns, &opts.iface);
    let overrides = crate::hop_control::read(&path).map_err(anyhow::Error::msg)?;
    let (applied, unknown) = crate::hop_control::apply(config, &overrides);
    for (hop, state) in applied {
        info!(hop = %hop, state = ?state, file = %path.display(), "hop state set by `steerer hop` (overrides the config file until `steerer hop enable`)");
    }
    for hop in unknown {
        warn!(hop = %hop, file = %path.display(), "`steerer hop` override for a hop not in the configuration: ignored");
    }
    Ok(())
}

/// The status file's folder exists and takes files.
pub fn check_status_file(path: &Path) -> Result<()> {
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !folder.is_dir() {
        bail!(
            "--status-file {}: folder {} does not exist; create it or choose another path",
            path.display(),
            folder.display()
        );
    }
    let probe = path.with_extension("tmp");
    std::fs::write(&probe, b"").with_context(|| {
        format!(
            "--status-file {}: cannot write in {}",
            path.display(),
            folder.display()
        )
    })?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

async fn run_async(opts: RunOptions, config: Config) -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    // Taken first: a signal during start-up stops it cleanly.
    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut sighup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    let handle = netlink::connect().context("opening rtnetlink")?;
    let mut s = tokio::select! {
        r = setup::start(&opts, &config, &handle) => r?,
        _ = tokio::signal::ctrl_c() => { info!("SIGINT during start-up: stopped, nothing left attached"); return Ok(()); }
        _ = sigterm.recv() => { info!("SIGTERM during start-up: stopped, nothing left attached"); return Ok(()); }
    };
    info!(
        iface = %opts.iface,
        hops = config.hops.len(),
        slots = config.effective_slot_count().0,
        tick_secs = config.tick_secs,
        pins = %s.pin_dir.display(),
        "steering"
    );
    let fetcher = start_directory_fetch(&opts, &config)?;
    let last = run_loop(&opts, &handle, &mut s, &mut sigterm, &mut sighup).await;
    if let Some(f) = fetcher {
        f.abort();
    }
    if let Some(st) = last {
        let total: u64 = st.hops.iter().map(|h| h.failed_total).sum();
        println!(
            "summary: {} ticks, {} flows in table at exit, {} failed flows seen",
            st.tick, st.flows, total
        );
    }
    if let Some(p) = s.probes.take() {
        let c = p.counts;
        info!(
            rounds = c.rounds,
            probes = c.probes,
            answered_rounds = c.answered_rounds,
            "probes stopped; their policy routes removed"
        );
        p.stop(&handle).await;
    }
    shutdown(s, opts.keep_pins)
}

/// `hop_directory_url`: its poller, in the background (the URL and its
/// file as started; a reload does not change them).
fn start_directory_fetch(
    opts: &RunOptions,
    config: &Config,
) -> Result<Option<tokio::task::JoinHandle<()>>> {
    let (Some(url), Some(path)) = (
        &config.hop_directory_url,
        config.directory_file(&opts.config),
    ) else {
        return Ok(None);
    };
    let ca = config.directory_ca(&opts.config);
    let fetcher = directory_fetch::DirectoryFetcher::new(url, path, ca.as_deref())?;
    let every = Duration::from_secs(config.hop_directory_poll_secs);
    info!(url = %url, every_secs = config.hop_directory_poll_secs, "polling the hop directory");
    Ok(Some(tokio::spawn(fetcher.run(every))))
}

/// Tick until a signal; returns the last tick's status. Between ticks,
/// link announcements reach the controller as they come, and hold-downs
/// end on time.
async fn run_loop(
    opts: &RunOptions,
    handle: &rtnetlink::Handle,
    s: &mut Steering,
    sigterm: &mut tokio::signal::unix::Signal,
    sighup: &mut tokio::signal::unix::Signal,
) -> Option<TickStatus> {
    let started = monotonic_ns();
    let mut tick_no = 0u64;
    let mut last = None;
    let mut announcements = match LinkEvents::subscribe() {
        Ok(a) => Some(a),
        Err(e) => {
            warn!(error = %e, "cannot subscribe to link announcements; every hop is checked at every tick instead");
            None
        }
    };
    loop {
        if let Some(p) = &mut s.probes {
            p.start_rounds(s.adapter.controller.poll_probes(monotonic_ns()));
        }
        let wait = s
            .adapter
            .controller
            .poll_timeout()
            .saturating_sub(monotonic_ns());
        let mut changed = Vec::new();
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_nanos(wait)) => {}
            Some(r) = next_round(&mut s.probes) => {
                on_round(s, r);
                continue;
            }
            event = next_announcement(&mut announcements) => {
                changed = on_announcement(handle, &mut s.hops, event).await;
            }
            _ = tokio::signal::ctrl_c() => { info!("SIGINT: stopping"); return last; }
            _ = sigterm.recv() => { info!("SIGTERM: stopping"); return last; }
            _ = sighup.recv() => {
                reload::on_sighup(opts, handle, s).await;
                continue;
            }
        }
        let now = monotonic_ns();
        let due = now >= s.adapter.controller.next_tick();
        if due {
            if reload::check_directory(opts, handle, s).await {
                // The hop list may have changed under `changed`'s indices;
                // the reload wrote every hop's entry from its current state.
                changed.clear();
            }
            changed.extend(match announcements {
                Some(_) => hops::poll_unresolved(handle, &mut s.hops).await,
                None => hops::poll(handle, &mut s.hops).await,
            });
        }
        changed.sort_unstable();
        changed.dedup();
        if !changed.is_empty() {
            if let Some(p) = &mut s.probes {
                // A hop's interface or next hop changed: its probe route too.
                p.sync_links(handle, &s.hops).await;
            }
        }
        for i in changed {
            let name = s.hops[i].name.clone();
            s.adapter.entries.insert(name.clone(), s.hops[i].entry());
            let usable = s.hops[i].usable();
            let (d, out) = s.adapter.link(&mut s.dp, &name, usable, now);
            log_decisions(&d, &out);
        }
        if !due {
            if now >= s.adapter.controller.poll_timeout() {
                let (d, out) = s.adapter.timeout(&mut s.dp, now);
                log_decisions(&d, &out);
            }
            continue;
        }
        tick_no += 1;
        match s.adapter.tick(&mut s.dp, now) {
            Ok(o) => {
                log_decisions(&o.decisions, &o.applied);
                if o.refused_new_flows > 0 {
                    warn!(
                        new_flows = o.refused_new_flows,
                        "new flows over new_flows_per_sec since the last tick: steered by hash without a flow-table entry (a flood of new tuples?), so they cannot evict live flows"
                    );
                }
                if let Some(r) = &o.decisions.report {
                    let elapsed = now.saturating_sub(started) as f64 / 1e9;
                    let mut status = TickStatus::new(tick_no, elapsed, o.flows as u64, r);
                    status.new_flows_not_inserted = o.refused_new_flows;
                    if let Some(p) = &s.probes {
                        status.probe_rounds = p.counts.rounds;
                        status.probe_rounds_answered = p.counts.answered_rounds;
                        for h in &mut status.hops {
                            h.probe_rtt_ms = s.adapter.controller.probe_rtt_ms(&h.name);
                            h.probe_down = s.adapter.controller.probe_down(&h.name);
                        }
                    }
                    print!("{}", status.table());
                    if let Some(path) = &opts.status_file {
                        if let Err(e) = write_status(path, &status) {
                            warn!(error = %format!("{e:#}"), "writing the status file failed; retried at the next tick");
                        }
                    }
                    last = Some(status);
                }
            }
            Err(e) => {
                warn!(tick = tick_no, error = %e, "reading the data plane failed; steering goes on with the last tables, retried at the next tick")
            }
        }
    }
}

/// The next probe round's outcome; never without probes.
async fn next_round(probes: &mut Option<probe::Probes>) -> Option<probe::RoundResult> {
    match probes {
        Some(p) => p.rx.recv().await,
        None => std::future::pending().await,
    }
}

/// A round ended: the controller judges, the tables follow.
fn on_round(s: &mut Steering, r: probe::RoundResult) {
    if let Some(p) = &mut s.probes {
        p.counts.answered_rounds += u64::from(r.rtt_ns.is_some());
    }
    let now = monotonic_ns();
    let d = s.adapter.controller.handle_probe(now, &r.hop, r.rtt_ns);
    let out = s.adapter.apply(&mut s.dp, &d);
    log_decisions(&d, &out);
}

/// The next link announcement; never, once they are unavailable (the
/// loop then checks every hop at every tick).
async fn next_announcement(announcements: &mut Option<LinkEvents>) -> LinkEvent {
    if let Some(a) = announcements {
        if let Some(event) = a.next().await {
            return event;
        }
        warn!("link announcements ended; every hop is checked at every tick instead");
        *announcements = None;
        return LinkEvent::Lost;
    }
    std::future::pending().await
}

/// The hops an announcement changed (index into `hops`).
async fn on_announcement(
    handle: &rtnetlink::Handle,
    hops: &mut [hops::ResolvedHop],
    event: LinkEvent,
) -> Vec<usize> {
    match event {
        LinkEvent::Neighbour { index, ip, mac } => hops::apply_neighbour(hops, index, ip, mac),
        // A link changed (or announcements were lost): check the hops
        // again; a hop's interface may have been recreated under a new
        // index, so all of them (at most a few hundred queries).
        LinkEvent::Link { .. } | LinkEvent::Lost => hops::poll(handle, hops).await,
    }
}

/// Every event with its reason; every failed write.
fn log_decisions(d: &Decisions, out: &ApplyOutcome) {
    for e in &d.events {
        if e.is_warning() {
            warn!("{e}");
        } else {
            info!("{e}");
        }
    }
    if out.flows_expired > 0 {
        info!(
            flows = out.flows_expired,
            "idle flows left the flow table (tcp_idle_secs / udp_idle_secs)"
        );
    }
    for f in &out.failures {
        warn!(failed = %f, "a data-plane write failed; written again at the next tick");
    }
}

fn shutdown(s: Steering, keep_pins: bool) -> Result<()> {
    let dir = s.pin_dir.clone();
    drop(s);
    if keep_pins {
        info!(
            dir = %dir.display(),
            "exiting; programs stay attached and maps pinned (--keep-pins): flows keep \
             being steered with the last slot tables until the next `steerer run`"
        );
    } else {
        dataplane::remove_pins(&dir)?;
        info!(dir = %dir.display(), "detached and removed pinned maps and links");
    }
    Ok(())
}

fn write_status(path: &Path, status: &TickStatus) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(status)?)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_file_needs_an_existing_folder() {
        let err =
            check_status_file(Path::new("/nonexistent-steerer-dir/sub/status.json")).unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains("folder /nonexistent-steerer-dir/sub does not exist"),
            "{msg}"
        );
        let dir = std::env::temp_dir().join(format!("steerer-status-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        check_status_file(&dir.join("status.json")).expect("an existing folder is fine");
        assert!(!dir.join("status.tmp").exists(), "the probe is removed");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
