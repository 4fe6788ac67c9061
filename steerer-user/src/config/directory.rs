//! A hop directory (issue 14, item 4): `hop_directory = "hops.toml"` in the
//! configuration names a file of more `[[hop]]` entries, in the same form
//! as the configuration's own. Its hops join the configured ones at start;
//! the daemon checks the file at every tick and, when it changed, applies
//! it as a reload (hops added, changed and removed without moving a flow
//! of an unchanged hop). A file that does not parse, or a merged pool that
//! breaks a rule, is rejected as a whole and the running pool stays.

use std::{
    path::{Path, PathBuf},
    time::SystemTime,
};

use serde::Deserialize;

use super::{ConfigError, HopConfig};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HopDirectory {
    #[serde(rename = "hop", default)]
    hops: Vec<HopConfig>,
}

/// The directory's path: as written if absolute, else next to the
/// configuration file.
pub fn directory_path(config_path: &Path, written: &str) -> PathBuf {
    let p = Path::new(written);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        config_path.parent().unwrap_or(Path::new(".")).join(p)
    }
}

/// The hops of the directory file.
pub fn read_directory(path: &Path) -> Result<Vec<HopConfig>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse_directory(&text).map_err(|message| ConfigError::Parse {
        path: path.display().to_string(),
        message,
    })
}

/// The hops of a directory document (the parser's message on error).
pub fn parse_directory(text: &str) -> Result<Vec<HopConfig>, String> {
    let dir: HopDirectory = toml::from_str(text).map_err(|e| e.to_string())?;
    Ok(dir.hops)
}

/// What tells a changed file from an unchanged one: its modification
/// time and length (`None`: it cannot be read now).
pub fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relative_directory_is_next_to_the_config() {
        let p = directory_path(Path::new("/etc/steerer/steerer.toml"), "hops.toml");
        assert_eq!(p, Path::new("/etc/steerer/hops.toml"));
        let p = directory_path(Path::new("/etc/steerer/steerer.toml"), "/srv/hops.toml");
        assert_eq!(p, Path::new("/srv/hops.toml"));
    }

    #[test]
    fn a_directory_holds_hops_in_the_config_form_and_nothing_else() {
        let dir = std::env::temp_dir().join(format!("steerer-dir-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("hops.toml");
        std::fs::write(
            &f,
            "[[hop]]\nname = \"relay-1\"\ninterface = \"lo\"\nnext_hop = \"198.18.9.2\"\n\
             estimated_speed_mbit = 10\nestimated_capacity_mbit = 10\n",
        )
        .unwrap();
        let hops = read_directory(&f).unwrap();
        assert_eq!(hops.len(), 1);
        assert_eq!(hops[0].name, "relay-1");
        std::fs::write(&f, "tick_secs = 5\n").unwrap();
        let err = read_directory(&f).unwrap_err().to_string();
        assert!(
            err.contains("tick_secs") && err.contains("hops.toml"),
            "{err}"
        );
        let stamp_before = stamp(&f);
        assert!(stamp_before.is_some());
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(stamp(&f).is_none());
    }
}
