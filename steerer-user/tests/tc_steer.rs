//! BPF_PROG_TEST_RUN of the TC steering program (`--attach tc`): the
//! `redirect` action on an skb and the `mark` action.

mod support;

use aya::programs::{TestRun as _, TestRunOptions};
use etherparse::Ipv4HeaderSlice;
use steerer_common::{
    hop::{HOP_ACTION_MARK, HOP_ENABLED},
    HopEntry, StatReason,
};
use support::*;

const TC_ACT_OK: u32 = 0;
const TC_ACT_REDIRECT: u32 = 7;
/// `struct __sk_buff` as BPF_PROG_TEST_RUN takes it; `mark` is at offset 8.
const SK_BUFF_LEN: usize = 192;

struct TcOutcome {
    verdict: u32,
    out: Vec<u8>,
    mark: u32,
}

fn run_tc(t: &TestDataplane, pkt: &[u8]) -> TcOutcome {
    let mut out = vec![0u8; pkt.len() + 256];
    let ctx_in = [0u8; SK_BUFF_LEN];
    let mut ctx_out = [0u8; SK_BUFF_LEN];
    let r =
        t.dp.tc_steer_program()
            .unwrap()
            .test_run(TestRunOptions {
                data_in: Some(pkt),
                data_out: Some(&mut out),
                ctx_in: Some(&ctx_in),
                ctx_out: Some(&mut ctx_out),
                ..Default::default()
            })
            .expect("test run");
    out.truncate(r.data_size_out as usize);
    TcOutcome {
        verdict: r.return_value,
        out,
        mark: u32::from_ne_bytes(ctx_out[8..12].try_into().unwrap()),
    }
}

#[test]
fn tc_redirect_rewrites_like_xdp() {
    let t = TestDataplane::new(true);
    let pkt = tcp_v4([198, 18, 0, 2], [198, 19, 0, 2], 41000, 443, 64, b"tc");
    let o = run_tc(&t, &pkt);
    assert_eq!(o.verdict, TC_ACT_REDIRECT);
    assert_eq!(&o.out[0..6], &HOP_DST_MAC);
    assert_eq!(&o.out[6..12], &HOP_SRC_MAC);
    let ip = Ipv4HeaderSlice::from_slice(&o.out[14..]).unwrap();
    assert_eq!(ip.ttl(), 63);
    assert_eq!(ip.header_checksum(), ip.to_header().calc_header_checksum());
    assert_eq!(&o.out[34..], &pkt[34..]);
    assert_eq!(o.mark, 0, "redirect leaves the mark alone");
    let flows = t.dp.flows().unwrap();
    assert_eq!(flows.len(), 1);
    assert_eq!(flows[0].1.bytes, pkt.len() as u64);
}

#[test]
fn tc_redirect_removes_vlan_tags() {
    let t = TestDataplane::new(true);
    let plain = tcp_v4([198, 18, 0, 2], [198, 19, 0, 2], 41001, 443, 64, b"tagged");
    let tagged = with_vlan(&plain, &[0x8100]);
    let o = run_tc(&t, &tagged);
    assert_eq!(o.verdict, TC_ACT_REDIRECT);
    assert_eq!(o.out.len(), plain.len(), "tag removed");
    assert_eq!(&o.out[12..14], &[0x08, 0x00]);
    assert_eq!(&o.out[34..], &plain[34..]);
}

#[test]
fn tc_mark_sets_the_mark_and_leaves_the_packet() {
    let mut t = TestDataplane::new(true);
    t.dp.set_hop(
        0,
        &HopEntry {
            ifindex: 1,
            flags: HOP_ENABLED | HOP_ACTION_MARK,
            src_mac: [0; 6],
            dst_mac: [0; 6],
            mark: 0x42,
        },
    )
    .unwrap();
    let pkt = tcp_v4([198, 18, 0, 2], [198, 19, 0, 2], 41002, 22, 64, b"mark");
    let o = run_tc(&t, &pkt);
    assert_eq!(o.verdict, TC_ACT_OK);
    assert_eq!(
        o.out, pkt,
        "mark does not touch the bytes (the kernel routes it)"
    );
    assert_eq!(o.mark, 0x42);
    assert_eq!(t.dp.flows().unwrap()[0].1.hop, 0);

    // XDP cannot apply a mark: the same hop is unusable there, counted.
    let other = tcp_v4([198, 18, 0, 2], [198, 19, 0, 2], 41003, 22, 64, b"xdp");
    assert_passed_unchanged(&t, &other, StatReason::PassNoHop);
}

#[test]
fn tc_passes_what_it_cannot_classify() {
    let t = TestDataplane::new(true);
    let mut arp = vec![0u8; 42];
    arp[12] = 0x08;
    arp[13] = 0x06;
    let o = run_tc(&t, &arp);
    assert_eq!(o.verdict, TC_ACT_OK);
    assert_eq!(o.out, arp);
    assert!(t.dp.flows().unwrap().is_empty());
}
