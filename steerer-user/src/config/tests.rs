use super::*;
use steerer_common::limits::MAX_SLOT_COUNT;

const GOOD: &str = r#"
tick_secs = 2
[[hop]]
name = "a"
interface = "eth1"
next_hop = "198.18.1.2"
estimated_speed_mbit = 100
estimated_capacity_mbit = 50
[[hop]]
name = "b"
interface = "eth2"
next_hop = "2001:db8:0:2::2"
estimated_speed_mbit = 10
estimated_capacity_mbit = 1000
"#;

fn exists(name: &str) -> bool {
    name.starts_with("eth")
}

fn field_of(err: ConfigError) -> String {
    match err {
        ConfigError::Invalid { field, .. } => field,
        other => panic!("expected a validation error, got {other}"),
    }
}

#[test]
fn good_config_parses_with_defaults() {
    let c = Config::parse(GOOD).unwrap();
    c.validate(&exists).unwrap();
    assert_eq!(c.tick_secs, 2);
    assert_eq!(c.max_share, DEFAULT_MAX_SHARE);
    assert_eq!(c.hops.len(), 2);
    assert_eq!(c.hops[0].initial_estimate_bytes_per_sec(), 50e6 / 8.0);
    assert_eq!(c.effective_slot_count(), (211, None));
    assert_eq!(
        (c.memory_secs, c.group_tolerance_ms),
        (60, 50),
        "SPEC 3: L and M"
    );
}

#[test]
fn zero_tick_is_rejected_naming_the_field() {
    let c = Config::parse(&GOOD.replace("tick_secs = 2", "tick_secs = 0")).unwrap();
    assert_eq!(field_of(c.validate(&exists).unwrap_err()), "tick_secs");
}

#[test]
fn window_parameters_are_validated_naming_the_field() {
    let c = Config::parse(GOOD).unwrap();
    assert_eq!(
        (c.window, c.grow_after, c.grow_by),
        (4, 8, 2),
        "SPEC 3 defaults"
    );
    for (line, field) in [
        ("window = 0", "window"),
        ("grow_after = 0", "grow_after"),
        ("max_operator_share = 1.5", "max_operator_share"),
    ] {
        let c = Config::parse(&format!("{line}\n{GOOD}")).unwrap();
        assert_eq!(field_of(c.validate(&exists).unwrap_err()), field, "{line}");
    }
    let c = Config::parse(&format!("window = 2\ngrow_by = 3\n{GOOD}")).unwrap();
    c.validate(&exists).unwrap();
}

#[test]
fn unknown_interface_is_rejected_naming_the_hop() {
    let c = Config::parse(&GOOD.replace("\"eth2\"", "\"nope0\"")).unwrap();
    let err = c.validate(&exists).unwrap_err();
    assert!(err.to_string().contains("nope0"), "{err}");
    assert_eq!(field_of(err), "hop[1].interface");
}

#[test]
fn duplicate_hop_is_rejected() {
    let c = Config::parse(&GOOD.replace("name = \"b\"", "name = \"a\"")).unwrap();
    assert_eq!(field_of(c.validate(&exists).unwrap_err()), "hop[1].name");
}

#[test]
fn missing_field_is_named_by_the_parser() {
    let err = Config::parse(&GOOD.replace("estimated_speed_mbit = 100\n", "")).unwrap_err();
    assert!(err.to_string().contains("estimated_speed_mbit"), "{err}");
}

#[test]
fn unknown_field_is_rejected() {
    let err = Config::parse(&format!("tick = 3\n{GOOD}")).unwrap_err();
    assert!(err.to_string().contains("tick"), "{err}");
}

#[test]
fn non_positive_speed_is_rejected() {
    let c = Config::parse(&GOOD.replace("= 10\n", "= -1\n")).unwrap();
    assert_eq!(
        field_of(c.validate(&exists).unwrap_err()),
        "hop[1].estimated_speed_mbit"
    );
}

#[test]
fn next_prime_is_prime_and_not_smaller() {
    assert_eq!(next_prime(300), 307);
    assert_eq!(next_prime(25600), 25601);
    assert_eq!(next_prime(2), 2);
}

#[test]
fn mark_hops_need_a_mark_and_tc_redirect_hops_a_next_hop() {
    let mark = GOOD.replacen(
        "next_hop = \"2001:db8:0:2::2\"",
        "action = \"mark\"\nmark = 16",
        1,
    );
    let c = Config::parse(&mark).unwrap();
    c.validate(&exists).unwrap();
    assert_eq!(c.hops[1].action, HopAction::Mark);
    assert_eq!(
        field_of(c.check_attach(false).unwrap_err()),
        "hop[1].action"
    );
    c.check_attach(true).unwrap();

    let no_mark = GOOD.replacen("next_hop = \"2001:db8:0:2::2\"", "action = \"mark\"", 1);
    let err = Config::parse(&no_mark)
        .unwrap()
        .validate(&exists)
        .unwrap_err();
    assert_eq!(field_of(err), "hop[1].mark");

    let no_next_hop = GOOD.replacen("next_hop = \"198.18.1.2\"\n", "", 1);
    let err = Config::parse(&no_next_hop)
        .unwrap()
        .validate(&exists)
        .unwrap_err();
    assert_eq!(field_of(err), "hop[0].next_hop");

    let bad_action = GOOD.replacen("next_hop = \"198.18.1.2\"", "action = \"tunnel\"", 1);
    assert!(matches!(
        Config::parse(&bad_action),
        Err(ConfigError::Parse { .. })
    ));
}

#[test]
fn exit_policies_are_checked_and_default_to_everything() {
    let c = Config::parse(&GOOD.replacen(
        "estimated_speed_mbit = 100",
        "exit_policy = \"accept 80,443\"\nestimated_speed_mbit = 100",
        1,
    ))
    .unwrap();
    c.validate(&exists).unwrap();
    assert_eq!(c.hops[0].accepted_ports().len(), 2);
    assert_eq!(c.hops[1].accepted_ports().len(), 65535);
    let bad = Config::parse(&GOOD.replacen(
        "estimated_speed_mbit = 100",
        "exit_policy = \"accept 443-80\"\nestimated_speed_mbit = 100",
        1,
    ))
    .unwrap();
    assert_eq!(
        field_of(bad.validate(&exists).unwrap_err()),
        "hop[0].exit_policy"
    );
    // A policy that accepts nothing is no hop at all.
    let none = Config::parse(&GOOD.replacen(
        "estimated_speed_mbit = 100",
        "exit_policy = \"reject 1-65535\"\nestimated_speed_mbit = 100",
        1,
    ))
    .unwrap();
    let e = none.validate(&exists).unwrap_err();
    assert!(e.to_string().contains("accepts no port"), "{e}");
    assert_eq!(field_of(e), "hop[0].exit_policy");
}

#[test]
fn a_slot_count_that_is_not_prime_is_rounded_up_with_a_note() {
    let c = Config::parse(&format!("slot_count = 1000\n{GOOD}")).unwrap();
    c.validate(&exists).unwrap();
    let (slots, note) = c.effective_slot_count();
    assert_eq!(slots, 1009, "the next prime after 1000");
    assert!(note.unwrap().contains("1000 is not prime; using 1009"));
    let c = Config::parse(&format!("slot_count = 1009\n{GOOD}")).unwrap();
    assert_eq!(c.effective_slot_count(), (1009, None), "a prime stays");
    assert_eq!(c.params(0).slot_count, 1009);
}

#[test]
fn durations_are_bounded_so_no_product_overflows() {
    for (line, field) in [
        ("tick_secs = 100000000000", "tick_secs"),
        ("tick_secs = 3601", "tick_secs"),
        ("fail_after_secs = 9223372036854775807", "fail_after_secs"),
        ("memory_secs = 1", "memory_secs"),
        ("memory_secs = 86401", "memory_secs"),
        ("group_tolerance_ms = 10001", "group_tolerance_ms"),
    ] {
        let text = GOOD.replace("tick_secs = 2\n", &format!("tick_secs = 2\n{line}\n"));
        let text = if line.starts_with("tick_secs") {
            GOOD.replace("tick_secs = 2", line)
        } else {
            text
        };
        let c = Config::parse(&text).unwrap();
        assert_eq!(field_of(c.validate(&exists).unwrap_err()), field, "{line}");
    }
    // At the bounds every nanosecond figure is exact.
    let c = Config::parse(&GOOD.replace(
        "tick_secs = 2",
        "tick_secs = 3600\nfail_after_secs = 3600\nmemory_secs = 86400\ngroup_tolerance_ms = 10000",
    ))
    .unwrap();
    c.validate(&exists).unwrap();
    let p = c.params(7);
    assert_eq!(p.tick_ns, 3_600_000_000_000);
    assert_eq!(p.memory_ns, 86_400_000_000_000);
    assert_eq!(p.group_tolerance_ns, 10_000_000_000);
}

#[test]
fn a_hop_name_longer_than_the_pinned_name_map_holds_is_rejected() {
    let long = "x".repeat(64);
    let c = Config::parse(&GOOD.replace("name = \"a\"", &format!("name = \"{long}\""))).unwrap();
    assert_eq!(field_of(c.validate(&exists).unwrap_err()), "hop[0].name");
}

#[test]
fn hold_down_and_idle_timeouts_have_defaults_and_bounds() {
    let c = Config::parse(GOOD).unwrap();
    assert_eq!(
        (c.link_hold_down_secs, c.tcp_idle_secs, c.udp_idle_secs),
        (10, 1800, 120)
    );
    let p = c.params(0);
    assert_eq!(
        (p.idle_tcp_ns, p.idle_other_ns),
        (1800 * 1_000_000_000, 120 * 1_000_000_000)
    );
    for (line, field) in [
        ("tcp_idle_secs = 0", "tcp_idle_secs"),
        ("udp_idle_secs = 604801", "udp_idle_secs"),
        ("link_hold_down_secs = 3601", "link_hold_down_secs"),
    ] {
        let c = Config::parse(&GOOD.replace("tick_secs = 2", &format!("tick_secs = 2\n{line}")))
            .unwrap();
        assert_eq!(field_of(c.validate(&exists).unwrap_err()), field, "{line}");
    }
}

#[test]
fn a_pool_larger_than_the_hop_ids_is_valid_and_its_tables_fit_the_data_plane() {
    let mut text = String::from("tick_secs = 2\n");
    for i in 0..2000 {
        text.push_str(&format!(
            "[[hop]]\nname = \"h{i}\"\ninterface = \"eth1\"\nnext_hop = \"198.18.1.2\"\n\
             estimated_speed_mbit = 10\nestimated_capacity_mbit = 10\n"
        ));
    }
    let c = Config::parse(&text).unwrap();
    c.validate(&exists).unwrap();
    // 100 slots for each of the 1,024 hops a table can name: more than the
    // largest table, so the largest (a prime).
    assert_eq!(c.effective_slot_count(), (MAX_SLOT_COUNT, None));
}

#[test]
fn a_polled_directory_needs_its_file_and_an_http_or_https_url() {
    let with = |keys: &str| {
        let c = Config::parse(&format!(
            "{keys}\n{}",
            GOOD.trim_start_matches("\ntick_secs = 2\n")
        ))
        .unwrap();
        c.validate(&exists).map_err(field_of)
    };
    assert_eq!(
        with("hop_directory_url = \"http://198.18.0.1:8470/hops\""),
        Err("hop_directory_url".to_string())
    );
    assert!(
        with("hop_directory = \"d.toml\"\nhop_directory_url = \"https://198.18.0.1/hops\"\nhop_directory_ca = \"ca.pem\"").is_ok()
    );
    assert_eq!(
        with("hop_directory = \"d.toml\"\nhop_directory_url = \"ftp://198.18.0.1/hops\""),
        Err("hop_directory_url".to_string())
    );
    assert_eq!(
        with("hop_directory = \"d.toml\"\nhop_directory_url = \"http://198.18.0.1/hops\"\nhop_directory_ca = \"ca.pem\""),
        Err("hop_directory_ca".to_string())
    );
    assert_eq!(
        with("hop_directory = \"d.toml\"\nhop_directory_url = \"http://198.18.0.1/h\"\nhop_directory_poll_secs = 0"),
        Err("hop_directory_poll_secs".to_string())
    );
    assert!(
        with("hop_directory = \"d.toml\"\nhop_directory_url = \"http://198.18.0.1/h\"").is_ok()
    );
}

mod probe_section;

#[test]
fn the_readme_configuration_example_is_a_valid_configuration() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    let section = readme.split("## Configuration").nth(1).expect("section");
    let block = section
        .split("```toml")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("toml block");
    let c = Config::parse(block).unwrap_or_else(|e| panic!("README example: {e}"));
    c.validate(&|_| true)
        .unwrap_or_else(|e| panic!("README example: {e}"));
    assert_eq!(c.hops.len(), 3);
    let p = c.probe.expect("the example shows [probe]");
    assert_eq!(p.targets.len(), 2);
}

#[test]
fn the_shipped_example_configuration_is_valid() {
    let text = include_str!("../../../contrib/steerer.toml");
    let c = Config::parse(text).unwrap_or_else(|e| panic!("contrib/steerer.toml: {e}"));
    c.validate(&|_| true)
        .unwrap_or_else(|e| panic!("contrib/steerer.toml: {e}"));
    let names: Vec<&str> = c.hops.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["fiber", "lte", "vpn"]);
    assert!(c.metrics_listen.is_some() && c.probe.is_some());
    // The mark hop needs the TC program, as its comment says.
    assert!(c.check_attach(false).is_err());
    c.check_attach(true).expect("with --attach tc");
}

mod freshness;
