//! Link, address and neighbour facts from rtnetlink.

use std::{
    net::{IpAddr, SocketAddr, UdpSocket},
    time::Duration,
};

use futures::TryStreamExt;
use netlink_packet_route::{
    address::AddressAttribute,
    link::LinkAttribute,
    neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourState},
};
use rtnetlink::Handle;

/// Interface index of `name`, if it exists.
pub fn ifindex(name: &str) -> Option<u32> {
    nix::net::if_::if_nametoindex(name).ok()
}

pub fn interface_exists(name: &str) -> bool {
    ifindex(name).is_some()
}

/// Open a netlink connection; the connection task runs on the current runtime.
pub fn connect() -> std::io::Result<Handle> {
    let (connection, handle, _) = rtnetlink::new_connection()?;
    tokio::spawn(connection);
    Ok(handle)
}

/// MAC address of interface `index`.
pub async fn link_mac(handle: &Handle, index: u32) -> Result<Option<[u8; 6]>, rtnetlink::Error> {
    let mut links = handle.link().get().match_index(index).execute();
    while let Some(link) = links.try_next().await? {
        for attr in link.attributes {
            if let LinkAttribute::Address(a) = attr {
                if let Ok(mac) = <[u8; 6]>::try_from(a.as_slice()) {
                    return Ok(Some(mac));
                }
            }
        }
    }
    Ok(None)
}

/// Whether interface `index` is administratively up and has carrier
/// (`IFF_UP` and `IFF_LOWER_UP`): a hop behind a link without carrier
/// cannot be reached.
pub async fn link_is_up(handle: &Handle, index: u32) -> Result<bool, rtnetlink::Error> {
    use netlink_packet_route::link::LinkFlag;
    let mut links = handle.link().get().match_index(index).execute();
    Ok(match links.try_next().await? {
        Some(link) => {
            let f = &link.header.flags;
            f.contains(&LinkFlag::Up) && f.contains(&LinkFlag::LowerUp)
        }
        None => false,
    })
}

/// Every address configured on this host (namespace).
pub async fn local_addresses(handle: &Handle) -> Result<Vec<IpAddr>, rtnetlink::Error> {
    let mut out = Vec::new();
    let mut addrs = handle.address().get().execute();
    while let Some(msg) = addrs.try_next().await? {
        for attr in msg.attributes {
            if let AddressAttribute::Address(a) | AddressAttribute::Local(a) = attr {
                if !out.contains(&a) {
                    out.push(a)
                }
            }
        }
    }
    Ok(out)
}

/// The neighbour table's MAC for `ip` on interface `index`, if known and
/// usable (not failed or incomplete).
pub async fn neighbour_mac(
    handle: &Handle,
    index: u32,
    ip: IpAddr,
) -> Result<Option<[u8; 6]>, rtnetlink::Error> {
    let mut neighbours = handle.neighbours().get().execute();
    while let Some(n) = neighbours.try_next().await? {
        if n.header.ifindex != index {
            continue;
        }
        if matches!(
            n.header.state,
            NeighbourState::Failed | NeighbourState::Incomplete | NeighbourState::None
        ) {
            continue;
        }
        let mut dst = None;
        let mut mac = None;
        for attr in &n.attributes {
            match attr {
                NeighbourAttribute::Destination(NeighbourAddress::Inet(a)) => {
                    dst = Some(IpAddr::V4(*a))
                }
                NeighbourAttribute::Destination(NeighbourAddress::Inet6(a)) => {
                    dst = Some(IpAddr::V6(*a))
                }
                NeighbourAttribute::LinkLocalAddress(l) => {
                    mac = <[u8; 6]>::try_from(l.as_slice()).ok()
                }
                _ => {}
            }
        }
        if dst == Some(ip) {
            return Ok(mac);
        }
    }
    Ok(None)
}

/// Make the kernel resolve `ip`: send one datagram to its discard port
/// (UDP 9). The kernel queues it behind an ARP / neighbour solicitation.
pub fn trigger_resolution(ip: IpAddr) {
    let bind: SocketAddr = match ip {
        IpAddr::V4(_) => "0.0.0.0:0".parse().expect("literal"),
        IpAddr::V6(_) => "[::]:0".parse().expect("literal"),
    };
    if let Ok(sock) = UdpSocket::bind(bind) {
        let _ = sock.send_to(b"steerer", SocketAddr::new(ip, 9));
    }
}

/// Resolve `ip` on interface `index`, probing for up to `wait`.
pub async fn resolve_next_hop(
    handle: &Handle,
    index: u32,
    ip: IpAddr,
    wait: Duration,
) -> Result<Option<[u8; 6]>, rtnetlink::Error> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut probed = false;
    loop {
        if let Some(mac) = neighbour_mac(handle, index, ip).await? {
            return Ok(Some(mac));
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(None);
        }
        if !probed {
            trigger_resolution(ip);
            probed = true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
