//! The handlers of `steerer`'s read-only and offline commands: `flows`,
//! `status`, `port-sets`, `simulate`.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use steerer_user::{dataplane::PinnedMaps, report::FlowRecord};

/// `steerer hop`'s verbs.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum HopVerb {
    Drain,
    Disable,
    Enable,
}

/// `steerer flows --sort`.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum FlowOrder {
    Bytes,
    Age,
    Idle,
}

/// The status the daemon on `iface` (in this network namespace) wrote
/// last, and whether it still runs; `Err` says why there is none.
fn daemon_status(iface: &str) -> Result<steerer_user::status_view::StatusReport> {
    use steerer_user::{instance_lock, status_view};
    let netns = steerer_user::dataplane::netns_id()?;
    let dir = std::path::Path::new(instance_lock::LOCK_DIR);
    let running = instance_lock::InstanceLock::holder(dir, &netns, iface);
    let path = status_view::status_path(dir, &netns, iface);
    status_view::read(&path, iface, running).map_err(anyhow::Error::msg)
}

/// `steerer status --iface IFACE`: the status the daemon on it wrote
/// last, and whether it still runs.
pub fn status(iface: &str, json: bool, events: usize) -> Result<()> {
    use steerer_user::status_view;
    let report = daemon_status(iface)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs_f64();
        print!("{}", status_view::render(&report, iface, now, events));
    }
    Ok(())
}

/// `steerer why --iface IFACE PROTO SRC DST`.
pub fn why(iface: &str, proto: &str, src: &str, dst: &str) -> Result<()> {
    use steerer_user::{dataplane::PinnedTables, why};
    let tuple = why::Tuple::parse(proto, src, dst).map_err(anyhow::Error::msg)?;
    let maps = PinnedMaps::open(iface)?;
    let names: std::collections::HashMap<u32, String> = maps.hop_names()?.into_iter().collect();
    let flow = maps.flow(&tuple.key()).context("reading FLOWS")?;
    let tables = PinnedTables::open(&maps)?;
    let status = daemon_status(iface).ok().map(|r| r.status);
    let facts = why::Facts {
        flow: flow.as_ref(),
        names: &names,
        status: status.as_ref(),
        now_ns: steerer_user::monotonic_ns(),
    };
    print!("{}", why::explain(&tables, &tuple, &facts));
    Ok(())
}

/// `steerer stats --iface IFACE`: the data plane's counters by outcome
/// (and the daemon's estimate of the flow table's evictions, when a
/// daemon wrote a status), then per hop (by name, from `HOP_NAMES`) both
/// ways.
pub fn stats(iface: &str, json: bool) -> Result<()> {
    let maps = PinnedMaps::open(iface)?;
    let stats = maps.stats().context("reading STATS")?;
    // The flood guard's count lives in a map of its own.
    let refused = maps
        .new_flows_refused()
        .context("reading NEW_FLOW_BUCKETS")?;
    let names: std::collections::HashMap<u32, String> = maps.hop_names()?.into_iter().collect();
    let hops = maps.hop_counters().context("reading HOP_STATS")?;
    let name = |id: u32| names.get(&id).cloned().unwrap_or(format!("id {id}"));
    let mut rows: Vec<(&str, u64)> = stats.iter().map(|(r, v)| (r.name(), *v)).collect();
    rows.push(("new_flow_not_inserted", refused));
    // The kernel counts no LRU evictions: the running daemon's estimate.
    if let Ok(r) = daemon_status(iface) {
        rows.push(("flow_table_evicted", r.status.flows_evicted_total));
    }
    if json {
        let mut obj: serde_json::Map<String, serde_json::Value> = rows
            .iter()
            .map(|(r, v)| (r.to_string(), serde_json::Value::from(*v)))
            .collect();
        let per_hop: serde_json::Map<String, serde_json::Value> = hops
            .iter()
            .map(|(id, c)| {
                let v = serde_json::json!({
                    "id": id,
                    "packets": c.packets,
                    "bytes": c.bytes,
                    "reply_packets": c.reply_packets,
                    "reply_bytes": c.reply_bytes,
                });
                (name(*id), v)
            })
            .collect();
        obj.insert("hops".into(), per_hop.into());
        println!("{}", serde_json::to_string_pretty(&obj)?);
    } else {
        for (r, v) in rows {
            println!("{r:<24} {v}");
        }
        println!(
            "\n{:<16} {:>12} {:>14} {:>14} {:>14}",
            "hop", "packets out", "bytes out", "packets back", "bytes back"
        );
        for (id, c) in &hops {
            println!(
                "{:<16} {:>12} {:>14} {:>14} {:>14}",
                name(*id),
                c.packets,
                c.bytes,
                c.reply_packets,
                c.reply_bytes
            );
        }
    }
    Ok(())
}

pub fn flows(
    iface: &str,
    json: bool,
    hop: Option<&str>,
    sort: FlowOrder,
    limit: Option<usize>,
) -> Result<()> {
    let maps = PinnedMaps::open(iface)?;
    let names: std::collections::HashMap<u32, String> = maps.hop_names()?.into_iter().collect();
    if let Some(h) = hop {
        if !names.values().any(|n| n == h) {
            anyhow::bail!("--hop {h:?}: no such hop in the pinned maps (hops: {})", {
                let mut v: Vec<&str> = names.values().map(String::as_str).collect();
                v.sort_unstable();
                v.join(", ")
            });
        }
    }
    let now = steerer_user::monotonic_ns();
    let mut records: Vec<FlowRecord> = maps
        .flows()?
        .iter()
        .map(|(k, v)| FlowRecord::new(k, v, now, names.get(&v.hop).map(String::as_str)))
        .filter(|r| hop.is_none_or(|h| r.hop_name.as_deref() == Some(h)))
        .collect();
    let total = records.len();
    match sort {
        FlowOrder::Bytes => records.sort_by_key(|r| std::cmp::Reverse(r.bytes + r.reply_bytes)),
        FlowOrder::Age => records.sort_by(|a, b| b.age_secs.total_cmp(&a.age_secs)),
        FlowOrder::Idle => records.sort_by(|a, b| b.idle_secs.total_cmp(&a.idle_secs)),
    }
    records.truncate(limit.unwrap_or(usize::MAX));
    if json {
        println!("{}", serde_json::to_string_pretty(&records)?);
        return Ok(());
    }
    print!("{}", steerer_user::report::flow_table(&records));
    println!("{} of {total} flows", records.len());
    Ok(())
}

pub fn port_sets(
    consensus: &std::path::Path,
    microdescs: &[PathBuf],
    k: usize,
    json: bool,
) -> Result<()> {
    use steerer_user::portsets::{analyse, directory};
    let started = std::time::Instant::now();
    let mds: Vec<String> = microdescs.iter().map(|p| p.display().to_string()).collect();
    let (exits, skipped) = directory::load(&consensus.display().to_string(), &mds)?;
    let a = analyse(&exits, k);
    if json {
        println!("{}", serde_json::to_string_pretty(&a)?);
        return Ok(());
    }
    println!(
        "{} usable exits (Exit flag, not BadExit, with a microdescriptor)",
        a.exits
    );
    if skipped.total() > 0 {
        println!("skipped entries:");
        for (reason, (n, line)) in &skipped.0 {
            println!("  {n:>5}  {reason} (first at line {line})");
        }
    }
    println!("{} exact port classes over ports 1-65535", a.exact_classes);
    println!("\nloss when merging classes into K sets (share of (port, exit) support lost):");
    println!(
        "  {:>3}  {:<10} {:>5}  {:>14}  {:>18}",
        "K", "merged by", "sets", "loss by count", "loss by bandwidth"
    );
    for r in &a.losses {
        println!(
            "  {:>3}  {:<10} {:>5}  {:>13.3}%  {:>17.3}%",
            r.k,
            r.merged_by,
            r.sets,
            100.0 * r.loss_by_count,
            100.0 * r.loss_by_bandwidth
        );
    }
    println!("\nthe {} sets (bandwidth-weighted merge):", a.sets.len());
    for (i, s) in a.sets.iter().enumerate() {
        let ports = steerer_user::portsets::abbreviate(&s.ports, 60);
        println!(
            "  set {i:>2}: {:>5} ports, {:>4} exits ({:>5.1}% of exit weight): {ports}",
            s.port_count,
            s.exits,
            100.0 * s.weight_share
        );
    }
    println!(
        "\n(each exit's bit array over the sets: --json; analysis took {:.2} s)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

pub fn simulate_seeds(
    path: &std::path::Path,
    seeds: &str,
    policies: &[steerer_user::sim::PolicyKind],
) -> Result<()> {
    use steerer_user::sim::{seeds as multi, PolicyKind, Scenario};
    let scenario = Scenario::load(path)?;
    let seeds = multi::parse_seeds(seeds).map_err(anyhow::Error::msg)?;
    let kinds = if policies.is_empty() {
        PolicyKind::ALL.to_vec()
    } else {
        policies.to_vec()
    };
    let started = std::time::Instant::now();
    let per = multi::run_seeds(&scenario, &kinds, &seeds);
    print!("{}", multi::table(&scenario, &seeds, &per));
    eprintln!(
        "simulated {} policies x {} seeds in {:.1} s",
        kinds.len(),
        seeds.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

pub fn simulate(
    path: &std::path::Path,
    seed: Option<u64>,
    out: Option<&std::path::Path>,
    policies: &[steerer_user::sim::PolicyKind],
) -> Result<()> {
    use steerer_user::sim::{self, charts, PolicyKind, Scenario};
    let scenario = Scenario::load(path)?;
    let seed = seed.unwrap_or(scenario.file.seed);
    let kinds = if policies.is_empty() {
        PolicyKind::ALL.to_vec()
    } else {
        policies.to_vec()
    };
    let started = std::time::Instant::now();
    let results = sim::compare(&scenario, &kinds, seed);
    let text = sim::report(&scenario, seed, &results);
    print!("{text}");
    if let Some(dir) = out {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::write(dir.join("results.md"), &text)
            .with_context(|| format!("writing {}", dir.join("results.md").display()))?;
        let files = charts::write_all(dir, &scenario.name, &results, scenario.file.blackhole_p)
            .map_err(|e| anyhow::anyhow!("writing charts into {}: {e}", dir.display()))?;
        println!(
            "\nwrote {} and results.md into {}",
            files.join(", "),
            dir.display()
        );
    }
    // Timing goes to stderr: stdout stays identical for the same inputs.
    eprintln!(
        "simulated {} policies in {:.1} s",
        kinds.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
