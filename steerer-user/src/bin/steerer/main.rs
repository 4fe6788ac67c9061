//! `steerer`: steer new flows of a Linux gateway across egress hops and
//! learn which hops serve them best.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand, ValueEnum};
use steerer_user::{
    daemon,
    dataplane::{AttachMode, PinnedMaps},
};
use tracing_subscriber::EnvFilter;

mod commands;
use commands::{flows, port_sets, simulate, simulate_seeds, FlowOrder, HopVerb};

#[derive(Parser)]
#[command(
    name = "steerer",
    version,
    about = "Kernel fast-path flow steering across egress hops",
    long_about = "steerer attaches an XDP program to a gateway's LAN-facing interface. Every \
new flow (5-tuple) is assigned an egress hop from a slot table with a keyed hash and stays \
on it; every K seconds the control plane reads per-flow byte counters and rewrites the \
slot table in proportion to each hop's measured speed."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Attach {
    /// Native XDP in the driver (veth, most physical NICs).
    Xdp,
    /// Generic XDP in the network stack (any driver, slower).
    XdpSkb,
    /// TC ingress: needed for hops with `action = "mark"`.
    Tc,
}

impl Attach {
    fn mode(self) -> AttachMode {
        match self {
            Attach::Xdp => AttachMode::Xdp,
            Attach::XdpSkb => AttachMode::XdpSkb,
            Attach::Tc => AttachMode::Tc,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Load, attach and steer until SIGINT/SIGTERM; prints a table every tick.
    #[command(after_long_help = steerer_user::config::help::CONFIG_KEYS)]
    ///
    /// SIGHUP reloads the config file: checked first (a bad one is
    /// rejected and the running one stays), then applied without moving a
    /// flow (hops keep their ids by name; removed hops' flows drain).
    Run {
        /// LAN-facing interface whose incoming traffic is steered.
        #[arg(long)]
        iface: String,
        /// TOML file listing the hops (see README, "Configuration").
        #[arg(long)]
        config: PathBuf,
        /// How to attach the XDP program.
        #[arg(long, value_enum, default_value = "xdp")]
        attach: Attach,
        /// Discard maps and links pinned by an earlier run (established flows
        /// lose their hop).
        #[arg(long)]
        fresh: bool,
        /// On a clean exit leave the data plane running: programs stay attached
        /// (pinned links) and maps pinned, so a later `steerer run` takes over
        /// without moving a flow. Default: detach and remove the pins. A crash
        /// or SIGKILL always leaves everything in place.
        #[arg(long)]
        keep_pins: bool,
        /// Write the latest tick as JSON to this file (replaced atomically).
        #[arg(long)]
        status_file: Option<PathBuf>,
        /// Flow-table (LRU) entries for a new table, 1024 to 16777216
        /// (default 262144); a reused (pinned) table keeps its size,
        /// `--fresh` makes a new one.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1024..=16_777_216))]
        flow_table_size: Option<u32>,
    },
    /// Check a configuration as `run` would, without touching the kernel;
    /// print what it says (exit status 1 and the reason if it is bad).
    Check {
        /// The LAN-facing interface it is meant for.
        #[arg(long)]
        iface: String,
        #[arg(long)]
        config: PathBuf,
        /// As for `run`: `mark` hops need `tc`.
        #[arg(long, value_enum, default_value_t = Attach::Xdp)]
        attach: Attach,
    },
    /// Drain, disable or enable a hop of the steerer running on --iface:
    /// kept as an override of the hop's `state` (in /run/steerer, until
    /// `enable` or a reboot) and applied by a reload (SIGHUP).
    Hop {
        /// drain: no new flows, established ones stay; disable: no flows
        /// (established ones reset); enable: as the configuration says.
        action: HopVerb,
        /// The hop's name.
        name: String,
        #[arg(long)]
        iface: String,
    },
    /// Print the flow table of a running (or crashed) steerer from its pins.
    Flows {
        #[arg(long)]
        iface: String,
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
        /// Only the flows on this hop (its name).
        #[arg(long)]
        hop: Option<String>,
        /// Order: most bytes first, oldest first, or longest idle first.
        #[arg(long, value_enum, default_value_t = FlowOrder::Bytes)]
        sort: FlowOrder,
        /// At most this many flows (after filter and order).
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Exit port sets from a Tor consensus and microdescriptors: exact port
    /// classes, the loss table for K = 4, 8, 16, 32, and the K sets of the
    /// bandwidth-weighted merge with each exit's bit array.
    PortSets {
        /// Microdesc-flavoured consensus (cached-microdesc-consensus).
        #[arg(long)]
        consensus: PathBuf,
        /// Microdescriptor file(s) (cached-microdescs, cached-microdescs.new).
        #[arg(long, required = true)]
        microdescs: Vec<PathBuf>,
        /// Number of sets to publish (at most 64).
        #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u8).range(1..=64))]
        sets: u8,
        /// One JSON document instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// Simulate a scenario (SPEC 7) under uniform random choice, ECMP,
    /// steerer's policy engine and an oracle; print the comparison and
    /// optionally write SVG charts. Same scenario and seed: same output.
    Simulate {
        /// Scenario file (TOML; examples in `scenarios/`).
        #[arg(long)]
        scenario: PathBuf,
        /// Seed of the workload, the blackholes and the policies' hashes
        /// (default: the scenario's `seed`).
        #[arg(long, conflicts_with = "seeds")]
        seed: Option<u64>,
        /// Several seeds (`1-5`, `1,3,7`): print each figure's mean and
        /// spread per policy over them instead of one run's table.
        #[arg(long, conflicts_with = "out")]
        seeds: Option<String>,
        /// Directory for `results.md` and the SVG charts (created if missing).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Policies to compare, comma-separated (default: all four).
        #[arg(long, value_enum, value_delimiter = ',')]
        policies: Vec<steerer_user::sim::PolicyKind>,
    },
    /// Print the data plane's per-reason packet counters.
    Stats {
        #[arg(long)]
        iface: String,
        #[arg(long)]
        json: bool,
    },
    /// A hop directory over HTTP, for labs and small deployments.
    Directory {
        #[command(subcommand)]
        action: DirectoryVerb,
    },
}

#[derive(Subcommand)]
enum DirectoryVerb {
    /// Serve a hop file (the `[[hop]]` document a daemon's `hop_directory`
    /// reads) until SIGINT/SIGTERM: `GET /hops` answers the document with
    /// an ETag (`If-None-Match` with the current one: 304, no body);
    /// `POST /nearest` with `{"landmarks_ms": {"NAME": ms, ...}, "n": N}`
    /// answers the N hops whose `landmarks_ms` are most like the client's
    /// (root mean square difference over the landmarks both measured). The
    /// file is read again when it changes; one that does not parse keeps
    /// the last good version served.
    Serve {
        /// The hop file.
        #[arg(long)]
        hops: PathBuf,
        /// Address and port to listen on.
        #[arg(long, default_value = "127.0.0.1:8470")]
        listen: std::net::SocketAddr,
        /// Serve HTTPS with this PEM certificate chain (with --tls-key).
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The certificate's PEM private key.
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
    },
}

/// The error and its causes, "a: b: c", each said once: a library error
/// that already names its cause in its own message (`cannot read X: No
/// such file`) is not followed by the same cause again.
fn error_chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,netlink_packet_route=error")),
        )
        .with_writer(std::io::stderr)
        // Colour only for a terminal: a log file or journald gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    if let Err(e) = real_main() {
        eprintln!("steerer: error: {}", error_chain(&e));
        std::process::exit(1);
    }
}

fn real_main() -> Result<()> {
    match Cli::parse().command {
        Command::Run {
            iface,
            config,
            attach,
            fresh,
            keep_pins,
            status_file,
            flow_table_size,
        } => daemon::run(daemon::RunOptions {
            iface,
            config,
            attach: attach.mode(),
            fresh,
            keep_pins,
            status_file,
            flow_table_size,
        }),
        Command::Check {
            iface,
            config,
            attach,
        } => {
            let opts = daemon::RunOptions {
                iface,
                config,
                attach: attach.mode(),
                fresh: false,
                keep_pins: false,
                status_file: None,
                flow_table_size: None,
            };
            print!("{}", steerer_user::daemon::check_only(&opts)?);
            Ok(())
        }
        Command::Hop {
            action,
            name,
            iface,
        } => {
            use steerer_user::config::HopState;
            let state = match action {
                HopVerb::Drain => Some(HopState::Drain),
                HopVerb::Disable => Some(HopState::Disabled),
                HopVerb::Enable => None,
            };
            let said = steerer_user::hop_control::request(&iface, &name, state)
                .map_err(anyhow::Error::msg)?;
            println!("{said}");
            Ok(())
        }
        Command::Flows {
            iface,
            json,
            hop,
            sort,
            limit,
        } => flows(&iface, json, hop.as_deref(), sort, limit),
        Command::PortSets {
            consensus,
            microdescs,
            sets,
            json,
        } => port_sets(&consensus, &microdescs, sets as usize, json),
        Command::Simulate {
            scenario,
            seeds: Some(seeds),
            policies,
            ..
        } => simulate_seeds(&scenario, &seeds, &policies),
        Command::Simulate {
            scenario,
            seed,
            out,
            policies,
            seeds: None,
        } => simulate(&scenario, seed, out.as_deref(), &policies),
        Command::Directory {
            action:
                DirectoryVerb::Serve {
                    hops,
                    listen,
                    tls_cert,
                    tls_key,
                },
        } => {
            let tls = tls_cert
                .zip(tls_key)
                .map(|(cert, key)| steerer_user::directory_server::TlsFiles { cert, key });
            steerer_user::directory_server::serve(hops, listen, tls)
        }
        Command::Stats { iface, json } => {
            let maps = PinnedMaps::open(&iface)?;
            let stats = maps.stats().context("reading STATS")?;
            // The flood guard's count lives in a map of its own.
            let refused = maps
                .new_flows_refused()
                .context("reading NEW_FLOW_BUCKETS")?;
            let mut rows: Vec<(&str, u64)> = stats.iter().map(|(r, v)| (r.name(), *v)).collect();
            rows.push(("new_flow_not_inserted", refused));
            if json {
                let obj: serde_json::Map<String, serde_json::Value> = rows
                    .iter()
                    .map(|(r, v)| (r.to_string(), serde_json::Value::from(*v)))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&obj)?);
            } else {
                for (r, v) in rows {
                    println!("{r:<24} {v}");
                }
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    /// `--help` states the flow table's real default.
    #[test]
    fn the_help_gives_the_flow_tables_default_size() {
        use clap::CommandFactory as _;
        let mut cmd = super::Cli::command();
        let run = cmd.find_subcommand_mut("run").expect("run");
        let help = run.render_long_help().to_string();
        let default = steerer_common::limits::FLOW_TABLE_DEFAULT.to_string();
        assert!(help.contains(&format!("(default {default})")), "{help}");
    }

    /// The shipped systemd unit starts steerer with options it accepts.
    #[test]
    fn the_systemd_unit_runs_a_command_line_steerer_accepts() {
        let unit = include_str!("../../../../contrib/steerer@.service");
        let line = unit
            .lines()
            .find_map(|l| l.strip_prefix("ExecStart="))
            .expect("an ExecStart line");
        let args: Vec<String> = line
            .replace("%i", "lan0")
            .split_whitespace()
            .map(str::to_string)
            .collect();
        assert!(args[0].ends_with("/steerer"), "{args:?}");
        let mut argv = vec!["steerer".to_string()];
        argv.extend(args[1..].iter().cloned());
        super::Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
        assert!(unit.contains("ExecReload=/bin/kill -HUP $MAINPID"));
    }
}
