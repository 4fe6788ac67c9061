//! SPEC 5.4's fresh directory data.

use super::super::Config;
use std::time::Duration;

fn config(published: Option<&str>) -> Config {
    let p = published.map_or(String::new(), |t| format!("published = \"{t}\"\n"));
    let c = Config::parse(&format!(
        "fresh_secs = 3600\n[[hop]]\nname = \"a\"\ninterface = \"eth1\"\nnext_hop = \"198.18.1.2\"\n\
         estimated_speed_mbit = 1\nestimated_capacity_mbit = 1\n{p}"
    ))
    .unwrap();
    c.validate(&|_| true).unwrap();
    c
}

#[test]
fn fresh_means_not_seen_before_and_published_within_fresh_secs() {
    let now = humantime::parse_rfc3339("2026-12-02T12:00:00Z").unwrap();
    let at = |t: &str| config(Some(t));
    // An hour is the limit here (fresh_secs = 3600).
    let c = at("2026-12-02T11:00:00Z");
    assert!(c.fresh(&c.hops[0], now, false, false), "published 1 h ago");
    assert!(!c.fresh(&c.hops[0], now, true, true), "seen before");
    let c = at("2026-12-02T10:59:59Z");
    assert!(
        !c.fresh(&c.hops[0], now, true, false),
        "published 1 h 1 s ago"
    );
    let c = at("2026-12-02T12:30:00Z");
    assert!(
        c.fresh(&c.hops[0], now, false, false),
        "a clock ahead: recent"
    );
    // No published time: fresh only when a reload adds it.
    let c = config(None);
    assert!(!c.fresh(&c.hops[0], now, false, false));
    assert!(c.fresh(&c.hops[0], now, true, false));
    assert_eq!(c.hops[0].published_at(), None, "no time, no published_at");
    let c = at("2026-12-02T11:00:00Z");
    assert_eq!(
        c.hops[0].published_at(),
        Some(now - Duration::from_secs(3600))
    );
}

#[test]
fn a_published_time_that_does_not_parse_is_rejected() {
    let c = Config::parse(
        "[[hop]]\nname = \"a\"\ninterface = \"eth1\"\nnext_hop = \"198.18.1.2\"\n\
         estimated_speed_mbit = 1\nestimated_capacity_mbit = 1\npublished = \"yesterday\"\n",
    )
    .unwrap();
    let err = c.validate(&|_| true).unwrap_err().to_string();
    assert!(err.starts_with("hop[0].published"), "{err}");
    let c = Config::parse(
        "fresh_secs = 0\n[[hop]]\nname = \"a\"\ninterface = \"eth1\"\nnext_hop = \"198.18.1.2\"\n\
         estimated_speed_mbit = 1\nestimated_capacity_mbit = 1\n",
    )
    .unwrap();
    assert!(c
        .validate(&|_| true)
        .unwrap_err()
        .to_string()
        .starts_with("fresh_secs"));
}
