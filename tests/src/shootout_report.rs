//! The shoot-out's table: per contender the median over rounds of each
//! figure, and steerer's ratio to each other contender.

use crate::shootout::{RunStats, Scenario, BLOCKED_PORT, PORT};

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn percentile(v: &[f64], q: f64) -> f64 {
    let mut v = v.to_vec();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let i = ((v.len() as f64 - 1.0) * q).round() as usize;
    v[i.min(v.len() - 1)]
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        f64::NAN
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

/// One row's figures, each the median over the rounds.
struct Row {
    label: String,
    completed: f64,
    retried: f64,
    abandoned: f64,
    given_up: f64,
    mean: f64,
    p50: f64,
    p99: f64,
    mean_open: f64,
    mean_blocked: f64,
    goodput: f64,
    shares: Vec<f64>,
}

fn row(runs: &[RunStats]) -> Row {
    let m = |f: &dyn Fn(&RunStats) -> f64| median(runs.iter().map(f).collect());
    let hops = runs.first().map_or(0, |r| r.hop_share.len());
    Row {
        label: runs
            .first()
            .map_or_else(String::new, |r| r.contender.clone()),
        completed: m(&|r| r.completed as f64),
        retried: m(&|r| r.retried as f64),
        abandoned: m(&|r| r.abandoned as f64),
        given_up: m(&|r| r.given_up as f64),
        mean: m(&|r| mean(&r.times)),
        p50: m(&|r| percentile(&r.times, 0.5)),
        p99: m(&|r| percentile(&r.times, 0.99)),
        mean_open: m(&|r| r.times_by_port.get(&PORT).map_or(f64::NAN, |t| mean(t))),
        mean_blocked: m(&|r| {
            r.times_by_port
                .get(&BLOCKED_PORT)
                .map_or(f64::NAN, |t| mean(t))
        }),
        goodput: m(&|r| r.goodput_mbit),
        shares: (0..hops).map(|h| m(&|r| r.hop_share[h])).collect(),
    }
}

fn fmt(x: f64) -> String {
    if x.is_nan() {
        "-".into()
    } else if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}

/// The markdown table of one scenario (`per[i]`: contender i's rounds).
pub fn report(sc: &Scenario, per: &[Vec<RunStats>]) -> String {
    let total: u32 = sc.rates.iter().sum();
    let capacity: Vec<String> = sc
        .rates
        .iter()
        .map(|r| format!("{:.0}", 100.0 * *r as f64 / total as f64))
        .collect();
    let rounds = per.first().map_or(0, Vec::len);
    let mut out = format!(
        "#### {} ({} rounds, medians)\n\n{}. True capacity shares: {}%.\n\n\
         | policy | completed | retried | abandoned attempts | given up | mean s | p50 s | p99 s | mean {PORT} s | mean {BLOCKED_PORT} s | goodput Mbit/s | byte share per hop % |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
        sc.name,
        rounds,
        sc.description,
        capacity.join("/")
    );
    let rows: Vec<Row> = per.iter().map(|runs| row(runs)).collect();
    for r in &rows {
        let shares: Vec<String> = r
            .shares
            .iter()
            .map(|s| format!("{:.0}", 100.0 * s))
            .collect();
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.label,
            fmt(r.completed),
            fmt(r.retried),
            fmt(r.abandoned),
            fmt(r.given_up),
            fmt(r.mean),
            fmt(r.p50),
            fmt(r.p99),
            fmt(r.mean_open),
            fmt(r.mean_blocked),
            fmt(r.goodput),
            shares.join("/")
        ));
    }
    if let Some((steerer, others)) = rows
        .split_first()
        .filter(|(s, _)| s.label.starts_with("steerer"))
    {
        out.push_str("\nsteerer against each (completed: steerer / other; times: steerer / other, below 1 is faster):\n\n");
        out.push_str("| against | completed x | mean time x | p99 x | mean on the open port x |\n|---|---:|---:|---:|---:|\n");
        for o in others {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} |\n",
                o.label,
                fmt(steerer.completed / o.completed),
                fmt(steerer.mean / o.mean),
                fmt(steerer.p99 / o.p99),
                fmt(steerer.mean_open / o.mean_open)
            ));
        }
    }
    out
}
