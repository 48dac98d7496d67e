//! The SVG chart: goodput share, p99 latency and executor starvation against offered
//! load, one line per executor run (plotters, SVG backend): per executor a colour, per
//! scenario a line style. Exact hints and the baselines are solid, flat dashed, unknown
//! dotted, noisy long-dashed and lighter, one class short-dashed and lighter. Runs on
//! the sized work are darker: sizes_exact and the `[sized]` baselines solid, sizes_units
//! dashed. The upper bound is black dashed (grey dashed for the sized work).

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::HarnessError;
use super::executor::ExecutorKind;
use super::hints::HintScenario;
use super::report::{ExecutorFigures, OverloadReport};
use super::sizes::Workload;

/// Chart size in pixels (taller by a legend row for each row past the first).
const SIZE: (u32, u32) = (1_560, 500);
/// Floor of the log-scaled axes, ms (a p99 of 0 is drawn here).
const LOG_FLOOR_MS: f64 = 0.01;
/// Height of one legend row, pixels.
const LEGEND_ROW: i32 = 22;
/// Colour of the sized work's upper bound.
const SIZED_BOUND: RGBColor = RGBColor(0x88, 0x88, 0x88);

/// One line of the chart: an executor in a scenario (`None` for a baseline) on a
/// workload.
type Key = (ExecutorKind, Option<HintScenario>, Workload);
/// Dash and gap lengths of a line, pixels; `None` for a solid line.
type Dashes = Option<(u32, u32)>;
/// A drawing area of the SVG.
type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
/// A legend item: label, style and dashes.
type Item = (String, ShapeStyle, Dashes);
/// A legend item placed at `(x, row)`.
type Placed = (i32, i32, String, ShapeStyle, Dashes);

fn key_of(e: &ExecutorFigures) -> Key {
    (e.executor, e.hints, e.workload)
}

fn color(k: ExecutorKind) -> RGBColor {
    match k {
        ExecutorKind::HelixLearning => RGBColor(0xd6, 0x27, 0x28),
        ExecutorKind::HelixStatic => RGBColor(0xff, 0x7f, 0x0e),
        ExecutorKind::Spawn => RGBColor(0x1f, 0x77, 0xb4),
        ExecutorKind::SpawnBlocking => RGBColor(0x2c, 0xa0, 0x2c),
        ExecutorKind::TowerLimitShed => RGBColor(0x94, 0x67, 0xbd),
        ExecutorKind::HelixNoCostLearning => RGBColor(0x8c, 0x56, 0x4b),
        ExecutorKind::HelixRemote => RGBColor(0x17, 0xbe, 0xcf),
    }
}

/// The key's colour: the executor's, lighter for noisy hints and one class, darker on
/// the sized work.
fn key_color(key: Key) -> RGBColor {
    let c = color(key.0);
    if key.2 == Workload::Sized {
        let dark = |v: u8| v / 2;
        RGBColor(dark(c.0), dark(c.1), dark(c.2))
    } else if matches!(key.1, Some(HintScenario::Noisy | HintScenario::OneClass)) {
        let light = |v: u8| v + (255 - v) / 2;
        RGBColor(light(c.0), light(c.1), light(c.2))
    } else {
        c
    }
}

/// Dash and gap lengths of the key's line.
fn dashes(key: Key) -> Dashes {
    match key.1 {
        None | Some(HintScenario::Exact | HintScenario::SizesExact) => None,
        Some(HintScenario::Flat | HintScenario::SizesUnits) => Some((8, 4)),
        Some(HintScenario::Unknown) => Some((2, 3)),
        Some(HintScenario::Noisy) => Some((14, 4)),
        Some(HintScenario::OneClass) => Some((4, 3)),
    }
}

fn chart_err(e: impl std::fmt::Display) -> HarnessError {
    HarnessError::Chart(e.to_string())
}

/// Every executor run, in order of first appearance.
fn keys(report: &OverloadReport) -> Vec<Key> {
    let mut keys: Vec<Key> = Vec::new();
    for e in report.steps.iter().flat_map(|s| &s.executors) {
        if !keys.contains(&key_of(e)) {
            keys.push(key_of(e));
        }
    }
    keys
}

/// The legend's items: one per run, then the reference lines.
fn legend_items(report: &OverloadReport, keys: &[Key]) -> Vec<Item> {
    let with_hints = report.shows_hints();
    let label_of = |k: Key| {
        report
            .steps
            .iter()
            .flat_map(|s| &s.executors)
            .find(|e| key_of(e) == k)
            .map_or_else(|| k.0.label().to_owned(), |e| e.label(with_hints))
    };
    let mut items: Vec<Item> = keys
        .iter()
        .map(|&k| (label_of(k), key_color(k).stroke_width(3), dashes(k)))
        .collect();
    items.push((
        "upper bound (goodput) / idle runtime (starvation)".to_owned(),
        BLACK.stroke_width(2),
        Some((6, 4)),
    ));
    if report.steps.iter().any(|s| s.sized.is_some()) {
        items.push((
            "upper bound, sized work".to_owned(),
            SIZED_BOUND.stroke_width(2),
            Some((6, 4)),
        ));
    }
    items
}

/// Lays the legend out in rows that fit the width: `(x, row, label, style, dashes)`.
fn place_legend(items: Vec<Item>) -> (Vec<Placed>, i32) {
    let item_width = |label: &str| 44 + 8 * label.chars().count() as i32;
    let mut placed = Vec::with_capacity(items.len());
    let (mut x, mut row) = (40, 0);
    for (label, style, dash) in items {
        let w = item_width(&label);
        if x > 40 && x + w > SIZE.0 as i32 - 20 {
            x = 40;
            row += 1;
        }
        placed.push((x, row, label, style, dash));
        x += w;
    }
    (placed, row)
}

fn draw_legend(legend: &Area<'_>, placed: Vec<Placed>) -> Result<(), HarnessError> {
    for (x, row, label, style, dash) in placed {
        let y = 17 + LEGEND_ROW * row;
        let (on, off) = dash.map_or((26, 0), |(on, off)| (on.min(10) as i32, off as i32));
        let mut x0 = x;
        while x0 < x + 26 {
            let x1 = (x0 + on).min(x + 26);
            legend
                .draw(&PathElement::new(vec![(x0, y), (x1, y)], style))
                .map_err(chart_err)?;
            x0 = x1 + off.max(1);
        }
        legend
            .draw(&Text::new(
                label,
                (x + 32, y - 7),
                ("sans-serif", 14).into_font(),
            ))
            .map_err(chart_err)?;
    }
    Ok(())
}

/// Writes the chart for `report` to `path` as SVG.
///
/// # Errors
///
/// [`HarnessError::Chart`] when the report has no step or drawing/writing fails.
pub fn write_svg(report: &OverloadReport, path: &Path) -> Result<(), HarnessError> {
    if report.steps.is_empty() {
        return Err(HarnessError::Chart("the report has no load step".into()));
    }
    let keys = keys(report);
    let (placed, rows) = place_legend(legend_items(report, &keys));
    let legend_height = 12 + LEGEND_ROW * (rows + 1);
    let root =
        SVGBackend::new(path, (SIZE.0, SIZE.1 + (LEGEND_ROW * rows) as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(chart_err)?;
    let title = format!(
        "HelixRouter overload harness: {} cores, {:.1} s per step, seed {}",
        report.capacity.cores, report.secs_per_step, report.seed
    );
    let root = root.titled(&title, ("sans-serif", 20)).map_err(chart_err)?;
    let (legend, plots) = root.split_vertically(legend_height as u32);
    let panels = plots.split_evenly((1, 3));
    draw_legend(&legend, placed)?;
    let axes = Axes::of(report, &keys);
    goodput_panel(&panels[0], &axes)?;
    log_panel(
        &panels[1],
        &axes,
        "p99 latency of completed jobs (ms, log)",
        &|e| e.latency_ms.p99,
        None,
    )?;
    log_panel(
        &panels[2],
        &axes,
        "executor starvation: 1 ms sleeper lateness p99 (ms, log)",
        &|e| e.starvation_ms.p99,
        report.idle_starvation_ms.p99,
    )?;
    root.present().map_err(chart_err)?;
    Ok(())
}

/// What every panel shares: the runs and the x axis (log2 of the load, so a doubling
/// sweep is evenly spaced and labelled).
struct Axes<'r> {
    report: &'r OverloadReport,
    keys: &'r [Key],
    lo: f64,
    hi: f64,
    x_labels: usize,
}

impl<'r> Axes<'r> {
    fn of(report: &'r OverloadReport, keys: &'r [Key]) -> Self {
        let xs: Vec<f64> = report.steps.iter().map(|s| s.load.log2()).collect();
        let lo = xs.iter().copied().fold(f64::INFINITY, f64::min) - 0.3;
        let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max) + 0.3;
        Axes {
            report,
            keys,
            lo,
            hi,
            x_labels: ((hi - lo).ceil() as usize + 1).max(2),
        }
    }

    /// `(log2 load, f(run))` of run `k` at every step where it ran and `f` has a value.
    fn series(&self, f: &dyn Fn(&ExecutorFigures) -> Option<f64>, k: Key) -> Vec<(f64, f64)> {
        self.report
            .steps
            .iter()
            .filter_map(|s| {
                s.executors
                    .iter()
                    .find(|e| key_of(e) == k)
                    .and_then(f)
                    .map(|y| (s.load.log2(), y))
            })
            .collect()
    }
}

fn x_fmt(v: &f64) -> String {
    if (v - v.round()).abs() < 1e-6 {
        format!("{}×", 2f64.powf(v.round()))
    } else {
        String::new()
    }
}

/// Panel 1: goodput as % of offered, with the upper bounds.
fn goodput_panel(area: &Area<'_>, axes: &Axes<'_>) -> Result<(), HarnessError> {
    let mut chart = ChartBuilder::on(area)
        .caption("goodput (on time, % of offered)", ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(48)
        .build_cartesian_2d(axes.lo..axes.hi, 0.0f64..100.0)
        .map_err(chart_err)?;
    chart
        .configure_mesh()
        .x_desc("offered load (× capacity)")
        .y_desc("%")
        .light_line_style(WHITE)
        .x_labels(axes.x_labels)
        .x_label_formatter(&x_fmt)
        .draw()
        .map_err(chart_err)?;
    let steps = &axes.report.steps;
    let bound: Vec<(f64, f64)> = steps
        .iter()
        .map(|s| (s.load.log2(), s.bound_share * 100.0))
        .collect();
    let sized: Vec<(f64, f64)> = steps
        .iter()
        .filter_map(|s| s.sized.map(|z| (s.load.log2(), z.bound_share * 100.0)))
        .collect();
    for (pts, c) in [(bound, BLACK), (sized, SIZED_BOUND)] {
        chart
            .draw_series(DashedLineSeries::new(
                pts,
                6,
                4,
                ShapeStyle::from(&c).stroke_width(2),
            ))
            .map_err(chart_err)?;
    }
    for &k in axes.keys {
        let pts = axes.series(&|e| Some(e.goodput_share * 100.0), k);
        draw_line(&mut chart, pts, k)?;
    }
    Ok(())
}

/// Panels 2 and 3: p99 latency of completed jobs, and starvation p99, log scale.
fn log_panel(
    area: &Area<'_>,
    axes: &Axes<'_>,
    caption: &str,
    f: &dyn Fn(&ExecutorFigures) -> Option<f64>,
    reference: Option<f64>,
) -> Result<(), HarnessError> {
    let mut ymax = reference.unwrap_or(LOG_FLOOR_MS);
    let mut ymin = reference.unwrap_or(f64::INFINITY);
    for &k in axes.keys {
        for (_, y) in axes.series(f, k) {
            ymax = ymax.max(y);
            ymin = ymin.min(y);
        }
    }
    let ymin = (ymin / 2.0).clamp(LOG_FLOOR_MS, 1.0);
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(axes.lo..axes.hi, (ymin..ymax.max(1.0) * 2.0).log_scale())
        .map_err(chart_err)?;
    chart
        .configure_mesh()
        .x_desc("offered load (× capacity)")
        .y_desc("ms")
        .light_line_style(WHITE)
        .x_labels(axes.x_labels)
        .x_label_formatter(&x_fmt)
        .draw()
        .map_err(chart_err)?;
    if let Some(r) = reference {
        chart
            .draw_series(DashedLineSeries::new(
                vec![(axes.lo, r), (axes.hi, r)],
                6,
                4,
                ShapeStyle::from(&BLACK).stroke_width(1),
            ))
            .map_err(chart_err)?;
    }
    for &k in axes.keys {
        let pts: Vec<(f64, f64)> = axes
            .series(f, k)
            .into_iter()
            .map(|(x, y)| (x, y.max(ymin)))
            .collect();
        draw_line(&mut chart, pts, k)?;
    }
    Ok(())
}

/// Draws one run's line with its points, in the key's colour and line style.
fn draw_line<'a, X, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>,
    pts: Vec<(f64, f64)>,
    key: Key,
) -> Result<(), HarnessError>
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let c = key_color(key);
    match dashes(key) {
        None => {
            chart
                .draw_series(LineSeries::new(pts, c.stroke_width(2)).point_size(3))
                .map_err(chart_err)?;
        }
        Some((on, off)) => {
            chart
                .draw_series(DashedLineSeries::new(
                    pts.clone(),
                    on,
                    off,
                    c.stroke_width(2),
                ))
                .map_err(chart_err)?;
            chart
                .draw_series(pts.into_iter().map(|p| Circle::new(p, 3, c.filled())))
                .map_err(chart_err)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scenario_and_workload_has_its_own_style() {
        let mut seen: Vec<(RGBColor, Dashes)> = Vec::new();
        let mut keys: Vec<Key> = HintScenario::ALL
            .iter()
            .map(|&h| (ExecutorKind::HelixLearning, Some(h), h.workload()))
            .collect();
        keys.push((ExecutorKind::Spawn, None, Workload::Fixed));
        keys.push((ExecutorKind::Spawn, None, Workload::Sized));
        for k in keys {
            let style = (key_color(k), dashes(k));
            assert!(
                !seen.iter().any(|s| s.0 == style.0 && s.1 == style.1),
                "{k:?} looks like another line"
            );
            seen.push(style);
        }
    }
}
