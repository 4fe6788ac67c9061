//! What `steerer run` needs from the kernel before it tries anything:
//! loading and attaching eBPF programs takes CAP_BPF and CAP_NET_ADMIN
//! (and CAP_PERFMON for the programs' pointer arithmetic), or root. Without
//! them the first failure would be a bare "Permission denied" somewhere in
//! the start-up; this says what is missing instead.

/// Capability numbers (linux/capability.h).
const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// The effective capability set from `/proc/self/status` text.
pub fn effective_caps(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("CapEff:"))?;
    u64::from_str_radix(line.trim_start_matches("CapEff:").trim(), 16).ok()
}

/// The capabilities the daemon lacks (by name), given its effective set.
/// CAP_SYS_ADMIN stands in for CAP_BPF and CAP_PERFMON (kernels before
/// 5.8 know only it).
pub fn missing(caps: u64) -> Vec<&'static str> {
    let has = |c: u32| caps & (1u64 << c) != 0;
    let mut out = Vec::new();
    if !has(CAP_NET_ADMIN) {
        out.push("CAP_NET_ADMIN");
    }
    if !has(CAP_BPF) && !has(CAP_SYS_ADMIN) {
        out.push("CAP_BPF");
    }
    if !has(CAP_PERFMON) && !has(CAP_SYS_ADMIN) {
        out.push("CAP_PERFMON");
    }
    out
}

/// An error naming what is missing, if anything is.
pub fn check() -> Result<(), String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let Some(caps) = effective_caps(&status) else {
        // Cannot tell: let the kernel say.
        return Ok(());
    };
    let lacking = missing(caps);
    if lacking.is_empty() {
        return Ok(());
    }
    Err(format!(
        "steerer run loads and attaches eBPF programs: run it as root, or give it {} \
         (e.g. systemd's AmbientCapabilities=CAP_BPF CAP_NET_ADMIN CAP_PERFMON), with write \
         access to /run/steerer and /sys/fs/bpf",
        lacking.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_has_everything_and_a_plain_user_lacks_all_three() {
        let root = "Name:\tsteerer\nCapEff:\t000001ffffffffff\n";
        assert_eq!(missing(effective_caps(root).unwrap()), Vec::<&str>::new());
        let user = "CapEff:\t0000000000000000\n";
        assert_eq!(
            missing(effective_caps(user).unwrap()),
            vec!["CAP_NET_ADMIN", "CAP_BPF", "CAP_PERFMON"]
        );
        // CAP_NET_ADMIN (bit 12) and CAP_SYS_ADMIN (bit 21) only.
        let old = format!("CapEff:\t{:016x}\n", (1u64 << 12) | (1u64 << 21));
        assert!(missing(effective_caps(&old).unwrap()).is_empty());
    }
}
