//! What one policy's run measured, and its summary figures.

use std::collections::HashMap;

use super::PolicyKind;

/// Width of the time buckets of the retries-over-time series.
pub const BUCKET_NS: u64 = 10_000_000_000;

#[derive(Debug, Clone)]
pub struct RunResult {
    pub policy: PolicyKind,
    /// Per finished connection: retries, total time (first attempt to
    /// last byte) and data received over all its attempts (abandoned ones
    /// included), 20 bytes each.
    pub retries: Vec<u32>,
    pub times_ns: Vec<u64>,
    pub data: Vec<u64>,
    pub completed: u64,
    /// Connections abandoned after `max_attempts`.
    pub gave_up: u64,
    pub bytes_completed: u64,
    pub bytes_per_hop: Vec<u64>,
    pub attempts_per_hop: Vec<u64>,
    /// Attempts (and fast-failover moves) that landed on a hop blackholing
    /// their destination, or on a vanished hop's blackhole.
    pub blackholed_attempts: u64,
    pub failovers: u64,
    /// Attempts reset because steerer declared their hop disappeared.
    pub resets: u64,
    /// Per blackholed (hop, destination): first time a flow was sent into
    /// it, and when the policy excluded it (if it did).
    blackhole_hits: HashMap<(u32, u32), (u64, Option<u64>)>,
    /// Exclusions of (hop, destination) pairs that were not blackholes.
    pub false_exclusions: u64,
    /// (sum of retries, connections) by start-time bucket.
    pub retries_by_bucket: Vec<(u64, u64)>,
    /// steerer only: (time, share of new flows per hop) at every tick.
    pub weights: Vec<(u64, Vec<f64>)>,
    pub duration_ns: u64,
    pub summary: Summary,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub connections: u64,
    pub mean_retries: f64,
    pub p50_retries: u32,
    pub p99_retries: u32,
    pub mean_time_s: f64,
    pub p50_time_s: f64,
    pub p99_time_s: f64,
    /// Data received per connection over all attempts, bytes.
    pub mean_data: f64,
    pub p50_data: u64,
    pub p99_data: u64,
    /// Bytes received by abandoned attempts over all bytes received.
    pub wasted_share: f64,
    pub goodput_mbit: f64,
    pub gave_up: u64,
    /// Largest share of all delivered bytes carried by one hop.
    pub top_hop_share: f64,
    /// Median over blackholed (hop, destination) pairs that were tried of
    /// the time from the first flow sent into the pair until the policy
    /// excluded the hop for the destination; `None` when the policy never
    /// excludes anything (uniform, ECMP) or nothing was tried.
    pub learn_blackhole_s: Option<f64>,
    /// Share of tried blackholed pairs the policy excluded.
    pub learned_share: f64,
    pub blackholed_attempts: u64,
    /// Standard error of the mean retries (for confidence intervals).
    pub retries_stderr: f64,
}

impl RunResult {
    pub fn new(policy: PolicyKind, hops: usize) -> RunResult {
        RunResult {
            policy,
            retries: Vec::new(),
            times_ns: Vec::new(),
            data: Vec::new(),
            completed: 0,
            gave_up: 0,
            bytes_completed: 0,
            bytes_per_hop: vec![0; hops],
            attempts_per_hop: vec![0; hops],
            blackholed_attempts: 0,
            failovers: 0,
            resets: 0,
            blackhole_hits: HashMap::new(),
            false_exclusions: 0,
            retries_by_bucket: Vec::new(),
            weights: Vec::new(),
            duration_ns: 0,
            summary: Summary::default(),
        }
    }

    fn bucket(&mut self, start_ns: u64, retries: u32) {
        let b = (start_ns / BUCKET_NS) as usize;
        if self.retries_by_bucket.len() <= b {
            self.retries_by_bucket.resize(b + 1, (0, 0));
        }
        self.retries_by_bucket[b].0 += retries as u64;
        self.retries_by_bucket[b].1 += 1;
    }

    pub fn completed(&mut self, retries: u32, bytes: u64, data: u64, start_ns: u64, end_ns: u64) {
        self.retries.push(retries);
        self.data.push(data);
        self.times_ns.push(end_ns - start_ns);
        self.completed += 1;
        self.bytes_completed += bytes;
        self.bucket(start_ns, retries);
    }

    /// Counted with its retries and its time so far (and in `gave_up`).
    pub fn gave_up(&mut self, attempts: u32, data: u64, start_ns: u64, now_ns: u64) {
        let retries = attempts.saturating_sub(1);
        self.retries.push(retries);
        self.data.push(data);
        self.times_ns.push(now_ns - start_ns);
        self.gave_up += 1;
        self.bucket(start_ns, retries);
    }

    /// A flow was sent into a blackhole (a new attempt, or a failover move).
    pub fn note_blackholed_attempt(&mut self, hop: u32, dest: u32, now_ns: u64) {
        self.blackholed_attempts += 1;
        self.blackhole_hits
            .entry((hop, dest))
            .or_insert((now_ns, None));
    }

    /// The policy excluded `hop` for `dest` at `now_ns`; `blackholed`: the
    /// pair really is one.
    pub fn note_exclusion(&mut self, hop: u32, dest: u32, now_ns: u64, blackholed: bool) {
        if !blackholed {
            self.false_exclusions += 1;
            return;
        }
        let e = self
            .blackhole_hits
            .entry((hop, dest))
            .or_insert((now_ns, None));
        if e.1.is_none() {
            e.1 = Some(now_ns);
        }
    }

    pub fn finish(&mut self) {
        let n = self.retries.len() as u64;
        let mut s = Summary {
            connections: n,
            gave_up: self.gave_up,
            blackholed_attempts: self.blackholed_attempts,
            ..Summary::default()
        };
        if n > 0 {
            let mean = self.retries.iter().map(|&r| r as f64).sum::<f64>() / n as f64;
            let var = self
                .retries
                .iter()
                .map(|&r| (r as f64 - mean).powi(2))
                .sum::<f64>()
                / (n.max(2) - 1) as f64;
            s.mean_retries = mean;
            s.retries_stderr = (var / n as f64).sqrt();
            let mut r = self.retries.clone();
            r.sort_unstable();
            s.p50_retries = percentile(&r, 0.50);
            s.p99_retries = percentile(&r, 0.99);
            let mut t = self.times_ns.clone();
            t.sort_unstable();
            s.mean_time_s = t.iter().map(|&x| x as f64).sum::<f64>() / n as f64 / 1e9;
            s.p50_time_s = percentile(&t, 0.50) as f64 / 1e9;
            s.p99_time_s = percentile(&t, 0.99) as f64 / 1e9;
            let mut d = self.data.clone();
            d.sort_unstable();
            let received: u64 = d.iter().sum();
            s.mean_data = received as f64 / n as f64;
            s.p50_data = percentile(&d, 0.50);
            s.p99_data = percentile(&d, 0.99);
            if received > 0 {
                s.wasted_share = 1.0 - self.bytes_completed as f64 / received as f64;
            }
        }
        if self.duration_ns > 0 {
            s.goodput_mbit =
                self.bytes_completed as f64 * 8.0 / (self.duration_ns as f64 / 1e9) / 1e6;
        }
        let total: u64 = self.bytes_per_hop.iter().sum();
        if total > 0 {
            s.top_hop_share = *self.bytes_per_hop.iter().max().unwrap_or(&0) as f64 / total as f64;
        }
        let mut spans: Vec<u64> = self
            .blackhole_hits
            .values()
            .filter_map(|(first, learned)| learned.map(|l| l.saturating_sub(*first)))
            .collect();
        spans.sort_unstable();
        if !spans.is_empty() {
            s.learn_blackhole_s = Some(percentile(&spans, 0.5) as f64 / 1e9);
            s.learned_share = spans.len() as f64 / self.blackhole_hits.len() as f64;
        }
        self.summary = s;
    }

    /// Completion times in seconds, sorted (for the CDF chart).
    pub fn sorted_times_s(&self) -> Vec<f64> {
        let mut t: Vec<f64> = self.times_ns.iter().map(|&x| x as f64 / 1e9).collect();
        t.sort_by(f64::total_cmp);
        t
    }
}

/// Nearest-rank percentile of sorted values.
pub fn percentile<T: Copy + Default>(sorted: &[T], q: f64) -> T {
    if sorted.is_empty() {
        return T::default();
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// The comparison table, one row per policy.
pub fn table(results: &[RunResult], p: u32) -> String {
    let mut out = String::new();
    out.push_str(
        "| policy | conns | mean retries | p50 retries | p99 retries | mean time s | p50 time s | p99 time s | mean data MB | p50 data MB | p99 data MB | wasted data | goodput Mbit/s | gave up | top hop share | sends into blackholes | blackholes learned | median time to learn s |\n",
    );
    out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in results {
        let s = &r.summary;
        out.push_str(&format!(
            "| {} | {} | {:.4} | {} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.2}% | {:.1} | {} | {:.3} | {} | {} | {} |\n",
            r.policy.label(),
            s.connections,
            s.mean_retries,
            s.p50_retries,
            s.p99_retries,
            s.mean_time_s,
            s.p50_time_s,
            s.p99_time_s,
            s.mean_data / 1e6,
            s.p50_data as f64 / 1e6,
            s.p99_data as f64 / 1e6,
            100.0 * s.wasted_share,
            s.goodput_mbit,
            s.gave_up,
            s.top_hop_share,
            s.blackholed_attempts,
            match s.learn_blackhole_s {
                Some(_) => format!("{:.0}%", 100.0 * s.learned_share),
                None => "-".into(),
            },
            s.learn_blackhole_s
                .map_or_else(|| "-".into(), |t| format!("{t:.1}")),
        ));
    }
    out.push_str(&hop_shares(results));
    if p >= 2 {
        out.push_str(&format!(
            "\nuniform choice with a 1/P = 1/{p} chance of a block per hop expects 1/(P-1) = {:.4} retries per connection\n",
            1.0 / (p as f64 - 1.0)
        ));
    }
    out
}

/// Share of delivered bytes per hop and policy (the first 32 hops).
fn hop_shares(results: &[RunResult]) -> String {
    let Some(first) = results.first() else {
        return String::new();
    };
    let hops = first.bytes_per_hop.len();
    let shown = hops.min(32);
    let mut out = String::from("\nshare of delivered bytes per hop:\n\n| hop |");
    for r in results {
        out.push_str(&format!(" {} |", r.policy.label()));
    }
    out.push_str("\n|---|");
    out.push_str(&"---:|".repeat(results.len()));
    out.push('\n');
    let totals: Vec<f64> = results
        .iter()
        .map(|r| r.bytes_per_hop.iter().sum::<u64>().max(1) as f64)
        .collect();
    for h in 0..shown {
        out.push_str(&format!("| hop{h} |"));
        for (r, total) in results.iter().zip(&totals) {
            out.push_str(&format!(" {:.3} |", r.bytes_per_hop[h] as f64 / total));
        }
        out.push('\n');
    }
    if hops > shown {
        out.push_str(&format!("({} more hops not shown)\n", hops - shown));
    }
    out
}
