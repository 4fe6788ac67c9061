//! `steerer run`: validate, load, attach, then tick every K seconds until
//! SIGINT/SIGTERM.

use std::{
    collections::HashMap,
    net::IpAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{bail, Context as _, Result};
use steerer_common::{
    config::CONFIG_READY,
    flow::{DestKey, LocalAddrKey},
    hop::{HOP_ACTION_MARK, HOP_ENABLED},
    limits::{MAX_DEST_TABLES, MAX_HOPS},
    DataplaneConfig, FlowKey, HopEntry,
};
use steerer_user::{
    config::{Config, HopAction},
    dataplane::{self, AttachMode, Dataplane},
    instance_lock::{self, InstanceLock},
    monotonic_ns, netlink,
    policy::blocked::BlockList,
    policy::{Engine, FlowSample, HopSpec, Params},
    portsets::{self, plan::PortSetPlan, PortSet},
    report::TickStatus,
};
use tracing::{info, warn};

pub struct RunOptions {
    pub iface: String,
    pub config: PathBuf,
    pub attach: AttachMode,
    pub fresh: bool,
    pub keep_pins: bool,
    pub status_file: Option<PathBuf>,
    pub flow_table_size: Option<u32>,
}

struct ResolvedHop {
    ifindex: u32,
    src_mac: [u8; 6],
    /// Redirect hops: the next hop's MAC once it resolved.
    dst_mac: Option<[u8; 6]>,
    /// Mark hops: the mark (usable at once, no neighbour to resolve).
    mark: Option<u32>,
    /// The interface exists (SPEC 5.5: a hop whose link is gone has
    /// disappeared).
    link_present: bool,
}

impl ResolvedHop {
    fn usable(&self) -> bool {
        self.link_present && (self.mark.is_some() || self.dst_mac.is_some())
    }
}

pub fn run(opts: RunOptions) -> Result<()> {
    // Everything that can be wrong with the input is checked before the
    // kernel is touched.
    if netlink::ifindex(&opts.iface).is_none() {
        bail!("--iface: unknown interface {:?}", opts.iface);
    }
    let config = Config::load(&opts.config, &netlink::interface_exists)
        .with_context(|| format!("rejected config {}", opts.config.display()))?;
    config
        .check_attach(opts.attach == AttachMode::Tc)
        .with_context(|| format!("rejected config {}", opts.config.display()))?;
    if config.hops.iter().any(|h| h.interface == opts.iface) {
        bail!(
            "hop interface equals --iface {:?}: hops must be reached through other interfaces",
            opts.iface
        );
    }
    // Held until this function returns; the kernel releases it if the
    // process dies instead.
    let lock = InstanceLock::acquire(Path::new(instance_lock::LOCK_DIR), &opts.iface)?;
    info!(lock = %lock.path().display(), pid = std::process::id(), "one steerer per interface: lock taken");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let result = runtime.block_on(run_async(opts, config));
    drop(lock);
    result
}

async fn run_async(opts: RunOptions, config: Config) -> Result<()> {
    let handle = netlink::connect().context("opening rtnetlink")?;
    let mut resolved = Vec::new();
    for hop in &config.hops {
        let ifindex = netlink::ifindex(&hop.interface)
            .with_context(|| format!("hop {}: interface {} vanished", hop.name, hop.interface))?;
        let (Some(next_hop), HopAction::Redirect) = (hop.next_hop, hop.action) else {
            // `mark`: the kernel's policy routing picks the way out.
            info!(hop = %hop.name, mark = hop.mark.unwrap_or_default(), "mark hop");
            resolved.push(ResolvedHop {
                ifindex,
                src_mac: [0; 6],
                dst_mac: None,
                mark: hop.mark,
                link_present: true,
            });
            continue;
        };
        let src_mac = netlink::link_mac(&handle, ifindex)
            .await?
            .with_context(|| {
                format!(
                    "hop {}: interface {} has no MAC address (use action = \"mark\" for tunnels)",
                    hop.name, hop.interface
                )
            })?;
        let dst_mac =
            netlink::resolve_next_hop(&handle, ifindex, next_hop, Duration::from_secs(3)).await?;
        match dst_mac {
            Some(mac) => {
                info!(hop = %hop.name, next_hop = %next_hop, mac = %fmt_mac(&mac), "next hop resolved")
            }
            None => {
                warn!(hop = %hop.name, next_hop = %next_hop, "next hop does not resolve; hop disabled until it does")
            }
        }
        resolved.push(ResolvedHop {
            ifindex,
            src_mac,
            dst_mac,
            mark: None,
            link_present: true,
        });
    }

    let pin_dir = dataplane::pin_dir_for(&opts.iface);
    if opts.fresh {
        dataplane::remove_pins(&pin_dir)?;
        info!(dir = %pin_dir.display(), "--fresh: removed pinned maps");
    }
    let reused = pin_dir.join(dataplane::map_names::FLOWS).exists();
    let mut dp = Dataplane::load(&pin_dir, opts.flow_table_size)?;
    let entries = dp.flow_table_entries()?;
    match opts.flow_table_size {
        Some(asked) if reused && asked != entries => warn!(
            entries,
            asked,
            "the reused flow table keeps its size; --flow-table-size takes effect with --fresh"
        ),
        _ => info!(entries, "flow table"),
    }
    let slot_count = config.effective_slot_count();
    let previous = dp.config()?;
    let hash_key = if reused && previous.flags & CONFIG_READY != 0 {
        info!(dir = %pin_dir.display(), "reusing pinned maps: established flows keep their hops");
        previous.hash_key
    } else {
        random_key()?
    };

    let mut engine: Engine<FlowKey> = Engine::new(
        config
            .hops
            .iter()
            .map(|h| HopSpec {
                name: h.name.clone(),
                initial_estimate: h.initial_estimate_bytes_per_sec(),
                operator: h.operator.clone(),
                subnet: h.next_hop.map(subnet_of),
                // No directory feeds the daemon yet: every hop is as fresh.
                fresh: false,
                latency_ms: h.latency_ms,
            })
            .collect(),
        Params {
            tick_ns: config.tick_secs * 1_000_000_000,
            fail_after_ns: config.fail_after_secs * 1_000_000_000,
            max_share: config.max_share,
            max_operator_share: config.max_operator_share,
            slot_count,
            window_base: config.window,
            grow_after: config.grow_after,
            grow_by: config.grow_by,
            // The pool enumeration differs per run, like the hash key.
            seed: hash_key[0] ^ hash_key[1].rotate_left(17),
            ..Params::default()
        },
    );
    // Destination tables of an earlier run belong to its engine's windows.
    for (dest, _) in dp.destinations()? {
        dp.remove_destination(&dest)?;
    }
    let mut dest_tables = DestinationTables::default();
    for (id, r) in resolved.iter().enumerate() {
        dp.set_hop(id as u32, &hop_entry(r))?;
        engine.set_usable(id, r.usable());
    }
    // Hop ids beyond this config (from an older one) are disabled.
    for id in resolved.len() as u32..MAX_HOPS {
        if dp.hop(id)?.is_enabled() {
            dp.set_hop(id, &HopEntry::default())?;
        }
    }
    refresh_local_addrs(&handle, &mut dp).await?;
    // Port sets from the hops' exit policies: one slot table per set, each
    // holding only hops that accept every port of it.
    let policies: Vec<PortSet> = config.hops.iter().map(|h| h.accepted_ports()).collect();
    let plan_weights: Vec<f64> = config
        .hops
        .iter()
        .map(|h| h.initial_estimate_bytes_per_sec())
        .collect();
    let mut plan = PortSetPlan::new(&policies, &plan_weights);
    // The ports each hop accepts now: its exit policy minus its exclusions.
    let mut accepts = policies.clone();
    dp.set_port_sets(&plan.port_to_set)?;
    if !plan.is_trivial() {
        for (i, (ports, allowed)) in plan.sets.iter().enumerate() {
            let names: Vec<&str> = config
                .hops
                .iter()
                .zip(allowed)
                .filter(|(_, &a)| a)
                .map(|(h, _)| h.name.as_str())
                .collect();
            let shown = portsets::abbreviate(&ports.to_ranges(), 60);
            info!(set = i, ports = %shown, hops = ?names, "port set");
        }
    }
    let first = engine.tick(monotonic_ns(), std::iter::empty());
    let mut tables = set_tables(&plan, &engine, &first.table);
    for (i, t) in tables.iter().enumerate() {
        dp.write_slots(i as u32, t, None)?;
    }
    dp.set_config(&DataplaneConfig {
        hash_key,
        slot_count,
        flags: CONFIG_READY,
    })?;
    let attachment = dp
        .attach(&opts.iface, opts.attach)
        .with_context(|| format!("attaching to {}", opts.iface))?;
    if attachment == dataplane::Attachment::Replaced {
        info!(iface = %opts.iface, "took over the pinned links of an earlier run: programs replaced in place");
    }
    info!(
        iface = %opts.iface,
        hops = config.hops.len(),
        slots = slot_count,
        tick_secs = config.tick_secs,
        pins = %pin_dir.display(),
        "steering"
    );

    let started = monotonic_ns();
    // Blocked (hop, destination port) pairs (SPEC 5.5): fed by failed flows
    // and the data plane's failover counters, enforced by taking the port
    // out of the hop's accepted ports, so its port set's table leaves it out.
    let mut blocks: BlockList<u16> = BlockList::new();
    let mut failovers_seen: HashMap<(u32, u16), u64> = dp
        .failovers()?
        .into_iter()
        .map(|(k, n)| ((k.hop, k.dst_port), n))
        .collect();
    let mut excluded: Vec<(u32, u16)> = Vec::new();
    let mut last_tick = started;
    let mut interval = tokio::time::interval(Duration::from_secs(config.tick_secs));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval.tick().await;
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut tick_no = 0u64;
    let mut last_status = None;
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = tokio::signal::ctrl_c() => { info!("SIGINT: stopping"); break; }
            _ = sigterm.recv() => { info!("SIGTERM: stopping"); break; }
        }
        tick_no += 1;
        // A hop whose interface vanished is out at once (SPEC 5.5,
        // disappeared): disabled in the data plane (fast failover skips it
        // too), out of every table, its flows reset so retries go elsewhere.
        let mut vanished = Vec::new();
        for (id, r) in resolved.iter_mut().enumerate() {
            let hop = &config.hops[id];
            match netlink::ifindex(&hop.interface) {
                Some(index) if r.link_present && index == r.ifindex => {}
                Some(index) => {
                    // Back (or recreated under the same name): take the new
                    // index and MAC; a redirect hop re-resolves below.
                    r.ifindex = index;
                    r.link_present = true;
                    if r.mark.is_none() {
                        r.src_mac = netlink::link_mac(&handle, index)
                            .await?
                            .unwrap_or(r.src_mac);
                        r.dst_mac = None;
                    }
                    info!(hop = %hop.name, interface = %hop.interface, "hop interface is back");
                    dp.set_hop(id as u32, &hop_entry(r))?;
                    engine.set_usable(id, r.usable());
                }
                None if r.link_present => {
                    r.link_present = false;
                    warn!(hop = %hop.name, interface = %hop.interface, "hop interface vanished: hop disabled, its flows reset");
                    dp.set_hop(id as u32, &hop_entry(r))?;
                    engine.set_usable(id, false);
                    vanished.push(id as u32);
                }
                None => {}
            }
        }
        // Hops whose next hop did not resolve get another chance every tick.
        for (id, r) in resolved.iter_mut().enumerate() {
            if !r.link_present {
                continue;
            }
            if let (false, Some(ip)) = (r.usable(), config.hops[id].next_hop) {
                let ip: IpAddr = ip;
                if let Some(mac) =
                    netlink::resolve_next_hop(&handle, r.ifindex, ip, Duration::ZERO).await?
                {
                    info!(hop = %config.hops[id].name, mac = %fmt_mac(&mac), "next hop resolved; hop enabled");
                    r.dst_mac = Some(mac);
                    dp.set_hop(id as u32, &hop_entry(r))?;
                    engine.set_usable(id, true);
                } else {
                    netlink::trigger_resolution(ip);
                }
            }
        }
        let mut flows = dp.flows()?;
        reset_flows(&mut dp, &mut flows, &vanished, "vanished")?;
        let now = monotonic_ns();
        let samples = flows.iter().map(|(k, v)| FlowSample {
            key: *k,
            destination: DestKey::of(k).id(),
            hop: v.hop,
            bytes: v.bytes,
            reply_bytes: v.reply_bytes,
            packets: v.packets,
            reply_packets: v.reply_packets,
            first_seen_ns: v.first_seen_ns,
            last_seen_ns: v.last_seen_ns,
        });
        // Fast failovers first: the engine judges silent hops with them.
        for (k, n) in dp.failovers()? {
            let seen = failovers_seen.insert((k.hop, k.dst_port), n).unwrap_or(0);
            if n > seen {
                blocks.failovers(k.hop, k.dst_port, n - seen, now);
                engine.record_failovers(k.hop, n - seen);
            }
        }
        // A destination's own window only holds hops that accept its port
        // and are not excluded for it (the port sets enforce the same for
        // every other flow).
        let allowed = |d: u64, h: u32| {
            accepts
                .get(h as usize)
                .is_some_and(|a| a.contains(DestKey::port_of(d)))
        };
        let report = engine.tick_with(now, samples, &allowed);

        for &h in &report.disappeared {
            blocks.forget_hop(h);
            warn!(
                hop = config.hops.get(h as usize).map_or("?", |c| c.name.as_str()),
                "no reply on any flow: hop taken out of every table until its re-test"
            );
        }
        reset_flows(&mut dp, &mut flows, &report.disappeared, "disappeared")?;
        for (k, hop) in &report.newly_failed_flows {
            blocks.flow_failed(*hop, k.dst_port, now);
        }
        for (k, v) in &flows {
            if v.reply_packets > 0 && v.first_seen_ns >= last_tick {
                blocks.flow_answered(v.hop, k.dst_port);
            }
        }
        last_tick = now;
        let mut now_excluded = blocks.excluded_now(now);
        now_excluded.sort_unstable();
        if now_excluded != excluded {
            let hop_name = |hop: u32| {
                config
                    .hops
                    .get(hop as usize)
                    .map_or("?", |h| h.name.as_str())
            };
            for &(hop, port) in now_excluded.iter().filter(|x| !excluded.contains(x)) {
                warn!(
                    hop = hop_name(hop),
                    port, "hop drops connections to this port: excluded for it"
                );
            }
            for &(hop, port) in excluded.iter().filter(|x| !now_excluded.contains(x)) {
                info!(
                    hop = hop_name(hop),
                    port, "exclusion expired: the hop is offered this port again"
                );
            }
            excluded = now_excluded;
            accepts = policies.clone();
            for &(hop, port) in &excluded {
                if let Some(a) = accepts.get_mut(hop as usize) {
                    a.remove(port);
                }
            }
            plan = PortSetPlan::new(&accepts, &plan_weights);
            dp.set_port_sets(&plan.port_to_set)?;
        }
        let next = set_tables(&plan, &engine, &report.table);
        for (i, t) in next.iter().enumerate() {
            dp.write_slots(i as u32, t, tables.get(i).map(Vec::as_slice))?;
        }
        tables = next;
        dest_tables.sync(&mut dp, &report, &flows)?;
        let status = TickStatus::new(
            tick_no,
            (now - started) as f64 / 1e9,
            flows.len() as u64,
            &report,
        );
        print!("{}", status.table());
        if let Some(path) = &opts.status_file {
            write_status(path, &status)?;
        }
        last_status = Some(status);
    }

    if let Some(s) = last_status {
        let total: u64 = s.hops.iter().map(|h| h.failed_total).sum();
        println!(
            "summary: {} ticks, {} flows in table at exit, {} failed flows seen",
            s.tick, s.flows, total
        );
    }
    if opts.keep_pins {
        info!(
            dir = %pin_dir.display(),
            "exiting; programs stay attached and maps pinned (--keep-pins): flows keep \
             being steered with the last slot tables until the next `steerer run`"
        );
        drop(dp);
    } else {
        let dir = dp.pin_dir().to_owned();
        drop(dp);
        dataplane::remove_pins(&dir)?;
        info!(dir = %dir.display(), "detached and removed pinned maps and links");
    }
    Ok(())
}

/// The data plane's destination tables (SPEC 5.4), kept in step with the
/// engine's destination windows: an index per destination, freed when its
/// window goes.
#[derive(Default)]
struct DestinationTables {
    held: HashMap<u64, (DestKey, u32, Vec<u32>)>,
    free: Vec<u32>,
    next: u32,
}

impl DestinationTables {
    fn sync(
        &mut self,
        dp: &mut Dataplane,
        report: &steerer_user::policy::TickReport<FlowKey>,
        flows: &[(FlowKey, steerer_common::FlowValue)],
    ) -> Result<()> {
        let wanted: HashMap<u64, &[u32]> = report
            .destination_tables
            .iter()
            .map(|d| (d.destination, d.table.as_slice()))
            .collect();
        let gone: Vec<u64> = self
            .held
            .keys()
            .filter(|d| !wanted.contains_key(d))
            .copied()
            .collect();
        for d in gone {
            if let Some((key, index, _)) = self.held.remove(&d) {
                dp.remove_destination(&key)?;
                self.free.push(index);
                info!(destination = %fmt_dest(&key), "destination window closed");
            }
        }
        // Keys of newly windowed destinations, from the flows that made them.
        let mut new_keys: HashMap<u64, DestKey> = HashMap::new();
        if wanted.keys().any(|d| !self.held.contains_key(d)) {
            for (k, _) in flows {
                let key = DestKey::of(k);
                let id = key.id();
                if wanted.contains_key(&id) && !self.held.contains_key(&id) {
                    new_keys.entry(id).or_insert(key);
                }
            }
        }
        let mut ids: Vec<u64> = wanted.keys().copied().collect();
        ids.sort_unstable();
        for d in ids {
            let table = wanted[&d];
            if let Some((key, index, previous)) = self.held.get_mut(&d) {
                dp.set_destination_table(key, *index, table, Some(previous))?;
                *previous = table.to_vec();
                continue;
            }
            let Some(key) = new_keys.get(&d).copied() else {
                continue; // its flows were evicted meanwhile; next tick
            };
            let index = match self.free.pop() {
                Some(i) => i,
                None if self.next < MAX_DEST_TABLES => {
                    self.next += 1;
                    self.next - 1
                }
                None => continue,
            };
            dp.set_destination_table(&key, index, table, None)?;
            info!(destination = %fmt_dest(&key), index, "destination window opened");
            self.held.insert(d, (key, index, table.to_vec()));
        }
        Ok(())
    }
}

/// The /24 (IPv4) or /48 (IPv6) of a hop's address, for window diversity.
fn subnet_of(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        IpAddr::V6(a) => {
            let s = a.segments();
            format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
    }
}

fn fmt_dest(k: &DestKey) -> String {
    let ip = steerer_user::report::key_addr(k.family, &k.addr);
    format!("{ip}:{} proto {}", k.port, k.proto)
}

/// Reset (delete) the flows of `hops` (SPEC 5.5: their senders' retries
/// are steered afresh) and drop them from `flows`, this tick's reading of
/// the flow table.
fn reset_flows(
    dp: &mut Dataplane,
    flows: &mut Vec<(FlowKey, steerer_common::FlowValue)>,
    hops: &[u32],
    why: &str,
) -> Result<()> {
    if hops.is_empty() {
        return Ok(());
    }
    let gone: Vec<FlowKey> = flows
        .iter()
        .filter(|(_, v)| hops.contains(&v.hop))
        .map(|(k, _)| *k)
        .collect();
    flows.retain(|(_, v)| !hops.contains(&v.hop));
    let reset = dp.remove_flows(&gone)?;
    info!(flows = reset, hops = ?hops, "reset the flows of {why} hops");
    Ok(())
}

/// The slot table of every port set (set 0 alone, and the engine's own
/// table, when every hop accepts every port).
fn set_tables(plan: &PortSetPlan, engine: &Engine<FlowKey>, main: &[u32]) -> Vec<Vec<u32>> {
    if plan.is_trivial() {
        return vec![main.to_vec()];
    }
    plan.sets
        .iter()
        .map(|(_, allowed)| engine.table_for(allowed))
        .collect()
}

fn hop_entry(r: &ResolvedHop) -> HopEntry {
    let mut flags = if r.usable() { HOP_ENABLED } else { 0 };
    if r.mark.is_some() {
        flags |= HOP_ACTION_MARK;
    }
    HopEntry {
        // A vanished link has no index (and the kernel dropped its devmap slot).
        ifindex: if r.link_present { r.ifindex } else { 0 },
        flags,
        src_mac: r.src_mac,
        dst_mac: r.dst_mac.unwrap_or_default(),
        mark: r.mark.unwrap_or(0),
    }
}

async fn refresh_local_addrs(handle: &rtnetlink::Handle, dp: &mut Dataplane) -> Result<()> {
    let addrs = netlink::local_addresses(handle).await?;
    let keys: Vec<LocalAddrKey> = addrs
        .iter()
        .map(|a| {
            let mut key = LocalAddrKey::default();
            match a {
                IpAddr::V4(v4) => {
                    key.addr[..4].copy_from_slice(&v4.octets());
                    key.family = steerer_common::flow::FAMILY_IPV4;
                }
                IpAddr::V6(v6) => {
                    key.addr = v6.octets();
                    key.family = steerer_common::flow::FAMILY_IPV6;
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

fn write_status(path: &Path, status: &TickStatus) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(status)?)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(())
}

pub fn fmt_mac(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}
