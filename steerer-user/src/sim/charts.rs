//! SVG charts of a comparison (plotters): completion-time CDF per policy,
//! retries over time per policy against the 1/(P-1) line, and steerer's
//! weight of each hop over time.

use std::path::Path;

use plotters::{coord::Shift, prelude::*};

use super::{results::BUCKET_NS, RunResult};

type ChartResult = Result<(), String>;

const COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Write the three charts into `dir`; returns the files written.
pub fn write_all(
    dir: &Path,
    title: &str,
    results: &[RunResult],
    p: u32,
) -> Result<Vec<String>, String> {
    let files = [
        "completion_cdf.svg".to_string(),
        "retries.svg".to_string(),
        "steerer_weights.svg".to_string(),
    ];
    completion_cdf(&dir.join(&files[0]), title, results)?;
    retries(&dir.join(&files[1]), title, results, p)?;
    weights(&dir.join(&files[2]), title, results)?;
    Ok(files.to_vec())
}

fn completion_cdf(path: &Path, title: &str, results: &[RunResult]) -> ChartResult {
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let all: Vec<Vec<f64>> = results.iter().map(|r| r.sorted_times_s()).collect();
    let lo = all
        .iter()
        .filter_map(|t| t.first().copied())
        .fold(f64::INFINITY, f64::min)
        .max(1e-3);
    let hi = all
        .iter()
        .filter_map(|t| t.last().copied())
        .fold(0.0, f64::max)
        .max(lo * 10.0);
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("{title}: completion time CDF"), ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d((lo..hi).log_scale(), 0f64..1f64)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("seconds from first attempt to last byte (log)")
        .y_desc("fraction of connections")
        .draw()
        .map_err(err)?;
    for (i, (r, t)) in results.iter().zip(&all).enumerate() {
        let n = t.len().max(1) as f64;
        // At most ~2000 points per curve keeps the SVG small.
        let stride = (t.len() / 2000).max(1);
        let pts: Vec<(f64, f64)> = t
            .iter()
            .enumerate()
            .filter(|(j, _)| j % stride == 0 || *j + 1 == t.len())
            .map(|(j, &x)| (x.max(lo), (j + 1) as f64 / n))
            .collect();
        let color = COLORS[i % COLORS.len()];
        chart
            .draw_series(LineSeries::new(pts, color.stroke_width(2)))
            .map_err(err)?
            .label(r.policy.label())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    finish(chart, root, SeriesLabelPosition::LowerRight)
}

fn retries(path: &Path, title: &str, results: &[RunResult], p: u32) -> ChartResult {
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let series: Vec<Vec<(f64, f64)>> = results
        .iter()
        .map(|r| {
            r.retries_by_bucket
                .iter()
                .enumerate()
                .filter(|(_, (_, n))| *n > 0)
                .map(|(b, (sum, n))| {
                    (
                        (b as u64 * BUCKET_NS + BUCKET_NS / 2) as f64 / 1e9,
                        *sum as f64 / *n as f64,
                    )
                })
                .collect()
        })
        .collect();
    let expected = (p >= 2).then(|| 1.0 / (p as f64 - 1.0));
    let x_hi = series
        .iter()
        .flat_map(|s| s.iter().map(|(x, _)| *x))
        .fold(1.0, f64::max);
    let y_hi = series
        .iter()
        .flat_map(|s| s.iter().map(|(_, y)| *y))
        .chain(expected)
        .fold(0.01, f64::max)
        * 1.15;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{title}: mean retries per connection"),
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..x_hi, 0f64..y_hi)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("connection start time (s, 10 s buckets)")
        .y_desc("mean retries")
        .draw()
        .map_err(err)?;
    for (i, (r, s)) in results.iter().zip(series).enumerate() {
        let color = COLORS[i % COLORS.len()];
        chart
            .draw_series(LineSeries::new(s, color.stroke_width(2)))
            .map_err(err)?
            .label(r.policy.label())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    if let Some(e) = expected {
        chart
            .draw_series(LineSeries::new(
                vec![(0.0, e), (x_hi, e)],
                BLACK.stroke_width(1),
            ))
            .map_err(err)?
            .label(format!("1/(P-1) = {e:.3}"))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK));
    }
    finish(chart, root, SeriesLabelPosition::UpperRight)
}

/// steerer's share of new flows per hop at every tick; the ten hops with
/// the largest mean share get their own line, the rest are summed.
fn weights(path: &Path, title: &str, results: &[RunResult]) -> ChartResult {
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let Some(r) = results.iter().find(|r| !r.weights.is_empty()) else {
        return root.present().map_err(err);
    };
    let hops = r.weights[0].1.len();
    let mut mean = vec![0.0; hops];
    for (_, w) in &r.weights {
        for (h, x) in w.iter().enumerate() {
            mean[h] += x;
        }
    }
    let mut order: Vec<usize> = (0..hops).collect();
    order.sort_by(|&a, &b| mean[b].total_cmp(&mean[a]).then(a.cmp(&b)));
    let shown: Vec<usize> = order.iter().copied().take(10).collect();
    let x_hi = r.weights.last().map_or(1.0, |(t, _)| *t as f64 / 1e9);
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{title}: steerer's share of new flows per hop"),
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..x_hi.max(1.0), 0f64..1f64)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc("share of new flows")
        .draw()
        .map_err(err)?;
    for (i, &h) in shown.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let pts: Vec<(f64, f64)> = r
            .weights
            .iter()
            .map(|(t, w)| (*t as f64 / 1e9, w[h]))
            .collect();
        chart
            .draw_series(LineSeries::new(pts, color.stroke_width(2)))
            .map_err(err)?
            .label(format!("hop{h}"))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    if hops > shown.len() {
        let pts: Vec<(f64, f64)> = r
            .weights
            .iter()
            .map(|(t, w)| {
                let rest: f64 = order[shown.len()..].iter().map(|&h| w[h]).sum();
                (*t as f64 / 1e9, rest)
            })
            .collect();
        chart
            .draw_series(LineSeries::new(pts, BLACK.stroke_width(1)))
            .map_err(err)?
            .label(format!("other {} hops", hops - shown.len()))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK));
    }
    finish(chart, root, SeriesLabelPosition::UpperRight)
}

/// Draw the legend at `position` and write the file.
fn finish<'a, X: Ranged, Y: Ranged>(
    mut chart: ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>,
    root: DrawingArea<SVGBackend<'a>, Shift>,
    position: SeriesLabelPosition,
) -> ChartResult {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE)
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)
}
