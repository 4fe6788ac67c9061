//! `steerer`: steer new flows of a Linux gateway across egress hops and
//! learn which hops serve them best.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};
use steerer_user::{daemon, dataplane::AttachMode};
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
    /// Log lines on stderr as text (timestamped; colour only on a
    /// terminal) or as one JSON object per line (for log shippers).
    #[arg(long, value_enum, global = true, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
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
    /// Load, attach and steer until SIGINT/SIGTERM; `steerer status` shows
    /// what it learned.
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
        /// Print each tick's hop table on stdout (the status file and
        /// `steerer status` have it in any case).
        #[arg(long)]
        print_ticks: bool,
    },
    /// What the steerer on --iface last said (every tick, written next to
    /// its lock in /run/steerer): each hop's state and the last event about
    /// it (why its weight changed, why it is excluded or down), the
    /// exclusions with their ends, destinations with windows of their own,
    /// recent events; and whether that steerer still runs.
    Status {
        #[arg(long)]
        iface: String,
        /// The status as one JSON document (with `running_pid`).
        #[arg(long)]
        json: bool,
        /// Recent events to show.
        #[arg(long, default_value_t = 10)]
        events: usize,
    },
    /// Where one 5-tuple goes and why: its flow-table entry (hop, age,
    /// counters, fast failovers), the table, slot and hop the data plane's
    /// rule gives a new flow of it now, and the exclusions and window of
    /// its destination (e.g. `steerer why --iface lan0 tcp
    /// 198.18.0.2:40000 198.19.0.2:443`).
    Why {
        #[arg(long)]
        iface: String,
        /// tcp, udp or a protocol number.
        proto: String,
        /// Source address:port (IPv6 as [addr]:port).
        src: String,
        /// Destination address:port.
        dst: String,
    },
    /// Print a shell completion script (e.g. `steerer completions bash >
    /// /etc/bash_completion.d/steerer`).
    Completions { shell: clap_complete::Shell },
    /// Print the man page (roff; `steerer man | man -l -`).
    Man,
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
    /// Print the data plane's counters since its maps were made: packets by
    /// outcome (steered on an established flow, new flow, passed and why),
    /// and per hop the packets and bytes sent to it and received back.
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
    let cli = Cli::parse();
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,netlink_packet_route=error")),
        )
        .with_writer(std::io::stderr);
    if cli.log_format == LogFormat::Json {
        logs.json().init();
    } else {
        // Colour only for a terminal: a log file or journald gets plain text.
        logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init();
    }
    if let Err(e) = real_main(cli) {
        eprintln!("steerer: error: {}", error_chain(&e));
        std::process::exit(1);
    }
}

fn real_main(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Run {
            iface,
            config,
            attach,
            fresh,
            keep_pins,
            status_file,
            flow_table_size,
            print_ticks,
        } => daemon::run(daemon::RunOptions {
            iface,
            config,
            attach: attach.mode(),
            fresh,
            keep_pins,
            status_file,
            flow_table_size,
            print_ticks,
        }),
        Command::Status {
            iface,
            json,
            events,
        } => commands::status(&iface, json, events),
        Command::Why {
            iface,
            proto,
            src,
            dst,
        } => commands::why(&iface, &proto, &src, &dst),
        Command::Completions { shell } => {
            use clap::CommandFactory as _;
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "steerer",
                &mut std::io::stdout(),
            );
            Ok(())
        }
        Command::Man => {
            use clap::CommandFactory as _;
            clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?;
            Ok(())
        }
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
                print_ticks: false,
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
        Command::Stats { iface, json } => commands::stats(&iface, json),
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

    /// Completions name every subcommand; the man page renders.
    #[test]
    fn completions_and_the_man_page_build() {
        use clap::CommandFactory as _;
        let mut bash = Vec::new();
        clap_complete::generate(
            clap_complete::Shell::Bash,
            &mut super::Cli::command(),
            "steerer",
            &mut bash,
        );
        let bash = String::from_utf8(bash).unwrap();
        let cmd = super::Cli::command();
        for sub in cmd.get_subcommands() {
            assert!(
                bash.contains(sub.get_name()),
                "no {} in bash completions",
                sub.get_name()
            );
        }
        let mut man = Vec::new();
        clap_mangen::Man::new(super::Cli::command())
            .render(&mut man)
            .unwrap();
        let man = String::from_utf8(man).unwrap();
        assert!(
            man.starts_with(".ie") || man.contains(".TH steerer"),
            "{man}"
        );
        assert!(
            man.contains("status") && man.contains("completions"),
            "{man}"
        );
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
