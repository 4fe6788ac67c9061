//! Link, address and neighbour facts from rtnetlink.

use std::net::{IpAddr, SocketAddr, UdpSocket};

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

/// One interface as a dump of every link says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkFacts {
    pub index: u32,
    /// Administratively up and with carrier (`IFF_UP` and `IFF_LOWER_UP`):
    /// a hop behind a link without carrier cannot be reached.
    pub up: bool,
    pub mac: Option<[u8; 6]>,
}

/// Every interface, by name: one netlink dump, however many hops ask.
pub async fn link_facts(
    handle: &Handle,
) -> Result<std::collections::HashMap<String, LinkFacts>, rtnetlink::Error> {
    use netlink_packet_route::link::LinkFlag;
    let mut out = std::collections::HashMap::new();
    let mut links = handle.link().get().execute();
    while let Some(link) = links.try_next().await? {
        let f = &link.header.flags;
        let mut facts = LinkFacts {
            index: link.header.index,
            up: f.contains(&LinkFlag::Up) && f.contains(&LinkFlag::LowerUp),
            mac: None,
        };
        let mut name = None;
        for attr in link.attributes {
            match attr {
                LinkAttribute::IfName(n) => name = Some(n),
                LinkAttribute::Address(a) => facts.mac = <[u8; 6]>::try_from(a.as_slice()).ok(),
                _ => {}
            }
        }
        if let Some(n) = name {
            out.insert(n, facts);
        }
    }
    Ok(out)
}

/// Every usable neighbour entry (not failed or incomplete): (interface
/// index, address) -> MAC, from one dump.
pub async fn neighbour_macs(
    handle: &Handle,
) -> Result<std::collections::HashMap<(u32, IpAddr), [u8; 6]>, rtnetlink::Error> {
    let mut out = std::collections::HashMap::new();
    let mut neighbours = handle.neighbours().get().execute();
    while let Some(n) = neighbours.try_next().await? {
        if matches!(
            n.header.state,
            NeighbourState::Failed | NeighbourState::Incomplete | NeighbourState::None
        ) {
            continue;
        }
        let (dst, mac) = neighbour_of(&n.attributes);
        if let (Some(dst), Some(mac)) = (dst, mac) {
            out.insert((n.header.ifindex, dst), mac);
        }
    }
    Ok(out)
}

fn neighbour_of(attrs: &[NeighbourAttribute]) -> (Option<IpAddr>, Option<[u8; 6]>) {
    let mut dst = None;
    let mut mac = None;
    for attr in attrs {
        match attr {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(a)) => {
                dst = Some(IpAddr::V4(*a))
            }
            NeighbourAttribute::Destination(NeighbourAddress::Inet6(a)) => {
                dst = Some(IpAddr::V6(*a))
            }
            NeighbourAttribute::LinkLocalAddress(l) => mac = <[u8; 6]>::try_from(l.as_slice()).ok(),
            _ => {}
        }
    }
    (dst, mac)
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
