//! One `steerer run` per (network namespace, interface). A second daemon
//! on the same interface would load programs over the first one's, rewrite
//! its pinned maps and, on exit, remove pins the first still uses. An
//! advisory lock on a file named after the namespace and the interface
//! keeps the second one out before it touches the kernel; the same name in
//! another namespace is another interface. The kernel drops the lock when
//! the holder dies, also by SIGKILL, so a restart after a crash is never
//! refused.

use std::{
    fs::{File, OpenOptions},
    io::{Read as _, Seek as _, SeekFrom, Write as _},
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
};

use nix::{
    errno::Errno,
    fcntl::{Flock, FlockArg},
};

/// Where the daemon keeps its lock files.
pub const LOCK_DIR: &str = "/run/steerer";

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another steerer is already running on {iface} in network namespace {netns} \
         ({holder}; lock {path}): stop it first, or pick another --iface"
    )]
    Held {
        iface: String,
        netns: String,
        holder: String,
        path: PathBuf,
    },
    #[error("lock file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Held for as long as the daemon runs; dropping it removes the file and
/// releases the lock.
#[derive(Debug)]
pub struct InstanceLock {
    _file: Flock<File>,
    path: PathBuf,
}

impl Drop for InstanceLock {
    fn drop(&mut self) {
        // Removed while still locked, so no other instance can take this
        // file in between; `acquire` re-checks for a file removed under it.
        // The lock itself goes with `_file`, dropped after this.
        let _ = std::fs::remove_file(&self.path);
    }
}

impl InstanceLock {
    /// Take the lock for `iface` of network namespace `netns` in `dir`
    /// (created if missing) without waiting, and record this process's id
    /// in it for the error message another instance would print.
    pub fn acquire(dir: &Path, netns: &str, iface: &str) -> Result<Self, LockError> {
        let path = dir.join(format!("{netns}-{iface}.lock"));
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        // A holder removes the file as it exits (`Drop`); a lock taken on a
        // file that was removed meanwhile guards nothing, so try again.
        let mut attempts = 0;
        let mut file = loop {
            let file = Self::lock_file(&path, netns, iface)?;
            let current = std::fs::metadata(&path).ok().map(|m| m.ino());
            if current == Some(file.metadata().map_err(io)?.ino()) {
                break file;
            }
            attempts += 1;
            if attempts == 3 {
                return Err(io(std::io::Error::other(
                    "the lock file keeps being removed under this process",
                )));
            }
        };
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        Ok(InstanceLock { _file: file, path })
    }

    fn lock_file(path: &Path, netns: &str, iface: &str) -> Result<Flock<File>, LockError> {
        let io = |source| LockError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io)?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(locked) => Ok(locked),
            Err((mut file, Errno::EWOULDBLOCK)) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let holder = match pid.trim() {
                    "" => "pid unknown".to_string(),
                    pid => format!("pid {pid}"),
                };
                Err(LockError::Held {
                    iface: iface.to_string(),
                    netns: netns.to_string(),
                    holder,
                    path: path.to_path_buf(),
                })
            }
            Err((_, errno)) => Err(io(std::io::Error::from(errno))),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The pid of the steerer holding the lock of (`netns`, `iface`) in
    /// `dir`, if one does (the lock is tried, never taken: a free lock is
    /// released at once).
    pub fn holder(dir: &Path, netns: &str, iface: &str) -> Option<u32> {
        let path = dir.join(format!("{netns}-{iface}.lock"));
        let file = OpenOptions::new().read(true).open(&path).ok()?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(_free) => None,
            Err((mut file, Errno::EWOULDBLOCK)) => {
                let mut pid = String::new();
                file.read_to_string(&mut pid).ok()?;
                pid.trim().parse().ok()
            }
            Err(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("steerer-lock-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_second_instance_on_the_same_interface_is_refused_with_the_holder() {
        let dir = temp_dir("second");
        let first = InstanceLock::acquire(&dir, "net1", "lan0").expect("first instance");
        // flock belongs to the open file, so a second open in this very
        // process conflicts just as another process would.
        let err =
            InstanceLock::acquire(&dir, "net1", "lan0").expect_err("second instance must fail");
        let msg = err.to_string();
        assert!(
            msg.contains("already running on lan0 in network namespace net1")
                && msg.contains(&std::process::id().to_string()),
            "{msg}"
        );
        // Another interface, or the same name in another namespace, is
        // independent.
        let other = InstanceLock::acquire(&dir, "net1", "lan1").expect("other interface");
        let elsewhere = InstanceLock::acquire(&dir, "net2", "lan0").expect("other namespace");
        drop(first);
        assert!(
            !dir.join("net1-lan0.lock").exists(),
            "lock file left behind"
        );
        let again = InstanceLock::acquire(&dir, "net1", "lan0").expect("lock released on drop");
        assert_eq!(again.path(), dir.join("net1-lan0.lock"));
        drop((other, again, elsewhere));
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            0,
            "lock files left"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
