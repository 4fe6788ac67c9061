//! One hop of the lab: its links, routes, nftables rules (masquerade,
//! blackholes) and shaping, and the changes a test makes to it mid-run.

use anyhow::Result;

use super::{
    links::{addr, forwarding, tbf, veth},
    HopOptions, Lab,
};
use crate::netns::{nft_apply, run_in};

impl Lab {
    pub(super) fn create_hop(&mut self, i: usize) -> Result<()> {
        let (gw, inet, h) = (self.gw_ns(), self.inet_ns(), self.hop_ns(i));
        let gw_if = self.hop_iface(i);
        let a = 1 + i;
        let b = 100 + i;
        veth(&gw, &gw_if, &h, "gw")?;
        addr(
            &gw,
            &gw_if,
            &format!("198.18.{a}.1/24"),
            &format!("2001:db8:0:{a:x}::1/64"),
        )?;
        addr(
            &h,
            "gw",
            &format!("198.18.{a}.2/24"),
            &format!("2001:db8:0:{a:x}::2/64"),
        )?;
        let up = format!("h{i}");
        veth(&h, "uplink", &inet, &up)?;
        addr(
            &h,
            "uplink",
            &format!("198.18.{b}.2/24"),
            &format!("2001:db8:0:{b:x}::2/64"),
        )?;
        addr(
            &inet,
            &up,
            &format!("198.18.{b}.1/24"),
            &format!("2001:db8:0:{b:x}::1/64"),
        )?;
        run_in(
            &h,
            "ip",
            &["route", "add", "default", "via", &format!("198.18.{b}.1")],
        )?;
        run_in(
            &h,
            "ip",
            &[
                "-6",
                "route",
                "add",
                "default",
                "via",
                &format!("2001:db8:0:{b:x}::1"),
            ],
        )?;
        self.client_routes(i)?;
        forwarding(&h)?;
        // XDP_REDIRECT into a veth only delivers when the peer runs NAPI:
        // GRO on the hop's end turns it on.
        run_in(&h, "ethtool", &["-K", "gw", "gro", "on"])?;
        let opts = self.spec.hops[i].clone();
        self.write_nft(i, &opts)?;
        if let Some(rate) = opts.rate_mbit {
            // Both directions: uploads leave via "uplink", downloads via "gw".
            tbf(&h, "uplink", rate)?;
            tbf(&h, "gw", rate)?;
        }
        Ok(())
    }

    pub(super) fn write_nft(&self, i: usize, opts: &HopOptions) -> Result<()> {
        let mut drop_rule = match opts.blackhole_port {
            Some(p) => format!("iifname \"gw\" tcp dport {p} drop;"),
            None => String::new(),
        };
        if let Some((ip, p)) = opts.blackhole_dest {
            drop_rule.push_str(&format!(
                " iifname \"gw\" ip daddr {ip} tcp dport {p} drop;"
            ));
        }
        let ruleset = format!(
            "table inet steerer_lab\n\
             delete table inet steerer_lab\n\
             table inet steerer_lab {{\n\
               chain postrouting {{ type nat hook postrouting priority srcnat; oifname \"uplink\" masquerade; }}\n\
               chain forward {{ type filter hook forward priority filter; policy accept; {drop_rule} }}\n\
             }}\n"
        );
        nft_apply(&self.hop_ns(i), &ruleset)
    }

    /// Make hop `i` drop (or stop dropping) a TCP destination port.
    pub fn set_blackhole(&mut self, i: usize, port: Option<u16>) -> Result<()> {
        let mut opts = self.spec.hops[i].clone();
        opts.blackhole_port = port;
        self.write_nft(i, &opts)?;
        self.spec.hops[i] = opts;
        Ok(())
    }

    /// Hop `i`'s routes back to the client, via the gateway (a link set
    /// down loses them; `replace` makes this safe to repeat).
    pub(super) fn client_routes(&self, i: usize) -> Result<()> {
        let (h, a) = (self.hop_ns(i), 1 + i);
        let v4_via = format!("198.18.{a}.1");
        let v6_via = format!("2001:db8:0:{a:x}::1");
        run_in(
            &h,
            "ip",
            &["route", "replace", "198.18.0.0/24", "via", &v4_via],
        )?;
        run_in(
            &h,
            "ip",
            &["-6", "route", "replace", "2001:db8::/64", "via", &v6_via],
        )?;
        Ok(())
    }

    /// Set hop `i`'s end of its link to the gateway down (the gateway's
    /// interface loses carrier) or up again, with the hop's IPv6 address
    /// and routes back to the client restored (the kernel drops them with
    /// the link).
    pub fn set_hop_link(&self, i: usize, up: bool) -> Result<()> {
        let state = if up { "up" } else { "down" };
        let h = self.hop_ns(i);
        run_in(&h, "ip", &["link", "set", "dev", "gw", state])?;
        if up {
            // IPv6 addresses go with the link too (keep_addr_on_down = 0).
            let a = 1 + i;
            let v6 = format!("2001:db8:0:{a:x}::2/64");
            run_in(
                &h,
                "ip",
                &["-6", "addr", "replace", &v6, "dev", "gw", "nodad"],
            )?;
            self.client_routes(i)?;
        }
        Ok(())
    }

    /// Change hop `i`'s rate limit (both directions) to `mbit` (the spec
    /// keeps the rate the lab was built with).
    pub fn set_rate(&self, i: usize, mbit: u32) -> Result<()> {
        let ns = self.hop_ns(i);
        for dev in ["uplink", "gw"] {
            let _ = run_in(&ns, "tc", &["qdisc", "del", "dev", dev, "root"]);
            tbf(&ns, dev, mbit)?;
        }
        Ok(())
    }
}
