//! `steerer why PROTO SRC DST`: where one 5-tuple goes and why (issue 16).
//! Its flow-table entry if it has one (hop, age, counters, fast failovers);
//! the choice the data plane's own rule (`steerer_common::select`) makes
//! for it now over the running maps (its destination's table or its port
//! set's, the slot, the hop); and from the daemon's status the exclusions
//! for its destination and the chosen hop's state and reasons.

use std::{collections::HashMap, net::SocketAddr};

use steerer_common::{
    flow::{DestKey, FAMILY_IPV4, FAMILY_IPV6},
    limits::DEST_SLOTS_BASE,
    select::{self, SteeringTables},
    FlowKey, FlowValue,
};

use crate::{policy::decisions::fmt_dest, report::TickStatus};

/// A 5-tuple as an operator types it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuple {
    pub proto: u8,
    pub src: SocketAddr,
    pub dst: SocketAddr,
}

impl Tuple {
    /// `tcp` or `udp` (or a protocol number), `198.18.0.2:40000`,
    /// `[2001:db8::1]:443`.
    pub fn parse(proto: &str, src: &str, dst: &str) -> Result<Tuple, String> {
        let proto = match proto {
            "tcp" => 6,
            "udp" => 17,
            p => p
                .parse()
                .map_err(|_| format!("protocol {p:?}: tcp, udp or a number"))?,
        };
        let addr = |s: &str, what| {
            s.parse::<SocketAddr>().map_err(|_| {
                format!("{what} {s:?}: an address and port, like 198.18.0.2:40000 or [2001:db8::2]:40000")
            })
        };
        let (src, dst) = (addr(src, "source")?, addr(dst, "destination")?);
        if src.is_ipv4() != dst.is_ipv4() {
            return Err("source and destination are of different IP versions".into());
        }
        Ok(Tuple { proto, src, dst })
    }

    /// The flow-table key the data plane builds from such a packet.
    pub fn key(&self) -> FlowKey {
        let bytes = |a: &SocketAddr| -> [u8; 16] {
            let mut b = [0; 16];
            match a {
                SocketAddr::V4(v4) => b[..4].copy_from_slice(&v4.ip().octets()),
                SocketAddr::V6(v6) => b = v6.ip().octets(),
            }
            b
        };
        FlowKey {
            src_addr: bytes(&self.src),
            dst_addr: bytes(&self.dst),
            src_port: self.src.port(),
            dst_port: self.dst.port(),
            proto: self.proto,
            family: if self.src.is_ipv4() {
                FAMILY_IPV4
            } else {
                FAMILY_IPV6
            },
            _pad: [0; 2],
        }
    }
}

/// What is known of the tuple's flow and its destination.
pub struct Facts<'a> {
    /// Its flow-table entry, if any.
    pub flow: Option<&'a FlowValue>,
    /// Hop id -> name (`HOP_NAMES`).
    pub names: &'a HashMap<u32, String>,
    /// The daemon's last status, if one runs.
    pub status: Option<&'a TickStatus>,
    /// CLOCK_MONOTONIC now (the flow's times' clock).
    pub now_ns: u64,
}

/// The explanation, a line per fact.
pub fn explain<T: SteeringTables>(t: &T, tuple: &Tuple, f: &Facts) -> String {
    let key = tuple.key();
    let name = |id: u32| match f.names.get(&id) {
        Some(n) => format!("{n} (id {id})"),
        None => format!("id {id}"),
    };
    let dest = fmt_dest(&DestKey::of(&key));
    let mut out = format!("{} -> {dest}\n", tuple.src);
    match f.flow {
        Some(v) => {
            let secs = |t: u64| f.now_ns.saturating_sub(t) as f64 / 1e9;
            out.push_str(&format!(
                "in the flow table: on hop {}; first packet {:.1} s ago, last {:.1} s ago; {} packets ({} B) out, {} ({} B) back\n",
                name(v.hop),
                secs(v.first_seen_ns),
                secs(v.last_seen_ns),
                v.packets,
                v.bytes,
                v.reply_packets,
                v.reply_bytes
            ));
            if v.failovers > 0 {
                out.push_str(&format!(
                    "  moved by fast failover {} time(s): its SYN was repeated without an answer on the hop before\n",
                    v.failovers
                ));
            }
            out.push_str("  a flow keeps its hop while it lives, whatever the tables say now\n");
        }
        None => out.push_str(
            "not in the flow table (new, or expired, or evicted): its next packet is steered as a new flow\n",
        ),
    }
    out.push_str(&choice(t, &key, &name));
    if let Some(s) = f.status {
        for e in s.exclusions.iter().filter(|e| e.destination == dest) {
            out.push_str(&format!(
                "  hop {} is excluded for {dest} (no answer through it) until {}\n",
                e.hop,
                crate::status_view::wall(e.until_unix)
            ));
        }
        if let Some(d) = s.destinations.iter().find(|d| d.destination == dest) {
            out.push_str(&format!(
                "  {dest} has a window of its own: {}\n",
                d.hops.join(", ")
            ));
        }
    }
    out
}

/// Which table, slot and hop a new flow of `key` gets now.
fn choice<T: SteeringTables>(t: &T, key: &FlowKey, name: &dyn Fn(u32) -> String) -> String {
    let c = match select::choose(t, key, 0) {
        Ok(c) => c,
        Err(r) => return format!("a new flow now: passed unsteered ({})\n", r.name()),
    };
    let table = if c.base >= DEST_SLOTS_BASE {
        let index = t.destination_table(&DestKey::of(key));
        format!("its destination's own table (index {index})")
    } else {
        format!(
            "the table of port {}'s set (set {})",
            key.dst_port,
            select::class_of(t, key)
        )
    };
    match select::hop_at(t, &c, c.slot) {
        Ok(hop) if t.hop_usable(hop) => format!(
            "a new flow now: {table}, slot {} of {}: hop {}\n",
            c.slot,
            c.slot_count,
            name(hop)
        ),
        Ok(hop) => format!(
            "a new flow now: {table}, slot {} of {}: hop {}, which is not enabled: passed unsteered\n",
            c.slot,
            c.slot_count,
            name(hop)
        ),
        Err(r) => format!(
            "a new flow now: {table}, slot {} of {}: no hop ({}): passed unsteered\n",
            c.slot,
            c.slot_count,
            r.name()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use steerer_common::{
        config::CONFIG_READY,
        limits::{DEST_SLOT_COUNT, MAX_SLOT_COUNT, NO_HOP},
        select::{NO_DEST_TABLE, SLOT_UNREADABLE},
        siphash::flow_hash_salted,
        DataplaneConfig,
    };

    /// Port 443 in set 1; set 0's table is hop 1 everywhere, set 1's
    /// alternates hops 2 and 3 by slot; one destination has a table of its
    /// own, all hop 4; hop 3 is not enabled.
    struct Tables {
        config: DataplaneConfig,
        dest: DestKey,
    }

    const SLOTS: u32 = 7;

    impl SteeringTables for Tables {
        fn config(&self) -> Option<&DataplaneConfig> {
            Some(&self.config)
        }
        fn destination_table(&self, dest: &DestKey) -> u32 {
            if *dest == self.dest {
                0
            } else {
                NO_DEST_TABLE
            }
        }
        fn port_set(&self, port: u16) -> u32 {
            u32::from(port == 443)
        }
        fn slot(&self, index: u32) -> u32 {
            match index {
                i if i < SLOTS => 1,
                i if (MAX_SLOT_COUNT..MAX_SLOT_COUNT + SLOTS).contains(&i) => {
                    2 + (i - MAX_SLOT_COUNT) % 2
                }
                i if (DEST_SLOTS_BASE..DEST_SLOTS_BASE + DEST_SLOT_COUNT).contains(&i) => 4,
                i if i < DEST_SLOTS_BASE => NO_HOP,
                _ => SLOT_UNREADABLE,
            }
        }
        fn hop_usable(&self, hop: u32) -> bool {
            hop != 3
        }
    }

    fn tables() -> Tables {
        let dest = Tuple::parse("tcp", "198.18.0.2:1", "198.19.0.9:8443")
            .unwrap()
            .key();
        Tables {
            config: DataplaneConfig {
                hash_key: [7, 11],
                slot_count: SLOTS,
                flags: CONFIG_READY,
            },
            dest: DestKey::of(&dest),
        }
    }

    fn names() -> HashMap<u32, String> {
        (1..5).map(|i| (i, format!("hop{i}"))).collect()
    }

    fn why(t: &Tables, tuple: &Tuple, flow: Option<&FlowValue>) -> String {
        let names = names();
        explain(
            t,
            tuple,
            &Facts {
                flow,
                names: &names,
                status: None,
                now_ns: 10_000_000_000,
            },
        )
    }

    #[test]
    fn tuples_parse_into_the_data_planes_key() {
        let t = Tuple::parse("udp", "198.18.0.2:5353", "198.19.0.3:53").unwrap();
        let k = t.key();
        assert_eq!(
            (k.proto, k.family, k.src_port, k.dst_port),
            (17, 4, 5353, 53)
        );
        assert_eq!(&k.dst_addr[..4], &[198, 19, 0, 3]);
        assert!(k.dst_addr[4..].iter().all(|&b| b == 0));
        let v6 = Tuple::parse("6", "[2001:db8::2]:4000", "[2001:db8::1]:443").unwrap();
        assert_eq!(v6.key().family, 6);
        assert_eq!(v6.key().dst_addr[15], 1);
        assert!(Tuple::parse("sctp", "198.18.0.2:1", "198.19.0.3:2").is_err());
        assert!(Tuple::parse("tcp", "198.18.0.2", "198.19.0.3:2").is_err());
        assert!(Tuple::parse("tcp", "198.18.0.2:1", "[2001:db8::1]:2").is_err());
    }

    #[test]
    fn a_new_tuple_is_told_its_table_slot_and_hop_by_the_data_planes_rule() {
        let t = tables();
        // Port 443: set 1, whose slot s holds hop 2 + s % 2.
        let tuple = Tuple::parse("tcp", "198.18.0.2:40000", "198.19.0.2:443").unwrap();
        let slot = (flow_hash_salted(&t.config.hash_key, &tuple.key(), 0) % SLOTS as u64) as u32;
        let text = why(&t, &tuple, None);
        assert!(text.contains("not in the flow table"), "{text}");
        let hop = 2 + slot % 2;
        let want =
            format!("port 443's set (set 1), slot {slot} of {SLOTS}: hop hop{hop} (id {hop})");
        assert!(text.contains(&want), "{want:?} in {text}");
        assert_eq!(text.contains("not enabled"), hop == 3, "{text}");
        // The destination with a table of its own: hop 4, whatever its port.
        let own = Tuple::parse("tcp", "198.18.0.2:40000", "198.19.0.9:8443").unwrap();
        let text = why(&t, &own, None);
        assert!(
            text.contains("its destination's own table (index 0)"),
            "{text}"
        );
        assert!(text.contains("hop hop4 (id 4)"), "{text}");
    }

    #[test]
    fn a_flow_in_the_table_is_told_its_hop_and_failovers() {
        let t = tables();
        let tuple = Tuple::parse("tcp", "198.18.0.2:40001", "198.19.0.2:80").unwrap();
        let v = FlowValue {
            hop: 4,
            packets: 3,
            bytes: 180,
            failovers: 1,
            first_seen_ns: 8_000_000_000,
            last_seen_ns: 9_500_000_000,
            ..FlowValue::default()
        };
        let text = why(&t, &tuple, Some(&v));
        assert!(
            text.contains("on hop hop4 (id 4); first packet 2.0 s ago, last 0.5 s ago"),
            "{text}"
        );
        assert!(text.contains("fast failover 1 time"), "{text}");
        // Port 80 is in set 0, all hop 1: a new flow would go elsewhere.
        assert!(text.contains("set 0), slot"), "{text}");
        assert!(text.contains("hop hop1 (id 1)"), "{text}");
    }
}
