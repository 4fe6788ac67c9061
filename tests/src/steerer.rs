//! Running the `steerer` binary on a lab's gateway.

use std::{
    path::PathBuf,
    process::{Child, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};
use nix::{
    sys::signal::{kill, Signal},
    unistd::Pid,
};

use crate::{lab::Lab, netns::command_in};

/// Path of the steerer binary: `$STEERER_BIN`, else `target/debug/steerer`
/// next to this workspace. Fails clearly when it was not built.
pub fn steerer_bin() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("STEERER_BIN") {
        let p = PathBuf::from(p);
        if p.exists() {
            return Ok(p);
        }
        bail!("STEERER_BIN={} does not exist", p.display());
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(|p| p.to_path_buf())
        .context("workspace root")?;
    let p = root.join("target/debug/steerer");
    if p.exists() {
        Ok(p)
    } else {
        bail!(
            "steerer binary not found at {}; build it with `cargo build -p steerer-user` \
             or run `cargo xtask test`, or set STEERER_BIN",
            p.display()
        )
    }
}

/// A `steerer run` process on the lab gateway. Dropping it stops it
/// (SIGTERM, then SIGKILL) and removes its pins.
pub struct SteererProcess {
    pub child: Option<Child>,
    pub config_path: PathBuf,
    pub status_path: PathBuf,
    pub pin_dir: PathBuf,
    pub log_path: PathBuf,
    pub lock_path: PathBuf,
    /// Remove the pins on drop (off after `kill_leaving_pins`, when a
    /// successor process owns them).
    remove_pins_on_drop: bool,
}

impl SteererProcess {
    /// Write `config`, start `steerer run` in the gateway namespace and wait
    /// until it reports that it is steering (programs attached).
    pub fn start(
        lab: &Lab,
        config: &str,
        extra_args: &[&str],
        inherit_stdout: bool,
    ) -> Result<Self> {
        Self::spawn(lab, config, extra_args, inherit_stdout, false)
    }

    /// As `start`, through `ip netns exec` (which gives the process a
    /// private /sys, hiding /sys/fs/bpf) instead of entering only the
    /// network namespace.
    pub fn start_via_ip_netns_exec(lab: &Lab, config: &str, extra_args: &[&str]) -> Result<Self> {
        Self::spawn(lab, config, extra_args, false, true)
    }

    fn spawn(
        lab: &Lab,
        config: &str,
        extra_args: &[&str],
        inherit_stdout: bool,
        via_ip: bool,
    ) -> Result<Self> {
        let dir = std::env::temp_dir().join(format!("steerer-{}", lab.prefix));
        std::fs::create_dir_all(&dir)?;
        crate::live::add_folder(&dir);
        let config_path = dir.join("steerer.toml");
        std::fs::write(&config_path, config)?;
        let status_path = dir.join("status.json");
        let log_path = dir.join("steerer.log");
        let log = std::fs::File::create(&log_path)?;
        let mut cmd = if via_ip {
            let mut c = std::process::Command::new("ip");
            c.args(["netns", "exec", &lab.gw_ns()]).arg(steerer_bin()?);
            c
        } else {
            command_in(&lab.gw_ns(), steerer_bin()?)?
        };
        cmd.args(["run", "--iface", &lab.lan_iface(), "--config"])
            .arg(&config_path)
            .arg("--status-file")
            .arg(&status_path)
            .args(extra_args)
            .stderr(log.try_clone()?);
        if inherit_stdout {
            cmd.stdout(Stdio::inherit());
        } else {
            cmd.stdout(log);
        }
        let child = cmd.spawn().context("starting steerer")?;
        let mut p = SteererProcess {
            child: Some(child),
            config_path,
            status_path,
            pin_dir: lab.pin_dir(),
            log_path,
            lock_path: lab.lock_file(),
            remove_pins_on_drop: true,
        };
        p.wait_attached(Duration::from_secs(20))?;
        Ok(p)
    }

    /// Wait until steerer logged that it is steering.
    pub fn wait_attached(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let log = std::fs::read_to_string(&self.log_path).unwrap_or_default();
            if log.contains("steering") {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    bail!("steerer exited with {status} before attaching:\n{log}");
                }
            }
            if Instant::now() >= deadline {
                bail!("steerer did not attach within {timeout:?}:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The latest tick status (JSON) if one was written.
    pub fn status(&self) -> Option<serde_json::Value> {
        let text = std::fs::read_to_string(&self.status_path).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Wait until the status file reports tick `n` or later.
    pub fn wait_tick(&self, n: u64, timeout: Duration) -> Result<serde_json::Value> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.status() {
                if s["tick"].as_u64().is_some_and(|t| t >= n) {
                    return Ok(s);
                }
            }
            if Instant::now() >= deadline {
                bail!("no tick {n} within {timeout:?}; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILL, as a crash would: nothing of steerer's own clean-up runs.
    /// The pins (and with them the attached programs) stay for a successor;
    /// dropping this value no longer removes them.
    pub fn kill_leaving_pins(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().context("SIGKILL steerer")?;
            child.wait()?;
        }
        self.remove_pins_on_drop = false;
        Ok(())
    }

    /// Write `config` over the running one and send SIGHUP (a reload).
    pub fn reload(&self, config: &str) -> Result<()> {
        std::fs::write(&self.config_path, config)
            .with_context(|| format!("writing {}", self.config_path.display()))?;
        let child = self.child.as_ref().context("steerer is not running")?;
        kill(Pid::from_raw(child.id() as i32), Signal::SIGHUP).context("SIGHUP steerer")?;
        Ok(())
    }

    /// Wait until the log holds `text` `n` times or more.
    pub fn wait_log(&self, text: &str, n: usize, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        while self.log().matches(text).count() < n {
            if Instant::now() >= deadline {
                bail!(
                    "no {text:?} x{n} in the log within {timeout:?}:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// SIGTERM and wait; returns the exit status success.
    /// The running steerer's process id (0 once stopped).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, |c| c.id())
    }

    pub fn stop(&mut self) -> Result<bool> {
        let Some(mut child) = self.child.take() else {
            return Ok(true);
        };
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status.success());
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("steerer ignored SIGTERM for 10 s; killed");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for SteererProcess {
    fn drop(&mut self) {
        let _ = self.stop();
        if !self.remove_pins_on_drop {
            return;
        }
        // Removing the link pins detaches the programs.
        let _ = std::fs::remove_dir_all(&self.pin_dir);
        // The namespace's folder and the shared root go too once no data
        // plane is left in them.
        let mut parent = self.pin_dir.parent();
        while let Some(p) = parent.filter(|p| p.starts_with("/sys/fs/bpf/steerer")) {
            if std::fs::remove_dir(p).is_err() {
                break;
            }
            parent = p.parent();
        }
        if let Some(dir) = self.config_path.parent() {
            let _ = std::fs::remove_dir_all(dir);
            crate::live::forget_folder(dir);
        }
        // steerer removes its instance lock on a clean exit; not after a
        // kill (steerer-user's `instance_lock::LOCK_DIR`).
        let _ = std::fs::remove_file(&self.lock_path);
        // And its status file (`steerer status`), also left by a kill.
        let _ = std::fs::remove_file(self.lock_path.with_extension("status.json"));
        let _ = std::fs::remove_dir("/run/steerer");
    }
}

/// Removes the `steerer hop` override file of a lab's interface when
/// dropped (`/run/steerer/net<inode>-<iface>.hops.toml`).
pub struct HopOverrideFile(pub String);

impl HopOverrideFile {
    pub fn of(lab: &Lab) -> Self {
        HopOverrideFile(format!("-{}.hops.toml", lab.lan_iface()))
    }
}

impl Drop for HopOverrideFile {
    fn drop(&mut self) {
        if let Ok(dir) = std::fs::read_dir("/run/steerer") {
            for e in dir.flatten() {
                if e.file_name().to_string_lossy().ends_with(&self.0) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }
}
