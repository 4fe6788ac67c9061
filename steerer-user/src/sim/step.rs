//! One step of the simulation: new connections and the
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
            data_from_ns: at,
            cwnd: f64::INFINITY,
            held: None,
        });
        let i = self.conns.len() - 1;
        self.start_attempt(i, at);
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
                        // The retransmitted SYN goes out through the new hop.
                        self.connect(i, now);
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
