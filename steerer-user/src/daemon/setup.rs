//! Start-up: resolve the hops, load (or reuse) the pinned data plane, give
//! every hop name its id, build the controller, write its first decisions
//! and attach. Any error here is fatal, and what this start created is
//! removed again (pins of an earlier run are left as they were).

use std::{
    collections::{HashMap, HashSet},
    net::IpAddr,
    path::PathBuf,
};

use anyhow::{bail, Context as _, Result};
use steerer_common::{
    config::CONFIG_READY,
    flow::{LocalAddrKey, FAMILY_IPV4, FAMILY_IPV6},
    limits::MAX_HOPS,
    DataplaneConfig, FlowKey, FlowValue, HopEntry,
};
use tracing::{info, warn};

pub(super) use super::controller_hops::{controller_hops, log_hop_states, log_port_sets};
use super::{
    adapter::Adapter,
    hops::{self, ResolvedHop},
    probe::Probes,
    RunOptions,
};
use crate::{
    config::Config,
    dataplane::{self, map_names, Attachment, Dataplane},
    monotonic_ns, netlink,
    policy::{Controller, Decisions},
};

/// A running data plane and its control loop.
pub struct Steering {
    pub dp: Dataplane,
    pub adapter: Adapter,
    /// In configuration order.
    pub hops: Vec<ResolvedHop>,
    pub pin_dir: PathBuf,
    /// The hop directory and its stamp when last read.
    pub directory: Option<(PathBuf, Option<DirectoryStamp>)>,
    /// Active probes (`[probe]`), with their policy routes.
    pub probes: Option<Probes>,
    /// Events and reasons for `steerer status`, and where it is written.
    pub book: super::status::StatusBook,
    pub status_path: PathBuf,
}

/// What tells a changed directory file from an unchanged one.
pub type DirectoryStamp = (std::time::SystemTime, u64);

/// The configuration's hop directory with its stamp now.
pub fn directory_of(
    opts: &RunOptions,
    config: &Config,
) -> Option<(PathBuf, Option<DirectoryStamp>)> {
    let path = config.directory_file(&opts.config)?;
    let stamp = crate::config::directory::stamp(&path);
    Some((path, stamp))
}

/// Removes the pins this start created unless it finishes (an error, or a
/// signal that drops the start-up future).
struct SetupGuard {
    pin_dir: PathBuf,
    created: bool,
    armed: bool,
}

impl Drop for SetupGuard {
    fn drop(&mut self) {
        if self.armed && self.created {
            let _ = dataplane::remove_pins(&self.pin_dir);
            info!(dir = %self.pin_dir.display(), "start-up did not finish: removed the pins it created");
        }
    }
}

pub async fn start(
    opts: &RunOptions,
    config: &Config,
    handle: &rtnetlink::Handle,
) -> Result<Steering> {
    let resolved = hops::resolve_all(handle, &config.hops).await?;
    if opts.wait_for_hops {
        if super::check_plan::require_a_usable_hop(config, &resolved, "run").is_err() {
            warn!("no hop can take new flows yet (--wait-for-hops): new flows pass unsteered until one can");
        }
    } else {
        super::check_plan::require_a_usable_hop(config, &resolved, "run")?;
    }
    // Probes first: one round's times rank equal hops for the first
    // windows (SPEC 5.4, nearest among equals).
    let mut probes = Probes::start(handle, config, &resolved).await;
    let latencies = match &mut probes {
        Some(p) => p.first_round(config.hops.len()).await,
        None => HashMap::new(),
    };
    match start_dataplane(opts, config, handle, resolved, &latencies).await {
        Ok(mut s) => {
            s.probes = probes;
            Ok(s)
        }
        Err(e) => {
            if let Some(p) = probes {
                p.stop(handle).await;
            }
            Err(e)
        }
    }
}

async fn start_dataplane(
    opts: &RunOptions,
    config: &Config,
    handle: &rtnetlink::Handle,
    resolved: Vec<ResolvedHop>,
    latencies: &HashMap<String, f64>,
) -> Result<Steering> {
    let pin_dir = dataplane::pin_dir_for(&opts.iface)?;
    if opts.fresh {
        dataplane::remove_pins(&pin_dir)?;
        info!(dir = %pin_dir.display(), "--fresh: removed pinned maps");
    }
    dataplane::ensure_bpffs()?;
    let reused = pin_dir.join(map_names::FLOWS).exists();
    let mut guard = SetupGuard {
        pin_dir: pin_dir.clone(),
        created: !reused,
        armed: true,
    };
    let mut dp = Dataplane::load(&pin_dir, opts.flow_table_size)?;
    read_reports(&mut dp);
    report_flow_table(&dp, opts, reused)?;
    set_flood_guard(&mut dp, config)?;
    let hash_key = hash_key(&dp, reused)?;
    let (flows, failovers) = if reused {
        (dp.flows()?, dp.failovers()?)
    } else {
        (Vec::new(), Vec::new())
    };
    let pinned = pinned_ids(&dp, config, &flows)?;
    let controller_hops = controller_hops(config, &resolved, &pinned.held, latencies);
    let params = config.params(enumeration_seed(&hash_key));
    let mut controller = Controller::new(controller_hops, params);
    for (id, name) in pinned.draining {
        controller.hold_draining(id, name);
    }
    let initial = controller.initial();
    controller.handle_start(monotonic_ns(), &flows, &failovers);
    if reused {
        info!(
            flows = flows.len(),
            "baseline taken: the first tick measures only what moves from now on"
        );
    }
    let mut adapter = Adapter::new(controller, hop_entries(&resolved));
    // Destination tables of an earlier run belong to its windows.
    for (dest, _) in dp.destinations()? {
        dp.remove_destination(&dest)?;
    }
    refresh_local_addrs(handle, &mut dp).await?;
    log_port_sets(&adapter.controller, config);
    log_hop_states(config);
    clear_unheld_ids(&mut dp, &initial)?;
    let out = adapter.apply(&mut dp, &initial);
    if !out.failures.is_empty() {
        bail!("writing the first tables: {}", out.failures.join("; "));
    }
    let slot_count = config.effective_slot_count().0;
    dp.set_config(&DataplaneConfig {
        hash_key,
        slot_count,
        flags: CONFIG_READY,
    })?;
    let attachment = dp
        .attach(&opts.iface, opts.attach)
        .with_context(|| format!("attaching to {}", opts.iface))?;
    if attachment == Attachment::Replaced {
        info!(iface = %opts.iface, "took over the pinned links of an earlier run: programs replaced in place");
    }
    guard.armed = false;
    Ok(Steering {
        dp,
        adapter,
        hops: resolved,
        pin_dir,
        directory: directory_of(opts, config),
        probes: None,
        book: Default::default(),
        status_path: crate::status_view::status_path(
            std::path::Path::new(crate::instance_lock::LOCK_DIR),
            &crate::dataplane::netns_id()?,
            &opts.iface,
        ),
    })
}

/// The data plane's rare error reports (aya-log: a failed redirect with
/// its hop and ifindex, a flow table that refused an entry), logged as
/// they come, for as long as the daemon runs.
fn read_reports(dp: &mut Dataplane) {
    let Some(logger) = dp.take_logger() else {
        warn!("the data plane's error reports cannot be read (no aya-log ring buffer); its counters still count every packet");
        return;
    };
    // SAFETY: the fd is the logger's ring buffer, owned by the logger and
    // open for as long as it lives, which is as long as the AsyncFd.
    let registered = unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(logger, tokio::io::Interest::READABLE)
    };
    let mut fd = match registered {
        Ok(fd) => fd,
        Err(e) => {
            warn!(error = %e, "cannot watch the data plane's error reports; its counters still count every packet");
            return;
        }
    };
    tokio::spawn(async move {
        loop {
            match fd.readable_mut().await {
                Ok(mut guard) => {
                    guard.get_inner_mut().flush();
                    guard.clear_ready();
                }
                Err(e) => {
                    warn!(error = %e, "reading the data plane's error reports stopped");
                    return;
                }
            }
        }
    });
}

/// How each hop name is reached now (the adapter's entries).
pub(super) fn hop_entries(resolved: &[ResolvedHop]) -> HashMap<String, HopEntry> {
    resolved
        .iter()
        .map(|r| (r.name.clone(), r.entry()))
        .collect()
}

/// The pool enumeration differs per run, like the hash key (and stays the
/// same over a reload).
pub(super) fn enumeration_seed(hash_key: &[u64; 2]) -> u64 {
    hash_key[0] ^ hash_key[1].rotate_left(17)
}

/// The key of the pinned maps (their flows were hashed with it), else a
/// new random one.
fn hash_key(dp: &Dataplane, reused: bool) -> Result<[u64; 2]> {
    let previous = dp.config()?;
    if reused && previous.flags & CONFIG_READY != 0 {
        info!(dir = %dp.pin_dir().display(), "reusing pinned maps: established flows keep their hops");
        return Ok(previous.hash_key);
    }
    random_key()
}

fn report_flow_table(dp: &Dataplane, opts: &RunOptions, reused: bool) -> Result<()> {
    let entries = dp.flow_table_entries()?;
    match opts.flow_table_size {
        Some(asked) if reused && asked != entries => warn!(
            entries,
            asked,
            "the reused flow table keeps its size; --flow-table-size takes effect with --fresh"
        ),
        _ => info!(entries, "flow table"),
    }
    Ok(())
}

/// The flood guard's limit, split over the CPUs (rounded up).
fn set_flood_guard(dp: &mut Dataplane, config: &Config) -> Result<()> {
    let entries = dp.flow_table_entries()?;
    let total = config.new_flow_rate(entries);
    let cpus = aya::util::nr_cpus().map_or(1, |n| n.max(1)) as u64;
    let per_cpu = total.div_ceil(cpus).min(u32::MAX as u64) as u32;
    dp.set_new_flow_limit(per_cpu)?;
    if total == 0 {
        warn!("new_flows_per_sec = 0: no flood guard, every new flow gets a flow-table entry");
    } else {
        info!(
            new_flows_per_sec = total,
            per_cpu,
            "flood guard: new flows beyond this rate are steered by hash without a flow-table entry"
        );
    }
    Ok(())
}

/// What the pins say of hop ids: the id each configured name holds, and
/// the ids flows point at whose name is not configured (or unknown): they
/// stay theirs while the flows drain. Every other id is free; the
/// controller hands ids to the hops its tables name.
pub(super) struct PinnedIds {
    pub held: Vec<Option<u32>>,
    pub draining: Vec<(u32, Option<String>)>,
}

pub(super) fn pinned_ids(
    dp: &Dataplane,
    config: &Config,
    flows: &[(FlowKey, FlowValue)],
) -> Result<PinnedIds> {
    let previous = dp.hop_names()?;
    let mut referenced = vec![0usize; MAX_HOPS as usize];
    for (_, v) in flows {
        if let Some(n) = referenced.get_mut(v.hop as usize) {
            *n += 1;
        }
    }
    let id_of: HashMap<&str, u32> = previous.iter().map(|(i, n)| (n.as_str(), *i)).collect();
    let held: Vec<Option<u32>> = config
        .hops
        .iter()
        .map(|h| id_of.get(h.name.as_str()).copied())
        .collect();
    for (h, id) in config.hops.iter().zip(&held) {
        if let Some(id) = id {
            info!(hop = %h.name, id, "hop keeps its id");
        }
    }
    let configured: HashSet<u32> = held.iter().flatten().copied().collect();
    let mut draining = Vec::new();
    for id in 0..MAX_HOPS {
        if referenced[id as usize] == 0 || configured.contains(&id) {
            continue;
        }
        let name = previous
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, n)| n.clone());
        warn!(
            hop = name.as_deref().unwrap_or("(no name)"),
            id,
            flows = referenced[id as usize],
            "hop no longer configured: its established flows drain on it, no new flows"
        );
        draining.push((id, name));
    }
    Ok(PinnedIds { held, draining })
}

/// Entries of ids the controller does not hold (an earlier run's) are
/// cleared before the first tables are written.
pub(super) fn clear_unheld_ids(dp: &mut Dataplane, d: &Decisions) -> Result<()> {
    let named: Vec<u32> = dp.hop_names()?.into_iter().map(|(id, _)| id).collect();
    for id in 0..MAX_HOPS {
        if d.hops.iter().any(|h| h.id == id) {
            continue;
        }
        if named.contains(&id) || dp.hop(id)?.is_enabled() {
            dp.set_hop_name(id, None)?;
            dp.set_hop(id, &HopEntry::default())?;
        }
    }
    Ok(())
}

async fn refresh_local_addrs(handle: &rtnetlink::Handle, dp: &mut Dataplane) -> Result<()> {
    let addrs = netlink::local_addresses(handle)
        .await
        .context("reading the gateway's own addresses")?;
    let keys: Vec<LocalAddrKey> = addrs
        .iter()
        .map(|a| {
            let mut key = LocalAddrKey::default();
            match a {
                IpAddr::V4(v4) => {
                    key.addr[..4].copy_from_slice(&v4.octets());
                    key.family = FAMILY_IPV4;
                }
                IpAddr::V6(v6) => {
                    key.addr = v6.octets();
                    key.family = FAMILY_IPV6;
                }
            }
            key
        })
        .collect();
    dp.set_local_addrs(&keys)?;
    Ok(())
}

fn random_key() -> Result<[u64; 2]> {
    let mut b = [0u8; 16];
    getrandom::getrandom(&mut b)
        .map_err(|e| anyhow::anyhow!("reading random bytes for the hash key: {e}"))?;
    let lo = u64::from_le_bytes(b[..8].try_into()?);
    let hi = u64::from_le_bytes(b[8..].try_into()?);
    Ok([lo, hi])
}
