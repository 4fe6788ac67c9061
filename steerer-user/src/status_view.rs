//! `steerer status`: what a running daemon last said about its hops, in a
//! table with names, states and reasons (issue 16). The daemon writes its
//! [`TickStatus`] every tick next to its lock (`status_path`); this reads
//! it back and says whether the daemon that wrote it still runs. A clean
//! exit removes the file; after a crash it is the last word of the daemon.

use std::path::{Path, PathBuf};

use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, ContentArrangement, Table};
use serde::{Deserialize, Serialize};

use crate::report::TickStatus;

/// How many events the status keeps, newest last.
pub const RECENT_EVENTS: usize = 50;

/// One event as the status keeps it: when (Unix seconds), and its log line.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EventLine {
    pub at_unix: f64,
    pub warning: bool,
    pub text: String,
}

/// A (hop, destination) exclusion in force, and when it ends.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ExclusionStatus {
    pub hop: String,
    /// `198.19.0.2:8443/tcp`.
    pub destination: String,
    pub until_unix: f64,
}

/// A destination with a window of its own, and its members.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DestinationStatus {
    pub destination: String,
    pub hops: Vec<String>,
}

/// Where the daemon on `iface` of network namespace `netns` writes its
/// status (next to its lock, see `instance_lock`).
pub fn status_path(dir: &Path, netns: &str, iface: &str) -> PathBuf {
    dir.join(format!("{netns}-{iface}.status.json"))
}

/// What `steerer status --json` prints: the status and whether the daemon
/// that wrote it still holds its lock.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusReport {
    /// The running daemon's process id; None: none runs (the status is
    /// the last one written).
    pub running_pid: Option<u32>,
    #[serde(flatten)]
    pub status: TickStatus,
}

/// Read the status at `path`, for the daemon `running_pid` (None: none
/// runs).
pub fn read(path: &Path, iface: &str, running_pid: Option<u32>) -> Result<StatusReport, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(match running_pid {
                Some(pid) => format!(
                    "steerer (pid {pid}) runs on {iface} but has not written its first tick's \
                     status yet ({}): try again in a few seconds",
                    path.display()
                ),
                None => format!(
                    "no steerer runs on {iface} in this network namespace (no {}: none ran \
                     since boot, or the last one stopped cleanly): start one with \
                     `steerer run --iface {iface} --config FILE`",
                    path.display()
                ),
            });
        }
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let status: TickStatus = serde_json::from_str(&text)
        .map_err(|e| format!("{}: not a steerer status ({e})", path.display()))?;
    Ok(StatusReport {
        running_pid,
        status,
    })
}

/// `2026-12-02T18:03:10Z`.
pub fn wall(unix: f64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(unix.max(0.0));
    humantime::format_rfc3339_seconds(t).to_string()
}

/// `in 42 s`, `12 s ago`.
fn relative(unix: f64, now_unix: f64) -> String {
    let d = unix - now_unix;
    if d >= 0.0 {
        format!("in {d:.0} s")
    } else {
        format!("{:.0} s ago", -d)
    }
}

/// The human view, at wall time `now_unix`; at most `events` recent events.
pub fn render(r: &StatusReport, iface: &str, now_unix: f64, events: usize) -> String {
    let s = &r.status;
    let who = match r.running_pid {
        Some(pid) => format!("steerer on {iface} (pid {pid}, running)"),
        None => format!("steerer on {iface}: NOT RUNNING, its last status"),
    };
    let mut out = format!(
        "{who}: tick {} at {:.0} s, written {} ({})\n{} flows in the flow table; {} of {} slots moved at this tick; {} destination windows\n",
        s.tick,
        s.elapsed_secs,
        wall(s.written_unix),
        relative(s.written_unix, now_unix),
        s.flows,
        s.moved_slots,
        s.slot_count,
        s.destination_windows
    );
    if s.flows_evicted_total > 0 {
        out.push_str(&format!(
            "WARNING: the flow table's LRU evicted {} flows since the daemon started ({} at this tick, estimated): raise --flow-table-size\n",
            s.flows_evicted_total, s.flows_evicted
        ));
    }
    out.push_str(&hop_table(s, now_unix).to_string());
    out.push('\n');
    if !s.exclusions.is_empty() {
        out.push_str("\nExcluded for one destination (no answer through the hop):\n");
        for e in &s.exclusions {
            out.push_str(&format!(
                "  {} for {} until {} ({})\n",
                e.hop,
                e.destination,
                wall(e.until_unix),
                relative(e.until_unix, now_unix)
            ));
        }
    }
    if !s.destinations.is_empty() {
        out.push_str("\nDestinations with a window of their own:\n");
        for d in &s.destinations {
            out.push_str(&format!("  {}: {}\n", d.destination, d.hops.join(", ")));
        }
    }
    let recent = &s.events[s.events.len().saturating_sub(events)..];
    if !recent.is_empty() {
        out.push_str("\nRecent events:\n");
        for e in recent {
            let mark = if e.warning { "WARN " } else { "" };
            out.push_str(&format!("  {} {mark}{}\n", wall(e.at_unix), e.text));
        }
    }
    out
}

fn hop_table(s: &TickStatus, now_unix: f64) -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(vec![
            "hop",
            "state",
            "window",
            "weight",
            "slots",
            "flows",
            "speed Mbit/s",
            "from",
            "failed",
            "rtt ms",
            "why (last events)",
        ]);
    for h in &s.hops {
        let mut state = if h.state.is_empty() {
            if h.usable { "up" } else { "down" }.to_string()
        } else {
            h.state.clone()
        };
        if let Some(u) = h.state_until_unix {
            state.push_str(&format!(" ({})", relative(u, now_unix)));
        }
        let excluded = s.exclusions.iter().filter(|e| e.hop == h.name).count();
        if excluded > 0 {
            let plural = if excluded == 1 { "" } else { "s" };
            state.push_str(&format!(", excluded for {excluded} destination{plural}"));
        }
        let why: Vec<String> = h
            .why
            .iter()
            .map(|e| format!("{}: {}", relative(e.at_unix, now_unix), e.text))
            .collect();
        let why = why.join("\n");
        t.add_row(vec![
            Cell::new(&h.name),
            Cell::new(state),
            Cell::new(if h.in_window { "yes" } else { "no" }),
            Cell::new(format!("{:.1}%", h.share * 100.0)),
            Cell::new(h.slots),
            Cell::new(h.active_flows),
            Cell::new(format!("{:.1}", h.speed_mbit)),
            Cell::new(&h.speed_source),
            Cell::new(format!("{}/{}", h.failed_new, h.failed_total)),
            Cell::new(
                h.probe_rtt_ms
                    .map(|ms| format!("{ms:.1}"))
                    .unwrap_or("-".into()),
            ),
            Cell::new(why),
        ]);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::HopStatus;

    const NOW: f64 = 1_800_000_000.0;

    fn report(running_pid: Option<u32>) -> StatusReport {
        let hop = |name: &str, state: &str, why: Vec<EventLine>| HopStatus {
            name: name.into(),
            usable: state == "up",
            in_window: state == "up",
            share: if state == "up" { 0.5 } else { 0.0 },
            state: state.into(),
            why,
            ..HopStatus::default()
        };
        let blocked = EventLine {
            at_unix: NOW - 12.0,
            warning: true,
            text: "hop a drops connections to 198.19.0.2:8443/tcp".into(),
        };
        let mut held = hop("c", "held down", vec![]);
        held.state_until_unix = Some(NOW + 3.0);
        StatusReport {
            running_pid,
            status: TickStatus {
                tick: 7,
                elapsed_secs: 14.0,
                written_unix: NOW - 1.0,
                hops: vec![
                    hop("a", "up", vec![blocked.clone()]),
                    hop("b", "draining", vec![]),
                    held,
                ],
                exclusions: vec![ExclusionStatus {
                    hop: "a".into(),
                    destination: "198.19.0.2:8443/tcp".into(),
                    until_unix: NOW + 48.0,
                }],
                destinations: vec![DestinationStatus {
                    destination: "198.19.0.2:8443/tcp".into(),
                    hops: vec!["b".into(), "c".into()],
                }],
                events: (0..5)
                    .map(|i| EventLine {
                        text: format!("event {i}"),
                        ..blocked.clone()
                    })
                    .collect(),
                ..TickStatus::default()
            },
        }
    }

    #[test]
    fn the_view_names_states_reasons_exclusions_and_recent_events() {
        let text = render(&report(Some(42)), "lan0", NOW, 2);
        let first = text.lines().next().unwrap();
        assert!(
            first.contains("lan0 (pid 42, running)") && first.contains("(1 s ago)"),
            "{first}"
        );
        let row = |name: &str| {
            text.lines()
                .find(|l| l.trim_start_matches('│').split('┆').next().map(str::trim) == Some(name))
                .unwrap_or_else(|| panic!("no row {name}:\n{text}"))
                .to_string()
        };
        let a = row("a");
        assert!(a.contains("up, excluded for 1 destination "), "{a}");
        assert!(a.contains("12 s ago: hop a drops connections"), "{a}");
        assert!(a.contains("50.0%"), "{a}");
        assert!(row("b").contains("draining"));
        assert!(row("c").contains("held down (in 3 s)"), "{}", row("c"));
        let until = humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs((NOW + 48.0) as u64),
        );
        assert!(
            text.contains(&format!(
                "a for 198.19.0.2:8443/tcp until {until} (in 48 s)"
            )),
            "{text}"
        );
        assert!(text.contains("198.19.0.2:8443/tcp: b, c"), "{text}");
        // The two newest of five events, no more.
        assert!(text.contains("WARN event 4") && text.contains("WARN event 3"));
        assert!(!text.contains("event 2"), "{text}");
        assert!(
            !text.contains("evicted"),
            "no evictions, no warning: {text}"
        );
    }

    #[test]
    fn evictions_are_a_warning_that_names_the_fix() {
        let mut r = report(Some(42));
        r.status.flows_evicted_total = 40;
        r.status.flows_evicted = 7;
        let text = render(&r, "lan0", NOW, 0);
        assert!(
            text.contains("evicted 40 flows since the daemon started (7 at this tick")
                && text.contains("raise --flow-table-size"),
            "{text}"
        );
    }

    #[test]
    fn a_status_without_its_daemon_says_so() {
        let text = render(&report(None), "lan0", NOW, 10);
        assert!(text.starts_with("steerer on lan0: NOT RUNNING"), "{text}");
    }

    #[test]
    fn a_missing_status_names_the_reason_and_the_fix() {
        let dir = std::env::temp_dir().join(format!("steerer-status-view-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = status_path(&dir, "net1", "lan0");
        let none = read(&path, "lan0", None).unwrap_err();
        assert!(none.contains("no steerer runs on lan0"), "{none}");
        assert!(none.contains("steerer run --iface lan0"), "{none}");
        let early = read(&path, "lan0", Some(9)).unwrap_err();
        assert!(
            early.contains("pid 9") && early.contains("first tick"),
            "{early}"
        );
        std::fs::write(&path, "{not json").unwrap();
        assert!(read(&path, "lan0", Some(9))
            .unwrap_err()
            .contains("not a steerer status"));
        std::fs::write(&path, serde_json::to_vec(&report(None).status).unwrap()).unwrap();
        let back = read(&path, "lan0", Some(9)).unwrap();
        assert_eq!(back.running_pid, Some(9));
        assert_eq!(back.status, report(None).status);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
