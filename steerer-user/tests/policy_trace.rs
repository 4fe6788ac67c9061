//! Issue 4: a scripted trace through the policy engine and its block list.
//! Three hops of 100, 50 and 10 MB/s (all claiming 100); hop 1 blackholes
//! port 443. After each tick: the weights, and which (hop, port) pairs are
//! excluded.

use steerer_user::policy::{blocked::BlockList, Engine, FlowSample, HopSpec, Params, SpeedSource};

const SEC: u64 = 1_000_000_000;
const MB: u64 = 1_000_000;
const HTTPS: u64 = 443;
const HTTP: u64 = 80;

struct Trace {
    engine: Engine<u32>,
    blocks: BlockList<u64>,
    next_key: u32,
    /// Flows of the flow table: (sample, destination port).
    table: Vec<FlowSample<u32>>,
    sources: Vec<SpeedSource>,
}

impl Trace {
    fn new() -> Trace {
        let hops = (0..3)
            .map(|i| HopSpec {
                name: format!("hop{i}"),
                initial_estimate: 100.0 * MB as f64,
                operator: None,
                subnet: None,
                fresh: false,
                latency_ms: None,
            })
            .collect();
        let params = Params {
            tick_ns: 5 * SEC,
            slot_count: 307,
            ..Params::default()
        };
        Trace {
            engine: Engine::new(hops, params),
            blocks: BlockList::new(),
            next_key: 0,
            table: Vec::new(),
            sources: Vec::new(),
        }
    }

    /// A flow on `hop` to `port` during [start, end] moving `bytes` of
    /// replies (0: blackholed, it sent a SYN and heard nothing).
    fn flow(&mut self, hop: u32, port: u64, bytes: u64, start: u64, end: u64) {
        self.next_key += 1;
        self.table.push(FlowSample {
            key: self.next_key,
            destination: port,
            hop,
            bytes: 60,
            reply_bytes: bytes,
            packets: 1,
            reply_packets: u64::from(bytes > 0),
            first_seen_ns: start,
            last_seen_ns: end,
        });
    }

    /// One tick: the engine reads the table, failed flows feed the block
    /// list, answered ones clear it. Returns (shares, excluded pairs); the
    /// speed sources land in `sources`.
    fn tick(&mut self, now: u64) -> (Vec<f64>, Vec<(u32, u64)>) {
        let r = self.engine.tick(now, self.table.clone());
        for (key, hop) in &r.newly_failed_flows {
            let port = self
                .table
                .iter()
                .find(|f| f.key == *key)
                .unwrap()
                .destination;
            self.blocks.flow_failed(*hop, port, now);
        }
        for f in &self.table {
            if f.reply_bytes > 0 {
                self.blocks.flow_answered(f.hop, f.destination);
            }
        }
        // Flows end with the tick (the next tick's table holds new ones).
        self.table.clear();
        let mut excluded: Vec<(u32, u64)> = [HTTP, HTTPS]
            .iter()
            .flat_map(|&p| (0..3).map(move |h| (h, p)))
            .filter(|(h, p)| self.blocks.is_excluded(*h, p, now))
            .collect();
        excluded.sort_unstable();
        assert!(r.hops.iter().all(|h| h.usable), "no hop disappears");
        self.sources = r.hops.iter().map(|h| h.speed_source).collect();
        (r.hops.iter().map(|h| h.share).collect(), excluded)
    }
}

fn assert_close(got: &[f64], want: &[f64]) {
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 0.005, "shares {got:?}, expected {want:?}");
    }
}

#[test]
fn scripted_trace_of_100_50_10_with_a_443_blackhole() {
    let mut t = Trace::new();

    // Tick 1 (0-5 s): each hop moves one second's worth at its speed to
    // port 80; hop 1 also takes two connections to 443 that get nothing.
    for (hop, speed) in [(0, 100), (1, 50), (2, 10)] {
        t.flow(hop, HTTP, speed * MB, SEC, 2 * SEC);
    }
    t.flow(1, HTTPS, 0, SEC, SEC);
    t.flow(1, HTTPS, 0, SEC, SEC);
    let (shares, excluded) = t.tick(5 * SEC);
    // Speeds 100/50/10: exploration 5% spread evenly, the rest by speed,
    // hop 0 capped at max share 0.5 and its excess given to the others in
    // proportion: 0.5 / 0.402 / 0.098.
    assert_close(&shares, &[0.5, 0.4018, 0.0982]);
    assert_eq!(
        excluded,
        vec![(1, HTTPS)],
        "two failures to 443 exclude hop 1 for it"
    );

    // Tick 2 (5-10 s): hop 1 still carries port 80 and answers; hop 2
    // measures slower now (5 MB/s), hop 0 idles (remembered speed).
    t.flow(1, HTTP, 50 * MB, 6 * SEC, 7 * SEC);
    t.flow(2, HTTP, 5 * MB, 6 * SEC, 7 * SEC);
    let (shares, excluded) = t.tick(10 * SEC);
    // 100 (remembered) / 50 / 5: 0.5 / 0.4399 / 0.0601.
    assert_close(&shares, &[0.5, 0.4399, 0.0601]);
    assert_eq!(
        excluded,
        vec![(1, HTTPS)],
        "answers on port 80 do not lift the 443 exclusion"
    );
    assert_eq!(
        t.sources,
        vec![
            SpeedSource::Remembered,
            SpeedSource::Measured,
            SpeedSource::Measured
        ]
    );

    // Tick 3 (10-15 s): every hop at its nominal speed again.
    for (hop, speed) in [(0, 100), (1, 50), (2, 10)] {
        t.flow(hop, HTTP, speed * MB, 11 * SEC, 12 * SEC);
    }
    let (shares, excluded) = t.tick(15 * SEC);
    assert_close(&shares, &[0.5, 0.4018, 0.0982]);
    assert_eq!(excluded, vec![(1, HTTPS)]);

    // 60 s after the exclusion it expires into a re-test; a 443 flow on hop
    // 1 that fails again excludes it for twice as long (120 s).
    let later = 70 * SEC;
    t.flow(1, HTTPS, 0, later - 4 * SEC, later - 4 * SEC);
    for (hop, speed) in [(0, 100), (1, 50), (2, 10)] {
        t.flow(hop, HTTP, speed * MB, later - 4 * SEC, later - 3 * SEC);
    }
    assert_eq!(
        t.blocks.check(1, &HTTPS, later),
        steerer_user::policy::blocked::Verdict::Retest
    );
    let (_, excluded) = t.tick(later);
    assert_eq!(excluded, vec![(1, HTTPS)]);
    assert!(t.blocks.is_excluded(1, &HTTPS, later + 119 * SEC));
    assert!(!t.blocks.is_excluded(1, &HTTPS, later + 121 * SEC));
}
