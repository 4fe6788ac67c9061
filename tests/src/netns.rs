//! Running commands and code inside a named network namespace.

use std::{
    fs::File,
    os::unix::process::CommandExt,
    process::{Command, Output},
};

use anyhow::{bail, Context as _, Result};
use nix::sched::{setns, CloneFlags};

/// Run a command to completion; an error carries its stderr.
pub fn run(program: &str, args: &[&str]) -> Result<Output> {
    let out = Command::new(program).args(args).output().with_context(|| {
        format!("cannot start {program} (is it installed? `cargo xtask setup`)")
    })?;
    if !out.status.success() {
        bail!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out)
}

/// Run a command inside namespace `ns` (network namespace only; the mount
/// namespace, hence /sys/fs/bpf, stays the caller's).
pub fn run_in(ns: &str, program: &str, args: &[&str]) -> Result<Output> {
    let out = command_in(ns, program)?
        .args(args)
        .output()
        .with_context(|| format!("cannot start {program} in {ns}"))?;
    if !out.status.success() {
        bail!(
            "`{program} {}` in {ns} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out)
}

fn netns_file(ns: &str) -> Result<File> {
    File::open(format!("/run/netns/{ns}"))
        .with_context(|| format!("network namespace {ns} not found"))
}

/// A `Command` whose child enters network namespace `ns` before exec.
pub fn command_in(ns: &str, program: impl AsRef<std::ffi::OsStr>) -> Result<Command> {
    let file = netns_file(ns)?;
    let mut cmd = Command::new(program);
    // SAFETY: setns is async-signal-safe; the closure only calls it.
    unsafe {
        cmd.pre_exec(move || setns(&file, CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from));
    }
    Ok(cmd)
}

/// Load an nftables `ruleset` (`nft -f -`) in namespace `ns`.
pub fn nft_apply(ns: &str, ruleset: &str) -> Result<()> {
    use std::{io::Write as _, process::Stdio};
    let mut child = command_in(ns, "nft")?
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting nft (install nftables: `cargo xtask setup`)")?;
    child
        .stdin
        .take()
        .context("nft stdin")?
        .write_all(ruleset.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "nft in {ns}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Spawn a thread that runs `f` inside namespace `ns`. Sockets `f` creates
/// belong to that namespace for their whole life.
pub fn spawn_in<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<std::thread::JoinHandle<Result<T>>> {
    let file = netns_file(ns)?;
    let name = ns.to_string();
    Ok(std::thread::spawn(move || {
        setns(&file, CloneFlags::CLONE_NEWNET).with_context(|| format!("setns into {name}"))?;
        Ok(f())
    }))
}

/// Run `f` inside namespace `ns` and wait for it.
pub fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    spawn_in(ns, f)?
        .join()
        .map_err(|_| anyhow::anyhow!("thread in {ns} panicked"))?
}

/// Names of all network namespaces (`ip netns list`).
pub fn list() -> Result<Vec<String>> {
    let out = run("ip", &["netns", "list"])?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect())
}
