//! Flow sizes drawn from a published CDF (`scenarios/flowsize/`, copies of
//! `../shared/data/flowsize/`). One implementation for the simulator and,
//! through `#[path]`, for the lab's traffic generator (`steerer-lab`
//! cannot depend on `steerer-user`: xtask builds it before the eBPF
//! toolchain is set up). Only std and rand 0.8, which both crates have.

use std::path::Path;

use rand::Rng;

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

    /// A size drawn from the CDF.
    pub fn sample(&self, rng: &mut impl Rng) -> u64 {
        self.quantile(rng.gen())
    }

    /// Mean size (exact for the piecewise-linear CDF).
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

#[cfg(test)]
mod tests {
    use super::*;

    const WEBSEARCH: &str = include_str!("../../../scenarios/flowsize/websearch.txt");
    const HADOOP: &str = include_str!("../../../scenarios/flowsize/fb-hadoop.txt");

    #[test]
    fn published_cdfs_parse_and_invert() {
        let cdf = FlowSizeCdf::parse(WEBSEARCH).unwrap();
        // websearch: 15% at 10 kB, 60% at 200 kB, 100% at 30 MB.
        assert_eq!(cdf.quantile(0.15), 10_000);
        assert_eq!(cdf.quantile(0.60), 200_000);
        assert_eq!(cdf.quantile(1.0), 30_000_000);
        assert!(cdf.quantile(0.0) >= 1);
        let mid = cdf.quantile(0.175); // halfway between 15% and 20%
        assert_eq!(mid, 15_000);
        assert!(
            cdf.mean() > 1e6,
            "web search mean is about 1.7 MB: {}",
            cdf.mean()
        );
        FlowSizeCdf::parse(HADOOP).unwrap();
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
        assert!(FlowSizeCdf::parse("0 0\n10 x\n")
            .unwrap_err()
            .contains("line 2"));
    }
}
