//! Property test: random bytes, and valid packets cut short or with bytes
//! changed, through the XDP program. Whatever it gets, the program never
//! rewrites a packet the independent oracle does not call a steerable
//! TCP/UDP packet, passes everything else byte for byte, and creates flows
//! only for packets it redirects.

mod support;

use proptest::{prelude::*, strategy::ValueTree, test_runner::TestRunner};
use steerer_common::StatReason;
use support::{oracle::oracle, *};

/// A valid steerable frame of one of the shapes the parser knows.
fn valid_frame() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<bool>(),
        0usize..=2,
        0usize..=3,
        any::<u16>(),
        any::<u16>(),
        2u8..=255,
        proptest::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(ipv6, tags, exts, sport, dport, ttl, payload)| {
            let mut f = if ipv6 {
                let base = if sport % 2 == 0 {
                    tcp_v6(sport, dport)
                } else {
                    udp_v6(v6(2), v6(0x99), sport, dport, ttl, &payload)
                };
                with_v6_ext(&base, &vec![opts_header(60); exts])
            } else {
                tcp_v4(
                    [198, 18, 0, 2],
                    [198, 19, 0, 2],
                    sport,
                    dport,
                    ttl,
                    &payload,
                )
            };
            let tpids = [0x88a8u16, 0x8100];
            f = with_vlan(&f, &tpids[2 - tags..]);
            f
        })
}

/// A valid frame cut at a random length and with a few random bytes.
fn damaged_frame() -> impl Strategy<Value = Vec<u8>> {
    (
        valid_frame(),
        any::<prop::sample::Index>(),
        proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
    )
        .prop_map(|(mut f, cut, edits)| {
            let len = 14 + cut.index(f.len() - 13);
            f.truncate(len);
            for (at, byte) in edits {
                let i = at.index(f.len());
                f[i] = byte;
            }
            f
        })
}

fn any_frame() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 14..160),
        damaged_frame(),
        valid_frame(),
    ]
}

#[test]
fn never_rewrites_what_is_not_steerable() {
    // One data plane for all cases (loading one costs tens of ms); the
    // runner is driven by hand so it is dropped, pins and all, at the end.
    let t = TestDataplane::new(true);
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 20_000,
        ..ProptestConfig::default()
    });
    let result = runner.run(&any_frame(), |frame| {
        let new_flows = stat(&t, StatReason::NewFlow);
        let o = run_xdp(&t, &frame);
        let created = stat(&t, StatReason::NewFlow) - new_flows;
        match o.verdict {
            XDP_PASS => {
                prop_assert_eq!(&o.out, &frame, "passed frames are unchanged");
                prop_assert_eq!(created, 0, "a passed frame created a flow");
            }
            XDP_REDIRECT => {
                prop_assert!(
                    oracle(&frame).is_some(),
                    "redirected a non-steerable frame {:02x?}",
                    frame
                );
            }
            other => prop_assert!(false, "verdict {}", other),
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn valid_frames_are_steered() {
    // The generator itself: its valid frames are redirected, so the
    // property above is not vacuous.
    let t = TestDataplane::new(true);
    let mut runner = TestRunner::deterministic();
    let mut redirected = 0;
    for _ in 0..200 {
        let f = valid_frame().new_tree(&mut runner).unwrap().current();
        if run_xdp(&t, &f).verdict == XDP_REDIRECT {
            redirected += 1;
        }
    }
    assert!(
        redirected >= 190,
        "only {redirected} of 200 valid frames steered"
    );
}
