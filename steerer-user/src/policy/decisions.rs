//! What the controller decides: the data plane's desired state (every
//! table, whole, each time: an adapter that failed to write something
//! writes it again next time without being told), the flows to reset, and
//! events that say what changed and why.

use std::fmt;

use steerer_common::{flow::DestKey, FlowKey};

use super::report::TickReport;

/// A held id of the data plane's hop table: whose it is and whether it
/// takes flows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HopDecision {
    /// Data-plane hop id (kept for the name while a table names it or a
    /// flow points at it).
    pub id: u32,
    /// Empty for an id flows point at whose name is unknown (pins of an
    /// older build).
    pub name: String,
    pub enabled: bool,
    /// False: the name left the pool and its flows drain on the id; the
    /// entry stays as it is (no table names it).
    pub pooled: bool,
}

/// One port set's slot table, at its index of the class tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassTable {
    pub index: u32,
    /// Data-plane hop ids, `NO_HOP` in every slot when no hop may serve it.
    pub table: Vec<u32>,
}

/// A destination's own slot table (SPEC 5.4) at its index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestinationDecision {
    pub dest: DestKey,
    pub index: u32,
    pub table: Vec<u32>,
}

/// The output of one `handle_*` call.
#[derive(Debug, Clone, Default)]
pub struct Decisions {
    /// Every held id (table members, and hops whose flows still point at
    /// them); an id not listed is free: its entry is to be cleared.
    pub hops: Vec<HopDecision>,
    /// Every port set's table. Written before `port_sets`, which points
    /// at them ("table before pointer").
    pub class_tables: Vec<ClassTable>,
    /// Destination port -> class table index (65,536 entries).
    pub port_sets: Vec<u8>,
    /// Every destination with a table of its own; a destination the data
    /// plane holds and this list lacks is to be removed.
    pub destinations: Vec<DestinationDecision>,
    /// Flows to delete from the flow table, so that their senders' retries
    /// are steered afresh (SPEC 5.5).
    pub reset_flows: Vec<FlowKey>,
    /// Flows idle past their protocol's idle timeout, to delete from the
    /// flow table: it holds live flows only, and a tick reads only those. A
    /// flow that comes back is steered as new (to the same hop while its
    /// slot is unchanged).
    pub expired_flows: Vec<FlowKey>,
    pub events: Vec<Event>,
    /// The tick's figures (ticks only).
    pub report: Option<TickReport<FlowKey>>,
}

/// Something the controller changed, with its reason, for the log (the
/// daemon) or the record (the simulator).
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The adapter said the hop cannot be used (link down, no neighbour).
    HopDown {
        hop: String,
    },
    HopUp {
        hop: String,
    },
    /// The adapter said the hop can be used again; it waits out the link
    /// hold-down before it takes new flows (a flapping link is not
    /// offered flows between flaps).
    HopHeldDown {
        hop: String,
        for_ns: u64,
    },
    /// `rounds` probe rounds in a row through the hop went unanswered: out
    /// of every table (its flows reset at the next tick).
    ProbesLost {
        hop: String,
        rounds: u32,
    },
    /// A hop lost by its probes answers again: held down this long, then
    /// offered new flows if its probes keep answering.
    ProbesBack {
        hop: String,
        for_ns: u64,
    },
    /// A hop declared disappeared answers its probes: offered flows again
    /// now rather than after L.
    Retested {
        hop: String,
    },
    /// A hop's share of the class table moved by 5 points or more.
    WeightChanged {
        hop: String,
        from: f64,
        to: f64,
        /// The speed the tick weighed it by, Mbit/s.
        speed_mbit: f64,
        reason: WeightReason,
    },
    /// No reply on any flow (SPEC 5.5 "disappeared").
    HopDisappeared {
        hop: String,
        failed: u64,
    },
    FlowsReset {
        hop: String,
        flows: usize,
        why: &'static str,
    },
    /// Flows from the hop to the destination get no answer (SPEC 5.5
    /// "blocked"): excluded for it alone.
    Excluded {
        hop: String,
        dest: DestKey,
        /// How long this exclusion lasts (a re-test follows).
        for_ns: u64,
    },
    /// The exclusion expired (a re-test follows) or a flow got answers.
    ExclusionLifted {
        hop: String,
        dest: DestKey,
    },
    /// No destination table was left for a blocked destination: the hop is
    /// excluded for the whole port instead.
    PortExcluded {
        hop: String,
        port: u16,
    },
    PortReadmitted {
        hop: String,
        port: u16,
    },
    DestinationOpened {
        dest: DestKey,
        index: u32,
    },
    DestinationClosed {
        dest: DestKey,
    },
    PortSetsChanged {
        sets: usize,
    },
    /// Windows named more hops than the data plane has ids: `hops` of
    /// them are left out of the tables this time (their slots go to the
    /// others) until ids are freed.
    IdsExhausted {
        hops: usize,
        capacity: u32,
    },
}

/// Which rule set a hop's new weight.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WeightReason {
    /// Its speed measured this tick.
    Measured,
    /// No data this tick: its speed over the L window.
    Remembered,
    /// Never measured: its claim (never above the best measured member).
    Claimed,
    /// Its speed and the load its window carries (`Params::load_aware`).
    Load,
    /// Held at `max_share`.
    Capped(f64),
    /// Under a tenth of the best member's speed: a tenth of its weight.
    Slow,
    LeftWindow,
    /// Link down, disappeared, lost by its probes, drained or disabled.
    Unusable,
}

impl fmt::Display for WeightReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WeightReason::Measured => write!(f, "its speed measured this tick"),
            WeightReason::Remembered => write!(f, "no data this tick: its speed over the L window"),
            WeightReason::Claimed => write!(
                f,
                "not measured yet: its claimed speed (never above the best measured member)"
            ),
            WeightReason::Load => write!(
                f,
                "its speed and the load its window carries (below capacity the fast hops take more)"
            ),
            WeightReason::Capped(cap) => write!(f, "held at max_share {cap}"),
            WeightReason::Slow => write!(
                f,
                "under a tenth of the best member's speed: weighed a tenth of it until replaced"
            ),
            WeightReason::LeftWindow => write!(f, "left the class window"),
            WeightReason::Unusable => write!(
                f,
                "cannot be used (link, next hop, probes, disappeared, drained or disabled)"
            ),
        }
    }
}

impl Event {
    /// Worth a warning in an operator's log.
    pub fn is_warning(&self) -> bool {
        matches!(
            self,
            Event::HopDown { .. }
                | Event::ProbesLost { .. }
                | Event::HopDisappeared { .. }
                | Event::Excluded { .. }
                | Event::PortExcluded { .. }
                | Event::IdsExhausted { .. }
        )
    }

    /// The hop the event is about, if it is about one.
    pub fn hop(&self) -> Option<&str> {
        match self {
            Event::HopDown { hop }
            | Event::HopUp { hop }
            | Event::HopHeldDown { hop, .. }
            | Event::ProbesLost { hop, .. }
            | Event::ProbesBack { hop, .. }
            | Event::Retested { hop }
            | Event::WeightChanged { hop, .. }
            | Event::HopDisappeared { hop, .. }
            | Event::FlowsReset { hop, .. }
            | Event::Excluded { hop, .. }
            | Event::ExclusionLifted { hop, .. }
            | Event::PortExcluded { hop, .. }
            | Event::PortReadmitted { hop, .. } => Some(hop),
            Event::DestinationOpened { .. }
            | Event::DestinationClosed { .. }
            | Event::PortSetsChanged { .. }
            | Event::IdsExhausted { .. } => None,
        }
    }
}

/// `198.19.0.2:443/tcp`, `[2001:db8::1]:53/udp`.
pub fn fmt_dest(d: &DestKey) -> String {
    let ip = crate::report::key_addr(d.family, &d.addr);
    let proto = match d.proto {
        6 => "tcp".to_string(),
        17 => "udp".to_string(),
        p => format!("proto {p}"),
    };
    if d.family == steerer_common::flow::FAMILY_IPV6 {
        format!("[{ip}]:{}/{proto}", d.port)
    } else {
        format!("{ip}:{}/{proto}", d.port)
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::HopDown { hop } => write!(
                f,
                "hop {hop} is down (link or next hop gone): out of every table, its flows reset at the next tick"
            ),
            Event::HopUp { hop } => write!(f, "hop {hop} is up again: offered new flows"),
            Event::HopHeldDown { hop, for_ns } => write!(
                f,
                "hop {hop}'s link is back: held down for {:.0} s, then offered new flows if it stays up",
                *for_ns as f64 / 1e9
            ),
            Event::ProbesLost { hop, rounds } => write!(
                f,
                "hop {hop} answered no probe in {rounds} rounds: out of every table, its flows reset at the next tick"
            ),
            Event::ProbesBack { hop, for_ns } => write!(
                f,
                "hop {hop} answers its probes again: held down for {:.0} s, then offered new flows if they keep answering",
                *for_ns as f64 / 1e9
            ),
            Event::Retested { hop } => write!(
                f,
                "hop {hop} was declared disappeared and answers its probes: offered flows again now (re-test)"
            ),
            Event::WeightChanged {
                hop,
                from,
                to,
                speed_mbit,
                reason,
            } => write!(
                f,
                "hop {hop} weight {:.1}% -> {:.1}% ({speed_mbit:.0} Mbit/s): {reason}",
                from * 100.0,
                to * 100.0
            ),
            Event::HopDisappeared { hop, failed } => write!(
                f,
                "hop {hop} answered no flow ({failed} failed this tick): out of every table until its re-test"
            ),
            Event::FlowsReset { hop, flows, why } => {
                write!(f, "reset {flows} flows of hop {hop} ({why}): their retries go elsewhere")
            }
            Event::Excluded { hop, dest, for_ns, .. } => write!(
                f,
                "hop {hop} drops connections to {}: excluded for that destination only, re-tested in {:.0} s",
                fmt_dest(dest),
                *for_ns as f64 / 1e9
            ),
            Event::ExclusionLifted { hop, dest } => write!(
                f,
                "hop {hop} offered {} again (exclusion expired or a flow was answered)",
                fmt_dest(dest)
            ),
            Event::PortExcluded { hop, port } => write!(
                f,
                "hop {hop} excluded for every destination on port {port}: all destination tables hold other blocked destinations"
            ),
            Event::PortReadmitted { hop, port } => {
                write!(f, "hop {hop} offered port {port} again")
            }
            Event::DestinationOpened { dest, index } => {
                write!(f, "destination {} has a window of its own (table {index})", fmt_dest(dest))
            }
            Event::DestinationClosed { dest } => {
                write!(f, "destination window of {} closed", fmt_dest(dest))
            }
            Event::IdsExhausted { hops, capacity } => write!(
                f,
                "{hops} window members got no data-plane hop id (all {capacity} are held by table members or by flows): their slots go to the other members until ids are freed; lower window or the number of port sets"
            ),
            Event::PortSetsChanged { sets } => {
                write!(f, "port sets rebuilt: {sets} sets, tables written before the port map")
            }
        }
    }
}
