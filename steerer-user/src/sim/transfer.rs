//! Data moving for one step: each flowing connection's rate is the
//! smaller of its hop's share and its destination link's share, and,
//! while it is in slow start, of what its congestion window lets through.
//!
//! A hop's share is one round of water-filling: flows that cannot use the
//! equal share (still in the handshake, or held by their window) take what
//! they can, and the rest of the hop's capacity is split equally among the
//! others. (Exact max-min fairness would iterate; one round is exact
//! unless a window-held flow could use more than the second share.)

use std::f64::consts::LN_2;

use super::{conn::Conn, Scenario, Simulation, MSS};

/// Linux's initial congestion window (RFC 6928): 10 segments.
pub(super) const INITIAL_WINDOW: f64 = 10.0 * MSS;

/// What a flow can use of `[from, from + dt)` by itself: bytes, and the
/// average rate (bytes/s). A flow in slow start doubles its window every
/// round trip: over `dt` it moves window x (2^(dt/rtt) - 1) / ln 2.
fn window_limit(c: &Conn, rtt: f64, dt: f64) -> Option<f64> {
    if !c.cwnd.is_finite() || rtt <= 0.0 || dt <= 0.0 {
        return None;
    }
    let bytes = c.cwnd * ((dt / rtt).exp2() - 1.0) / LN_2;
    Some(bytes / dt)
}

/// Seconds a flow whose rate is `limit`, or its window's growth when
/// that is smaller, needs to move `need` bytes.
fn time_to_move(c: &Conn, rtt: f64, windowed: bool, limit: f64, need: f64) -> f64 {
    if windowed {
        // Invert window x (2^(t/rtt) - 1) / ln 2 = need.
        rtt * (1.0 + need * LN_2 / c.cwnd).log2()
    } else {
        need / limit
    }
}

/// A number in [-1, 1) fixed per (seed, hop), for the hop's RTT spread.
fn spread_of(seed: u64, h: u32) -> f64 {
    let mut z = (seed ^ 0x5254_5453).wrapping_add((h as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
}

/// Every hop's round-trip time (seconds): its base, spread per seed.
pub(super) fn hop_rtts(sc: &Scenario, seed: u64) -> Vec<f64> {
    let spread = sc.file.rtt_spread;
    (0..sc.hop_count())
        .map(|h| sc.hop_rtt[h] * (1.0 + spread * spread_of(seed, h as u32)))
        .collect()
}

impl Simulation<'_> {
    /// The part of `[now, end)` in which connection `c` receives data.
    fn receiving(c: &Conn, now: u64, end: u64) -> Option<(u64, f64)> {
        let from = now.max(c.data_from_ns);
        (c.flowing && from < end).then(|| (from, (end - from) as f64 / 1e9))
    }

    /// What connection `c` on hop `h` would use of the step `[now, end)`
    /// (bytes/s over the whole step) when that is less than the hop's
    /// equal share: in its handshake, starting inside the step, or held by
    /// its window. `None`: it can use an equal share.
    fn held_use(&self, c: &Conn, h: usize, now: u64, end: u64) -> Option<f64> {
        let equal = self.capacity[h] / self.hop_active[h].max(1) as f64;
        let used = match Self::receiving(c, now, end) {
            None => Some(0.0),
            Some((from, dt)) => {
                let whole = (end - now) as f64 / 1e9;
                window_limit(c, self.rtt[h], dt)
                    .map(|r| r * dt / whole)
                    .or_else(|| (from > now).then(|| equal * dt / whole))
            }
        };
        used.filter(|&u| u < equal)
    }

    /// Per hop, the flows that cannot use the equal share and what they
    /// use (the first round of water-filling); each connection remembers
    /// its part for the step (`Conn::held`), as completions within the
    /// step change the equal share.
    fn share_per_hop(&mut self, now: u64, end: u64) {
        for &h in &self.touched {
            self.held[h as usize] = (0.0, 0);
        }
        self.touched.clear();
        for i in 0..self.conns.len() {
            let c = &self.conns[i];
            let h = c.hop.unwrap_or(0) as usize;
            let held = if c.flowing {
                self.held_use(c, h, now, end)
            } else {
                None
            };
            self.conns[i].held = held;
            if let Some(u) = held {
                let e = &mut self.held[h];
                if e.1 == 0 {
                    self.touched.push(h as u32);
                }
                e.0 += u;
                e.1 += 1;
            }
        }
    }

    /// The share of hop `h` a flow gets: the capacity its held flows leave,
    /// split among the others. A held flow (`own`: what it uses) is counted
    /// among the others for its own limit, so that its window, not the
    /// rest of the hop, decides when its slow start ends.
    fn hop_share(&self, h: usize, own: Option<f64>) -> f64 {
        let (mut used, mut n) = self.held[h];
        if let Some(u) = own {
            used = (used - u).max(0.0);
            n = n.saturating_sub(1);
        }
        let rest = self.hop_active[h].saturating_sub(n).max(1);
        (self.capacity[h] - used).max(0.0) / rest as f64
    }

    /// Data moves for one step of `step` ns from `now`; a finished
    /// connection completes.
    pub(super) fn move_data(&mut self, now: u64, step: u64) {
        let inter_cap = self.sc.file.intermediary_mbit * 125_000.0;
        let end = now + step;
        self.share_per_hop(now, end);
        let mut i = 0;
        while i < self.conns.len() {
            let c = &self.conns[i];
            let Some((from, dt)) = Self::receiving(c, now, end) else {
                i += 1;
                continue;
            };
            let h = c.hop.unwrap_or(0) as usize;
            let mut limit = self.hop_share(h, c.held);
            if inter_cap > 0.0 {
                let n = self.dest_active.get(&c.destination).copied().unwrap_or(1);
                limit = limit.min(inter_cap / n.max(1) as f64);
            }
            let rtt = self.rtt[h];
            let window = window_limit(c, rtt, dt);
            let windowed = window.is_some_and(|w| w < limit);
            let rate = window.map_or(limit, |w| w.min(limit));
            let need = c.size as f64 - c.received;
            if rate * dt >= need {
                let done = from + (time_to_move(c, rtt, windowed, limit, need) * 1e9) as u64;
                let done = done.min(end);
                let c = &mut self.conns[i];
                c.last_packet_ns = done;
                c.answered = true;
                c.received = c.size as f64;
                self.result.bytes_per_hop[h] += c.size;
                self.end_attempt(i, done);
                let c = self.conns.swap_remove(i);
                self.result.completed(
                    c.attempts - 1,
                    c.size,
                    c.size + c.wasted as u64,
                    c.first_start_ns,
                    done,
                );
                continue;
            }
            let c = &mut self.conns[i];
            c.last_packet_ns = end;
            c.answered = true;
            c.received += rate * dt;
            if c.cwnd.is_finite() {
                // Slow start ends when the window could carry the share.
                c.cwnd *= (dt / rtt).exp2();
                if !windowed || c.cwnd / rtt >= limit {
                    c.cwnd = f64::INFINITY;
                }
            }
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::spread_of;

    #[test]
    fn the_rtt_spread_is_fixed_per_seed_and_covers_its_range() {
        let u: Vec<f64> = (0..1000).map(|h| spread_of(7, h)).collect();
        assert!(u.iter().all(|x| (-1.0..1.0).contains(x)));
        assert!(u.iter().any(|&x| x < -0.9) && u.iter().any(|&x| x > 0.9));
        let mean = u.iter().sum::<f64>() / u.len() as f64;
        assert!(mean.abs() < 0.1, "mean {mean}");
        assert_eq!(spread_of(7, 3), spread_of(7, 3));
        assert_ne!(spread_of(7, 3), spread_of(8, 3));
    }
}
