//! The senders' workload: Poisson arrivals, Zipf-popular destinations and
//! flow sizes drawn from a published CDF. Its random stream is its own, so
//! every policy of a comparison faces the very same connections.

use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp, Zipf};

/// A flow-size CDF: points (bytes, cumulative fraction), sampled by inverse
/// transform with linear interpolation between points.
#[derive(Debug, Clone)]
pub struct FlowSizeCdf {
    points: Vec<(f64, f64)>,
}

impl FlowSizeCdf {
    /// Lines of "bytes percent" (percent 0..=100, both non-decreasing, the
    /// last at 100), as in `../shared/data/flowsize/`.
    pub fn parse(text: &str) -> Result<FlowSizeCdf, String> {
        let mut points: Vec<(f64, f64)> = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut it = line.split_whitespace();
            let (Some(b), Some(p), None) = (it.next(), it.next(), it.next()) else {
                return Err(format!("line {}: expected `bytes percent`", n + 1));
            };
            let bytes: f64 = b
                .parse()
                .map_err(|_| format!("line {}: bytes {b:?} is not a number", n + 1))?;
            let pct: f64 = p
                .parse()
                .map_err(|_| format!("line {}: percent {p:?} is not a number", n + 1))?;
            if !(bytes >= 0.0 && (0.0..=100.0).contains(&pct)) {
                return Err(format!("line {}: out of range", n + 1));
            }
            if let Some(&(pb, pp)) = points.last() {
                if bytes < pb || pct < pp {
                    return Err(format!("line {}: the CDF must not decrease", n + 1));
                }
            }
            points.push((bytes, pct / 100.0));
        }
        match points.last() {
            Some(&(_, p)) if (p - 1.0).abs() < 1e-9 => Ok(FlowSizeCdf { points }),
            Some(_) => Err("the last point must be at 100 percent".into()),
            None => Err("no points".into()),
        }
    }

    pub fn load(path: &Path) -> Result<FlowSizeCdf, String> {
        let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
        FlowSizeCdf::parse(&text)
    }

    /// The size at cumulative fraction `u` (0..1); at least one byte.
    pub fn quantile(&self, u: f64) -> u64 {
        let mut prev = (0.0, 0.0);
        for &(bytes, p) in &self.points {
            if u <= p {
                let span = p - prev.1;
                let x = if span > 0.0 {
                    prev.0 + (bytes - prev.0) * (u - prev.1) / span
                } else {
                    bytes
                };
                return (x.round() as u64).max(1);
            }
            prev = (bytes, p);
        }
        (prev.0 as u64).max(1)
    }

    /// Mean size (for stating offered load).
    pub fn mean(&self) -> f64 {
        let mut prev = (0.0, 0.0);
        let mut m = 0.0;
        for &(bytes, p) in &self.points {
            m += (p - prev.1) * (bytes + prev.0) / 2.0;
            prev = (bytes, p);
        }
        m
    }
}

/// One connection the senders open.
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    pub at_ns: u64,
    pub sender: u32,
    pub destination: u32,
    pub bytes: u64,
}

/// The arrivals of a scenario, in time order, from its seed.
pub struct Workload {
    rng: ChaCha8Rng,
    gap: Exp<f64>,
    popularity: Zipf<f64>,
    sizes: FlowSizeCdf,
    senders: u32,
    destinations: u32,
    now_s: f64,
    left: u64,
}

impl Workload {
    pub fn new(
        seed: u64,
        connections: u64,
        arrivals_per_sec: f64,
        senders: u32,
        destinations: u32,
        zipf_exponent: f64,
        sizes: FlowSizeCdf,
    ) -> Workload {
        Workload {
            rng: ChaCha8Rng::seed_from_u64(seed),
            // Validated by the scenario: rate > 0, n >= 1, exponent >= 0.
            gap: Exp::new(arrivals_per_sec).unwrap_or_else(|_| Exp::new(1.0).expect("rate 1")),
            popularity: Zipf::new(destinations as u64, zipf_exponent)
                .unwrap_or_else(|_| Zipf::new(1, 1.0).expect("n 1")),
            sizes,
            senders,
            destinations,
            now_s: 0.0,
            left: connections,
        }
    }
}

impl Iterator for Workload {
    type Item = Arrival;

    fn next(&mut self) -> Option<Arrival> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        self.now_s += self.gap.sample(&mut self.rng);
        let rank = self.popularity.sample(&mut self.rng) as u32;
        let u: f64 = self.rng.gen();
        Some(Arrival {
            at_ns: (self.now_s * 1e9) as u64,
            sender: self.rng.gen_range(0..self.senders),
            destination: rank.clamp(1, self.destinations) - 1,
            bytes: self.sizes.quantile(u),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WEBSEARCH: &str = include_str!("../../../scenarios/flowsize/websearch.txt");

    #[test]
    fn published_cdf_parses_and_inverts() {
        let cdf = FlowSizeCdf::parse(WEBSEARCH).unwrap();
        // websearch: 15% at 10 kB, 100% at 30 MB.
        assert_eq!(cdf.quantile(0.15), 10_000);
        assert_eq!(cdf.quantile(1.0), 30_000_000);
        assert!(cdf.quantile(0.0) >= 1);
        let mid = cdf.quantile(0.175); // halfway between 15% and 20%
        assert_eq!(mid, 15_000);
    }

    #[test]
    fn bad_cdfs_are_refused_with_the_line() {
        assert!(FlowSizeCdf::parse("0 0\n10 50\n5 100\n")
            .unwrap_err()
            .contains("line 3"));
        assert!(FlowSizeCdf::parse("0 0\n10 50\n")
            .unwrap_err()
            .contains("100"));
        assert!(FlowSizeCdf::parse("0 x\n").unwrap_err().contains("line 1"));
    }

    #[test]
    fn samples_follow_the_cdf() {
        let cdf = FlowSizeCdf::parse(WEBSEARCH).unwrap();
        let w = Workload::new(7, 20_000, 100.0, 4, 50, 1.0, cdf);
        let sizes: Vec<u64> = w.map(|a| a.bytes).collect();
        let below = sizes.iter().filter(|&&b| b <= 80_000).count() as f64 / sizes.len() as f64;
        assert!((below - 0.53).abs() < 0.02, "P(size <= 80 kB) = {below}");
    }

    #[test]
    fn same_seed_same_arrivals() {
        let cdf = FlowSizeCdf::parse(WEBSEARCH).unwrap();
        let a: Vec<(u64, u32, u64)> = Workload::new(3, 100, 10.0, 4, 50, 1.0, cdf.clone())
            .map(|a| (a.at_ns, a.destination, a.bytes))
            .collect();
        let b: Vec<(u64, u32, u64)> = Workload::new(3, 100, 10.0, 4, 50, 1.0, cdf)
            .map(|a| (a.at_ns, a.destination, a.bytes))
            .collect();
        assert_eq!(a, b);
    }
}
