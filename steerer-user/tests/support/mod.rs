//! Shared helpers for tests that load the data plane into the kernel.
#![allow(dead_code)]

pub mod oracle;
pub mod shared_data;

use std::{
    path::PathBuf,
    sync::atomic::{AtomicU32, Ordering},
};

use aya::{
    programs::{TestRun, TestRunOptions},
    TestRunResult,
};
use etherparse::PacketBuilder;
use steerer_common::StatReason;
use steerer_common::{config::CONFIG_READY, hop::HOP_ENABLED, DataplaneConfig, HopEntry};
use steerer_user::dataplane::{self, Dataplane};

pub const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
pub const GW_LAN_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
pub const HOP_SRC_MAC: [u8; 6] = [0x02, 0, 0, 0, 1, 0x01];
pub const HOP_DST_MAC: [u8; 6] = [0x02, 0, 0, 0, 1, 0x02];
pub const HASH_KEY: [u64; 2] = [0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210];
pub const SLOTS: u32 = 101;

/// Fail loudly (never skip) when the test cannot reach the kernel.
pub fn require_root() {
    if !nix::unistd::geteuid().is_root() {
        panic!("this test loads eBPF programs and needs root (run `cargo xtask test` as root)");
    }
    if let Err(e) = dataplane::ensure_bpffs() {
        panic!("{e}");
    }
}

/// A data plane loaded (not attached) with its own pin directory, removed on
/// drop, also when the test panics.
pub struct TestDataplane {
    pub dp: Dataplane,
    pub pin_dir: PathBuf,
}

impl Drop for TestDataplane {
    fn drop(&mut self) {
        let _ = dataplane::remove_pins(&self.pin_dir);
    }
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl TestDataplane {
    /// Loaded with one enabled hop (id 0, redirecting to loopback) filling
    /// every slot, unless `ready` is false.
    pub fn new(ready: bool) -> Self {
        Self::with_flow_table(ready, 4096)
    }

    /// As `new`, with a flow table of `entries`.
    pub fn with_flow_table(ready: bool, entries: u32) -> Self {
        require_root();
        let pin_dir = PathBuf::from(format!(
            "/sys/fs/bpf/steerer-test-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = dataplane::remove_pins(&pin_dir);
        let dp = Dataplane::load(&pin_dir, Some(entries)).expect("load data plane");
        let mut t = TestDataplane { dp, pin_dir };
        if ready {
            t.dp.set_hop(
                0,
                &HopEntry {
                    ifindex: 1,
                    flags: HOP_ENABLED,
                    src_mac: HOP_SRC_MAC,
                    dst_mac: HOP_DST_MAC,
                    mark: 0,
                },
            )
            .expect("set hop");
            t.dp.write_slots(0, &vec![0; SLOTS as usize], None)
                .expect("slots");
            t.dp.set_config(&DataplaneConfig {
                hash_key: HASH_KEY,
                slot_count: SLOTS,
                flags: CONFIG_READY,
            })
            .expect("config");
        }
        t
    }
}

pub fn tcp_v4(
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    ttl: u8,
    payload: &[u8],
) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(CLIENT_MAC, GW_LAN_MAC)
        .ipv4(src, dst, ttl)
        .tcp(sport, dport, 1000, 65535);
    let mut out = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut out, payload).expect("build packet");
    out
}

pub fn udp_v6(
    src: [u8; 16],
    dst: [u8; 16],
    sport: u16,
    dport: u16,
    hop_limit: u8,
    payload: &[u8],
) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(CLIENT_MAC, GW_LAN_MAC)
        .ipv6(src, dst, hop_limit)
        .udp(sport, dport);
    let mut out = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut out, payload).expect("build packet");
    out
}

pub fn v6(last: u8) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
    a[15] = last;
    a
}

pub const XDP_PASS: u32 = 2;
pub const XDP_REDIRECT: u32 = 4;

pub struct Outcome {
    pub verdict: u32,
    pub out: Vec<u8>,
}

/// One packet through a loaded packet program; its verdict and output.
fn run_packet<P>(prog: &P, pkt: &[u8]) -> Outcome
where
    P: for<'a> TestRun<Opts<'a> = TestRunOptions<'a>, Result = TestRunResult>,
{
    let mut out = vec![0u8; pkt.len() + 256];
    let opts = TestRunOptions {
        data_in: Some(pkt),
        data_out: Some(&mut out),
        ..Default::default()
    };
    let r = prog.test_run(opts).expect("test run");
    out.truncate(r.data_size_out as usize);
    Outcome {
        verdict: r.return_value,
        out,
    }
}

/// A reply packet through the reply accountant (`steerer_tc_reply`).
#[allow(dead_code)] // not every test binary sends replies
pub fn run_tc_reply(t: &TestDataplane, pkt: &[u8]) -> Outcome {
    run_packet(t.dp.tc_program().unwrap(), pkt)
}

pub fn run_xdp(t: &TestDataplane, pkt: &[u8]) -> Outcome {
    run_packet(t.dp.xdp_program().unwrap(), pkt)
}

pub fn stat(t: &TestDataplane, reason: StatReason) -> u64 {
    t.dp.stats()
        .unwrap()
        .into_iter()
        .find(|(r, _)| *r == reason)
        .map(|(_, v)| v)
        .unwrap()
}

pub fn assert_passed_unchanged(t: &TestDataplane, pkt: &[u8], reason: StatReason) {
    let before = stat(t, reason);
    let flows_before = t.dp.flows().unwrap().len();
    let o = run_xdp(t, pkt);
    assert_eq!(o.verdict, XDP_PASS, "verdict");
    assert_eq!(o.out, pkt, "bytes must be unchanged");
    assert_eq!(
        t.dp.flows().unwrap().len(),
        flows_before,
        "no flow may be created"
    );
    assert_eq!(
        stat(t, reason),
        before + 1,
        "counted under {}",
        reason.name()
    );
}

/// Insert VLAN tags (outermost first) between the MACs and the EtherType.
pub fn with_vlan(pkt: &[u8], tpids: &[u16]) -> Vec<u8> {
    let mut out = pkt[..12].to_vec();
    for (i, tpid) in tpids.iter().enumerate() {
        out.extend_from_slice(&tpid.to_be_bytes());
        out.extend_from_slice(&(100 + i as u16).to_be_bytes());
    }
    out.extend_from_slice(&pkt[12..]);
    out
}

pub fn tcp_v6(sport: u16, dport: u16) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(CLIENT_MAC, GW_LAN_MAC)
        .ipv6(v6(2), v6(0x99), 64)
        .tcp(sport, dport, 1, 65535);
    let mut out = Vec::new();
    b.write(&mut out, b"payload").unwrap();
    out
}

/// Splice IPv6 extension headers (kind, full header bytes without the
/// next-header byte filled in) after the fixed header, fixing the chain and
/// the payload length.
pub fn with_v6_ext(pkt: &[u8], exts: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let ip = 14;
    let upper = pkt[ip + 6];
    let mut out = pkt[..ip + 40].to_vec();
    let mut chain: Vec<u8> = Vec::new();
    for (i, (_, body)) in exts.iter().enumerate() {
        let mut h = body.clone();
        h[0] = exts.get(i + 1).map(|e| e.0).unwrap_or(upper);
        chain.extend_from_slice(&h);
    }
    if let Some((first, _)) = exts.first() {
        out[ip + 6] = *first;
    }
    out.extend_from_slice(&chain);
    out.extend_from_slice(&pkt[ip + 40..]);
    let payload_len = (out.len() - ip - 40) as u16;
    out[ip + 4..ip + 6].copy_from_slice(&payload_len.to_be_bytes());
    out
}

/// An 8-byte options header (hop-by-hop or destination options) with PadN.
pub fn opts_header(kind: u8) -> (u8, Vec<u8>) {
    (kind, vec![0, 0, 1, 4, 0, 0, 0, 0])
}

pub fn fragment_header(offset_units: u16, more: bool) -> (u8, Vec<u8>) {
    let v = (offset_units << 3) | more as u16;
    let b = v.to_be_bytes();
    (44, vec![0, 0, b[0], b[1], 0xde, 0xad, 0xbe, 0xef])
}

/// MAC of the second test hop's next hop.
pub const HOP1_DST_MAC: [u8; 6] = [2, 0, 0, 0, 2, 2];

/// Enable hop 1 (redirect, loopback) next to the default hop 0.
pub fn enable_second_hop(t: &mut TestDataplane) {
    t.dp.set_hop(
        1,
        &HopEntry {
            ifindex: 1,
            flags: HOP_ENABLED,
            src_mac: HOP_SRC_MAC,
            dst_mac: HOP1_DST_MAC,
            mark: 0,
        },
    )
    .expect("set hop 1");
}
