//! SIGHUP: the configuration file again, while steering. It is checked
//! like at start-up first; a bad one is rejected and the running
//! configuration stays. A good one takes effect without a restart and
//! without moving a flow: hops keep their ids by name, removed hops drain
//! their established flows, added hops join the tables, and the new
//! controller takes over what the running one learned
//! (`Controller::handle_reload`). The slot count, the interface and the
//! attach mode stay as started (they take effect at the next start).

use std::collections::{HashMap, HashSet};

use anyhow::Result;
use tracing::{info, warn};

use super::probe::Probes;
use super::{
    hops::{self, ResolvedHop},
    log_decisions,
    setup::{self, Steering},
    RunOptions,
};
use crate::{config::Config, policy::Controller};

/// Reload, or log why not; steering goes on either way.
pub async fn on_sighup(opts: &RunOptions, handle: &rtnetlink::Handle, s: &mut Steering) {
    info!(config = %opts.config.display(), "SIGHUP: reloading the configuration");
    if let Err(e) = reload(opts, handle, s).await {
        warn!(
            error = %format!("{e:#}"),
            "SIGHUP: reload rejected; the running configuration stays"
        );
    }
}

/// At a tick: if the hop directory file changed since it was read, apply
/// it as a reload (a rejected one is not retried until the file changes
/// again). Whether it was read again.
pub async fn check_directory(
    opts: &RunOptions,
    handle: &rtnetlink::Handle,
    s: &mut Steering,
) -> bool {
    let Some((path, stamp)) = &s.directory else {
        return false;
    };
    let now = crate::config::directory::stamp(path);
    if now == *stamp {
        return false;
    }
    let path = path.clone();
    s.directory = Some((path.clone(), now));
    info!(directory = %path.display(), "hop directory changed: reloading");
    if let Err(e) = reload(opts, handle, s).await {
        warn!(
            error = %format!("{e:#}"),
            directory = %path.display(),
            "hop directory rejected; the running hops stay until the file changes again"
        );
    }
    true
}

async fn reload(opts: &RunOptions, handle: &rtnetlink::Handle, s: &mut Steering) -> Result<()> {
    let mut config = super::check(opts)?;
    let running_slots = s.dp.config()?.slot_count;
    if config.effective_slot_count().0 != running_slots {
        warn!(
            running = running_slots,
            configured = config.effective_slot_count().0,
            "the slot count stays as started until the next start"
        );
        config.slot_count = Some(running_slots);
    }
    let resolved = resolve_changed(handle, &config, &s.hops).await?;
    let hash_key = s.dp.config()?.hash_key;
    let params = config.params(setup::enumeration_seed(&hash_key));
    // Ids are the running controller's, by name (`handle_reload`).
    // Probe times are the running controller's (carried over by name).
    let mut hops = setup::controller_hops(
        &config,
        &resolved,
        &vec![None; resolved.len()],
        &HashMap::new(),
    );
    let running: HashSet<&str> = s.hops.iter().map(|r| r.name.as_str()).collect();
    let now = std::time::SystemTime::now();
    for (h, c) in hops.iter_mut().zip(&config.hops) {
        // Not seen before, recently published (SPEC 5.4): windows take it
        // before others.
        let seen = running.contains(h.spec.name.as_str());
        h.spec.fresh = config.fresh(c, now, !seen, seen);
    }
    let fresh = Controller::new(hops, params);
    let old = std::mem::replace(&mut s.adapter.controller, fresh);
    let (summary, decisions) = s.adapter.controller.handle_reload(old);
    for h in decisions.hops.iter().filter(|h| !h.pooled) {
        if summary.removed.contains(&h.name) {
            warn!(
                hop = %h.name, id = h.id,
                "hop no longer configured: its established flows drain on it, no new flows"
            );
        }
    }
    s.adapter.entries = setup::hop_entries(&resolved);
    for r in &resolved {
        // Every entry is written again (a hop's way out may have changed).
        if let Some(id) = s.adapter.controller.id_of(&r.name) {
            s.adapter.applied.forget_hop(id);
        }
    }
    s.hops = resolved;
    s.directory = setup::directory_of(opts, &config);
    match (&mut s.probes, config.probe.is_some()) {
        (Some(p), true) => p.sync(handle, &config, &s.hops).await,
        (Some(_), false) => {
            if let Some(p) = s.probes.take() {
                p.stop(handle).await;
            }
            info!("[probe] removed: probes stopped, their policy routes removed");
        }
        (None, true) => s.probes = Probes::start(handle, &config, &s.hops).await,
        (None, false) => {}
    }
    let out = s.adapter.apply(&mut s.dp, &decisions);
    log_decisions(&mut s.book, &decisions, &out);
    setup::log_port_sets(&s.adapter.controller, &config);
    setup::log_hop_states(&config);
    info!(
        hops = s.hops.len(),
        added = ?summary.added,
        removed = ?summary.removed,
        "reloaded: kept hops keep what was learned and their flows; removed hops' flows drain on them"
    );
    Ok(())
}

/// The new list's hops: an unchanged one (same name, interface, next hop
/// and mark) as it is known now, the others resolved afresh (an error,
/// such as a vanished interface, rejects the reload).
async fn resolve_changed(
    handle: &rtnetlink::Handle,
    config: &Config,
    running: &[ResolvedHop],
) -> Result<Vec<ResolvedHop>> {
    // By name: a pool may hold many thousands of hops.
    let by_name: HashMap<&str, &ResolvedHop> =
        running.iter().map(|r| (r.name.as_str(), r)).collect();
    let same = |h: &crate::config::HopConfig| {
        by_name.get(h.name.as_str()).is_some_and(|r| {
            r.interface == h.interface && r.next_hop == h.next_hop && r.mark == h.mark
        })
    };
    // The others resolved together (two netlink dumps, one wait).
    let changed: Vec<crate::config::HopConfig> =
        config.hops.iter().filter(|h| !same(h)).cloned().collect();
    let mut fresh = hops::resolve_all(handle, &changed).await?.into_iter();
    let mut out = Vec::with_capacity(config.hops.len());
    for h in &config.hops {
        match by_name.get(h.name.as_str()).filter(|_| same(h)) {
            Some(r) => out.push((*r).clone()),
            None => out.extend(fresh.next()),
        }
    }
    Ok(out)
}
