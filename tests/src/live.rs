//! Every namespace a lab of this process created and still owns, for a
//! signal handler that cannot reach the `Lab` values.

use std::{
    path::{Path, PathBuf},
    sync::{Mutex, MutexGuard},
    time::{Duration, Instant},
};

use crate::netns::run;

static LIVE: Mutex<Vec<String>> = Mutex::new(Vec::new());
/// Folders of steerer runs (config, log, status) not yet removed.
static FOLDERS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn live() -> MutexGuard<'static, Vec<String>> {
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn add(ns: String) {
    live().push(ns);
}

pub(crate) fn forget(ns: &str) {
    live().retain(|n| n != ns);
}

fn folders() -> MutexGuard<'static, Vec<PathBuf>> {
    FOLDERS.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn add_folder(dir: &Path) {
    folders().push(dir.to_owned());
}

pub(crate) fn forget_folder(dir: &Path) {
    folders().retain(|d| d != dir);
}

/// Delete every namespace the labs of this process still own (with them
/// their links, routes, rules and attached programs): for a signal handler
/// that exits right after. The processes running in them (a steerer, the
/// servers) are asked to stop first, for up to two seconds: a namespace
/// deleted under a running process lives on with it; then the steerer
/// runs' folders go. Returns how many namespaces were deleted.
pub fn remove_live_namespaces() -> usize {
    let names: Vec<String> = live().drain(..).collect();
    let pids_in = |ns: &str| -> Vec<String> {
        run("ip", &["netns", "pids", ns])
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut pids: Vec<String> = names.iter().flat_map(|ns| pids_in(ns)).collect();
    pids.sort();
    pids.dedup();
    for pid in &pids {
        let _ = run("kill", &["-TERM", pid]);
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline && names.iter().any(|ns| !pids_in(ns).is_empty()) {
        std::thread::sleep(Duration::from_millis(100));
    }
    for dir in folders().drain(..) {
        let _ = std::fs::remove_dir_all(dir);
    }
    names
        .iter()
        .filter(|ns| run("ip", &["netns", "del", ns]).is_ok())
        .count()
}
