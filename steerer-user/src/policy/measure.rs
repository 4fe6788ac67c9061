//! The first half of a tick: from the flow table to per-hop and
//! per-destination figures (SPEC 5.1, 5.2) and the flows that failed or got
//! their first answer.

use std::{collections::HashMap, hash::Hash};

use super::{
    busy_time,
    engine::Engine,
    params::DESTINATION_MIN_BYTES,
    report::{FlowEvent, FlowSample},
    window::{speed_of, PacketInterval},
};

/// The engine's memory of one flow between ticks (40 bytes plus the key).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct FlowMemo {
    /// Bytes in both directions at the last tick.
    pub total: u64,
    /// Reply bytes at the last tick.
    pub reply: u64,
    pub seen_tick: u64,
    /// Already reported as failed.
    pub failed: bool,
    /// Already reported as answered.
    pub answered: bool,
}

/// What one tick measured, per hop (and per destination with a window).
pub(super) struct TickMeasure {
    pub bytes: Vec<u64>,
    pub active: Vec<u64>,
    /// Flows of the hop that got reply bytes this tick.
    pub answered: Vec<u64>,
    pub newly_failed: Vec<u64>,
    /// Flows of weak evidence (`FlowSample::weak_evidence`) of the hop
    /// that failed this tick; not in `newly_failed`.
    pub weak_failed: Vec<u64>,
    /// This tick's speed of each hop, where it moved data long enough.
    pub measured: Vec<Option<f64>>,
    /// (destination, hop) -> (bytes, speed if measurable).
    pub destination: HashMap<(u64, u32), (u64, Option<f64>)>,
    /// Connections started this tick per destination.
    pub started: HashMap<u64, u64>,
}

/// The result of [`Engine::observe`], input of [`Engine::plan`].
pub struct Observed<K> {
    pub now_ns: u64,
    /// Start of the span this tick measured (the previous tick).
    pub window_start: u64,
    pub(super) m: TickMeasure,
    pub newly_failed: Vec<FlowEvent<K>>,
    pub newly_answered: Vec<FlowEvent<K>>,
}

/// Bytes and busy intervals of one (destination, hop) in a tick.
type Intervals = (u64, Vec<(u64, u64)>);

/// What a tick gathers flow by flow before it becomes a [`TickMeasure`].
struct Gathered<K> {
    m: TickMeasure,
    newly_failed: Vec<FlowEvent<K>>,
    newly_answered: Vec<FlowEvent<K>>,
    /// Per hop: the busy intervals of its flows that moved data.
    intervals: Vec<Vec<(u64, u64)>>,
    /// Per hop: connections started this tick.
    started_on: Vec<u64>,
    /// Per hop: bytes and busy intervals of its bulk flows (each moved at
    /// least `Params::bulk_flow_bytes` this tick), when that is not 0.
    bulk: Vec<(u64, Vec<(u64, u64)>)>,
    dest_intervals: HashMap<(u64, u32), Intervals>,
}

/// The span a tick measures.
#[derive(Clone, Copy)]
struct Span {
    now_ns: u64,
    window_start: u64,
    tick: u64,
}

impl<K: Hash + Eq + Copy> Engine<K> {
    /// Read every flow of the table at `now_ns`: per-flow deltas into
    /// per-hop figures (recorded in each hop's L window) and per-destination
    /// ones; flows that failed (sent, no reply after T) or got their first
    /// reply.
    pub fn observe(
        &mut self,
        now_ns: u64,
        flows: impl IntoIterator<Item = FlowSample<K>>,
    ) -> Observed<K> {
        let n = self.hops.len();
        let window_start = match self.last_tick_ns {
            Some(t) if t < now_ns => t,
            _ => now_ns.saturating_sub(self.params.tick_ns),
        };
        self.tick_count += 1;
        let span = Span {
            now_ns,
            window_start,
            tick: self.tick_count,
        };
        let mut g = Gathered {
            m: TickMeasure {
                bytes: vec![0; n],
                active: vec![0; n],
                answered: vec![0; n],
                newly_failed: vec![0; n],
                weak_failed: vec![0; n],
                measured: vec![None; n],
                destination: HashMap::new(),
                started: HashMap::new(),
            },
            newly_failed: Vec::new(),
            newly_answered: Vec::new(),
            intervals: vec![Vec::new(); n],
            started_on: vec![0; n],
            bulk: vec![(0, Vec::new()); n],
            dest_intervals: HashMap::new(),
        };
        for f in flows {
            // A hop this engine does not hold (a removed one) is skipped.
            if (f.hop as usize) < n {
                self.observe_flow(&f, span, &mut g);
            }
        }
        // Flows gone from the table (ended, evicted) are forgotten.
        self.flows.retain(|_, memo| memo.seen_tick == span.tick);
        self.conclude(span, g)
    }

    /// One flow's delta since the last tick into `g`.
    fn observe_flow(&mut self, f: &FlowSample<K>, span: Span, g: &mut Gathered<K>) {
        let h = f.hop as usize;
        let total = f.bytes + f.reply_bytes;
        let memo = self.flows.entry(f.key).or_default();
        let delta = total.saturating_sub(memo.total);
        if f.reply_bytes > memo.reply {
            g.m.answered[h] += 1;
        }
        memo.total = total;
        memo.reply = f.reply_bytes;
        memo.seen_tick = span.tick;
        let event = FlowEvent {
            key: f.key,
            hop: f.hop,
            destination: f.destination,
            weak: f.weak_evidence,
        };
        if f.reply_packets > 0 && !memo.answered {
            memo.answered = true;
            g.newly_answered.push(event);
        }
        let failed = f.packets > 0
            && f.reply_packets == 0
            && span.now_ns.saturating_sub(f.first_seen_ns) >= self.params.fail_after_ns;
        if failed && !memo.failed {
            memo.failed = true;
            if f.weak_evidence {
                g.m.weak_failed[h] += 1;
            } else {
                g.m.newly_failed[h] += 1;
            }
            g.newly_failed.push(event);
        }
        if f.last_seen_ns >= span.window_start {
            g.m.active[h] += 1;
        }
        let started = f.first_seen_ns >= span.window_start;
        if started {
            *g.m.started.entry(f.destination).or_default() += 1;
            g.started_on[h] += 1;
        }
        let start = f.first_seen_ns.max(span.window_start);
        let interval = (start, f.last_seen_ns.max(start));
        // A flow that never got an answer moved no data: its retried SYNs
        // would only stretch the hop's busy time (blackholes are judged by
        // failures and exclusions, not by speed).
        let moved = delta > 0 && f.reply_packets > 0;
        if let Some(w) = self.destinations.get_mut(&f.destination) {
            if moved {
                let iv = PacketInterval {
                    start_ns: interval.0,
                    end_ns: interval.1,
                    bytes: delta,
                };
                w.sequence.record(iv, started);
                let e = g.dest_intervals.entry((f.destination, f.hop)).or_default();
                e.0 += delta;
                e.1.push(interval);
            } else if started {
                w.sequence.count_started(1);
            }
        }
        if moved {
            g.m.bytes[h] += delta;
            g.intervals[h].push(interval);
            let bulk = self.params.bulk_flow_bytes;
            if bulk > 0 && delta >= bulk {
                g.bulk[h].0 += delta;
                g.bulk[h].1.push(interval);
            }
        }
    }

    /// Busy times and speeds from what was gathered; each hop's tick goes
    /// into its L window.
    fn conclude(&mut self, span: Span, mut g: Gathered<K>) -> Observed<K> {
        for (h, iv) in g.intervals.iter_mut().enumerate() {
            let seq = &mut self.state[h].sequence;
            seq.record_batch(g.m.bytes[h], iv, g.started_on[h]);
            // Bulk flows alone: the time small flows spend on handshakes
            // and slow start is busy time in which the hop was not the
            // limit, so over all flows a hop that is not saturated reads
            // slower than it is.
            let (bytes, bulk) = &mut g.bulk[h];
            if let Some(speed) = speed_of(*bytes, busy_time::union_length(bulk)) {
                seq.record_bulk_speed(speed);
            }
            // The sub-window holds only this tick: its speed is the tick's
            // (the higher of all flows' and bulk flows').
            g.m.measured[h] = seq.current().speed();
        }
        for (k, (bytes, mut iv)) in g.dest_intervals {
            let busy = busy_time::union_length(&mut iv);
            let speed = if bytes >= DESTINATION_MIN_BYTES {
                speed_of(bytes, busy)
            } else {
                None
            };
            g.m.destination.insert(k, (bytes, speed));
        }
        Observed {
            now_ns: span.now_ns,
            window_start: span.window_start,
            m: g.m,
            newly_failed: g.newly_failed,
            newly_answered: g.newly_answered,
        }
    }
}
