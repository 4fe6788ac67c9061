//! One scenario over several seeds: each figure's mean and spread per
//! policy, how a policy change is judged (DEVELOPERS.md: "over several
//! seeds (mean and spread), old against new").

use super::{compare, PolicyKind, Scenario, Summary};

/// Parse `1-5` or `1,3,7` (or a mix: `1-3,9`).
pub fn parse_seeds(text: &str) -> Result<Vec<u64>, String> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || format!("--seeds {text:?}: {part:?} is not a seed or a range A-B");
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u64, u64) = (
                    a.trim().parse().map_err(|_| bad())?,
                    b.trim().parse().map_err(|_| bad())?,
                );
                if a > b || b - a >= 1000 {
                    return Err(format!(
                        "--seeds {text:?}: range {part} must run upwards, at most 1000 seeds"
                    ));
                }
                out.extend(a..=b);
            }
            None => out.push(part.parse().map_err(|_| bad())?),
        }
    }
    if out.is_empty() {
        return Err("--seeds: no seed given".into());
    }
    Ok(out)
}

/// Every policy's summary for every seed, in the order of `kinds`.
pub fn run_seeds(
    scenario: &Scenario,
    kinds: &[PolicyKind],
    seeds: &[u64],
) -> Vec<(PolicyKind, Vec<Summary>)> {
    let mut per: Vec<(PolicyKind, Vec<Summary>)> = kinds.iter().map(|&k| (k, Vec::new())).collect();
    for &seed in seeds {
        for (r, slot) in compare(scenario, kinds, seed)
            .into_iter()
            .zip(per.iter_mut())
        {
            slot.1.push(r.summary);
        }
    }
    per
}

/// Mean and sample standard deviation (0 for a single value).
pub fn mean_sd(v: &[f64]) -> (f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

/// The figures compared across seeds: (column, value of a summary).
type Figure = (&'static str, fn(&Summary) -> Option<f64>);

const FIGURES: [Figure; 8] = [
    ("mean retries", |s| Some(s.mean_retries)),
    ("mean time s", |s| Some(s.mean_time_s)),
    ("p99 time s", |s| Some(s.p99_time_s)),
    ("goodput Mbit/s", |s| Some(s.goodput_mbit)),
    ("gave up", |s| Some(s.gave_up as f64)),
    ("sends into blackholes", |s| {
        Some(s.blackholed_attempts as f64)
    }),
    ("blackholes learned %", |s| {
        s.learn_blackhole_s.map(|_| 100.0 * s.learned_share)
    }),
    ("median time to learn s", |s| s.learn_blackhole_s),
];

/// The markdown table: one row per policy, "mean +- sd" per figure.
pub fn table(scenario: &Scenario, seeds: &[u64], per: &[(PolicyKind, Vec<Summary>)]) -> String {
    let mut out =
        format!(
        "scenario {}: {} seeds ({}), mean +- sample standard deviation over seeds\n\n| policy |",
        scenario.name,
        seeds.len(),
        seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
    );
    for (name, _) in FIGURES {
        out.push_str(&format!(" {name} |"));
    }
    out.push_str("\n|---|");
    out.push_str(&"---:|".repeat(FIGURES.len()));
    out.push('\n');
    for (kind, sums) in per {
        out.push_str(&format!("| {} |", kind.label()));
        for (_, f) in FIGURES {
            let v: Vec<f64> = sums.iter().filter_map(f).collect();
            if v.is_empty() {
                out.push_str(" - |");
                continue;
            }
            let (m, sd) = mean_sd(&v);
            out.push_str(&format!(" {} +- {} |", fmt(m), fmt(sd)));
        }
        out.push('\n');
    }
    out
}

fn fmt(x: f64) -> String {
    match x.abs() {
        a if a >= 100.0 => format!("{x:.1}"),
        a if a >= 1.0 => format!("{x:.3}"),
        _ => format!("{x:.4}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_parse_as_lists_and_ranges() {
        assert_eq!(parse_seeds("1-5").unwrap(), vec![1, 2, 3, 4, 5]);
        assert_eq!(parse_seeds("1-3, 9").unwrap(), vec![1, 2, 3, 9]);
        assert!(parse_seeds("5-1").is_err());
        assert!(parse_seeds("x").unwrap_err().contains("\"x\""));
        assert!(parse_seeds("").is_err());
    }

    #[test]
    fn mean_and_sample_sd() {
        let (m, sd) = mean_sd(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]);
        assert_eq!(m, 5.0);
        // Sample variance: 32 / 7.
        assert!((sd - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
        assert_eq!(mean_sd(&[3.0]), (3.0, 0.0));
    }
}
