//! A bounded one-way UDP flood from a LAN host (new source ports all the
//! time, nothing answers), and the server-side rule that drops it
//! silently (no ICMP port unreachable back).

use std::{
    io::Write as _,
    net::{SocketAddr, UdpSocket},
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{ensure, Context as _, Result};

use crate::{
    netns::{command_in, run_in},
    Lab,
};

/// The UDP port the flood goes to (the first of `FLOOD_PORTS`).
pub const FLOOD_PORT: u16 = 9999;
/// Ports a flood may spread over (`flood`'s `port_span`), all dropped at
/// the server: one source address has only ~28,000 ephemeral ports, so a
/// flood faster than that repeats its tuples unless the destination port
/// varies too.
pub const FLOOD_PORTS: u16 = 1000;

/// The server drops the flood silently, until `allow_flood_at_server`.
pub fn drop_flood_at_server(lab: &Lab) -> Result<()> {
    let rules = format!(
        "add table inet steerer_flood\n\
         add chain inet steerer_flood input {{ type filter hook input priority 0; policy accept; }}\n\
         add rule inet steerer_flood input udp dport {FLOOD_PORT}-{} drop\n",
        FLOOD_PORT + FLOOD_PORTS - 1
    );
    let mut child = command_in(&lab.server_ns(), "nft")?
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .context("nft")?;
    child
        .stdin
        .take()
        .context("nft stdin")?
        .write_all(rules.as_bytes())?;
    ensure!(child.wait()?.success(), "nft rules in the server");
    Ok(())
}

pub fn allow_flood_at_server(lab: &Lab) {
    let _ = run_in(
        &lab.server_ns(),
        "nft",
        &["delete", "table", "inet", "steerer_flood"],
    );
}

/// Send 200-byte datagrams to `target` for `how_long` at `rate` per
/// second (paced), a new socket (source port) every `per_socket`; returns
/// datagrams sent. Run it in the client's namespace.
pub fn flood(target: SocketAddr, rate: u64, per_socket: u64, how_long: Duration) -> u64 {
    flood_ports(target, 1, rate, per_socket, how_long)
}

/// As `flood`, each socket to the next of `port_span` ports from the
/// target's (at most `FLOOD_PORTS`).
pub fn flood_ports(
    target: SocketAddr,
    port_span: u16,
    rate: u64,
    per_socket: u64,
    how_long: Duration,
) -> u64 {
    let span = port_span.clamp(1, FLOOD_PORTS) as u64;
    let mut to = target;
    let mut sockets = 0u64;
    let start = Instant::now();
    let mut sent = 0u64;
    let mut sock = None;
    while start.elapsed() < how_long {
        if sent.is_multiple_of(per_socket.max(1)) {
            sock = UdpSocket::bind("0.0.0.0:0").ok();
            to.set_port(target.port() + (sockets % span) as u16);
            sockets += 1;
        }
        if let Some(s) = &sock {
            if s.send_to(&[0u8; 200], to).is_ok() {
                sent += 1;
            }
        }
        let due = Duration::from_micros(sent * 1_000_000 / rate.max(1));
        if let Some(wait) = due.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    sent
}
