//! Link and neighbour changes as the kernel announces them (rtnetlink
//! multicast groups `RTNLGRP_LINK` and `RTNLGRP_NEIGH`, what `ip monitor
//! link neigh` shows): the daemon learns that a hop's interface went down,
//! lost carrier, vanished or came back, or that its next hop's MAC changed
//! (a VRRP failover), when it happens instead of at its next tick.

use std::net::IpAddr;

use futures::{channel::mpsc::UnboundedReceiver, StreamExt as _};
use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_route::{
    link::LinkMessage,
    neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState},
    RouteNetlinkMessage,
};
use netlink_sys::{AsyncSocket as _, SocketAddr};

/// `RTNLGRP_LINK` (1) and `RTNLGRP_NEIGH` (3) of linux/rtnetlink.h as
/// bind masks (group g is bit g - 1).
const fn group_mask(group: u32) -> u32 {
    1 << (group - 1)
}
const GROUP_LINK: u32 = group_mask(1);
const GROUP_NEIGH: u32 = group_mask(3);

/// One announced change that may concern a hop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEvent {
    /// Interface `index` was added, changed (flags, carrier) or removed:
    /// the hops on it are checked again.
    Link { index: u32 },
    /// The neighbour `ip` on interface `index` now has this MAC (`None`:
    /// it failed or was deleted).
    Neighbour {
        index: u32,
        ip: IpAddr,
        mac: Option<[u8; 6]>,
    },
    /// The kernel dropped announcements (the socket's buffer overflowed):
    /// every hop must be checked again.
    Lost,
}

/// The stream of announcements, on its own netlink socket (its connection
/// task runs on the current runtime).
pub struct LinkEvents {
    messages: UnboundedReceiver<(NetlinkMessage<RouteNetlinkMessage>, SocketAddr)>,
}

impl LinkEvents {
    pub fn subscribe() -> std::io::Result<LinkEvents> {
        let (mut connection, _handle, messages) = rtnetlink::new_connection()?;
        connection
            .socket_mut()
            .socket_mut()
            .bind(&SocketAddr::new(0, GROUP_LINK | GROUP_NEIGH))?;
        tokio::spawn(connection);
        Ok(LinkEvents { messages })
    }

    /// The next announcement that may concern a hop; `None` when the
    /// connection ended (the caller falls back to checking at ticks).
    pub async fn next(&mut self) -> Option<LinkEvent> {
        loop {
            let (message, _) = self.messages.next().await?;
            if let Some(event) = translate(message.payload) {
                return Some(event);
            }
        }
    }
}

fn translate(payload: NetlinkPayload<RouteNetlinkMessage>) -> Option<LinkEvent> {
    match payload {
        NetlinkPayload::InnerMessage(m) => match m {
            RouteNetlinkMessage::NewLink(l) | RouteNetlinkMessage::DelLink(l) => Some(link(&l)),
            RouteNetlinkMessage::NewNeighbour(n) => neighbour(&n, false),
            RouteNetlinkMessage::DelNeighbour(n) => neighbour(&n, true),
            _ => None,
        },
        // ENOBUFS and the like: announcements were lost.
        NetlinkPayload::Error(_) | NetlinkPayload::Overrun(_) => Some(LinkEvent::Lost),
        _ => None,
    }
}

fn link(l: &LinkMessage) -> LinkEvent {
    LinkEvent::Link {
        index: l.header.index,
    }
}

/// A neighbour entry as an event: its MAC while it is usable (reachable,
/// stale, delayed, probing, permanent), `None` once failed or deleted.
pub fn neighbour(n: &NeighbourMessage, deleted: bool) -> Option<LinkEvent> {
    let mut ip = None;
    let mut mac = None;
    for attr in &n.attributes {
        match attr {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(a)) => ip = Some(IpAddr::V4(*a)),
            NeighbourAttribute::Destination(NeighbourAddress::Inet6(a)) => {
                ip = Some(IpAddr::V6(*a))
            }
            NeighbourAttribute::LinkLocalAddress(l) => mac = <[u8; 6]>::try_from(l.as_slice()).ok(),
            _ => {}
        }
    }
    let unusable = deleted
        || matches!(
            n.header.state,
            NeighbourState::Failed | NeighbourState::Incomplete | NeighbourState::None
        );
    Some(LinkEvent::Neighbour {
        index: n.header.ifindex,
        ip: ip?,
        mac: if unusable { None } else { mac },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn neigh(state: NeighbourState, mac: [u8; 6]) -> NeighbourMessage {
        let mut n = NeighbourMessage::default();
        n.header.ifindex = 7;
        n.header.state = state;
        n.attributes = vec![
            NeighbourAttribute::Destination(NeighbourAddress::Inet("198.18.1.2".parse().unwrap())),
            NeighbourAttribute::LinkLocalAddress(mac.to_vec()),
        ];
        n
    }

    #[test]
    fn a_reachable_neighbour_carries_its_mac_and_a_failed_one_none() {
        let mac = [2, 0, 0, 0, 0, 9];
        let ip: IpAddr = "198.18.1.2".parse().unwrap();
        assert_eq!(
            neighbour(&neigh(NeighbourState::Reachable, mac), false),
            Some(LinkEvent::Neighbour {
                index: 7,
                ip,
                mac: Some(mac)
            })
        );
        for (state, deleted) in [
            (NeighbourState::Failed, false),
            (NeighbourState::Incomplete, false),
            (NeighbourState::Reachable, true),
        ] {
            assert_eq!(
                neighbour(&neigh(state, mac), deleted),
                Some(LinkEvent::Neighbour {
                    index: 7,
                    ip,
                    mac: None
                }),
                "{state:?} deleted={deleted}"
            );
        }
    }

    #[test]
    fn a_neighbour_without_an_address_is_no_event() {
        let mut n = neigh(NeighbourState::Reachable, [0; 6]);
        n.attributes.remove(0);
        assert_eq!(neighbour(&n, false), None);
    }
}
