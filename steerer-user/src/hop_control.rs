//! `steerer hop drain|disable|enable NAME`: an operator's word on a hop,
//! kept next to the running daemon's lock as an override of the hop's
//! `state` (`/run/steerer/net<inode>-<iface>.hops.toml`, gone at reboot),
//! and applied by the daemon's reload (SIGHUP), as a `state` edited in the
//! configuration file would be. The override wins over the file until
//! `enable` removes it.

use std::{collections::BTreeMap, path::Path};

use serde::{Deserialize, Serialize};

use crate::config::{Config, HopState};

/// The override file's content: hop name -> state.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct HopOverrides {
    #[serde(default)]
    pub state: BTreeMap<String, HopState>,
}

/// Where the overrides of (`netns`, `iface`) live, next to its lock.
pub fn overrides_path(dir: &Path, netns: &str, iface: &str) -> std::path::PathBuf {
    dir.join(format!("{netns}-{iface}.hops.toml"))
}

/// The overrides at `path` (none if the file does not exist).
pub fn read(path: &Path) -> Result<HopOverrides, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(HopOverrides::default()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Write them whole (aside, then renamed over the old file).
pub fn write(path: &Path, o: &HopOverrides) -> Result<(), String> {
    let text = toml::to_string(o).map_err(|e| e.to_string())?;
    let tmp = path.with_extension("toml.new");
    std::fs::write(&tmp, text).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Apply to a loaded configuration; returns the overridden hops (name,
/// state) and the names that are not (any longer) in it.
pub fn apply(config: &mut Config, o: &HopOverrides) -> (Vec<(String, HopState)>, Vec<String>) {
    let mut applied = Vec::new();
    let mut unknown = Vec::new();
    for (name, state) in &o.state {
        match config.hops.iter_mut().find(|h| &h.name == name) {
            Some(h) => {
                h.state = *state;
                applied.push((name.clone(), *state));
            }
            None => unknown.push(name.clone()),
        }
    }
    (applied, unknown)
}

/// `steerer hop VERB NAME --iface IFACE`: record the state (`None`: remove
/// the override, `enable`) for the steerer running on `iface` in this
/// network namespace and send it SIGHUP. Returns what to tell the operator.
pub fn request(iface: &str, name: &str, state: Option<HopState>) -> Result<String, String> {
    use crate::{
        dataplane,
        instance_lock::{InstanceLock, LOCK_DIR},
    };
    let netns = dataplane::netns_id().map_err(|e| e.to_string())?;
    let dir = Path::new(LOCK_DIR);
    let pid = InstanceLock::holder(dir, &netns, iface)
        .ok_or_else(|| format!("no steerer is running on {iface} in this network namespace"))?;
    let names: Vec<String> = dataplane::PinnedMaps::open(iface)
        .and_then(|m| m.hop_names())
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|(_, n)| n)
        .collect();
    if !names.iter().any(|n| n == name) {
        let mut known = names.clone();
        known.sort();
        return Err(format!(
            "no hop {name:?} on {iface} (hops: {})",
            known.join(", ")
        ));
    }
    let path = overrides_path(dir, &netns, iface);
    let mut o = read(&path)?;
    match state {
        Some(s) => {
            o.state.insert(name.to_string(), s);
        }
        None => {
            o.state.remove(name);
        }
    }
    write(&path, &o)?;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGHUP,
    )
    .map_err(|e| format!("signalling steerer (pid {pid}): {e}"))?;
    let what = match state {
        Some(HopState::Drain) => "drain (no new flows, its flows stay)",
        Some(HopState::Disabled) => "disabled (no flows, its flows reset)",
        Some(HopState::Active) | None => "enabled (as the configuration file says)",
    };
    Ok(format!(
        "hop {name} on {iface}: {what}; steerer (pid {pid}) reloads now, its log says the result"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_round_trip_and_win_over_the_file() {
        let dir = std::env::temp_dir().join(format!("steerer-hopctl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = overrides_path(&dir, "net1", "lan0");
        assert_eq!(
            read(&path).unwrap(),
            HopOverrides::default(),
            "no file: none"
        );
        let mut o = HopOverrides::default();
        o.state.insert("a".into(), HopState::Drain);
        o.state.insert("gone".into(), HopState::Disabled);
        write(&path, &o).unwrap();
        assert_eq!(read(&path).unwrap(), o);
        let mut c = Config::parse(
            "[[hop]]\nname = \"a\"\ninterface = \"eth1\"\nnext_hop = \"198.18.1.2\"\n\
             estimated_speed_mbit = 1\nestimated_capacity_mbit = 1\nstate = \"active\"\n",
        )
        .unwrap();
        let (applied, unknown) = apply(&mut c, &o);
        assert_eq!(c.hops[0].state, HopState::Drain);
        assert_eq!(applied, vec![("a".to_string(), HopState::Drain)]);
        assert_eq!(unknown, vec!["gone".to_string()]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
