//! The lab's plumbing: veth pairs born inside their namespaces,
//! addresses, forwarding, tbf shaping.

use anyhow::Result;

use crate::netns::run_in;

pub(super) fn veth(ns_a: &str, name_a: &str, ns_b: &str, name_b: &str) -> Result<()> {
    // Both ends are born inside their namespaces: nothing ever appears in
    // the root namespace.
    run_in(
        ns_a,
        "ip",
        &[
            "link", "add", name_a, "type", "veth", "peer", "name", name_b, "netns", ns_b,
        ],
    )?;
    run_in(ns_a, "ip", &["link", "set", "dev", name_a, "up"])?;
    run_in(ns_b, "ip", &["link", "set", "dev", name_b, "up"])?;
    Ok(())
}

pub(super) fn addr(ns: &str, dev: &str, v4: &str, v6: &str) -> Result<()> {
    run_in(ns, "ip", &["addr", "add", v4, "dev", dev])?;
    run_in(ns, "ip", &["-6", "addr", "add", v6, "dev", dev, "nodad"])?;
    Ok(())
}

pub(super) fn forwarding(ns: &str) -> Result<()> {
    run_in(ns, "sysctl", &["-qw", "net.ipv4.ip_forward=1"])?;
    run_in(ns, "sysctl", &["-qw", "net.ipv6.conf.all.forwarding=1"])?;
    // Replies of steered flows come back on whichever hop link the flow
    // used, not the one the routing table would pick: no reverse-path filter.
    run_in(ns, "sysctl", &["-qw", "net.ipv4.conf.all.rp_filter=0"])?;
    run_in(ns, "sysctl", &["-qw", "net.ipv4.conf.default.rp_filter=0"])?;
    Ok(())
}

pub(super) fn tbf(ns: &str, dev: &str, rate_mbit: u32) -> Result<()> {
    let burst = ((rate_mbit as u64 * 1_000_000 / 8) / 100).max(32 * 1024);
    run_in(
        ns,
        "tc",
        &[
            "qdisc",
            "add",
            "dev",
            dev,
            "root",
            "tbf",
            "rate",
            &format!("{rate_mbit}mbit"),
            "burst",
            &burst.to_string(),
            "latency",
            "100ms",
        ],
    )?;
    Ok(())
}
