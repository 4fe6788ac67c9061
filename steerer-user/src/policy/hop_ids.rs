//! Stable hop ids: a hop is its name (SPEC 5), and the data plane's hop id
//! of a name is what its established flows point at. So a name keeps the
//! id it had (from the `HOP_NAMES` map next to the pins), whatever the
//! order of the configuration; a name no longer configured keeps its id
//! reserved while flows still point at it (they drain on it); a new name
//! takes the lowest id that no kept name holds and no flow points at.

use std::collections::BTreeMap;

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum HopIdError {
    #[error(
        "no free hop id for hop {name:?}: all {max} ids are held by configured hops or by \
         flows of removed hops; wait until those flows end, or restart with --fresh"
    )]
    Exhausted { name: String, max: u32 },
}

/// The assignment for one start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HopIds {
    /// The id of each configured name, in configuration order.
    pub ids: Vec<u32>,
    /// Names no longer configured whose flows still point at their id:
    /// the id stays theirs (and their data-plane entry as it was).
    pub draining: Vec<(u32, String)>,
    /// Ids to clear: their name is gone and no flow points at them.
    pub freed: Vec<u32>,
}

/// `previous`: (id, name) as the pins hold them; `wanted`: the configured
/// names; `referenced(id)`: some flow of the table points at `id`; ids are
/// `0..max`.
pub fn assign(
    previous: &[(u32, String)],
    wanted: &[&str],
    referenced: &dyn Fn(u32) -> bool,
    max: u32,
) -> Result<HopIds, HopIdError> {
    let by_name: BTreeMap<&str, u32> = previous.iter().map(|(i, n)| (n.as_str(), *i)).collect();
    let mut held = vec![false; max as usize];
    let mut ids = vec![None; wanted.len()];
    for (slot, name) in ids.iter_mut().zip(wanted) {
        if let Some(&id) = by_name.get(name) {
            if id < max && !held[id as usize] {
                held[id as usize] = true;
                *slot = Some(id);
            }
        }
    }
    let mut draining = Vec::new();
    let mut freed = Vec::new();
    for (id, name) in previous {
        if wanted.contains(&name.as_str()) || *id >= max {
            continue;
        }
        if referenced(*id) {
            held[*id as usize] = true;
            draining.push((*id, name.clone()));
        } else {
            freed.push(*id);
        }
    }
    // Ids without a name that flows point at (pins of a build before
    // names were kept) are not handed out either.
    for id in 0..max {
        if referenced(id) {
            held[id as usize] = true;
        }
    }
    let mut out = Vec::with_capacity(wanted.len());
    for (slot, name) in ids.iter().zip(wanted) {
        let id = match slot {
            Some(id) => *id,
            None => {
                let id =
                    (0..max)
                        .find(|&i| !held[i as usize])
                        .ok_or_else(|| HopIdError::Exhausted {
                            name: name.to_string(),
                            max,
                        })?;
                held[id as usize] = true;
                id
            }
        };
        out.push(id);
    }
    freed.retain(|id| !out.contains(id));
    Ok(HopIds {
        ids: out,
        draining,
        freed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prev(names: &[(u32, &str)]) -> Vec<(u32, String)> {
        names.iter().map(|(i, n)| (*i, n.to_string())).collect()
    }

    #[test]
    fn a_reordered_config_keeps_every_id() {
        let p = prev(&[(0, "a"), (1, "b"), (2, "c")]);
        let r = assign(&p, &["c", "a", "b"], &|_| true, 256).unwrap();
        assert_eq!(r.ids, vec![2, 0, 1]);
        assert!(r.draining.is_empty() && r.freed.is_empty());
    }

    #[test]
    fn a_removed_hop_keeps_its_id_while_flows_point_at_it() {
        let p = prev(&[(0, "a"), (1, "b"), (2, "c")]);
        // b removed, d added; flows still on b (id 1).
        let r = assign(&p, &["a", "c", "d"], &|id| id == 1, 256).unwrap();
        assert_eq!(r.ids, vec![0, 2, 3], "d does not take b's id");
        assert_eq!(r.draining, vec![(1, "b".to_string())]);
        // Once b's flows are gone, its id is freed and taken by the next new name.
        let r = assign(&p, &["a", "c", "d"], &|_| false, 256).unwrap();
        assert_eq!(r.ids, vec![0, 2, 1]);
        assert!(r.freed.is_empty(), "freed id 1 was handed to d");
        let r = assign(&p, &["a", "c"], &|_| false, 256).unwrap();
        assert_eq!(r.freed, vec![1]);
    }

    #[test]
    fn ids_flows_point_at_without_a_name_are_not_handed_out() {
        let r = assign(&[], &["a", "b"], &|id| id == 0, 256).unwrap();
        assert_eq!(r.ids, vec![1, 2]);
    }

    #[test]
    fn running_out_of_ids_names_the_hop() {
        let err = assign(&[], &["a", "b", "c"], &|_| false, 2).unwrap_err();
        assert_eq!(
            err,
            HopIdError::Exhausted {
                name: "c".into(),
                max: 2
            }
        );
    }
}
