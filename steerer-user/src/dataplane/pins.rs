//! Where a data plane's pins live and whether they fit this build.
//!
//! Pins are keyed by network namespace and interface:
//! `/sys/fs/bpf/steerer/net<inode>/<iface>/`. The same interface name in
//! two namespaces is two gateways, and a daemon only ever finds the links
//! and maps of its own namespace.
//!
//! `ip netns exec` unshares the mount namespace and mounts a fresh sysfs
//! over /sys, which hides the bpffs at /sys/fs/bpf: a bpffs mounted there
//! anew would be nobody else's and its pins would vanish with the process.
//! [`ensure_bpffs`] finds the bpffs of the namespace the command was
//! started from, through an ancestor process's root, and keeps a
//! descriptor of it open: pins go through `/proc/self/fd/N/steerer/...`
//! into the system's bpffs, where every other tool sees them. (A bind
//! mount of it is refused across mount namespaces.)

use std::{
    os::{fd::IntoRawFd as _, unix::fs::MetadataExt as _},
    path::{Path, PathBuf},
    sync::OnceLock,
};

use aya::maps::MapInfo;
use aya_obj::{maps::PinningType, Object};

use super::{map_names, DataplaneError, PIN_ROOT};

/// This process's network namespace as a name: `net` + the inode of
/// `/proc/self/ns/net` (what `ip netns identify` and `lsns` show).
pub fn netns_id() -> Result<String, DataplaneError> {
    let ino = std::fs::metadata("/proc/self/ns/net")
        .map_err(|source| DataplaneError::Io {
            context: "reading /proc/self/ns/net".into(),
            source,
        })?
        .ino();
    Ok(format!("net{ino}"))
}

/// The bpffs this process pins into (set by [`ensure_bpffs`]).
static BPFFS: OnceLock<PathBuf> = OnceLock::new();

/// steerer's folder in the bpffs: [`PIN_ROOT`], or its equivalent through
/// a descriptor when /sys/fs/bpf is hidden.
pub fn pin_root() -> PathBuf {
    match BPFFS.get() {
        Some(p) => p.join("steerer"),
        None => PathBuf::from(PIN_ROOT),
    }
}

/// Where the data plane of `iface` in this network namespace is pinned.
pub fn pin_dir_for(iface: &str) -> Result<PathBuf, DataplaneError> {
    ensure_bpffs()?;
    Ok(pin_root().join(netns_id()?).join(iface))
}

fn is_bpffs(path: &Path) -> bool {
    nix::sys::statfs::statfs(path)
        .map(|s| s.filesystem_type() == nix::sys::statfs::BPF_FS_MAGIC)
        .unwrap_or(false)
}

fn mount_ns(pid: &str) -> Option<u64> {
    std::fs::metadata(format!("/proc/{pid}/ns/mnt"))
        .ok()
        .map(|m| m.ino())
}

fn parent_of(pid: &str) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1).map(str::to_string)
}

/// Find the bpffs shared with the rest of the system: /sys/fs/bpf, or the
/// one `ip netns exec` hid.
pub fn ensure_bpffs() -> Result<(), DataplaneError> {
    if BPFFS.get().is_some() {
        return Ok(());
    }
    let here = Path::new("/sys/fs/bpf");
    if is_bpffs(here) {
        let _ = BPFFS.set(here.to_path_buf());
        return Ok(());
    }
    let own = mount_ns("self");
    // The nearest ancestor in another mount namespace (the shell that ran
    // `ip netns exec`) whose /sys/fs/bpf is a bpffs.
    let mut pid = parent_of("self");
    while let Some(p) = pid.filter(|p| p != "0") {
        if mount_ns(&p) != own {
            let theirs = PathBuf::from(format!("/proc/{p}/root/sys/fs/bpf"));
            if is_bpffs(&theirs) {
                return hold_bpffs(&theirs);
            }
        }
        pid = parent_of(&p);
    }
    Err(DataplaneError::NoBpffs(
        "bpffs is not mounted at /sys/fs/bpf: mount it with `mount -t bpf bpf /sys/fs/bpf` \
         (or run `cargo xtask setup`); under `ip netns exec`, mount it in the namespace the \
         command is started from, or use `nsenter --net=/run/netns/NAME`"
            .into(),
    ))
}

/// Keep `dir` (the system's bpffs, seen through an ancestor) open for the
/// life of the process and pin through it.
fn hold_bpffs(dir: &Path) -> Result<(), DataplaneError> {
    let file = std::fs::File::open(dir).map_err(|e| {
        DataplaneError::NoBpffs(format!(
            "/sys/fs/bpf is hidden in this mount namespace (`ip netns exec`?) and opening the \
             system's bpffs at {} failed: {e}; use `nsenter --net=/run/netns/NAME` instead",
            dir.display()
        ))
    })?;
    // Never closed: every pin path of this process goes through it.
    let fd = file.into_raw_fd();
    let _ = BPFFS.set(PathBuf::from(format!("/proc/self/fd/{fd}")));
    tracing::info!(
        bpffs = %dir.display(),
        "/sys/fs/bpf is hidden by a private /sys (ip netns exec): pinning into the system's bpffs through a descriptor"
    );
    Ok(())
}

/// Delete a pin directory and everything in it (missing is fine), and its
/// namespace's folder once it holds no data plane.
pub fn remove_pins(dir: &Path) -> Result<(), DataplaneError> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(DataplaneError::Io {
                context: format!("removing {}", dir.display()),
                source,
            })
        }
    }
    let root = pin_root();
    let mut parent = dir.parent();
    while let Some(p) = parent.filter(|p| p.starts_with(&root)) {
        // Fails (and stops) at a folder that still holds something.
        if std::fs::remove_dir(p).is_err() {
            break;
        }
        parent = p.parent();
    }
    Ok(())
}

/// One map whose pin does not have the shape this build's object declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeMismatch {
    pub map: String,
    pub what: &'static str,
    pub pinned: u32,
    pub expected: u32,
}

impl std::fmt::Display for ShapeMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} is {} pinned, {} in this build",
            self.map, self.what, self.pinned, self.expected
        )
    }
}

/// Pinned maps left by an earlier run are reused so established flows keep
/// their hops, but only if this build's programs read them the same way.
/// The loader reuses a pin by name whatever its shape; a map from another
/// build (a longer slot array, a grown value) would either fail the
/// verifier with an opaque log or, worse, be read with the wrong layout.
/// So every map of `object` pinned by name and present in `pin_dir` is
/// compared first. The flow table's size is left out: it may be chosen
/// per run (`--flow-table-size`), and a reused table keeps its own.
pub fn check(object: &[u8], pin_dir: &Path) -> Result<Vec<ShapeMismatch>, String> {
    let object = Object::parse(object).map_err(|e| format!("parsing the eBPF object: {e}"))?;
    let mut names: Vec<&String> = object.maps.keys().collect();
    names.sort();
    let mut out = Vec::new();
    for name in names {
        let map = &object.maps[name];
        if !matches!(map.pinning(), PinningType::ByName) {
            continue;
        }
        let pin = pin_dir.join(name);
        if !pin.exists() {
            continue;
        }
        let info = MapInfo::from_pin(&pin).map_err(|e| format!("{}: {e}", pin.display()))?;
        let mut compare = |what, pinned, expected| {
            if pinned != expected {
                out.push(ShapeMismatch {
                    map: name.clone(),
                    what,
                    pinned,
                    expected,
                });
            }
        };
        compare("key size", info.key_size(), map.key_size());
        compare("value size", info.value_size(), map.value_size());
        if name != map_names::FLOWS {
            compare("entries", info.max_entries(), map.max_entries());
        }
    }
    Ok(out)
}
