//! Packet interval windows and their sequence (SPEC 5.1, 5.2).
//!
//! A flow's activity in one tick is a *packet interval*: first time, last
//! time, data. A [`WindowSequence`] keeps the intervals of one key (a hop,
//! or a hop towards one destination) for the past L seconds as a ring of
//! L/K sub-windows of K seconds each, and answers questions over the whole
//! L window (bytes, busy time, speed, connections started) or over the
//! newest K seconds.
//!
//! Busy time is the union of the intervals, found by a sweep over start and
//! end events. Groups are runs of intervals that overlap by more than M: an
//! end event is ordered before a start event when the end lies within M of
//! the start, so flows that merely touch form separate groups.
//!
//! Memory per key is bounded: each sub-window keeps at most
//! [`MAX_GROUPS`] groups (beyond that the two groups with the smallest gap
//! between them are merged, which can only overstate busy time by that
//! gap), so a sequence of L/K sub-windows holds at most
//! `L/K * (MAX_GROUPS * 16 + 32)` bytes of intervals: 12 sub-windows (L = 60
//! s, K = 5 s) take about 6.5 KiB.

use std::collections::VecDeque;

/// Groups kept per sub-window before the closest two are merged.
pub const MAX_GROUPS: usize = 32;

/// One flow's activity: `[start_ns, end_ns]` and the bytes it moved then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketInterval {
    pub start_ns: u64,
    pub end_ns: u64,
    pub bytes: u64,
}

/// K seconds of one key.
#[derive(Debug, Clone, Default)]
pub struct SubWindow {
    /// Start of the K seconds this sub-window covers.
    pub start_ns: u64,
    pub bytes: u64,
    pub connections_started: u64,
    /// Groups under the M rule (sorted by start; neighbours may overlap by
    /// at most M), at most `MAX_GROUPS`.
    spans: Vec<(u64, u64)>,
    /// Busy time of this sub-window: the union of what was recorded,
    /// exact even where the groups had to be merged.
    busy: u64,
    /// The speed of the key's bulk flows alone, where some were recorded
    /// (`WindowSequence::record_bulk_speed`).
    bulk_speed: Option<f64>,
}

impl SubWindow {
    fn add_span(&mut self, start: u64, end: u64, m_ns: u64) {
        if end <= start {
            return;
        }
        self.spans.push((start, end));
        self.spans = group(&mut self.spans, m_ns);
        self.bound_groups();
        self.busy = super::busy_time::union_length(&mut self.spans.clone());
    }

    /// Beyond `MAX_GROUPS`, close the smallest gaps between neighbours
    /// (the least busy time made up), all at once: O(g log g).
    fn bound_groups(&mut self) {
        if self.spans.len() <= MAX_GROUPS {
            return;
        }
        let mut gaps: Vec<(u64, usize)> = self
            .spans
            .windows(2)
            .enumerate()
            .map(|(i, w)| (w[1].0.saturating_sub(w[0].1), i))
            .collect();
        gaps.sort_unstable();
        let mut close = vec![false; self.spans.len()];
        for &(_, i) in &gaps[..self.spans.len() - MAX_GROUPS] {
            close[i] = true;
        }
        let mut out: Vec<(u64, u64)> = Vec::with_capacity(MAX_GROUPS);
        let mut joining = false;
        for (i, &(s, e)) in self.spans.iter().enumerate() {
            match out.last_mut() {
                Some(last) if joining => last.1 = last.1.max(e),
                _ => out.push((s, e)),
            }
            joining = close[i];
        }
        self.spans = out;
    }

    /// Busy time of this sub-window alone.
    pub fn busy_ns(&self) -> u64 {
        self.busy
    }

    /// Bytes per second of busy time, or its bulk flows' speed where that
    /// is higher; `None` below a millisecond of activity (the quotient is
    /// noise) or without data.
    pub fn speed(&self) -> Option<f64> {
        let all = speed_of(self.bytes, self.busy);
        match (all, self.bulk_speed) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Bytes per second over `busy_ns`; below a millisecond of activity the
/// quotient is noise.
pub fn speed_of(bytes: u64, busy_ns: u64) -> Option<f64> {
    (bytes > 0 && busy_ns >= 1_000_000).then(|| bytes as f64 / (busy_ns as f64 / 1e9))
}

/// The L-second window of one key as a ring of K-second sub-windows.
#[derive(Debug, Clone)]
pub struct WindowSequence {
    m_ns: u64,
    capacity: usize,
    /// Oldest first; the back is the current sub-window.
    ring: VecDeque<SubWindow>,
}

impl WindowSequence {
    /// `k_ns`: sub-window length K; `l_ns`: window length L (rounded up to
    /// whole sub-windows, at least one); `m_ns`: grouping tolerance M.
    pub fn new(k_ns: u64, l_ns: u64, m_ns: u64, now_ns: u64) -> Self {
        let k_ns = k_ns.max(1);
        let capacity = l_ns.div_ceil(k_ns).max(1) as usize;
        let mut ring = VecDeque::with_capacity(capacity);
        ring.push_back(SubWindow {
            start_ns: now_ns,
            ..SubWindow::default()
        });
        WindowSequence {
            m_ns,
            capacity,
            ring,
        }
    }

    /// Record a flow's packet interval in the current sub-window;
    /// `started`: the flow began in it (a connection started).
    pub fn record(&mut self, interval: PacketInterval, started: bool) {
        let cur = self.ring.back_mut().expect("ring is never empty");
        cur.bytes += interval.bytes;
        cur.connections_started += started as u64;
        cur.add_span(
            interval.start_ns,
            interval.end_ns.max(interval.start_ns),
            self.m_ns,
        );
    }

    /// Record one tick of a key at once (a hop's flows): `bytes` moved
    /// over `intervals` (any order), `started` connections. Returns the
    /// tick's busy time, the union of the intervals (SPEC 5.2).
    pub fn record_batch(&mut self, bytes: u64, intervals: &mut [(u64, u64)], started: u64) -> u64 {
        let m_ns = self.m_ns;
        let cur = self.ring.back_mut().expect("ring is never empty");
        cur.bytes += bytes;
        cur.connections_started += started;
        let mut all: Vec<(u64, u64)> = cur
            .spans
            .iter()
            .copied()
            .chain(intervals.iter().copied().filter(|&(s, e)| e > s))
            .collect();
        cur.busy = super::busy_time::union_length(&mut all);
        cur.spans = group(&mut all, m_ns);
        cur.bound_groups();
        cur.busy
    }

    /// The current sub-window's bulk flows moved at `speed` (bytes/s of
    /// their own busy time).
    pub fn record_bulk_speed(&mut self, speed: f64) {
        let cur = self.ring.back_mut().expect("ring is never empty");
        cur.bulk_speed = Some(cur.bulk_speed.map_or(speed, |s| s.max(speed)));
    }

    /// The sub-window still filling (this tick's).
    pub fn current(&self) -> &SubWindow {
        self.ring.back().expect("ring is never empty")
    }

    /// Highest speed of one sub-window within L.
    pub fn peak_speed(&self) -> Option<f64> {
        self.ring
            .iter()
            .filter_map(SubWindow::speed)
            .max_by(f64::total_cmp)
    }

    /// Count `n` connections started in the current sub-window that moved
    /// no data (yet): they count for the window's size, not its speed.
    pub fn count_started(&mut self, n: u64) {
        let cur = self.ring.back_mut().expect("ring is never empty");
        cur.connections_started += n;
    }

    /// Close the current sub-window at `now_ns` and open the next; the
    /// oldest one leaves once L/K are kept. Call once per tick.
    pub fn roll(&mut self, now_ns: u64) {
        if self.ring.len() == self.capacity {
            self.ring.pop_front();
        }
        self.ring.push_back(SubWindow {
            start_ns: now_ns,
            ..SubWindow::default()
        });
    }

    pub fn bytes(&self) -> u64 {
        self.ring.iter().map(|w| w.bytes).sum()
    }

    pub fn connections_started(&self) -> u64 {
        self.ring.iter().map(|w| w.connections_started).sum()
    }

    /// Union of all intervals over the L window (a flow spanning several
    /// sub-windows is counted once).
    pub fn busy_ns(&self) -> u64 {
        let mut all: Vec<(u64, u64)> = self
            .ring
            .iter()
            .flat_map(|w| w.spans.iter().copied())
            .collect();
        super::busy_time::union_length(&mut all)
    }

    /// Bytes per second of busy time over the L window (`None` under a
    /// millisecond of activity).
    pub fn speed(&self) -> Option<f64> {
        speed_of(self.bytes(), self.busy_ns())
    }
}

/// Sweep start/end events; an end is taken before a start when it lies
/// within `m_ns` of that start.
pub fn group(intervals: &mut [(u64, u64)], m_ns: u64) -> Vec<(u64, u64)> {
    intervals.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::new();
    for &(s, e) in intervals.iter() {
        if e < s {
            continue;
        }
        match out.last_mut() {
            // Joins only when the current group runs past s + M.
            Some(last) if last.1 > s.saturating_add(m_ns) => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

#[cfg(test)]
#[path = "window_tests.rs"]
mod tests;
