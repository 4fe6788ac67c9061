//! Per-CPU counters, one per reason a packet took a path through the program.

/// Index into the per-CPU `STATS` array.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatReason {
    /// New flow: a hop was chosen and the flow entry created.
    NewFlow = 0,
    /// Packet of an established flow sent to its hop. Not counted by the
    /// data plane (its slot stays 0): user space derives it from the
    /// per-hop packet counters (`dataplane::stats::with_established`).
    Established,
    /// Not IPv4/IPv6 (ARP, LLDP, ...): passed.
    PassNotIp,
    /// A header ended before it should have: passed.
    PassTruncated,
    /// Header fields that make no sense (bad IHL, bad version): passed.
    PassMalformed,
    /// IPv6 extension headers beyond the walked number (or too deep): passed.
    PassIpOptions,
    /// Non-first fragment (no ports): passed.
    PassFragment,
    /// Neither TCP nor UDP (ICMP, ...): passed.
    PassOtherProto,
    /// TTL / hop limit would reach zero: left to the kernel (ICMP time exceeded).
    PassTtl,
    /// Destined to the gateway itself, to multicast or broadcast: passed.
    PassLocal,
    /// Steering not ready (no slot table yet): passed.
    PassNotReady,
    /// The chosen hop is missing or disabled: passed.
    PassNoHop,
    /// The flow table refused the new entry: passed.
    PassFlowTableFull,
    /// Redirect to the hop's interface failed.
    RedirectFailed,
    /// TC: a reply packet accounted to its flow.
    ReplyAccounted,
    /// TC: a packet leaving the LAN side that belongs to no known flow.
    ReplyNoFlow,
    /// A repeated SYN of a flow without replies moved it to another hop.
    Failover,
}

impl StatReason {
    pub const COUNT: u32 = 17;

    pub const ALL: [StatReason; Self::COUNT as usize] = [
        StatReason::NewFlow,
        StatReason::Established,
        StatReason::PassNotIp,
        StatReason::PassTruncated,
        StatReason::PassMalformed,
        StatReason::PassIpOptions,
        StatReason::PassFragment,
        StatReason::PassOtherProto,
        StatReason::PassTtl,
        StatReason::PassLocal,
        StatReason::PassNotReady,
        StatReason::PassNoHop,
        StatReason::PassFlowTableFull,
        StatReason::RedirectFailed,
        StatReason::ReplyAccounted,
        StatReason::ReplyNoFlow,
        StatReason::Failover,
    ];

    /// Stable name for `steerer stats` output.
    pub fn name(self) -> &'static str {
        match self {
            StatReason::NewFlow => "new_flow",
            StatReason::Established => "established",
            StatReason::PassNotIp => "pass_not_ip",
            StatReason::PassTruncated => "pass_truncated",
            StatReason::PassMalformed => "pass_malformed",
            StatReason::PassIpOptions => "pass_ip_options",
            StatReason::PassFragment => "pass_fragment",
            StatReason::PassOtherProto => "pass_other_proto",
            StatReason::PassTtl => "pass_ttl",
            StatReason::PassLocal => "pass_local",
            StatReason::PassNotReady => "pass_not_ready",
            StatReason::PassNoHop => "pass_no_hop",
            StatReason::PassFlowTableFull => "pass_flow_table_full",
            StatReason::RedirectFailed => "redirect_failed",
            StatReason::ReplyAccounted => "reply_accounted",
            StatReason::ReplyNoFlow => "reply_no_flow",
            StatReason::Failover => "failover",
        }
    }
}
