//! Flow sizes drawn from a published CDF (piecewise linear between points).

use anyhow::{bail, Context as _, Result};
use rand::Rng;

/// The web-search flow-size CDF (Alizadeh et al., DCTCP), copied from
/// `../shared/data/flowsize/websearch.txt`.
pub const WEBSEARCH: &str = include_str!("../fixtures/flowsize/websearch.txt");
/// The Facebook Hadoop flow-size CDF (Roy et al.).
pub const HADOOP: &str = include_str!("../fixtures/flowsize/fb-hadoop.txt");

#[derive(Debug, Clone)]
pub struct SizeCdf {
    /// (bytes, cumulative fraction 0..=1), increasing.
    points: Vec<(f64, f64)>,
}

impl SizeCdf {
    /// Parse lines of `size percentile`.
    pub fn parse(text: &str) -> Result<Self> {
        let mut points = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut it = line.split_whitespace();
            let (Some(a), Some(b), None) = (it.next(), it.next(), it.next()) else {
                bail!("line {}: expected `size percentile`, got {line:?}", n + 1);
            };
            let size: f64 = a.parse().with_context(|| format!("line {}: size", n + 1))?;
            let pct: f64 = b
                .parse()
                .with_context(|| format!("line {}: percentile", n + 1))?;
            if let Some(&(ps, pp)) = points.last() {
                if size < ps || pct / 100.0 < pp {
                    bail!("line {}: CDF must not decrease", n + 1);
                }
            }
            points.push((size, pct / 100.0));
        }
        if points.len() < 2 || (points[points.len() - 1].1 - 1.0).abs() > 1e-9 {
            bail!("a CDF needs 2+ points and must end at 100");
        }
        Ok(SizeCdf { points })
    }

    pub fn sample(&self, rng: &mut impl Rng) -> u64 {
        let u: f64 = rng.gen();
        self.quantile(u)
    }

    /// Size at cumulative fraction `u`.
    pub fn quantile(&self, u: f64) -> u64 {
        for w in self.points.windows(2) {
            let ((s0, p0), (s1, p1)) = (w[0], w[1]);
            if u <= p1 {
                if p1 <= p0 {
                    return s1 as u64;
                }
                return (s0 + (s1 - s0) * (u - p0) / (p1 - p0)).max(1.0) as u64;
            }
        }
        self.points[self.points.len() - 1].0 as u64
    }

    /// Mean size (exact for the piecewise-linear CDF).
    pub fn mean(&self) -> f64 {
        self.points
            .windows(2)
            .map(|w| (w[1].1 - w[0].1) * (w[0].0 + w[1].0) / 2.0)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websearch_cdf_quantiles() {
        let c = SizeCdf::parse(WEBSEARCH).unwrap();
        assert_eq!(c.quantile(0.15), 10_000);
        assert_eq!(c.quantile(0.60), 200_000);
        assert_eq!(c.quantile(1.0), 30_000_000);
        assert!(
            c.mean() > 1e6,
            "web search mean is about 1.6 MB: {}",
            c.mean()
        );
        SizeCdf::parse(HADOOP).unwrap();
    }

    #[test]
    fn malformed_cdf_is_rejected_with_line() {
        let err = SizeCdf::parse("0 0\n10 x\n").unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
        assert!(SizeCdf::parse("0 0\n10 50\n5 100\n").is_err());
    }
}
