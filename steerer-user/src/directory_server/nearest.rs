//! The seed's "give it ping times of a shared set of servers and it gives
//! back N paths": a client that measured its round-trip times to the
//! directory's landmark servers gets the N hops whose own times to them
//! are most alike (network coordinates: two places that see every
//! landmark at about the same distance are near each other).

use std::collections::BTreeMap;

use crate::config::HopConfig;

/// Most hops one answer holds.
pub const MAX_NEAREST: usize = 1024;

/// Root mean square of (client - hop) over the landmarks both measured;
/// `None` when they share none.
pub fn distance(client: &BTreeMap<String, f64>, hop: &BTreeMap<String, f64>) -> Option<f64> {
    let diffs: Vec<f64> = client
        .iter()
        .filter(|(_, c)| c.is_finite() && **c >= 0.0)
        .filter_map(|(name, c)| hop.get(name).filter(|h| h.is_finite()).map(|h| c - h))
        .collect();
    if diffs.is_empty() {
        return None;
    }
    Some((diffs.iter().map(|d| d * d).sum::<f64>() / diffs.len() as f64).sqrt())
}

/// The `n` hops nearest `client`, nearest first; hops that share no
/// landmark with it come after all that do; ties by name.
pub fn nearest<'a>(
    hops: &'a [HopConfig],
    client: &BTreeMap<String, f64>,
    n: usize,
) -> Vec<&'a HopConfig> {
    let empty = BTreeMap::new();
    let mut ranked: Vec<(Option<f64>, &HopConfig)> = hops
        .iter()
        .map(|h| {
            (
                distance(client, h.landmarks_ms.as_ref().unwrap_or(&empty)),
                h,
            )
        })
        .collect();
    ranked.sort_by(|a, b| {
        let key = |d: Option<f64>| d.unwrap_or(f64::INFINITY);
        key(a.0)
            .total_cmp(&key(b.0))
            .then_with(|| a.1.name.cmp(&b.1.name))
    });
    ranked
        .into_iter()
        .take(n.min(MAX_NEAREST))
        .map(|(_, h)| h)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn times(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
        pairs.iter().map(|(n, t)| (n.to_string(), *t)).collect()
    }

    #[test]
    fn the_distance_is_the_rms_of_the_shared_landmarks() {
        let c = times(&[("a", 10.0), ("b", 50.0), ("z", 7.0)]);
        let h = times(&[("a", 13.0), ("b", 46.0), ("y", 1.0)]);
        // Shared: a (3 ms apart) and b (4 ms): sqrt((9 + 16) / 2).
        let d = distance(&c, &h).unwrap();
        assert!((d - (12.5f64).sqrt()).abs() < 1e-12, "{d}");
        assert_eq!(distance(&c, &times(&[("q", 1.0)])), None);
    }
}
