//! The senders' workload: Poisson arrivals, Zipf-popular destinations and
//! flow sizes drawn from a published CDF. Its random stream is its own, so
//! every policy of a comparison faces the very same connections.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp, Zipf};

pub use super::flow_size::FlowSizeCdf;

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
