//! The daemon's loop: ticks when due, link announcements, probe rounds and
//! hold-downs as they come, SIGHUP reloads, until SIGINT/SIGTERM.

use std::{path::Path, time::Duration};

use anyhow::{Context as _, Result};
use tracing::{info, warn};

use super::{hops, log_decisions, metrics, probe, reload, setup::Steering, RunOptions};
use crate::{
    link_events::{LinkEvent, LinkEvents},
    monotonic_ns,
    report::TickStatus,
};

/// Tick until a signal; returns the last tick's status. Between ticks,
/// link announcements reach the controller as they come, and hold-downs
/// end on time.
pub(super) async fn run_loop(
    opts: &RunOptions,
    handle: &rtnetlink::Handle,
    s: &mut Steering,
    sigterm: &mut tokio::signal::unix::Signal,
    sighup: &mut tokio::signal::unix::Signal,
    metrics: Option<std::sync::Arc<metrics::Metrics>>,
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
            log_decisions(&mut s.book, &d, &out);
        }
        if !due {
            if now >= s.adapter.controller.poll_timeout() {
                let (d, out) = s.adapter.timeout(&mut s.dp, now);
                log_decisions(&mut s.book, &d, &out);
            }
            continue;
        }
        tick_no += 1;
        let tick_started = std::time::Instant::now();
        match s.adapter.tick(&mut s.dp, now) {
            Ok(o) => {
                log_decisions(&mut s.book, &o.decisions, &o.applied);
                if o.refused_new_flows > 0 {
                    warn!(
                        new_flows = o.refused_new_flows,
                        "new flows over new_flows_per_sec since the last tick: steered by hash without a flow-table entry (a flood of new tuples?), so they cannot evict live flows"
                    );
                }
                if o.evicted_flows > 0 {
                    warn!(
                        evicted = o.evicted_flows,
                        since_start = o.evicted_flows_total,
                        flow_table_size = s.dp.flow_table_entries().unwrap_or(0),
                        "the flow table is full: its LRU evicted flows since the last tick (an idle connection evicted may come back on another hop); raise --flow-table-size"
                    );
                }
                if let Some(r) = &o.decisions.report {
                    let elapsed = now.saturating_sub(started) as f64 / 1e9;
                    let status = TickStatus::new(tick_no, elapsed, o.flows as u64, r);
                    let status = report_tick(opts, s, &o, status, now);
                    if let Some(m) = &metrics {
                        let totals = dataplane_totals(s, &o, tick_started.elapsed().as_secs_f64());
                        m.observe(&status, &totals);
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

/// The tick's status completed (probes, conditions, reasons, events),
/// printed if asked and written to the status files.
fn report_tick(
    opts: &RunOptions,
    s: &mut Steering,
    o: &super::adapter::TickOutcome,
    mut status: TickStatus,
    now: u64,
) -> TickStatus {
    status.new_flows_not_inserted = o.refused_new_flows;
    status.flows_evicted = o.evicted_flows;
    status.flows_evicted_total = o.evicted_flows_total;
    if let Some(p) = &s.probes {
        status.probe_rounds = p.counts.rounds;
        status.probe_rounds_answered = p.counts.answered_rounds;
        for h in &mut status.hops {
            h.probe_rtt_ms = s.adapter.controller.probe_rtt_ms(&h.name);
            h.probe_down = s.adapter.controller.probe_down(&h.name);
        }
    }
    let wall = super::status::unix_now();
    s.book.fill(&mut status, &s.adapter.controller, now, wall);
    if opts.print_ticks {
        print!("{}", status.table());
    }
    for path in std::iter::once(&s.status_path).chain(&opts.status_file) {
        if let Err(e) = write_status(path, &status) {
            warn!(error = %format!("{e:#}"), "writing the status file failed; retried at the next tick");
        }
    }
    status
}

/// The data plane's totals for the metrics, hops by name (ids no name
/// holds are left out).
fn dataplane_totals(
    s: &Steering,
    o: &super::adapter::TickOutcome,
    tick_seconds: f64,
) -> metrics::DataplaneTotals {
    let names: std::collections::HashMap<u32, String> =
        s.dp.hop_names().unwrap_or_default().into_iter().collect();
    let named = |id: u32| names.get(&id).cloned();
    metrics::DataplaneTotals {
        stats: o.stats.clone(),
        hops: s
            .dp
            .hop_counters()
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(id, c)| Some((named(id)?, c)))
            .collect(),
        failovers: o
            .failovers_by_hop
            .iter()
            .filter_map(|&(id, n)| Some((named(id)?, n)))
            .collect(),
        flow_table_size: s.dp.flow_table_entries().unwrap_or(0),
        tick_seconds,
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
    log_decisions(&mut s.book, &d, &out);
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

fn write_status(path: &Path, status: &TickStatus) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(status)?)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(())
}
