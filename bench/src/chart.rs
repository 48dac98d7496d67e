//! The SVG chart: goodput share, p99 latency and executor starvation against offered
//! load, one line per executor run (plotters, SVG backend): per executor a colour, per
//! hint scenario a line style (exact and the baselines solid, flat dashed, unknown
//! dotted, noisy long-dashed and lighter).

use std::path::Path;

use plotters::prelude::*;

use super::HarnessError;
use super::executor::ExecutorKind;
use super::hints::HintScenario;
use super::report::{ExecutorFigures, OverloadReport};

/// Chart size in pixels (taller by a legend row for each row past the first).
const SIZE: (u32, u32) = (1_560, 500);
/// Floor of the log-scaled axes, ms (a p99 of 0 is drawn here).
const LOG_FLOOR_MS: f64 = 0.01;
/// Height of one legend row, pixels.
const LEGEND_ROW: i32 = 22;

/// One line of the chart: an executor in a hint scenario (`None` for a baseline).
type Key = (ExecutorKind, Option<HintScenario>);
/// Dash and gap lengths of a line, pixels; `None` for a solid line.
type Dashes = Option<(u32, u32)>;

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

/// The key's colour: the executor's, lighter for noisy hints.
fn key_color(key: Key) -> RGBColor {
    let c = color(key.0);
    if key.1 == Some(HintScenario::Noisy) {
        let light = |v: u8| v + (255 - v) / 2;
        RGBColor(light(c.0), light(c.1), light(c.2))
    } else {
        c
    }
}

/// Dash and gap lengths of the key's line.
fn dashes(key: Key) -> Dashes {
    match key.1 {
        None | Some(HintScenario::Exact) => None,
        Some(HintScenario::Flat) => Some((8, 4)),
        Some(HintScenario::Unknown) => Some((2, 3)),
        Some(HintScenario::Noisy) => Some((14, 4)),
    }
}

fn chart_err(e: impl std::fmt::Display) -> HarnessError {
    HarnessError::Chart(e.to_string())
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
    let with_hints = report.shows_hints();
    // Every executor run, in order of first appearance.
    let mut keys: Vec<Key> = Vec::new();
    for e in report.steps.iter().flat_map(|s| &s.executors) {
        if !keys.contains(&(e.executor, e.hints)) {
            keys.push((e.executor, e.hints));
        }
    }
    let label_of = |k: Key| {
        report
            .steps
            .iter()
            .flat_map(|s| &s.executors)
            .find(|e| (e.executor, e.hints) == k)
            .map_or_else(|| k.0.label().to_owned(), |e| e.label(with_hints))
    };
    let mut items: Vec<(String, ShapeStyle, Dashes)> = keys
        .iter()
        .map(|&k| (label_of(k), key_color(k).stroke_width(3), dashes(k)))
        .collect();
    items.push((
        "upper bound (goodput) / idle runtime (starvation)".to_owned(),
        BLACK.stroke_width(2),
        Some((6, 4)),
    ));
    // Lay the legend out in rows that fit the width.
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
    let legend_height = 12 + LEGEND_ROW * (row + 1);
    let root =
        SVGBackend::new(path, (SIZE.0, SIZE.1 + (LEGEND_ROW * row) as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(chart_err)?;
    let title = format!(
        "HelixRouter overload harness: {} cores, {:.1} s per step, seed {}",
        report.capacity.cores, report.secs_per_step, report.seed
    );
    let root = root.titled(&title, ("sans-serif", 20)).map_err(chart_err)?;
    let (legend, plots) = root.split_vertically(legend_height as u32);
    let panels = plots.split_evenly((1, 3));
    // The x axis is log2(load), so a doubling sweep is evenly spaced and labelled.
    let xs: Vec<f64> = report.steps.iter().map(|s| s.load.log2()).collect();
    let lo = xs.iter().copied().fold(f64::INFINITY, f64::min) - 0.3;
    let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max) + 0.3;
    let x_labels = ((hi - lo).ceil() as usize + 1).max(2);
    let x_fmt = |v: &f64| {
        if (v - v.round()).abs() < 1e-6 {
            format!("{}×", 2f64.powf(v.round()))
        } else {
            String::new()
        }
    };
    let series = |f: &dyn Fn(&ExecutorFigures) -> Option<f64>, k: Key| {
        report
            .steps
            .iter()
            .filter_map(|s| {
                s.executors
                    .iter()
                    .find(|e| (e.executor, e.hints) == k)
                    .and_then(f)
                    .map(|y| (s.load.log2(), y))
            })
            .collect::<Vec<_>>()
    };

    // One legend for all panels, in a strip above them.
    for (x, row, label, style, dash) in placed {
        let y = 17 + LEGEND_ROW * row;
        match dash {
            Some((on, off)) => {
                let (on, off) = (on.min(10) as i32, off as i32);
                let mut x0 = x;
                while x0 < x + 26 {
                    let x1 = (x0 + on).min(x + 26);
                    legend
                        .draw(&PathElement::new(vec![(x0, y), (x1, y)], style))
                        .map_err(chart_err)?;
                    x0 = x1 + off;
                }
            }
            None => {
                legend
                    .draw(&PathElement::new(vec![(x, y), (x + 26, y)], style))
                    .map_err(chart_err)?;
            }
        }
        legend
            .draw(&Text::new(
                label,
                (x + 32, y - 7),
                ("sans-serif", 14).into_font(),
            ))
            .map_err(chart_err)?;
    }

    // Panel 1: goodput as % of offered, with the upper bound.
    {
        let mut chart = ChartBuilder::on(&panels[0])
            .caption("goodput (on time, % of offered)", ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(48)
            .build_cartesian_2d(lo..hi, 0.0f64..100.0)
            .map_err(chart_err)?;
        chart
            .configure_mesh()
            .x_desc("offered load (× capacity)")
            .y_desc("%")
            .light_line_style(WHITE)
            .x_labels(x_labels)
            .x_label_formatter(&x_fmt)
            .draw()
            .map_err(chart_err)?;
        let bound: Vec<(f64, f64)> = report
            .steps
            .iter()
            .map(|s| (s.load.log2(), s.bound_share * 100.0))
            .collect();
        chart
            .draw_series(DashedLineSeries::new(
                bound,
                6,
                4,
                ShapeStyle::from(&BLACK).stroke_width(2),
            ))
            .map_err(chart_err)?;
        for &k in &keys {
            let pts = series(&|e| Some(e.goodput_share * 100.0), k);
            draw_line(&mut chart, pts, k)?;
        }
    }

    // Panels 2 and 3: p99 latency of completed jobs, and starvation p99, log scale.
    let log_panel = |area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
                     caption: &str,
                     f: &dyn Fn(&ExecutorFigures) -> Option<f64>,
                     reference: Option<f64>|
     -> Result<(), HarnessError> {
        let mut ymax = reference.unwrap_or(LOG_FLOOR_MS);
        let mut ymin = reference.unwrap_or(f64::INFINITY);
        for &k in &keys {
            for (_, y) in series(f, k) {
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
            .build_cartesian_2d(lo..hi, (ymin..ymax.max(1.0) * 2.0).log_scale())
            .map_err(chart_err)?;
        chart
            .configure_mesh()
            .x_desc("offered load (× capacity)")
            .y_desc("ms")
            .light_line_style(WHITE)
            .x_labels(x_labels)
            .x_label_formatter(&x_fmt)
            .draw()
            .map_err(chart_err)?;
        if let Some(r) = reference {
            chart
                .draw_series(DashedLineSeries::new(
                    vec![(lo, r), (hi, r)],
                    6,
                    4,
                    ShapeStyle::from(&BLACK).stroke_width(1),
                ))
                .map_err(chart_err)?;
        }
        for &k in &keys {
            let pts: Vec<(f64, f64)> = series(f, k)
                .into_iter()
                .map(|(x, y)| (x, y.max(ymin)))
                .collect();
            draw_line(&mut chart, pts, k)?;
        }
        Ok(())
    };
    log_panel(
        &panels[1],
        "p99 latency of completed jobs (ms, log)",
        &|e| e.latency_ms.p99,
        None,
    )?;
    log_panel(
        &panels[2],
        "executor starvation: 1 ms sleeper lateness p99 (ms, log)",
        &|e| e.starvation_ms.p99,
        report.idle_starvation_ms.p99,
    )?;
    root.present().map_err(chart_err)?;
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
