//! Every namespace a lab of this process created and still owns, for a
//! signal handler that cannot reach the `Lab` values.

use std::sync::{Mutex, MutexGuard};

use crate::netns::run;

static LIVE: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn live() -> MutexGuard<'static, Vec<String>> {
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn add(ns: String) {
    live().push(ns);
}

pub(crate) fn forget(ns: &str) {
    live().retain(|n| n != ns);
}

/// Delete every namespace the labs of this process still own (with them
/// their links, routes, rules and attached programs): for a Ctrl-C handler
/// that exits right after. Returns how many were deleted.
pub fn remove_live_namespaces() -> usize {
    let names: Vec<String> = live().drain(..).collect();
    names
        .iter()
        .filter(|ns| run("ip", &["netns", "del", ns]).is_ok())
        .count()
}
