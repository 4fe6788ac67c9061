//! The daemon's probe rounds (issue 14, item 2): the controller says which
//! hops are due (`Controller::poll_probes`); each round probes every target
//! of the hop at once, through the hop (its mark: a mark hop's own, a
//! redirect hop's policy route, `probe_routes`), and reports the best
//! round-trip time, or none, back to the loop, which hands it to the
//! controller. Nothing here judges a hop.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    time::{Duration, Instant},
};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::sync::mpsc;
use tracing::{debug, info};

use super::{hops::ResolvedHop, probe_routes::ProbeRoutes};
use crate::config::{Config, ProbeConfig, ProbeKind};

/// One round's outcome.
#[derive(Debug)]
pub struct RoundResult {
    pub hop: String,
    pub rtt_ns: Option<u64>,
}

/// How a hop is probed: its mark and its targets.
#[derive(Debug, Clone)]
struct ProbeWay {
    mark: u32,
    targets: Vec<IpAddr>,
}

/// Probes sent and answered, over the run.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProbeCounts {
    pub rounds: u64,
    pub probes: u64,
    pub answered_rounds: u64,
}

pub struct Probes {
    config: ProbeConfig,
    routes: ProbeRoutes,
    ways: HashMap<String, ProbeWay>,
    /// Each hop's targets (of the families its route can carry).
    targets: Vec<(String, Vec<IpAddr>)>,
    tx: mpsc::UnboundedSender<RoundResult>,
    pub rx: mpsc::UnboundedReceiver<RoundResult>,
    pub counts: ProbeCounts,
}

impl Probes {
    /// Routes installed and ways known for `config`'s hops; `None` without
    /// `[probe]`.
    pub async fn start(
        handle: &rtnetlink::Handle,
        config: &Config,
        hops: &[ResolvedHop],
    ) -> Option<Probes> {
        let probe = config.probe.clone()?;
        let routes = ProbeRoutes::install(handle, &probe, hops).await;
        let (tx, rx) = mpsc::unbounded_channel();
        let mut p = Probes {
            config: probe,
            routes,
            ways: HashMap::new(),
            targets: Vec::new(),
            tx,
            rx,
            counts: ProbeCounts::default(),
        };
        p.set_ways(config);
        info!(
            hops = p.ways.len(),
            kind = ?p.config.kind,
            interval_secs = p.config.interval_secs,
            max_rounds_per_sec = p.config.max_rounds_per_sec,
            "probing through every hop"
        );
        Some(p)
    }

    /// A reload: targets, routes and ways again for these hops.
    pub async fn sync(
        &mut self,
        handle: &rtnetlink::Handle,
        config: &Config,
        hops: &[ResolvedHop],
    ) {
        if let Some(p) = &config.probe {
            self.config = p.clone();
        }
        self.routes.sync(handle, &self.config, hops).await;
        self.set_ways(config);
    }

    /// A hop's link changed (its interface may be new): routes again.
    pub async fn sync_links(&mut self, handle: &rtnetlink::Handle, hops: &[ResolvedHop]) {
        self.routes.sync(handle, &self.config, hops).await;
        self.rebuild_ways();
    }

    fn set_ways(&mut self, config: &Config) {
        self.targets = config
            .hops
            .iter()
            .map(|h| {
                // A redirect hop's route has one family: its next hop's.
                let targets = self
                    .config
                    .targets_of(h)
                    .iter()
                    .copied()
                    .filter(|t| h.next_hop.is_none_or(|n| n.is_ipv4() == t.is_ipv4()))
                    .collect();
                (h.name.clone(), targets)
            })
            .collect();
        self.rebuild_ways();
    }

    fn rebuild_ways(&mut self) {
        self.ways.clear();
        for (name, targets) in &self.targets {
            if let (Some(&mark), false) = (self.routes.marks.get(name), targets.is_empty()) {
                let targets = targets.clone();
                self.ways.insert(name.clone(), ProbeWay { mark, targets });
            }
        }
    }

    /// Start a round through each hop named (in the background); a hop
    /// that cannot be probed (no route, no target) is skipped.
    pub fn start_rounds(&mut self, hops: Vec<String>) {
        for hop in hops {
            let Some(way) = self.ways.get(&hop).cloned() else {
                debug!(hop = %hop, "no probe route or target for this hop now: round skipped");
                continue;
            };
            self.counts.rounds += 1;
            self.counts.probes += way.targets.len() as u64;
            let (kind, port) = (self.config.kind, self.config.port());
            let timeout = Duration::from_millis(self.config.timeout_ms);
            let tx = self.tx.clone();
            tokio::spawn(async move {
                let rtt = round(kind, port, timeout, &way).await;
                let rtt_ns = rtt.map(|d| d.as_nanos().min(u64::MAX as u128) as u64);
                let _ = tx.send(RoundResult { hop, rtt_ns });
            });
        }
    }

    /// Exit: every rule and route removed.
    pub async fn stop(self, handle: &rtnetlink::Handle) {
        self.routes.remove_all(handle).await;
    }
}

/// Every target at once; the best answer.
async fn round(kind: ProbeKind, port: u16, timeout: Duration, way: &ProbeWay) -> Option<Duration> {
    let probes = way.targets.iter().map(|&t| async move {
        let r = match kind {
            ProbeKind::Icmp => icmp(t, way.mark, timeout).await,
            ProbeKind::Tcp => tcp(SocketAddr::new(t, port), way.mark, timeout).await,
            ProbeKind::Udp => udp(SocketAddr::new(t, port), way.mark, timeout).await,
        };
        r.ok()
    });
    futures::future::join_all(probes)
        .await
        .into_iter()
        .flatten()
        .min()
}

async fn icmp(target: IpAddr, mark: u32, timeout: Duration) -> std::io::Result<Duration> {
    let mut pinger = ping::PingerBuilder::new()
        .socket_type(ping::SocketType::RAW)
        .mark(mark)
        .build_tokio()
        .map_err(std::io::Error::other)?;
    let reply = pinger
        .ping(target, timeout)
        .await
        .map_err(std::io::Error::other)?;
    Ok(reply.rtt)
}

fn marked_socket(
    target: SocketAddr,
    ty: Type,
    proto: Protocol,
    mark: u32,
) -> std::io::Result<Socket> {
    let s = Socket::new(Domain::for_address(target), ty, Some(proto))?;
    s.set_mark(mark)?;
    s.set_nonblocking(true)?;
    Ok(s)
}

/// SYN answered by SYN-ACK (connected) or RST (refused): either came back
/// through the hop.
async fn tcp(target: SocketAddr, mark: u32, timeout: Duration) -> std::io::Result<Duration> {
    let s = marked_socket(target, Type::STREAM, Protocol::TCP, mark)?;
    let socket = tokio::net::TcpSocket::from_std_stream(s.into());
    let started = Instant::now();
    match tokio::time::timeout(timeout, socket.connect(target)).await {
        Ok(Ok(_)) => Ok(started.elapsed()),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => Ok(started.elapsed()),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
    }
}

/// A datagram echoed back (or a port unreachable: the target answered).
async fn udp(target: SocketAddr, mark: u32, timeout: Duration) -> std::io::Result<Duration> {
    let s = marked_socket(target, Type::DGRAM, Protocol::UDP, mark)?;
    let unspecified: SocketAddr = match target {
        SocketAddr::V4(_) => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    s.bind(&unspecified.into())?;
    let socket = tokio::net::UdpSocket::from_std(s.into())?;
    socket.connect(target).await?;
    let started = Instant::now();
    socket.send(b"steerer probe").await?;
    let mut buf = [0u8; 64];
    match tokio::time::timeout(timeout, socket.recv(&mut buf)).await {
        Ok(Ok(_)) => Ok(started.elapsed()),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => Ok(started.elapsed()),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
    }
}

impl Probes {
    /// At start, before the first tables: one round through each hop (as
    /// many as the rate bound allows in one interval, of `hops`), all at
    /// once; the times of those that answered, milliseconds.
    pub async fn first_round(&mut self, hops: usize) -> HashMap<String, f64> {
        let budget = (self.config.max_rounds_per_sec * self.config.interval_secs as f64) as usize;
        let mut names: Vec<String> = self.ways.keys().cloned().collect();
        names.sort();
        names.truncate(budget.max(1).min(hops));
        let (kind, port) = (self.config.kind, self.config.port());
        let timeout = Duration::from_millis(self.config.timeout_ms);
        let rounds = names.iter().map(|name| {
            let way = self.ways[name].clone();
            async move { (name.clone(), round(kind, port, timeout, &way).await) }
        });
        let results = futures::future::join_all(rounds).await;
        self.counts.rounds += results.len() as u64;
        let out: HashMap<String, f64> = results
            .into_iter()
            .filter_map(|(n, rtt)| Some((n, rtt?.as_secs_f64() * 1e3)))
            .collect();
        self.counts.answered_rounds += out.len() as u64;
        let mut times: Vec<String> = out.iter().map(|(n, ms)| format!("{n}={ms:.1}ms")).collect();
        times.sort();
        info!(
            probed = names.len(),
            answered = out.len(),
            times = %times.join(" "),
            "first probe round: the answering hops' times rank equal hops in the first windows"
        );
        out
    }
}
