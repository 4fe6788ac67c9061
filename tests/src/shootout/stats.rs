//! A contender's run in figures: each request's fate, its completion
//! time, each hop's bytes.

use std::{collections::BTreeMap, time::Duration};

use crate::traffic::ConnResult;

/// What one contender's run measured.
#[derive(Debug, Clone)]
pub struct RunStats {
    pub contender: String,
    pub requests: usize,
    pub completed: usize,
    /// Requests that needed more than one attempt.
    pub retried: usize,
    /// Attempts abandoned (no progress for 4 s, refused, reset).
    pub abandoned: usize,
    /// Requests that failed every attempt.
    pub given_up: usize,
    /// Completion time of each completed request (all its attempts), s.
    pub times: Vec<f64>,
    /// The same, per destination port.
    pub times_by_port: BTreeMap<u16, Vec<f64>>,
    pub goodput_mbit: f64,
    /// Share of the uploaded bytes each hop carried.
    pub hop_share: Vec<f64>,
}

/// Requests, their attempts and the hops' bytes into figures.
pub fn stats(
    contender: &str,
    results: &[ConnResult],
    hop_bytes: &[u64],
    wall: Duration,
) -> RunStats {
    let mut by_request: BTreeMap<u64, Vec<&ConnResult>> = BTreeMap::new();
    for r in results {
        by_request.entry(r.request).or_default().push(r);
    }
    let mut s = RunStats {
        contender: contender.to_string(),
        requests: by_request.len(),
        completed: 0,
        retried: 0,
        abandoned: results.iter().filter(|r| !r.ok).count(),
        given_up: 0,
        times: Vec::new(),
        times_by_port: BTreeMap::new(),
        goodput_mbit: 0.0,
        hop_share: Vec::new(),
    };
    let mut bytes = 0u64;
    for attempts in by_request.values() {
        if attempts.len() > 1 {
            s.retried += 1;
        }
        match attempts.iter().find(|a| a.ok) {
            Some(ok) => {
                s.completed += 1;
                bytes += ok.size;
                let t: f64 = attempts.iter().map(|a| a.elapsed.as_secs_f64()).sum();
                s.times.push(t);
                s.times_by_port.entry(ok.remote.port()).or_default().push(t);
            }
            None => s.given_up += 1,
        }
    }
    s.goodput_mbit = bytes as f64 * 8.0 / 1e6 / wall.as_secs_f64().max(1e-9);
    let total: u64 = hop_bytes.iter().sum();
    s.hop_share = hop_bytes
        .iter()
        .map(|&b| b as f64 / total.max(1) as f64)
        .collect();
    s
}

/// steerer's attempts by the hop their flow ended on: how many, how long
/// on average, how many took over 2 s. Only flows still in the flow table
/// at the end have a hop (a closed TCP flow leaves after
/// `tcp_closed_secs`); the others are counted apart.
pub(super) fn by_hop(results: &[ConnResult], hops: &BTreeMap<u16, u64>, n: usize) -> String {
    let mut per: Vec<(usize, f64, usize)> = vec![(0, 0.0, 0); n + 1];
    for r in results {
        let h = r
            .local
            .and_then(|l| hops.get(&l.port()))
            .map_or(n, |&h| (h as usize).min(n));
        per[h].0 += 1;
        per[h].1 += r.elapsed.as_secs_f64();
        per[h].2 += usize::from(r.elapsed > Duration::from_secs(2));
    }
    per.iter()
        .enumerate()
        .map(|(h, (c, t, slow))| {
            let name = if h == n {
                "gone from the flow table".to_string()
            } else {
                format!("hop{h}")
            };
            format!(
                "  {name}: {c} attempts, mean {:.2} s, {slow} over 2 s",
                t / (*c).max(1) as f64
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}
