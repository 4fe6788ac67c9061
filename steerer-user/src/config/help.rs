//! The configuration keys as `steerer run --help` lists them.

/// The configuration file's keys, for `steerer run --help` (the README's
/// "Configuration" has the same with an example).
pub const CONFIG_KEYS: &str = "\
Configuration file (TOML), top-level keys, with their defaults:
  tick_secs = 5              K: seconds between ticks (1..=3600)
  max_share = 0.7            largest share of new flows one hop takes while 2+ are usable
  max_operator_share = 0.5   the same for the hops of one `operator` tag together
  fail_after_secs = 3        T: a flow without any reply this long has failed (1..=3600)
  failover_block_secs = 20   one fast failover excludes the hop for that destination this long; 0: one of two failures
  memory_secs = 60           L: seconds of history per hop (tick_secs..=86400)
  group_tolerance_ms = 50    M: flows overlapping by less than this are apart (0..=10000)
  window = 4                 N: hops new flows are spread over
  grow_after = 8             R: new connections per tick that give a destination its own window
  grow_by = 2                S: hops added to such a window per R connections
  slot_count                 slots per table; default the smallest prime >= 100 x hops
  link_hold_down_secs = 10   a hop whose link came back waits this long (0..=3600)
  tcp_idle_secs = 1800       an idle TCP flow leaves the flow table (1..=604800)
  udp_idle_secs = 120        the same for UDP and every other protocol
  tcp_closed_secs = 10       a TCP flow seen ending (FIN both ways, RST) leaves after this idle
  hop_directory              a file of more [[hop]] entries, watched while running
  hop_directory_url          http:// or https:// URL polled (ETag) for it; each new version written there
  hop_directory_ca           PEM certificates an https server must chain to; default the web's roots
  hop_directory_poll_secs = 60  seconds between those polls
  new_flows_per_sec          flood guard: new flow-table entries/s; default table size / (2 x tick_secs); 0 none
  metrics_listen             ADDR:PORT of a Prometheus endpoint (GET /metrics); none by default
  fresh_secs = 86400         a hop not seen before, published this recently, is taken first
  bulk_flow_bytes = 1000000  bytes a flow moves in a tick to be bulk: a hop's speed also over bulk flows alone; 0 off
  load_aware = true          shares follow the load: well below capacity new flows go to the fast hops; false: by speed
[probe] (optional; active probes through each hop, off without it):
  targets = [\"198.18.9.2\"]   probed through every hop (shared landmark servers)
  kind = \"icmp\"              or \"tcp\" (connect; SYN-ACK or RST answers) or \"udp\" (echo)
  port                       tcp/udp port; default 80 (tcp), 7 (udp)
  interval_secs = 5          one round through each hop this often
  timeout_ms = 1000          a probe's wait for its answer (<= the interval)
  down_after_rounds = 2      unanswered rounds in a row that take a hop out
  max_rounds_per_sec = 100   rounds started per second over all hops
  mark_base, table_base, rule_priority   redirect hops' probe policy routes
Each [[hop]]:
  name                       unique; a hop is its name (ids and learned state follow it)
  interface                  where it is reached
  next_hop                   its address there (redirect hops; the MAC is resolved)
  action = \"redirect\"        or \"mark\" with `mark = N` (needs --attach tc)
  estimated_speed_mbit       claimed speed, Mbit/s (used until measured)
  estimated_capacity_mbit    claimed capacity, Mbit/s
  exit_policy                \"accept 80,443\" or \"reject 25\"; default every port
  operator, latency_ms       diversity tag; round-trip time in ms (nearer preferred)
  state = \"active\"           or \"drain\" (no new flows) or \"disabled\" (no flows)
  probe_targets              this hop's own probe targets (instead of [probe] targets)
  published                  RFC 3339 time the directory published its data (fresh_secs)
Signals: SIGINT/SIGTERM stop (and detach unless --keep-pins); SIGHUP reloads.";

#[cfg(test)]
mod tests {
    use super::CONFIG_KEYS;
    use crate::config::Config;

    const HOP: &str = "[[hop]]\nname = \"a\"\ninterface = \"eth1\"\nnext_hop = \"198.18.1.2\"\n\
                       estimated_speed_mbit = 1\nestimated_capacity_mbit = 1\n";

    #[test]
    fn the_help_lists_the_defaults_the_config_has() {
        let top = CONFIG_KEYS.split("[probe]").next().unwrap();
        let mut checked = 0;
        for line in top.lines().skip(1) {
            let mut words = line.split_whitespace();
            let (Some(key), Some("="), Some(value)) = (words.next(), words.next(), words.next())
            else {
                continue;
            };
            let with = Config::parse(&format!("{key} = {value}\n{HOP}"))
                .unwrap_or_else(|e| panic!("{key} = {value}: {e}"));
            assert_eq!(
                with,
                Config::parse(HOP).unwrap(),
                "{key}'s default is {value}"
            );
            checked += 1;
        }
        assert!(checked >= 12, "{checked} keys checked");
    }

    #[test]
    fn the_help_lists_the_probe_defaults_the_config_has() {
        let section = CONFIG_KEYS
            .split("[probe]")
            .nth(1)
            .and_then(|s| s.split("Each [[hop]]").next())
            .unwrap();
        let base = "[probe]\ntargets = [\"198.18.9.2\"]\n";
        let mut checked = 0;
        for line in section.lines().skip(2) {
            let mut words = line.split_whitespace();
            let (Some(key), Some("="), Some(value)) = (words.next(), words.next(), words.next())
            else {
                continue;
            };
            let with = Config::parse(&format!("{base}{key} = {value}\n{HOP}"))
                .unwrap_or_else(|e| panic!("{key} = {value}: {e}"));
            assert_eq!(
                with,
                Config::parse(&format!("{base}{HOP}")).unwrap(),
                "{key}'s default is {value}"
            );
            checked += 1;
        }
        assert!(checked >= 5, "{checked} keys checked");
    }
}
