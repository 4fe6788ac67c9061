//! The `[probe]` section's rules.

use super::super::{Config, ProbeKind};

const HOPS: &str = "[[hop]]\nname = \"a\"\ninterface = \"eth1\"\nnext_hop = \"198.18.1.2\"\n\
                    estimated_speed_mbit = 1\nestimated_capacity_mbit = 1\n\
                    [[hop]]\nname = \"m\"\ninterface = \"eth2\"\naction = \"mark\"\nmark = 7\n\
                    estimated_speed_mbit = 1\nestimated_capacity_mbit = 1\n";

fn check(probe: &str) -> Result<Config, String> {
    let c = Config::parse(&format!("{probe}\n{HOPS}")).map_err(|e| e.to_string())?;
    c.validate(&|_| true).map_err(|e| e.to_string())?;
    Ok(c)
}

#[test]
fn probes_are_off_without_the_section_and_on_with_it() {
    let c = check("").unwrap();
    assert!(c.probe.is_none() && c.params(0).probe.is_none());
    let c =
        check("[probe]\ntargets = [\"198.18.9.2\"]\nkind = \"tcp\"\ninterval_secs = 2").unwrap();
    let p = c.probe.as_ref().unwrap();
    assert_eq!((p.kind, p.port()), (ProbeKind::Tcp, 80));
    let params = c.params(0).probe.unwrap();
    assert_eq!(params.interval_ns, 2_000_000_000);
    assert_eq!(params.down_after_rounds, 2);
}

#[test]
fn bad_probe_settings_are_rejected_with_the_field_named() {
    for (probe, field) in [
        ("[probe]\n", "probe.targets: no target"),
        (
            "[probe]\ntargets = [\"198.18.9.2\"]\ninterval_secs = 0",
            "probe.interval_secs",
        ),
        (
            "[probe]\ntargets = [\"198.18.9.2\"]\ntimeout_ms = 6000",
            "probe.timeout_ms",
        ),
        (
            "[probe]\ntargets = [\"198.18.9.2\"]\ndown_after_rounds = 0",
            "probe.down_after_rounds",
        ),
        (
            "[probe]\ntargets = [\"198.18.9.2\"]\nmax_rounds_per_sec = 0",
            "probe.max_rounds_per_sec",
        ),
        // One redirect hop: its probe mark is mark_base; hop m's mark 7 collides.
        (
            "[probe]\ntargets = [\"198.18.9.2\"]\nmark_base = 7",
            "hop[1].mark",
        ),
        (
            "[probe]\ntargets = [\"198.18.9.2\"]\nmark_base = 4294967295",
            "probe.mark_base",
        ),
    ] {
        let err = check(probe).expect_err(probe);
        assert!(err.starts_with(field), "{probe:?}: {err}");
    }
    // A hop's own targets are enough.
    let own = format!(
        "[probe]\n{}",
        HOPS.replacen(
            "[[hop]]\nname = \"a\"",
            "[[hop]]\nname = \"a\"\nprobe_targets = [\"198.18.9.3\"]",
            1
        )
    );
    let c = Config::parse(&own).unwrap();
    c.validate(&|_| true).unwrap();
    let p = c.probe.as_ref().unwrap();
    assert_eq!(
        p.targets_of(&c.hops[0]),
        &["198.18.9.3".parse::<std::net::IpAddr>().unwrap()]
    );
    assert!(p.targets_of(&c.hops[1]).is_empty());
}
