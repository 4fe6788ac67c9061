//! The command line: every subcommand and option, with the help texts an
//! operator reads (`--help`, the man page and the completions are made
//! from these definitions).

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use steerer_user::dataplane::AttachMode;

use crate::commands::{FlowOrder, HopVerb};

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
pub struct Cli {
    /// Log lines on stderr as text (timestamped; colour only on a
    /// terminal) or as one JSON object per line (for log shippers).
    #[arg(long, value_enum, global = true, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Attach {
    /// Native XDP in the driver (veth, most physical NICs).
    Xdp,
    /// Generic XDP in the network stack (any driver, slower).
    XdpSkb,
    /// TC ingress: needed for hops with `action = "mark"`.
    Tc,
}

impl Attach {
    pub fn mode(self) -> AttachMode {
        match self {
            Attach::Xdp => AttachMode::Xdp,
            Attach::XdpSkb => AttachMode::XdpSkb,
            Attach::Tc => AttachMode::Tc,
        }
    }
}

#[derive(Subcommand)]
pub enum Command {
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
        /// Start even when no hop can take new flows yet (links down, next
        /// hops unresolved, all drained): new flows pass unsteered until
        /// one can. Without it such a start is refused.
        #[arg(long)]
        wait_for_hops: bool,
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
    /// Check a configuration as `run` would, without loading or attaching
    /// anything: the keys, the interfaces, every hop's link and next hop
    /// (one datagram asks an unresolved one to resolve); print the hops
    /// and the plan `run` would start with (port sets, class window, each
    /// hop's share). Exit status 1 and the reason if it is bad or no hop
    /// could take new flows.
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
    /// Simulate a scenario (SPEC 7) under uniform random choice, ECMP, a
    /// health-checked least-loaded balancer, steerer's policy engine and an
    /// oracle; print the comparison and
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
        /// Policies to compare, comma-separated (default: all five).
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
pub enum DirectoryVerb {
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
