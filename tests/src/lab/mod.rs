//! The lab topology.
//!
//! ```text
//!  client --- gateway ---+--- hop0 ---+
//!   (cl)    (gw, steerer) +--- hop1 ---+--- internet --- server
//!                        +--- hopN ---+      (in)          (sv)
//! ```
//!
//! | link              | IPv4                         | IPv6                      |
//! |-------------------|------------------------------|---------------------------|
//! | client - gateway  | 198.18.0.2 / .1 /24          | 2001:db8::2 / ::1 /64     |
//! | gateway - hop i   | 198.18.(1+i).1 / .2 /24      | 2001:db8:0:(1+i)::1 / ::2 |
//! | hop i - internet  | 198.18.(100+i).2 / .1 /24    | 2001:db8:0:(100+i)::2/::1 |
//! | internet - server | 198.19.0.1 / .2 /24          | 2001:db8:ffff::1 / ::2    |
//!
//! Each hop forwards and masquerades (nftables) towards the internet
//! namespace, so a flow's replies come back through the hop it left by.
//! The gateway routes unsteered traffic via hop 0.

mod hop;
mod links;

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    sync::atomic::{AtomicU32, Ordering},
};

use anyhow::{bail, Context as _, Result};

use crate::netns::{run, run_in};
use links::{addr, forwarding, veth};

/// How one hop behaves.
#[derive(Debug, Clone, Default)]
pub struct HopOptions {
    /// Rate limit (tbf) in both directions, Mbit/s.
    pub rate_mbit: Option<u32>,
    /// TCP destination port the hop silently drops (nftables).
    pub blackhole_port: Option<u16>,
    /// One destination (IPv4 address, TCP port) the hop silently drops,
    /// every other destination on that port passing.
    pub blackhole_dest: Option<(Ipv4Addr, u16)>,
}

#[derive(Debug, Clone, Default)]
pub struct LabSpec {
    pub hops: Vec<HopOptions>,
    /// The gateway's LAN interface name (default: unique per lab). Labs
    /// may share one: each lives in its own gateway namespace.
    pub lan_iface: Option<String>,
}

impl LabSpec {
    pub fn equal_hops(n: usize) -> Self {
        LabSpec {
            hops: vec![HopOptions::default(); n],
            lan_iface: None,
        }
    }
}

/// A built lab; dropping it deletes every namespace (and with them every
/// link and attached program), also during a panic.
pub struct Lab {
    pub prefix: String,
    namespaces: Vec<String>,
    pub spec: LabSpec,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn unique_prefix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mix = std::process::id()
        .wrapping_mul(2_654_435_761)
        .wrapping_add(COUNTER.fetch_add(1, Ordering::Relaxed).wrapping_mul(40_503))
        ^ nanos;
    format!("sl{:05x}", mix & 0xfffff)
}

pub const SERVER_V4: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 2);
/// The server's second IPv4 address (the same server, another destination).
pub const SERVER2_V4: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 3);
pub const SERVER_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 2);
pub const CLIENT_V4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
pub const CLIENT_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

impl Lab {
    pub fn client_ns(&self) -> String {
        format!("{}cl", self.prefix)
    }
    pub fn gw_ns(&self) -> String {
        format!("{}gw", self.prefix)
    }
    pub fn hop_ns(&self, i: usize) -> String {
        format!("{}h{i}", self.prefix)
    }
    pub fn inet_ns(&self) -> String {
        format!("{}in", self.prefix)
    }
    pub fn server_ns(&self) -> String {
        format!("{}sv", self.prefix)
    }
    /// The gateway's LAN-facing interface (where steerer attaches):
    /// unique per lab unless the spec names one.
    pub fn lan_iface(&self) -> String {
        self.spec
            .lan_iface
            .clone()
            .unwrap_or_else(|| format!("{}lan", self.prefix))
    }
    /// The gateway's interface towards hop `i`.
    pub fn hop_iface(&self, i: usize) -> String {
        format!("{}h{i}", self.prefix)
    }
    /// Hop `i`'s address on the gateway link (the steerer next hop).
    pub fn hop_next_hop(&self, i: usize) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(198, 18, 1 + i as u8, 2))
    }
    pub fn hop_count(&self) -> usize {
        self.spec.hops.len()
    }
    /// The gateway namespace's id as steerer names it (`net` + inode).
    pub fn gw_netns_id(&self) -> String {
        use std::os::unix::fs::MetadataExt as _;
        let ino = std::fs::metadata(format!("/run/netns/{}", self.gw_ns()))
            .map(|m| m.ino())
            .unwrap_or(0);
        format!("net{ino}")
    }

    /// Where steerer pins this lab's maps: per namespace and interface.
    pub fn pin_dir(&self) -> std::path::PathBuf {
        std::path::Path::new("/sys/fs/bpf/steerer")
            .join(self.gw_netns_id())
            .join(self.lan_iface())
    }

    /// The daemon's lock file for this lab's gateway.
    pub fn lock_file(&self) -> std::path::PathBuf {
        std::path::Path::new("/run/steerer").join(format!(
            "{}-{}.lock",
            self.gw_netns_id(),
            self.lan_iface()
        ))
    }

    /// Build the lab. On error everything created so far is removed.
    pub fn build(spec: LabSpec) -> Result<Lab> {
        if spec.hops.is_empty() || spec.hops.len() > 90 {
            bail!("a lab needs 1 to 90 hops, got {}", spec.hops.len());
        }
        if !nix::unistd::geteuid().is_root() {
            bail!("the lab creates network namespaces and needs root");
        }
        let mut lab = Lab {
            prefix: unique_prefix(),
            namespaces: Vec::new(),
            spec,
        };
        lab.create()
            .with_context(|| format!("building lab {}", lab.prefix))?;
        Ok(lab)
    }

    fn add_ns(&mut self, name: String) -> Result<()> {
        run("ip", &["netns", "add", &name])?;
        self.namespaces.push(name.clone());
        crate::live::add(name.clone());
        run_in(&name, "ip", &["link", "set", "lo", "up"])?;
        // No duplicate-address detection on links created later: addresses
        // (link-local ones too) are usable at once, so IPv6 works as soon
        // as the lab is built.
        run_in(
            &name,
            "sysctl",
            &["-qw", "net.ipv6.conf.default.accept_dad=0"],
        )?;
        run_in(&name, "sysctl", &["-qw", "net.ipv6.conf.all.accept_dad=0"])?;
        Ok(())
    }

    fn create(&mut self) -> Result<()> {
        let (cl, gw, inet, sv) = (
            self.client_ns(),
            self.gw_ns(),
            self.inet_ns(),
            self.server_ns(),
        );
        for ns in [cl.clone(), gw.clone(), inet.clone(), sv.clone()] {
            self.add_ns(ns)?;
        }
        for i in 0..self.hop_count() {
            self.add_ns(self.hop_ns(i))?;
        }

        // client <-> gateway
        let lan = self.lan_iface();
        veth(&cl, "eth0", &gw, &lan)?;
        addr(&cl, "eth0", "198.18.0.2/24", "2001:db8::2/64")?;
        addr(&gw, &lan, "198.18.0.1/24", "2001:db8::1/64")?;
        run_in(&cl, "ip", &["route", "add", "default", "via", "198.18.0.1"])?;
        run_in(
            &cl,
            "ip",
            &["-6", "route", "add", "default", "via", "2001:db8::1"],
        )?;
        // A veth hands the gateway packets whose TCP/UDP checksum is only
        // "partial" (offloaded); XDP_REDIRECT loses that mark and the hop
        // would drop them. A real NIC delivers full checksums, so make the
        // client compute them in software like a real host's NIC would.
        run_in(&cl, "ethtool", &["-K", "eth0", "tx", "off"])?;
        forwarding(&gw)?;

        // internet <-> server
        veth(&inet, "srv", &sv, "eth0")?;
        addr(&inet, "srv", "198.19.0.1/24", "2001:db8:ffff::1/64")?;
        addr(&sv, "eth0", "198.19.0.2/24", "2001:db8:ffff::2/64")?;
        // A second server address: two destinations on one port.
        run_in(&sv, "ip", &["addr", "add", "198.19.0.3/24", "dev", "eth0"])?;
        run_in(&sv, "ip", &["route", "add", "default", "via", "198.19.0.1"])?;
        run_in(
            &sv,
            "ip",
            &["-6", "route", "add", "default", "via", "2001:db8:ffff::1"],
        )?;
        forwarding(&inet)?;

        for i in 0..self.hop_count() {
            self.create_hop(i)?;
        }
        // Unsteered traffic (and the kernel's own) leaves through hop 0.
        run_in(&gw, "ip", &["route", "add", "default", "via", "198.18.1.2"])?;
        run_in(
            &gw,
            "ip",
            &["-6", "route", "add", "default", "via", "2001:db8:0:1::2"],
        )?;
        Ok(())
    }

    /// A steerer configuration for this lab's gateway.
    pub fn steerer_config(&self, tick_secs: u64, estimates_mbit: &[f64]) -> String {
        let hops: Vec<(usize, f64)> = (0..self.hop_count())
            .map(|i| (i, estimates_mbit.get(i).copied().unwrap_or(100.0)))
            .collect();
        self.steerer_config_for(tick_secs, &hops)
    }

    /// A configuration with some of the hops, in this order: (hop index,
    /// estimated Mbit/s).
    pub fn steerer_config_for(&self, tick_secs: u64, hops: &[(usize, f64)]) -> String {
        let mut s = format!("tick_secs = {tick_secs}\n");
        for &(i, est) in hops {
            s.push_str(&format!(
                "\n[[hop]]\nname = \"hop{i}\"\ninterface = \"{}\"\nnext_hop = \"{}\"\n\
                 estimated_speed_mbit = {est:.1}\nestimated_capacity_mbit = {est:.1}\n",
                self.hop_iface(i),
                self.hop_next_hop(i)
            ));
        }
        s
    }

    /// Names of the namespaces this lab created (and still owns).
    pub fn namespaces(&self) -> &[String] {
        &self.namespaces
    }

    /// Delete hop `i`'s namespace mid-run (the hop vanishes: its link to
    /// the gateway goes with it).
    pub fn remove_hop(&mut self, i: usize) -> Result<()> {
        let ns = self.hop_ns(i);
        run("ip", &["netns", "del", &ns])?;
        self.namespaces.retain(|n| *n != ns);
        crate::live::forget(&ns);
        Ok(())
    }

    /// Delete every namespace now; safe to call twice.
    pub fn teardown(&mut self) -> Result<()> {
        let mut errors = Vec::new();
        for ns in self.namespaces.drain(..).rev() {
            crate::live::forget(&ns);
            if let Err(e) = run("ip", &["netns", "del", &ns]) {
                errors.push(e.to_string());
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            bail!("teardown: {}", errors.join("; "))
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Err(e) = self.teardown() {
            eprintln!("lab {}: {e:#}", self.prefix);
        }
    }
}
