//! `steerer check` (issue 16): a good configuration is described with the
//! hops' state now and the plan `run` would start with; bad ones, each for
//! its own reason, exit 1 naming the field or the fix; nothing is loaded,
//! attached or pinned by any of them.

use std::process::Output;

use steerer_lab::{check::nothing_attached, netns::command_in, steerer::steerer_bin, Lab, LabSpec};

fn check(lab: &Lab, text: &str, extra: &[&str]) -> Output {
    let dir = std::env::temp_dir().join(format!("steerer-check-{}", lab.prefix));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("steerer.toml");
    std::fs::write(&path, text).unwrap();
    let out = command_in(&lab.gw_ns(), steerer_bin().expect("steerer built"))
        .unwrap()
        .args(["check", "--iface", &lab.lan_iface(), "--config"])
        .arg(&path)
        .args(extra)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    out
}

#[test]
fn check_describes_a_good_configuration_and_its_plan() {
    let lab = Lab::build(LabSpec::equal_hops(3)).expect("lab");
    // hop2's next hop is an address nobody answers for: reported, and the
    // plan leaves it out; hop1 accepts web ports only (a port set).
    let good = lab
        .steerer_config(5, &[100.0, 50.0, 100.0])
        .replacen(
            &format!("next_hop = \"{}\"", lab.hop_next_hop(2)),
            "next_hop = \"198.18.3.9\"",
            1,
        )
        .replacen(
            "name = \"hop1\"",
            "name = \"hop1\"\nexit_policy = \"accept 80,443\"",
            1,
        );
    let out = check(&lab, &good, &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{text}");
    assert!(
        text.contains("good for --iface") && text.contains("3 hops"),
        "{text}"
    );
    let line = |name: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("no line for {name}:\n{text}"))
            .to_string()
    };
    assert!(line("hop0").contains("usable"), "{text}");
    assert!(line("hop1").contains("50 Mbit/s"), "{text}");
    assert!(line("hop2").contains("next hop does not resolve"), "{text}");
    assert!(text.contains("plan at start:"), "{text}");
    // Two port sets: 80 and 443 (hop0 and hop1), every other port (hop0
    // alone, hop2 being unusable).
    let tables: Vec<&str> = text
        .lines()
        .filter(|l| l.trim_start().starts_with("table "))
        .collect();
    assert_eq!(tables.len(), 2, "{text}");
    let web = tables
        .iter()
        .find(|l| l.contains("80") && l.contains("443"))
        .expect("web set");
    assert!(
        web.contains("hop0") && web.contains("hop1") && !web.contains("hop2"),
        "{web}"
    );
    let rest = tables
        .iter()
        .find(|l| !l.contains("443"))
        .expect("the other ports");
    assert!(rest.contains("hop0 100.0%"), "{rest}");
    nothing_attached(&lab);
}

#[test]
fn check_rejects_bad_configurations_each_for_its_reason() {
    let lab = Lab::build(LabSpec::equal_hops(2)).expect("lab");
    let good = lab.steerer_config(5, &[100.0, 100.0]);
    let nh = |i: usize| format!("next_hop = \"{}\"", lab.hop_next_hop(i));
    let cases: Vec<(&str, String, &[&str], &str)> = vec![
        ("not TOML", good.replacen("tick_secs = 5", "tick_secs = = 5", 1), &[], "tick_secs"),
        ("unknown interface", good.replacen(&lab.hop_iface(1), "nosuchif0", 1), &[], "hop[1].interface"),
        ("duplicate hop", good.replacen("name = \"hop1\"", "name = \"hop0\"", 1), &[], "hop[1].name"),
        ("missing field", good.replacen("estimated_capacity_mbit = 100.0\n", "", 1), &[], "estimated_capacity_mbit"),
        ("K = 0", good.replacen("tick_secs = 5", "tick_secs = 0", 1), &[], "tick_secs"),
        ("L shorter than K", good.replacen("tick_secs = 5", "tick_secs = 5\nmemory_secs = 2", 1), &[], "memory_secs"),
        ("max share over 1", format!("max_share = 2\n{good}"), &[], "max_share"),
        (
            "a hop that accepts no port",
            good.replacen("name = \"hop1\"", "name = \"hop1\"\nexit_policy = \"reject 1-65535\"", 1),
            &[],
            "accepts no port",
        ),
        (
            "a mark hop without --attach tc",
            good.replacen(&nh(1), "action = \"mark\"\nmark = 7", 1),
            &[],
            "--attach tc",
        ),
        (
            "a hop on the LAN interface",
            good.replacen(&lab.hop_iface(1), &lab.lan_iface(), 1),
            &[],
            "equals --iface",
        ),
        (
            "no next hop resolves",
            good.replacen(&nh(0), "next_hop = \"198.18.1.9\"", 1)
                .replacen(&nh(1), "next_hop = \"198.18.2.9\"", 1),
            &[],
            "--wait-for-hops",
        ),
        (
            "every hop drained",
            good.replace("name = \"hop", "state = \"drain\"\nname = \"hop"),
            &[],
            "no hop can take new flows",
        ),
        (
            "a probe timeout longer than its interval",
            format!("{good}\n[probe]\ntargets = [\"198.18.9.2\"]\ninterval_secs = 1\ntimeout_ms = 5000\n"),
            &[],
            "timeout_ms",
        ),
    ];
    for (what, config, extra, said) in cases {
        let out = check(&lab, &config, extra);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{what}: exit status {:?}\n{err}",
            out.status
        );
        assert!(
            err.contains(said),
            "{what}: the error does not say {said:?}:\n{err}"
        );
    }
    nothing_attached(&lab);
}

#[test]
fn run_refuses_to_start_without_a_usable_hop_unless_told_to_wait() {
    let lab = Lab::build(LabSpec::equal_hops(2)).expect("lab");
    let nowhere = lab
        .steerer_config(1, &[100.0; 2])
        .replacen(
            &format!("next_hop = \"{}\"", lab.hop_next_hop(0)),
            "next_hop = \"198.18.1.9\"",
            1,
        )
        .replacen(
            &format!("next_hop = \"{}\"", lab.hop_next_hop(1)),
            "next_hop = \"198.18.2.9\"",
            1,
        );
    let dir = std::env::temp_dir().join(format!("steerer-nohop-{}", lab.prefix));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("steerer.toml");
    std::fs::write(&path, &nowhere).unwrap();
    let out = command_in(&lab.gw_ns(), steerer_bin().unwrap())
        .unwrap()
        .args(["run", "--iface", &lab.lan_iface(), "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("no hop can take new flows") && err.contains("--wait-for-hops"),
        "{err}"
    );
    nothing_attached(&lab);
    // Told to wait, it starts, says so, and steers nothing yet.
    let mut s =
        steerer_lab::steerer::SteererProcess::start(&lab, &nowhere, &["--wait-for-hops"], false)
            .expect("starts with --wait-for-hops");
    assert!(
        s.log().contains("new flows pass unsteered until one can"),
        "{}",
        s.log()
    );
    assert!(s.stop().unwrap());
}
