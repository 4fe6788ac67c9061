//! `steerer run`: check everything, take the lock, start (`setup`), then
//! loop (`tick_loop`): every K seconds check the hops (`hops`) and tick the
//! controller over the maps (`adapter`) until SIGINT/SIGTERM. Nothing after start-up stops
//! steering: a failed tick is logged and retried at the next.

pub mod adapter;
mod check_plan;
mod controller_hops;
mod directory_fetch;
mod evictions;
pub mod hops;
pub mod metrics;
mod probe;
mod probe_routes;
mod reload;
pub mod setup;
mod status;
mod tick_loop;

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
    netlink,
    policy::Decisions,
};
pub use check_plan::check_only;
use setup::Steering;

pub struct RunOptions {
    pub iface: String,
    pub config: PathBuf,
    pub attach: AttachMode,
    pub fresh: bool,
    pub keep_pins: bool,
    pub status_file: Option<PathBuf>,
    pub flow_table_size: Option<u32>,
    /// Print each tick's table on stdout.
    pub print_ticks: bool,
    /// Start even if no hop can take new flows yet.
    pub wait_for_hops: bool,
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
    // Bound before anything is attached: a taken address stops the start.
    let metrics = match config.metrics_listen {
        Some(listen) => {
            let m = std::sync::Arc::new(metrics::Metrics::new());
            Some((metrics::serve(listen, m.clone()).await?, m))
        }
        None => None,
    };
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
    let watch = metrics.as_ref().map(|(_, m)| m.clone());
    let last = tick_loop::run_loop(&opts, &handle, &mut s, &mut sigterm, &mut sighup, watch).await;
    if let Some((server, _)) = metrics {
        server.abort();
    }
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

/// Every event with its reason; every failed write.
fn log_decisions(book: &mut status::StatusBook, d: &Decisions, out: &ApplyOutcome) {
    book.record(&d.events, status::unix_now());
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
    // A clean exit takes its status along (`steerer status` then says none
    // runs); a crash leaves it for the post-mortem.
    let _ = std::fs::remove_file(&s.status_path);
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
