//! The `steerer` binary refuses bad input before touching the kernel.

use std::{
    io::Read as _,
    process::Stdio,
    time::{Duration, Instant},
};

use steerer_lab::{
    check::nothing_attached,
    netns::command_in,
    steerer::{steerer_bin, SteererProcess},
    Lab, LabSpec,
};

/// Run `steerer run` on the lab gateway with `config`; returns (success, stderr).
fn run_with(lab: &Lab, config: &str) -> (bool, String) {
    run_args(lab, config, &[])
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
        (
            // Overflowed to a wrapped tick (release) or panicked (debug).
            "K = 1e11 s",
            good.replacen("tick_secs = 5", "tick_secs = 100000000000", 1),
            "tick_secs",
        ),
        (
            "L shorter than K",
            good.replacen("tick_secs = 5", "tick_secs = 5\nmemory_secs = 2", 1),
            "memory_secs",
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

/// `steerer run` with `extra` arguments, waited for at most 30 s.
fn run_args(lab: &Lab, config: &str, extra: &[&str]) -> (bool, String) {
    let dir = std::env::temp_dir().join(format!("steerer-cli3-{}", lab.prefix));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("steerer.toml");
    std::fs::write(&path, config).unwrap();
    let mut child = command_in(&lab.gw_ns(), steerer_bin().expect("steerer built"))
        .unwrap()
        .args(["run", "--iface", &lab.lan_iface(), "--config"])
        .arg(&path)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("steerer {extra:?} did not exit within 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = std::fs::remove_dir_all(&dir);
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (status.success(), stderr)
}

#[test]
fn a_status_file_in_a_missing_folder_is_rejected_before_attaching() {
    let lab = Lab::build(LabSpec::equal_hops(1)).expect("lab");
    let config = lab.steerer_config(5, &[100.0]);
    let missing = format!("/tmp/steerer-no-such-dir-{}/status.json", lab.prefix);
    let (ok, stderr) = run_args(&lab, &config, &["--status-file", &missing]);
    assert!(!ok, "accepted");
    assert!(
        stderr.contains("--status-file") && stderr.contains("does not exist"),
        "{stderr}"
    );
    nothing_attached(&lab);
}

#[test]
fn a_flow_table_size_out_of_range_is_rejected_before_attaching() {
    let lab = Lab::build(LabSpec::equal_hops(1)).expect("lab");
    let config = lab.steerer_config(5, &[100.0]);
    let (ok, stderr) = run_args(&lab, &config, &["--flow-table-size", "0"]);
    assert!(!ok, "accepted");
    assert!(
        stderr.contains("--flow-table-size") && stderr.contains("1024..=16777216"),
        "{stderr}"
    );
    nothing_attached(&lab);
}

#[test]
fn a_slot_count_that_is_not_prime_is_rounded_up_and_steering_starts() {
    // 1000 = 2^3 x 5^3 hung the table builder before attaching.
    let lab = Lab::build(LabSpec::equal_hops(2)).expect("lab");
    let config = format!(
        "slot_count = 1000\n{}",
        lab.steerer_config(1, &[100.0, 100.0])
    );
    let mut s = SteererProcess::start(&lab, &config, &[], false).expect("steerer starts");
    let status = s.wait_tick(1, Duration::from_secs(10)).expect("a tick");
    assert_eq!(status["slot_count"], 1009, "the next prime");
    assert!(
        s.log().contains("slot_count 1000 is not prime; using 1009"),
        "{}",
        s.log()
    );
    assert!(s.stop().unwrap());
}

#[test]
fn sigterm_during_start_up_leaves_nothing_behind() {
    // hop0's next hop does not answer ARP: start-up waits for it.
    let lab = Lab::build(LabSpec::equal_hops(1)).expect("lab");
    let config = lab
        .steerer_config(5, &[100.0])
        .replace("198.18.1.2", "198.18.1.77");
    let mut child = command_in(&lab.gw_ns(), steerer_bin().expect("steerer built"))
        .unwrap()
        .args(["run", "--iface", &lab.lan_iface(), "--config", "/dev/stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(config.as_bytes())
            .unwrap();
    }
    std::thread::sleep(Duration::from_millis(700));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "SIGTERM ignored during start-up"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("SIGTERM during start-up"), "{stderr}");
    nothing_attached(&lab);
    assert!(!lab.lock_file().exists(), "lock file left");
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

#[test]
fn without_root_or_capabilities_the_error_says_what_is_needed() {
    let lab = Lab::build(LabSpec::equal_hops(1)).expect("lab");
    let dir = std::env::temp_dir().join(format!("steerer-cli-nobody-{}", lab.prefix));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("steerer.toml");
    std::fs::write(&path, lab.steerer_config(5, &[100.0])).unwrap();
    // Enter the gateway's namespace as root, then drop to nobody.
    let out = command_in(&lab.gw_ns(), "setpriv")
        .unwrap()
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(steerer_bin().expect("steerer built"))
        .args(["run", "--iface", &lab.lan_iface(), "--config"])
        .arg(&path)
        .output()
        .expect("setpriv runs");
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "accepted: {stderr}");
    assert!(
        stderr.contains("run it as root") && stderr.contains("CAP_BPF"),
        "{stderr}"
    );
    nothing_attached(&lab);
}

#[test]
fn an_os_error_is_said_once() {
    let lab = Lab::build(LabSpec::equal_hops(1)).expect("lab");
    let missing = format!("/tmp/steerer-{}-no-such.toml", lab.prefix);
    let out = command_in(&lab.gw_ns(), steerer_bin().expect("steerer built"))
        .unwrap()
        .args(["run", "--iface", &lab.lan_iface(), "--config", &missing])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains(&missing), "{stderr}");
    assert_eq!(stderr.matches("os error 2").count(), 1, "{stderr}");
}
