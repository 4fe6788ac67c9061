//! Make a fresh machine able to build and test steerer; idempotent.
//!
//! Each step checks first and only acts when something is missing, saying
//! what it does. A second run does nothing and takes a few seconds.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context as _, Result};

use crate::cmd::{have, output_ok, status};

/// bpf-linker release known to build against rustc nightly's LLVM here.
const BPF_LINKER_VERSION: &str = "0.13.0";

/// Programs the lab and the tests run, and the Debian package of each.
const PACKAGES: &[(&str, &str)] = &[
    ("ip", "iproute2"),
    ("tc", "iproute2"),
    ("iperf3", "iperf3"),
    ("ping", "iputils-ping"),
    ("nft", "nftables"),
    ("bpftool", "bpftool"),
    ("ethtool", "ethtool"),
    // The lab shoot-out flushes connection tracking between runs.
    ("conntrack", "conntrack"),
    // The systemd unit is checked with `systemd-analyze verify`.
    ("systemd-analyze", "systemd"),
];

pub fn ensure_all() -> Result<()> {
    ensure_path();
    ensure_rust_src()?;
    ensure_bpf_linker()?;
    ensure_packages()?;
    ensure_bpffs()?;
    println!("setup: everything steerer needs is installed");
    Ok(())
}

/// Only what building needs (no root): rust-src and bpf-linker.
pub fn ensure_build_tools() -> Result<()> {
    ensure_path();
    ensure_rust_src()?;
    ensure_bpf_linker()
}

fn cargo_home() -> PathBuf {
    if let Some(h) = std::env::var_os("CARGO_HOME") {
        return PathBuf::from(h);
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    PathBuf::from(home).join(".cargo")
}

/// Cargo-installed tools and the system admin tools must be findable by
/// everything we start (aya-build runs `bpf-linker` by name).
fn ensure_path() {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    let mut changed = false;
    for extra in [cargo_home().join("bin"), "/usr/sbin".into(), "/sbin".into()] {
        if !dirs.contains(&extra) {
            dirs.push(extra);
            changed = true;
        }
    }
    if changed {
        if let Ok(joined) = std::env::join_paths(dirs) {
            // Single-threaded here: nothing else reads the environment yet.
            std::env::set_var("PATH", joined);
        }
    }
}

fn ensure_rust_src() -> Result<()> {
    let toolchains = output_ok(Command::new("rustup").args(["toolchain", "list"]))
        .context("rustup is needed (https://rustup.rs)")?;
    if !toolchains.lines().any(|l| l.starts_with("nightly")) {
        println!("setup: installing the nightly toolchain (the eBPF crate needs it)");
        status(Command::new("rustup").args([
            "toolchain",
            "install",
            "nightly",
            "--profile",
            "minimal",
        ]))?;
    }
    let installed = output_ok(Command::new("rustup").args([
        "component",
        "list",
        "--installed",
        "--toolchain",
        "nightly",
    ]))
    .unwrap_or_default();
    if installed.lines().any(|l| l.trim().starts_with("rust-src")) {
        println!("setup: ok   nightly rust-src");
        return Ok(());
    }
    println!("setup: installing nightly rust-src (needed by -Z build-std=core)");
    status(Command::new("rustup").args(["component", "add", "rust-src", "--toolchain", "nightly"]))
}

fn bpf_linker_works() -> Option<String> {
    output_ok(Command::new("bpf-linker").arg("--version")).map(|s| s.trim().to_string())
}

/// bpf-linker must use the same LLVM as rustc nightly. We link it against
/// nightly's own libLLVM through a prefix folder under the cargo home; the
/// binary's rpath points there, so the folder must outlive the install.
fn ensure_bpf_linker() -> Result<()> {
    if let Some(v) = bpf_linker_works() {
        println!("setup: ok   {v}");
        return Ok(());
    }
    let sysroot =
        output_ok(Command::new("rustup").args(["run", "nightly", "rustc", "--print", "sysroot"]))
            .context("asking nightly rustc for its sysroot")?;
    let verbose = output_ok(Command::new("rustup").args(["run", "nightly", "rustc", "-vV"]))
        .context("asking nightly rustc for its LLVM version")?;
    let major = verbose
        .lines()
        .find_map(|l| l.strip_prefix("LLVM version: "))
        .and_then(|v| v.split('.').next())
        .context("nightly rustc -vV names no LLVM version")?
        .to_string();
    let libdir = Path::new(sysroot.trim()).join("lib");
    let lib = std::fs::read_dir(&libdir)
        .with_context(|| format!("reading {}", libdir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libLLVM") && n.contains(".so"))
        })
        .with_context(|| format!("no libLLVM shared library in {}", libdir.display()))?;
    let prefix = cargo_home().join("bpf-linker-llvm");
    let prefix_lib = prefix.join("lib");
    println!(
        "setup: building bpf-linker {BPF_LINKER_VERSION} against nightly's LLVM {major} ({}), \
         prefix {} (about a minute)",
        lib.display(),
        prefix.display()
    );
    if prefix_lib.exists() {
        std::fs::remove_dir_all(&prefix_lib)
            .with_context(|| format!("clearing {}", prefix_lib.display()))?;
    }
    std::fs::create_dir_all(&prefix_lib)?;
    let file_name = lib.file_name().context("libLLVM file name")?;
    for link in [prefix_lib.join(file_name), prefix_lib.join("libLLVM.so")] {
        std::os::unix::fs::symlink(&lib, &link)
            .with_context(|| format!("linking {}", link.display()))?;
    }
    status(
        Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args([
                "install",
                "bpf-linker",
                "--version",
                BPF_LINKER_VERSION,
                "--locked",
                "--force",
                "--no-default-features",
                "--features",
                &format!("llvm-{major}"),
            ])
            .env("LLVM_PREFIX", &prefix)
            // Build it with the default toolchain, not whatever runs us.
            .env_remove("RUSTUP_TOOLCHAIN"),
    )?;
    match bpf_linker_works() {
        Some(v) => {
            println!("setup: ok   {v}");
            Ok(())
        }
        None => bail!(
            "bpf-linker was installed but `bpf-linker --version` fails; is {} on PATH?",
            cargo_home().join("bin").display()
        ),
    }
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn ensure_packages() -> Result<()> {
    let mut missing: Vec<&str> = PACKAGES
        .iter()
        .filter(|(prog, _)| !have(prog))
        .map(|(_, pkg)| *pkg)
        .collect();
    missing.dedup();
    if missing.is_empty() {
        println!(
            "setup: ok   iproute2 iperf3 iputils-ping nftables bpftool ethtool conntrack systemd"
        );
        return Ok(());
    }
    if !is_root() {
        bail!(
            "missing Debian packages {} and not root: run as root or `apt-get install -y {}`",
            missing.join(" "),
            missing.join(" ")
        );
    }
    if !have("apt-get") {
        bail!(
            "missing {} and this is not a Debian-like system (no apt-get); install them by hand",
            missing.join(" ")
        );
    }
    println!("setup: installing Debian packages: {}", missing.join(" "));
    status(
        Command::new("apt-get")
            .args(["update", "-q"])
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    status(
        Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    let still: Vec<&str> = PACKAGES
        .iter()
        .filter(|(prog, _)| !have(prog))
        .map(|(prog, _)| *prog)
        .collect();
    if !still.is_empty() {
        bail!("after apt-get install, still missing: {}", still.join(" "));
    }
    Ok(())
}

fn bpffs_mounted() -> bool {
    std::fs::read_to_string("/proc/self/mounts")
        .map(|m| {
            m.lines().any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.len() > 2 && f[1] == "/sys/fs/bpf" && f[2] == "bpf"
            })
        })
        .unwrap_or(false)
}

fn ensure_bpffs() -> Result<()> {
    if bpffs_mounted() {
        println!("setup: ok   bpffs at /sys/fs/bpf");
        return Ok(());
    }
    if !is_root() {
        bail!("bpffs is not mounted at /sys/fs/bpf and mounting it needs root");
    }
    println!("setup: mounting bpffs at /sys/fs/bpf (steerer pins its maps there)");
    std::fs::create_dir_all("/sys/fs/bpf").ok();
    status(Command::new("mount").args(["-t", "bpf", "bpf", "/sys/fs/bpf"]))?;
    if !bpffs_mounted() {
        bail!("mount -t bpf succeeded but /sys/fs/bpf is still not bpffs");
    }
    Ok(())
}
