//! Checks that the machine is left as it was: no lab namespaces, no pins,
//! no steerer programs.

use anyhow::Result;

use crate::netns;

/// Programs named like steerer's currently loaded in the kernel.
pub fn steerer_programs() -> Result<usize> {
    let out = netns::run("bpftool", &["-j", "prog", "show"])?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    Ok(v.as_array()
        .map(|a| {
            a.iter()
                .filter(|p| {
                    p["name"]
                        .as_str()
                        .is_some_and(|n| n.starts_with("steerer_"))
                })
                .count()
        })
        .unwrap_or(0))
}

/// Wait (up to 3 s: the kernel frees programs after an RCU grace period)
/// until no more steerer programs are loaded than `before`. Fewer is fine:
/// an earlier test's programs may still have been on their way out when
/// `before` was taken.
pub fn programs_released(before: usize) -> Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    loop {
        let now = steerer_programs()?;
        if now <= before {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            anyhow::bail!("{now} steerer programs loaded, {before} before the test: programs left");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Namespaces whose name starts with `prefix`.
pub fn namespaces_with_prefix(prefix: &str) -> Result<Vec<String>> {
    Ok(netns::list()?
        .into_iter()
        .filter(|n| n.starts_with(prefix))
        .collect())
}

/// Whether an XDP program is attached to the lab gateway's LAN interface.
pub fn xdp_attached(lab: &crate::Lab) -> bool {
    crate::netns::command_in(&lab.gw_ns(), "ip")
        .and_then(|mut c| {
            c.args(["-d", "link", "show", "dev", &lab.lan_iface()])
                .output()
                .map_err(Into::into)
        })
        .map(|out| String::from_utf8_lossy(&out.stdout).contains("prog/xdp"))
        .unwrap_or(false)
}

/// Panics unless the lab gateway's LAN interface has no XDP program and
/// the lab's pin folder does not exist (a rejected start, a check).
pub fn nothing_attached(lab: &crate::Lab) {
    let link = crate::netns::command_in(&lab.gw_ns(), "ip")
        .expect("ip in the gateway")
        .args(["-d", "link", "show", "dev", &lab.lan_iface()])
        .output()
        .expect("ip link show");
    let text = String::from_utf8_lossy(&link.stdout);
    assert!(!text.contains("xdp"), "XDP attached:\n{text}");
    assert!(!lab.pin_dir().exists(), "pins created");
}
