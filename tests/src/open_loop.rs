//! An open-loop workload: requests arrive at seeded Poisson times whatever
//! the gateway does, each on a thread of its own.
//!
//! Why: in a closed loop (a worker starts its next request when the last
//! one ends) a policy that completes more requests also offers more load,
//! so its requests meet fuller queues, and a policy whose workers sit out
//! 4 s timeouts on blackholed attempts offers less; mean completion times
//! of two policies are then measured at different loads. With open-loop
//! arrivals every contender gets the same requests at the same times.

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use anyhow::Result;
use rand::{rngs::StdRng, Rng, SeedableRng};

use crate::{
    netns,
    traffic::{request, ConnResult, Progress, Workload},
};

/// Requests in flight at most; an arrival beyond it waits (and is counted
/// late), so a gateway that stalls cannot make the client spawn without
/// bound.
const MAX_IN_FLIGHT: usize = 512;

/// An arrival dispatched later than this after its time counts as late.
const LATE: Duration = Duration::from_millis(100);

/// One request of the schedule: when, how large, to where.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Arrival {
    pub at: Duration,
    pub size: u64,
    pub target: usize,
}

/// The seeded schedule of `w` at `rate` requests per second over
/// `duration`: exponential gaps, sizes and targets from one generator, so
/// every contender of a round gets the same requests.
pub fn schedule(w: &Workload, rate: f64, duration: Duration) -> Vec<Arrival> {
    let mut rng = StdRng::seed_from_u64(w.seed);
    let mut at = 0.0f64;
    let mut out = Vec::new();
    loop {
        // Inverse transform of the exponential distribution; 1 - u is in
        // (0, 1], so the logarithm is finite.
        let u: f64 = rng.gen();
        at += -(1.0 - u).ln() / rate;
        if at >= duration.as_secs_f64() {
            return out;
        }
        out.push(Arrival {
            at: Duration::from_secs_f64(at),
            size: w.sizes.sample(&mut rng),
            target: rng.gen_range(0..w.targets.len()),
        });
    }
}

/// Run the open-loop workload from namespace `ns`; returns when every
/// request has ended (arrivals stop after `w.duration`).
pub(crate) fn run(
    ns: &str,
    w: &Workload,
    rate: f64,
    progress: Arc<Progress>,
) -> Result<Vec<ConnResult>> {
    anyhow::ensure!(rate > 0.0, "arrival rate must be positive, not {rate}");
    let duration = w.duration.unwrap_or(Duration::from_secs(60));
    let plan = schedule(w, rate, duration);
    let in_flight = Arc::new(AtomicUsize::new(0));
    let mut late = 0usize;
    let mut handles = Vec::with_capacity(plan.len());
    let started = Instant::now();
    for (n, arrival) in plan.iter().enumerate() {
        if progress.stop.load(Ordering::Relaxed) {
            break;
        }
        if let Some(wait) = arrival.at.checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
        while in_flight.load(Ordering::Acquire) >= MAX_IN_FLIGHT {
            std::thread::sleep(Duration::from_millis(1));
        }
        if started.elapsed() > arrival.at + LATE {
            late += 1;
        }
        in_flight.fetch_add(1, Ordering::AcqRel);
        let (w, progress, in_flight) = (w.clone(), progress.clone(), in_flight.clone());
        let target = w.targets[arrival.target];
        let size = arrival.size;
        handles.push(netns::spawn_in(ns, move || {
            request(target, size, n as u64, &w, &progress);
            in_flight.fetch_sub(1, Ordering::AcqRel);
        })?);
    }
    for h in handles {
        h.join()
            .map_err(|_| anyhow::anyhow!("request thread panicked"))??;
    }
    if late > 0 {
        eprintln!(
            "  open loop: {late} of {} arrivals started over {} ms late (client overloaded or {MAX_IN_FLIGHT} in flight)",
            plan.len(),
            LATE.as_millis()
        );
    }
    progress.collected()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traffic::Sizes;

    fn workload(seed: u64) -> Workload {
        let mut w = Workload::fixed(
            vec![
                "198.19.0.2:5001".parse().unwrap(),
                "198.19.0.3:5001".parse().unwrap(),
            ],
            0,
            1,
            1000,
        );
        w.sizes = Sizes::Mix(vec![(10, 0.5), (20, 0.5)]);
        w.seed = seed;
        w
    }

    #[test]
    fn the_schedule_is_the_seeds_and_has_the_rate() {
        let d = Duration::from_secs(1000);
        let a = schedule(&workload(7), 20.0, d);
        assert_eq!(
            a,
            schedule(&workload(7), 20.0, d),
            "same seed, same requests"
        );
        assert_ne!(a, schedule(&workload(8), 20.0, d));
        // Poisson count over 1000 s at 20/s: mean 20,000, sd ~141; 5 sd.
        assert!(
            (a.len() as f64 - 20_000.0).abs() < 710.0,
            "{} arrivals",
            a.len()
        );
        assert!(a.windows(2).all(|p| p[0].at <= p[1].at));
        assert!(a
            .iter()
            .all(|r| r.at < d && r.target < 2 && (r.size == 10 || r.size == 20)));
        // Exponential gaps: the share of gaps over the mean is e^-1.
        let over = a
            .windows(2)
            .filter(|p| (p[1].at - p[0].at).as_secs_f64() > 0.05)
            .count();
        let share = over as f64 / (a.len() - 1) as f64;
        assert!(
            (share - (-1.0f64).exp()).abs() < 0.02,
            "share of long gaps {share}"
        );
    }
}
