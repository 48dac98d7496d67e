//! The SVG chart: goodput share, p99 latency and executor starvation against offered
//! load, one line per executor (plotters, SVG backend).

use std::path::Path;

use plotters::prelude::*;

use super::HarnessError;
use super::executor::ExecutorKind;
use super::report::OverloadReport;

/// Chart size in pixels.
const SIZE: (u32, u32) = (1_560, 500);
/// Floor of the log-scaled axes, ms (a p99 of 0 is drawn here).
const LOG_FLOOR_MS: f64 = 0.01;

fn color(k: ExecutorKind) -> RGBColor {
    match k {
        ExecutorKind::HelixLearning => RGBColor(0xd6, 0x27, 0x28),
        ExecutorKind::HelixStatic => RGBColor(0xff, 0x7f, 0x0e),
        ExecutorKind::Spawn => RGBColor(0x1f, 0x77, 0xb4),
        ExecutorKind::SpawnBlocking => RGBColor(0x2c, 0xa0, 0x2c),
        ExecutorKind::TowerLimitShed => RGBColor(0x94, 0x67, 0xbd),
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
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(chart_err)?;
    let title = format!(
        "HelixRouter overload harness: {} cores, {:.1} s per step, seed {}",
        report.capacity.cores, report.secs_per_step, report.seed
    );
    let root = root.titled(&title, ("sans-serif", 20)).map_err(chart_err)?;
    let (legend, plots) = root.split_vertically(34);
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
    let kinds: Vec<ExecutorKind> = ExecutorKind::ALL
        .into_iter()
        .filter(|k| {
            report
                .steps
                .iter()
                .any(|s| s.executors.iter().any(|e| e.executor == *k))
        })
        .collect();
    let series = |f: &dyn Fn(&super::report::ExecutorFigures) -> Option<f64>, k: ExecutorKind| {
        report
            .steps
            .iter()
            .filter_map(|s| {
                s.executors
                    .iter()
                    .find(|e| e.executor == k)
                    .and_then(f)
                    .map(|y| (s.load.log2(), y))
            })
            .collect::<Vec<_>>()
    };

    // One legend for all panels, in a strip above them.
    let mut x = 40;
    let mut item = |label: &str, style: ShapeStyle, dashed: bool| -> Result<(), HarnessError> {
        if dashed {
            for seg in 0..3 {
                let x0 = x + seg * 10;
                legend
                    .draw(&PathElement::new(vec![(x0, 17), (x0 + 6, 17)], style))
                    .map_err(chart_err)?;
            }
        } else {
            legend
                .draw(&PathElement::new(vec![(x, 17), (x + 26, 17)], style))
                .map_err(chart_err)?;
        }
        legend
            .draw(&Text::new(
                label.to_owned(),
                (x + 32, 10),
                ("sans-serif", 14).into_font(),
            ))
            .map_err(chart_err)?;
        x += 44 + 8 * label.chars().count() as i32;
        Ok(())
    };
    for &k in &kinds {
        item(k.label(), color(k).stroke_width(3), false)?;
    }
    item(
        "upper bound (goodput) / idle runtime (starvation)",
        BLACK.stroke_width(2),
        true,
    )?;

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
        for &k in &kinds {
            let pts = series(&|e| Some(e.goodput_share * 100.0), k);
            chart
                .draw_series(LineSeries::new(pts, color(k).stroke_width(2)).point_size(3))
                .map_err(chart_err)?;
        }
    }

    // Panels 2 and 3: p99 latency of completed jobs, and starvation p99, log scale.
    let log_panel = |area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
                     caption: &str,
                     f: &dyn Fn(&super::report::ExecutorFigures) -> Option<f64>,
                     reference: Option<f64>|
     -> Result<(), HarnessError> {
        let mut ymax = reference.unwrap_or(LOG_FLOOR_MS);
        let mut ymin = reference.unwrap_or(f64::INFINITY);
        for &k in &kinds {
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
        for &k in &kinds {
            let pts: Vec<(f64, f64)> = series(f, k)
                .into_iter()
                .map(|(x, y)| (x, y.max(ymin)))
                .collect();
            chart
                .draw_series(LineSeries::new(pts, color(k).stroke_width(2)).point_size(3))
                .map_err(chart_err)?;
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
