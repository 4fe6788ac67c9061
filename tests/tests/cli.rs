//! The `steerer` binary refuses bad input before touching the kernel.

use steerer_lab::{netns::command_in, steerer::steerer_bin, Lab, LabSpec};

/// Run `steerer run` on the lab gateway with `config`; returns (success, stderr).
fn run_with(lab: &Lab, config: &str) -> (bool, String) {
    let dir = std::env::temp_dir().join(format!("steerer-cli-{}", lab.prefix));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.toml");
    std::fs::write(&path, config).unwrap();
    let out = command_in(&lab.gw_ns(), steerer_bin().expect("steerer built"))
        .unwrap()
        .args(["run", "--iface", &lab.lan_iface(), "--config"])
        .arg(&path)
        .output()
        .expect("steerer runs");
    let _ = std::fs::remove_dir_all(&dir);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn nothing_attached(lab: &Lab) {
    let link = command_in(&lab.gw_ns(), "ip")
        .unwrap()
        .args(["-d", "link", "show", "dev", &lab.lan_iface()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&link.stdout);
    assert!(
        !text.contains("xdp"),
        "XDP attached after a rejected config:\n{text}"
    );
    assert!(
        !lab.pin_dir().exists(),
        "pins created after a rejected config"
    );
}

#[test]
fn bad_configs_are_rejected_naming_the_field_before_attaching() {
    let lab = Lab::build(LabSpec::equal_hops(2)).expect("lab");
    let good = lab.steerer_config(5, &[100.0, 100.0]);
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "unknown interface",
            good.replacen(&lab.hop_iface(1), "nosuchif0", 1),
            "hop[1].interface",
        ),
        (
            "duplicate hop",
            good.replacen("name = \"hop1\"", "name = \"hop0\"", 1),
            "hop[1].name",
        ),
        (
            "missing field",
            good.replacen("estimated_capacity_mbit = 100.0\n", "", 1),
            "estimated_capacity_mbit",
        ),
        (
            "K = 0",
            good.replacen("tick_secs = 5", "tick_secs = 0", 1),
            "tick_secs",
        ),
    ];
    for (what, config, field) in cases {
        let (ok, stderr) = run_with(&lab, &config);
        assert!(!ok, "{what}: accepted");
        assert!(
            stderr.contains(field),
            "{what}: error does not name {field}:\n{stderr}"
        );
        nothing_attached(&lab);
    }
}

#[test]
fn unknown_lan_interface_is_rejected() {
    let lab = Lab::build(LabSpec::equal_hops(1)).expect("lab");
    let out = command_in(&lab.gw_ns(), steerer_bin().expect("steerer built"))
        .unwrap()
        .args(["run", "--iface", "nosuchlan0", "--config", "/dev/null"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("nosuchlan0"), "{stderr}");
}
