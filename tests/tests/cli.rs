//! The `steerer` binary refuses bad input before touching the kernel.

use std::{
    io::Read as _,
    process::Stdio,
    time::{Duration, Instant},
};

use steerer_lab::{
    netns::command_in,
    steerer::{steerer_bin, SteererProcess},
    Lab, LabSpec,
};

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

/// A second `steerer run` on an interface that one already steers is
/// refused, naming the running one, and changes nothing of it: its
/// programs stay attached, its pins stay, it keeps ticking.
#[test]
fn a_second_steerer_on_the_same_interface_is_refused() {
    let lab = Lab::build(LabSpec::equal_hops(2)).expect("lab");
    let config = lab.steerer_config(1, &[100.0, 100.0]);
    let mut first = SteererProcess::start(&lab, &config, &[], false).expect("first steerer");
    // Spawned, not waited for blindly: a second steerer that is not
    // refused would run until killed.
    let dir = std::env::temp_dir().join(format!("steerer-cli2-{}", lab.prefix));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("second.toml");
    std::fs::write(&path, &config).unwrap();
    let mut second = command_in(&lab.gw_ns(), steerer_bin().expect("steerer built"))
        .unwrap()
        .args(["run", "--iface", &lab.lan_iface(), "--config"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("second steerer starts");
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = second.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = second.kill();
            let _ = second.wait();
            let _ = std::fs::remove_dir_all(&dir);
            panic!(
                "a second steerer on {} was not refused within 15 s",
                lab.lan_iface()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = std::fs::remove_dir_all(&dir);
    let mut stderr = String::new();
    second
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(!status.success(), "second steerer exited with success");
    assert!(
        stderr.contains(&format!("already running on {}", lab.lan_iface())),
        "error does not say what is wrong:\n{stderr}"
    );
    let link = command_in(&lab.gw_ns(), "ip")
        .unwrap()
        .args(["-d", "link", "show", "dev", &lab.lan_iface()])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&link.stdout).contains("xdp"),
        "the first steerer's program was detached"
    );
    assert!(
        lab.pin_dir().exists(),
        "the first steerer's pins were removed"
    );
    let tick = first.status().and_then(|s| s["tick"].as_u64()).unwrap_or(0);
    first
        .wait_tick(tick + 1, Duration::from_secs(10))
        .expect("the first steerer keeps ticking");
    assert!(
        first.stop().expect("stop"),
        "first steerer exited with an error"
    );
}
