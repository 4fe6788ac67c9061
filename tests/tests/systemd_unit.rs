//! The shipped systemd unit (`contrib/steerer@.service`) passes
//! `systemd-analyze verify` with its ExecStart pointed at the steerer this
//! build made (the unit names /usr/local/bin/steerer, which a test machine
//! need not have), and that ExecStart line, run as-is on a lab interface,
//! starts steering (its status file appears where the unit says) and stops
//! cleanly on SIGTERM, as `systemctl stop` sends it.

use std::{
    process::Command,
    time::{Duration, Instant},
};

use nix::{
    sys::signal::{kill, Signal},
    unistd::Pid,
};
use steerer_lab::{netns::command_in, steerer::steerer_bin, Lab, LabSpec};

const UNIT: &str = include_str!("../../contrib/steerer@.service");

fn exec_start() -> String {
    UNIT.lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("an ExecStart line")
        .to_string()
}

#[test]
fn the_unit_passes_systemd_analyze_verify() {
    let bin = steerer_bin().expect("steerer built");
    let dir = std::env::temp_dir().join(format!("steerer-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let unit = UNIT.replace("/usr/local/bin/steerer", &bin.display().to_string());
    let path = dir.join("steerer@lan0.service");
    std::fs::write(&path, unit).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze (Debian package systemd; `cargo xtask setup` installs it)");
    let _ = std::fs::remove_dir_all(&dir);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "systemd-analyze verify:\n{said}");
    // Warnings are printed but do not fail verify: there must be none
    // about this unit.
    assert!(
        !said.contains("steerer@lan0.service"),
        "systemd-analyze verify:\n{said}"
    );
}

#[test]
fn the_units_exec_start_line_run_as_is_steers_and_stops_on_sigterm() {
    let lab = Lab::build(LabSpec::equal_hops(2)).expect("lab");
    let iface = lab.lan_iface();
    // The unit's paths, for this interface (%i), with the config in a
    // folder of the test's own instead of /etc/steerer.
    let dir = std::env::temp_dir().join(format!("steerer-unit-{}", lab.prefix));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join(format!("{iface}.toml"));
    std::fs::write(&config, lab.steerer_config(1, &[100.0; 2])).unwrap();
    let line = exec_start()
        .replace("%i", &iface)
        .replace("/etc/steerer", &dir.display().to_string());
    let mut args = line.split_whitespace();
    assert_eq!(args.next(), Some("/usr/local/bin/steerer"));
    let args: Vec<&str> = args.collect();
    let status = args
        .windows(2)
        .find(|w| w[0] == "--status-file")
        .map(|w| w[1].to_string())
        .expect("the unit writes a status file");
    // systemd creates /run/steerer (RuntimeDirectory=steerer).
    std::fs::create_dir_all("/run/steerer").unwrap();
    let _ = std::fs::remove_file(&status);
    let log = std::fs::File::create(dir.join("log")).unwrap();
    let mut child = command_in(&lab.gw_ns(), steerer_bin().unwrap())
        .unwrap()
        .args(&args)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::path::Path::new(&status).exists() {
        if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
            let _ = std::fs::remove_dir_all(&dir);
            panic!("no status file {status} within 20 s:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let exit = child.wait().unwrap();
    let log = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
    let _ = std::fs::remove_file(&status);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(exit.success(), "{exit}:\n{log}");
    assert!(log.contains("detached"), "{log}");
}
