//! One step of the simulation: new connections, data moving, and the
//! timers (SYN retransmissions with the data plane's fast failover, the
//! sender's timeout and retry).

use super::{conn::Conn, policies::Attempt, workload::Arrival, Simulation, SEC};

impl Simulation<'_> {
    /// A new connection arrives (at `now` at the earliest) and makes its
    /// first attempt.
    pub(super) fn arrive(&mut self, a: Arrival, now: u64) {
        let at = a.at_ns.max(now);
        self.conns.push(Conn {
            sender: a.sender,
            destination: a.destination,
            size: a.bytes,
            first_start_ns: at,
            attempts: 0,
            attempt: 0,
            attempt_start_ns: at,
            hop: None,
            received: 0.0,
            wasted: 0.0,
            flowing: false,
            answered: false,
            checkpoint_ns: at,
            checkpoint_bytes: 0.0,
            syn_retries: 0,
            next_syn_ns: 0,
            failovers: 0,
            last_packet_ns: at,
        });
        let i = self.conns.len() - 1;
        self.start_attempt(i, at);
    }

    /// Data moves for one step of `step` ns from `now`: each flowing
    /// connection gets the smaller of its hop's and its destination's
    /// fair share; a finished one completes.
    pub(super) fn move_data(&mut self, now: u64, step: u64) {
        let inter_cap = self.sc.file.intermediary_mbit * 125_000.0;
        let dt = step as f64 / 1e9;
        let end = now + step;
        let mut i = 0;
        while i < self.conns.len() {
            let c = &self.conns[i];
            if c.flowing {
                let h = c.hop.unwrap_or(0) as usize;
                let mut rate = self.capacity[h] / self.hop_active[h].max(1) as f64;
                if inter_cap > 0.0 {
                    let n = self.dest_active.get(&c.destination).copied().unwrap_or(1);
                    rate = rate.min(inter_cap / n.max(1) as f64);
                }
                let need = c.size as f64 - c.received;
                let c = &mut self.conns[i];
                c.last_packet_ns = end;
                c.answered = true;
                if rate * dt >= need {
                    // An attempt begun inside this step moves data from its start.
                    let done = now.max(c.attempt_start_ns) + (need / rate * 1e9) as u64;
                    c.received = c.size as f64;
                    let h = c.hop.unwrap_or(0) as usize;
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
                c.received += rate * dt;
            }
            i += 1;
        }
    }

    /// SYN retransmissions, fast failover, sender timeouts at `now`.
    pub(super) fn timers(&mut self, now: u64) {
        let f = &self.sc.file;
        let timeout = (f.timeout_secs * 1e9) as u64;
        let (timeout_bytes, max_attempts) = (f.timeout_bytes, f.max_attempts);
        let mut i = 0;
        while i < self.conns.len() {
            let c = &self.conns[i];
            if !c.answered && now >= c.next_syn_ns {
                let (failovers, old, d) = (c.failovers, c.hop, c.destination);
                let key = c.key();
                let c = &mut self.conns[i];
                c.syn_retries += 1;
                c.next_syn_ns = now + (SEC << c.syn_retries.min(6));
                c.last_packet_ns = now;
                if let Some(old) = old {
                    let a = Attempt {
                        key: &key,
                        destination: d,
                    };
                    if let Some(new) = self.policy.failover(&a, old, failovers) {
                        self.set_flowing(i, false);
                        let c = &mut self.conns[i];
                        c.hop = Some(new);
                        c.failovers += 1;
                        self.result.failovers += 1;
                        self.take_exclusions();
                        if self.blackholed(new, d) {
                            self.result.note_blackholed_attempt(new, d, now);
                        }
                        self.refresh_flowing(i);
                    }
                }
            }
            let c = &self.conns[i];
            if now >= c.checkpoint_ns + timeout {
                if c.received - c.checkpoint_bytes < timeout_bytes as f64 {
                    self.end_attempt(i, now);
                    if self.conns[i].attempts >= max_attempts {
                        let c = self.conns.swap_remove(i);
                        self.result.gave_up(
                            c.attempts,
                            (c.received + c.wasted) as u64,
                            c.first_start_ns,
                            now,
                        );
                        continue;
                    }
                    self.start_attempt(i, now);
                } else {
                    let c = &mut self.conns[i];
                    c.checkpoint_ns = now;
                    c.checkpoint_bytes = c.received;
                }
            }
            i += 1;
        }
    }
}
