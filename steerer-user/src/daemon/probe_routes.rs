//! Per-hop policy routes that send a redirect hop's probes through it:
//! redirect hop k (in configuration order among redirect hops) gets probe
//! mark `mark_base + k` and route table `table_base + k`, an `ip rule
//! fwmark <mark> lookup <table>` at `rule_priority` and, in that table,
//! `default via <next_hop> dev <interface>`. A socket with that mark
//! (SO_MARK) leaves through the hop, as steered flows do. The daemon owns
//! every rule at `rule_priority` and every route of its tables: leftovers
//! of a crash are removed at start, and all of them at exit.

use std::{collections::HashMap, net::IpAddr, ops::Range};

use futures::TryStreamExt as _;
use netlink_packet_route::{
    route::RouteAttribute,
    rule::{RuleAction, RuleAttribute},
};
use rtnetlink::IpVersion;
use tracing::warn;

use super::hops::ResolvedHop;
use crate::config::ProbeConfig;

/// The mark each probed hop's probes carry, by hop name.
#[derive(Debug, Default)]
pub struct ProbeRoutes {
    pub marks: HashMap<String, u32>,
    priority: u32,
    tables: Range<u32>,
}

impl ProbeRoutes {
    /// Remove what an earlier run left, then route every redirect hop's
    /// probes (mark hops use their own mark). A hop whose route cannot be
    /// added now (its link is down) is logged and tried again at the next
    /// `sync` (a link change, a reload).
    pub async fn install(
        handle: &rtnetlink::Handle,
        probe: &ProbeConfig,
        hops: &[ResolvedHop],
    ) -> ProbeRoutes {
        let redirect = hops.iter().filter(|h| h.mark.is_none()).count() as u32;
        let mut routes = ProbeRoutes {
            marks: HashMap::new(),
            priority: probe.rule_priority,
            tables: probe.table_base..probe.table_base.saturating_add(redirect),
        };
        routes.remove_all(handle).await;
        routes.sync(handle, probe, hops).await;
        routes
    }

    /// (Re)write each hop's rule and route (idempotent).
    pub async fn sync(
        &mut self,
        handle: &rtnetlink::Handle,
        probe: &ProbeConfig,
        hops: &[ResolvedHop],
    ) {
        self.marks.clear();
        let mut k = 0u32;
        for h in hops {
            if let Some(m) = h.mark {
                self.marks.insert(h.name.clone(), m);
                continue;
            }
            let (mark, table) = (probe.mark_base + k, probe.table_base + k);
            k += 1;
            let Some(via) = h.next_hop else { continue };
            if !h.link_present {
                continue;
            }
            match route_through(handle, via, h.ifindex, table, mark, self.priority).await {
                Ok(()) => {
                    self.marks.insert(h.name.clone(), mark);
                }
                Err(e) => warn!(
                    hop = %h.name, table, mark, error = %e,
                    "cannot route this hop's probes now (its link may be down); tried again when its link changes"
                ),
            }
        }
        // Tables of hops a reload removed stay ours, to clean at exit.
        self.tables = probe.table_base..self.tables.end.max(probe.table_base + k);
    }

    /// Every rule at our priority and every route of our tables.
    pub async fn remove_all(&self, handle: &rtnetlink::Handle) {
        for v in [IpVersion::V4, IpVersion::V6] {
            if let Ok(rules) = handle
                .rule()
                .get(v.clone())
                .execute()
                .try_collect::<Vec<_>>()
                .await
            {
                for r in rules {
                    let ours = r
                        .attributes
                        .contains(&RuleAttribute::Priority(self.priority));
                    if ours {
                        let _ = handle.rule().del(r).execute().await;
                    }
                }
            }
            if let Ok(routes) = handle
                .route()
                .get(v)
                .execute()
                .try_collect::<Vec<_>>()
                .await
            {
                for r in routes {
                    let ours = r
                        .attributes
                        .iter()
                        .any(|a| matches!(a, RouteAttribute::Table(t) if self.tables.contains(t)));
                    if ours {
                        let _ = handle.route().del(r).execute().await;
                    }
                }
            }
        }
    }
}

/// `ip route replace default via <via> dev <ifindex> table <table>` and
/// `ip rule add fwmark <mark> lookup <table> priority <priority>`.
async fn route_through(
    handle: &rtnetlink::Handle,
    via: IpAddr,
    ifindex: u32,
    table: u32,
    mark: u32,
    priority: u32,
) -> Result<(), rtnetlink::Error> {
    let route = handle
        .route()
        .add()
        .output_interface(ifindex)
        .table_id(table)
        .replace();
    let rule = handle
        .rule()
        .add()
        .fw_mark(mark)
        .table_id(table)
        .priority(priority)
        .action(RuleAction::ToTable);
    match via {
        IpAddr::V4(a) => {
            route.v4().gateway(a).execute().await?;
            ignore_exists(rule.v4().execute().await)
        }
        IpAddr::V6(a) => {
            route.v6().gateway(a).execute().await?;
            ignore_exists(rule.v6().execute().await)
        }
    }
}

/// The rule is there already (an earlier sync).
fn ignore_exists(r: Result<(), rtnetlink::Error>) -> Result<(), rtnetlink::Error> {
    match r {
        Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::EEXIST => Ok(()),
        other => other,
    }
}
