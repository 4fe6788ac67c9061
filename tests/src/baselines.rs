//! What operators run today instead of steerer, set up on the lab's
//! gateway: Linux ECMP over the hops (equal weights, or weighted by the
//! hops' true capacities) with the L4 hash, the same with an mwan3-style
//! health check (`health_check`), and nftables choosing a hop per new
//! connection at random (`numgen random`, a ct mark, fwmark rules into
//! one routing table per hop). Each one is installed and removed whole,
//! and connection tracking is flushed between runs.

use anyhow::{Context as _, Result};

use crate::{
    health_check::{v4_next_hop, v6_next_hop, EcmpRoute, HealthCheck, Tracker},
    netns::{command_in, nft_apply, run_in},
    Lab,
};

/// A gateway policy that is not steerer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Baseline {
    /// ECMP with the L4 hash (`fib_multipath_hash_policy = 1`), one weight
    /// per hop.
    Ecmp { weights: Vec<u32> },
    /// ECMP as above, and a hop out of the route while its pings fail
    /// (mwan3's static weights and `track_ip`).
    HealthChecked {
        weights: Vec<u32>,
        check: HealthCheck,
    },
    /// nftables: a random hop per new connection, kept for the
    /// connection's life in its ct mark (the mark is drawn only while it
    /// is 0, so a retransmitted SYN stays on its hop), fwmark rules route
    /// by it.
    NftRandom,
}

/// First routing table of the nft baseline (hop i uses `TABLE_BASE + i`).
const TABLE_BASE: u32 = 100;
const NFT_TABLE: &str = "steerer_lab_lb";

impl Baseline {
    pub fn label(&self) -> String {
        match self {
            Baseline::Ecmp { weights } if weights.iter().all(|&w| w == weights[0]) => {
                "ecmp (equal)".into()
            }
            Baseline::Ecmp { weights } => format!("ecmp ({})", weight_list(weights)),
            Baseline::HealthChecked { weights, .. } => {
                format!("mwan3-style {}", weight_list(weights))
            }
            Baseline::NftRandom => "nft numgen random".into(),
        }
    }

    /// Install on the lab's gateway (replacing its default route). If it
    /// fails half-way, what it did is removed again.
    pub fn install(&self, lab: &Lab) -> Result<Installed> {
        let tracker = self
            .install_parts(lab)
            .with_context(|| format!("installing {}", self.label()));
        match tracker {
            Ok(tracker) => Ok(Installed {
                baseline: self.clone(),
                tracker,
            }),
            Err(e) => {
                let _ = self.remove(lab);
                Err(e)
            }
        }
    }

    fn install_parts(&self, lab: &Lab) -> Result<Option<Tracker>> {
        kernel_paths_like_xdp(lab)?;
        match self {
            Baseline::Ecmp { weights } => install_ecmp(lab, weights).map(|()| None),
            Baseline::HealthChecked { weights, check } => {
                install_ecmp(lab, weights)?;
                Tracker::start(lab, weights, check).map(Some)
            }
            Baseline::NftRandom => install_nft(lab).map(|()| None),
        }
    }

    /// Remove it (whatever of it is installed): the gateway routes via
    /// hop 0 as the lab built it.
    pub fn remove(&self, lab: &Lab) -> Result<()> {
        let gw = lab.gw_ns();
        match self {
            Baseline::Ecmp { .. } | Baseline::HealthChecked { .. } => {}
            Baseline::NftRandom => {
                let _ = run_in(&gw, "nft", &["delete", "table", "inet", NFT_TABLE]);
                for i in 0..lab.hop_count() {
                    let table = (TABLE_BASE + i as u32).to_string();
                    let mark = (i + 1).to_string();
                    for fam in ["-4", "-6"] {
                        let _ = run_in(
                            &gw,
                            "ip",
                            &[fam, "rule", "del", "fwmark", &mark, "table", &table],
                        );
                        let _ = run_in(&gw, "ip", &[fam, "route", "flush", "table", &table]);
                    }
                }
            }
        }
        default_via_hop0(lab)
    }
}

/// `20/10/5/1`.
fn weight_list(weights: &[u32]) -> String {
    let w: Vec<String> = weights.iter().map(u32::to_string).collect();
    w.join("/")
}

/// An installed baseline.
pub struct Installed {
    baseline: Baseline,
    tracker: Option<Tracker>,
}

impl Installed {
    /// Remove it; returns what its health check did (a line per hop
    /// taken out or brought back).
    pub fn remove(mut self, lab: &Lab) -> Result<Vec<String>> {
        let log = self.tracker.take().map(Tracker::stop).unwrap_or_default();
        self.baseline.remove(lab)?;
        Ok(log)
    }
}

/// XDP_REDIRECT into a veth arrives GRO-merged at the hop; give the kernel
/// paths the same by GRO on the gateway's LAN port (lab notes), and keep
/// the client's flow hash stable across retransmissions (`txrehash = 0`:
/// a veth hands the sender's hash to the gateway, and TCP re-draws it on
/// every RTO, which would move an ECMP flow mid-connection).
fn kernel_paths_like_xdp(lab: &Lab) -> Result<()> {
    run_in(
        &lab.gw_ns(),
        "ethtool",
        &["-K", &lab.lan_iface(), "gro", "on"],
    )?;
    run_in(&lab.client_ns(), "sysctl", &["-qw", "net.core.txrehash=0"])?;
    Ok(())
}

fn install_ecmp(lab: &Lab, weights: &[u32]) -> Result<()> {
    let gw = lab.gw_ns();
    run_in(
        &gw,
        "sysctl",
        &["-qw", "net.ipv4.fib_multipath_hash_policy=1"],
    )?;
    run_in(
        &gw,
        "sysctl",
        &["-qw", "net.ipv6.fib_multipath_hash_policy=1"],
    )?;
    // A next hop whose link lost carrier leaves the multipath route, as an
    // operator would configure it (the default keeps using it).
    for fam in ["ipv4", "ipv6"] {
        for scope in ["all", "default"] {
            let key = format!("net.{fam}.conf.{scope}.ignore_routes_with_linkdown=1");
            run_in(&gw, "sysctl", &["-qw", &key])?;
        }
    }
    EcmpRoute::of(lab).write(weights)
}

fn install_nft(lab: &Lab) -> Result<()> {
    let gw = lab.gw_ns();
    let n = lab.hop_count();
    let map: Vec<String> = (0..n).map(|i| format!("{i} : {}", i + 1)).collect();
    let ruleset = format!(
        "table inet {NFT_TABLE} {{\n\
           chain prerouting {{\n\
             type filter hook prerouting priority mangle; policy accept;\n\
             iifname \"{lan}\" ct mark 0 ct mark set numgen random mod {n} map {{ {map} }}\n\
             iifname \"{lan}\" meta mark set ct mark\n\
           }}\n\
         }}\n",
        lan = lab.lan_iface(),
        map = map.join(", ")
    );
    nft_apply(&gw, &ruleset)?;
    for i in 0..n {
        let table = (TABLE_BASE + i as u32).to_string();
        let mark = (i + 1).to_string();
        for (fam, via) in [("-4", v4_next_hop(i)), ("-6", v6_next_hop(i))] {
            run_in(
                &gw,
                "ip",
                &[
                    fam,
                    "route",
                    "replace",
                    "default",
                    "via",
                    &via,
                    "dev",
                    &lab.hop_iface(i),
                    "table",
                    &table,
                ],
            )?;
            run_in(
                &gw,
                "ip",
                &[fam, "rule", "add", "fwmark", &mark, "table", &table],
            )?;
        }
    }
    Ok(())
}

/// The gateway's default route as the lab built it: via hop 0.
fn default_via_hop0(lab: &Lab) -> Result<()> {
    let gw = lab.gw_ns();
    run_in(
        &gw,
        "ip",
        &["-4", "route", "replace", "default", "via", &v4_next_hop(0)],
    )?;
    run_in(
        &gw,
        "ip",
        &["-6", "route", "replace", "default", "via", &v6_next_hop(0)],
    )?;
    Ok(())
}

/// Forget every tracked connection on the gateway and the hops (NAT state
/// of an earlier run must not steer or block the next).
pub fn flush_conntrack(lab: &Lab) -> Result<()> {
    let mut namespaces = vec![lab.gw_ns()];
    namespaces.extend((0..lab.hop_count()).map(|i| lab.hop_ns(i)));
    for ns in namespaces {
        // Exit status 1 with "0 flow entries" when there is nothing to flush.
        let out = command_in(&ns, "conntrack")?
            .args(["-F"])
            .output()
            .context("running conntrack (install it: `cargo xtask setup`)")?;
        let text = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() && !text.contains("flow entries have been deleted") {
            anyhow::bail!("conntrack -F in {ns}: {}", text.trim());
        }
    }
    Ok(())
}

/// Bytes each hop forwarded towards the internet so far (its uplink's
/// transmit counter): what every policy really sent through it.
pub fn hop_uplink_bytes(lab: &Lab) -> Result<Vec<u64>> {
    (0..lab.hop_count())
        .map(|i| {
            let out = run_in(
                &lab.hop_ns(i),
                "ip",
                &["-s", "-j", "link", "show", "dev", "uplink"],
            )?;
            let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
            v[0]["stats64"]["tx"]["bytes"]
                .as_u64()
                .with_context(|| format!("no tx bytes for hop {i}'s uplink"))
        })
        .collect()
}
