//! Pinned maps left by an earlier run are reused so established flows keep
//! their hops, but only if this build's programs read them the same way.
//! The loader reuses a pin by name whatever its shape; a map from another
//! build (a longer slot array, a grown value) would either fail the
//! verifier with an opaque log or, worse, be read with the wrong layout.
//! So the shapes are compared first, and a mismatch is refused with what
//! differs and how to go on.

use std::path::Path;

use aya::maps::MapInfo;
use aya_obj::{maps::PinningType, Object};

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

/// Compare every map of `object` that is pinned by name and has a pin in
/// `pin_dir` with that pin. The flow table's size is left out: it may be
/// chosen per run (`--flow-table-size`), and a reused table keeps its own.
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
        if name != crate::dataplane::map_names::FLOWS {
            compare("entries", info.max_entries(), map.max_entries());
        }
    }
    Ok(out)
}
