//! A health-checked static policy in the style of OpenWrt's mwan3, the
//! multi-WAN manager many gateways run: static weights (here: ECMP with
//! the L4 hash, weighted by the hops' true capacities), and a tracker that
//! pings an address through each hop every interval; a hop whose last
//! `down_after` pings all failed leaves the route, one that answered
//! `up_after` in a row comes back (mwan3's `track_ip`, `interval`, `down`,
//! `up`). Each ping goes through its own hop whatever the route holds: it
//! is bound to the hop's interface, and a rule sends a socket bound to
//! that interface to a table of its own (as mwan3 does).

use std::{
    net::IpAddr,
    process::{Child, Stdio},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::Result;

use crate::{
    netns::{command_in, run_in},
    Lab,
};

/// The tracker's settings (mwan3: `track_ip`, `interval`, `timeout`,
/// `down`, `up`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    pub target: IpAddr,
    pub interval: Duration,
    pub timeout: Duration,
    pub down_after: u32,
    pub up_after: u32,
}

/// First routing table of the tracker's pings (hop i uses `TABLE_BASE + i`).
const TABLE_BASE: u32 = 150;
/// Priority of the tracker's `oif` rules.
const RULE_PRIORITY: &str = "20700";

/// The gateway's multipath default route over the hops.
#[derive(Debug, Clone)]
pub struct EcmpRoute {
    gw: String,
    /// Per hop: interface, IPv4 and IPv6 next hop.
    nexthops: Vec<(String, String, String)>,
}

impl EcmpRoute {
    pub fn of(lab: &Lab) -> EcmpRoute {
        EcmpRoute {
            gw: lab.gw_ns(),
            nexthops: (0..lab.hop_count())
                .map(|i| (lab.hop_iface(i), v4_next_hop(i), v6_next_hop(i)))
                .collect(),
        }
    }

    /// Write the route with these weights (one per hop; a weight of 0
    /// leaves the hop out). With every weight 0 the route is left alone.
    pub fn write(&self, weights: &[u32]) -> Result<()> {
        if weights.iter().all(|&w| w == 0) {
            return Ok(());
        }
        for (fam, v6) in [("-4", false), ("-6", true)] {
            let mut args: Vec<String> = [fam, "route", "replace", "default"]
                .map(String::from)
                .to_vec();
            for ((iface, v4, v6addr), &w) in self.nexthops.iter().zip(weights) {
                if w == 0 {
                    continue;
                }
                let via = if v6 { v6addr } else { v4 };
                args.extend(
                    [
                        "nexthop",
                        "via",
                        via,
                        "dev",
                        iface,
                        "weight",
                        &w.to_string(),
                    ]
                    .map(String::from),
                );
            }
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            run_in(&self.gw, "ip", &refs)?;
        }
        Ok(())
    }
}

pub fn v4_next_hop(i: usize) -> String {
    format!("198.18.{}.2", 1 + i)
}

pub fn v6_next_hop(i: usize) -> String {
    format!("2001:db8:0:{:x}::2", 1 + i)
}

/// The tracker, running until [`Tracker::stop`].
pub struct Tracker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Vec<String>>>,
    route: EcmpRoute,
}

impl Tracker {
    /// Start tracking the hops of the multipath route the caller wrote
    /// with `weights` (the tracker rewrites it when a hop goes down or
    /// comes back).
    pub fn start(lab: &Lab, weights: &[u32], check: &HealthCheck) -> Result<Tracker> {
        let route = EcmpRoute::of(lab);
        for (i, (iface, v4, _)) in route.nexthops.iter().enumerate() {
            let table = (TABLE_BASE + i as u32).to_string();
            run_in(
                &route.gw,
                "ip",
                &[
                    "-4", "route", "replace", "default", "via", v4, "dev", iface, "table", &table,
                ],
            )?;
            oif_rule(&route.gw, "add", iface, &table)?;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let (stop, route, weights, check) =
                (stop.clone(), route.clone(), weights.to_vec(), check.clone());
            move || track(&route, &weights, &check, &stop)
        });
        Ok(Tracker {
            stop,
            thread: Some(thread),
            route,
        })
    }

    /// Stop tracking and remove the tracker's rules and tables (the route
    /// is the caller's to put back). Returns what the tracker did, a line
    /// per hop taken out or brought back.
    pub fn stop(mut self) -> Vec<String> {
        self.shut_down()
    }

    fn shut_down(&mut self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        let log = self
            .thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default();
        for (i, (iface, _, _)) in self.route.nexthops.iter().enumerate() {
            let table = (TABLE_BASE + i as u32).to_string();
            let gw = &self.route.gw;
            let _ = oif_rule(gw, "del", iface, &table);
            let _ = run_in(gw, "ip", &["-4", "route", "flush", "table", &table]);
        }
        log
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.shut_down();
        }
    }
}

/// Add or delete (`verb`) the rule that routes a socket bound to `iface`
/// by `table`.
fn oif_rule(gw: &str, verb: &str, iface: &str, table: &str) -> Result<()> {
    let args = [
        "-4",
        "rule",
        verb,
        "priority",
        RULE_PRIORITY,
        "oif",
        iface,
        "table",
        table,
    ];
    run_in(gw, "ip", &args).map(|_| ())
}

/// One ping through `iface`, started (the caller waits for it).
fn ping(gw: &str, iface: &str, check: &HealthCheck) -> Option<Child> {
    let wait = format!("{:.1}", check.timeout.as_secs_f64().max(0.1));
    command_in(gw, "ping")
        .ok()?
        .args(["-n", "-q", "-c", "1", "-W", &wait, "-I", iface])
        .arg(check.target.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()
}

/// The tracker's loop: every interval one ping per hop, in parallel; the
/// route rewritten when a hop goes down or comes back.
fn track(
    route: &EcmpRoute,
    weights: &[u32],
    check: &HealthCheck,
    stop: &AtomicBool,
) -> Vec<String> {
    let n = route.nexthops.len();
    let started = Instant::now();
    let mut up = vec![true; n];
    let mut failed = vec![0u32; n];
    let mut answered = vec![0u32; n];
    let mut log = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let round = Instant::now();
        let children: Vec<Option<Child>> = route
            .nexthops
            .iter()
            .map(|(iface, _, _)| ping(&route.gw, iface, check))
            .collect();
        let mut changed = false;
        for (i, child) in children.into_iter().enumerate() {
            let ok = child
                .and_then(|mut c| c.wait().ok())
                .is_some_and(|s| s.success());
            (failed[i], answered[i]) = if ok {
                (0, answered[i] + 1)
            } else {
                (failed[i] + 1, 0)
            };
            if up[i] && failed[i] >= check.down_after {
                up[i] = false;
                changed = true;
                log.push(format!(
                    "{:.1} s: hop{i} down",
                    started.elapsed().as_secs_f64()
                ));
            } else if !up[i] && answered[i] >= check.up_after {
                up[i] = true;
                changed = true;
                log.push(format!(
                    "{:.1} s: hop{i} up",
                    started.elapsed().as_secs_f64()
                ));
            }
        }
        if changed {
            let live: Vec<u32> = weights
                .iter()
                .zip(&up)
                .map(|(&w, &u)| if u { w } else { 0 })
                .collect();
            if let Err(e) = route.write(&live) {
                log.push(format!("rewriting the route failed: {e:#}"));
            }
        }
        if let Some(rest) = check.interval.checked_sub(round.elapsed()) {
            std::thread::sleep(rest);
        }
    }
    log
}
