//! The unallocated-GPU chart, after Fig. 9(a) of the FGD paper: median unallocated GPU %
//! against arrived workload %, one line per policy.
//!
//! plotters' SVG backend writes text as `<text>` elements, and without the `ttf`/`ab_glyph`
//! features it estimates label sizes itself, so no system font is needed.

use std::io;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::report::curves::PolicyCurve;

/// Errors while drawing the chart.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    /// plotters failed to lay out or draw an element.
    #[error("plotters could not draw the chart")]
    Draw(#[from] DrawingAreaErrorKind<io::Error>),
}

const WIDTH: u32 = 900;
const HEIGHT: u32 = 560;
/// The protocol's last bin; the x axis goes further only if the data does.
const X_MAX: u32 = 130;

/// Where the zoomed panel starts and ends on the x axis, and its top on the y axis: arrival
/// from 85 % to the end, unallocated 0–15 % — where the policies differ (below 85 % arrival
/// every policy places almost everything, so all lines sit on `100 − arrived`).
const ZOOM_X_MIN: f64 = 85.0;
const ZOOM_Y_MAX: f64 = 15.0;
/// Height of the zoomed panel; the full curve goes below it.
const ZOOM_HEIGHT: u32 = 520;

/// Renders the chart as an SVG document: on top the interesting range (85–130 % arrival,
/// 0–15 % unallocated) with a dashed marker at `at_pct` and a legend ordered from the policy
/// that leaves fewest GPUs idle at `at_pct` (its value beside its name), below it the whole
/// curve.
pub fn unallocated_svg(curves: &[PolicyCurve], at_pct: u32) -> Result<String, ChartError> {
    let at = f64::from(at_pct);
    let value_at = |curve: &PolicyCurve| {
        curve
            .points
            .iter()
            .find(|p| p.arrived_pct == at_pct)
            .map(|p| p.unalloc.median)
    };
    let labels: Vec<String> = curves
        .iter()
        .map(|curve| match value_at(curve) {
            Some(v) => format!("{} {v:.2} %", curve.policy),
            None => format!("{} n/a", curve.policy),
        })
        .collect();
    // Colours follow the input order (the same policy keeps its colour in every report);
    // the legend lists the best policy at the marker first.
    let mut order: Vec<usize> = (0..curves.len()).collect();
    order.sort_by(|a, b| {
        let va = curves.get(*a).and_then(value_at).unwrap_or(f64::INFINITY);
        let vb = curves.get(*b).and_then(value_at).unwrap_or(f64::INFINITY);
        va.total_cmp(&vb).then(a.cmp(b))
    });
    let series: Vec<(usize, Series<'_>)> = order
        .iter()
        .filter_map(|i| Some((*i, curves.get(*i)?, labels.get(*i)?)))
        .map(|(i, curve, label)| {
            (
                i,
                Series {
                    name: label.as_str(),
                    points: curve
                        .points
                        .iter()
                        .map(|p| (f64::from(p.arrived_pct), p.unalloc.median))
                        .collect(),
                },
            )
        })
        .collect();

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, ZOOM_HEIGHT + HEIGHT / 2))
            .into_drawing_area();
        root.fill(&WHITE)?;
        let (top, bottom) = root.split_vertically(ZOOM_HEIGHT);
        let x_max = series
            .iter()
            .flat_map(|(_, s)| &s.points)
            .map(|p| p.0)
            .fold(f64::from(X_MAX), f64::max);
        let title = format!(
            "Unallocated GPU vs. arrived workload (median over seeds); legend: value at {at_pct} %, fewest first"
        );
        let mut chart = ChartBuilder::on(&top)
            .caption(title, ("sans-serif", 19))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(60)
            .build_cartesian_2d(ZOOM_X_MIN..x_max, 0.0..ZOOM_Y_MAX)?;
        chart
            .configure_mesh()
            .x_desc("Arrived workload (% of cluster GPU capacity)")
            .y_desc("Unallocated GPU (%)")
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 17))
            .draw()?;
        for (index, line) in &series {
            let color = Palette99::pick(*index).to_rgba();
            // plotters does not clip lines to the plotting area: cut them at the panel's
            // edges so the part above 15 % or left of 85 % is not drawn over the labels.
            let segments = clip(&line.points, ZOOM_X_MIN, ZOOM_Y_MAX);
            let mut segments = segments.into_iter();
            chart
                .draw_series(LineSeries::new(
                    segments.next().unwrap_or_default(),
                    color.stroke_width(2),
                ))?
                .label(line.name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3))
                });
            for segment in segments {
                chart.draw_series(LineSeries::new(segment, color.stroke_width(2)))?;
            }
        }
        if (ZOOM_X_MIN..=x_max).contains(&at) {
            // The read-out bin: a dashed vertical line and its label.
            let dashes = (0..30).map(|k| {
                let y0 = ZOOM_Y_MAX * f64::from(k) / 30.0;
                PathElement::new(
                    vec![(at, y0), (at, y0 + ZOOM_Y_MAX / 60.0)],
                    BLACK.stroke_width(1),
                )
            });
            chart.draw_series(dashes)?;
            chart.draw_series(std::iter::once(Text::new(
                format!("--at {at_pct} %"),
                (at + 0.4, ZOOM_Y_MAX * 0.96),
                ("sans-serif", 15),
            )))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .label_font(("sans-serif", 16))
            .draw()?;

        let full: Vec<Series<'_>> = series.iter().map(|(_, s)| s.clone()).collect();
        let colours: Vec<usize> = series.iter().map(|(i, _)| *i).collect();
        draw_lines(
            &bottom,
            &Axes {
                title: "The whole curve",
                y_desc: "Unallocated GPU (%)",
                y_max: 100.0,
            },
            &full,
            &colours,
            false,
        )?;
        root.present()?;
    }
    Ok(svg)
}

/// The parts of a polyline inside `x ≥ x_min`, `y ≤ y_max`, as separate runs of points; a
/// segment crossing an edge is cut where it crosses.
fn clip(points: &[(f64, f64)], x_min: f64, y_max: f64) -> Vec<Vec<(f64, f64)>> {
    let inside = |p: (f64, f64)| p.0 >= x_min && p.1 <= y_max;
    let mut runs: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut current: Vec<(f64, f64)> = Vec::new();
    let mut previous: Option<(f64, f64)> = None;
    for &p in points {
        if let Some(q) = previous {
            match (inside(q), inside(p)) {
                (true, true) => {}
                (false, true) => current.push(crossing(q, p, x_min, y_max)),
                (true, false) => {
                    current.push(crossing(q, p, x_min, y_max));
                    runs.push(std::mem::take(&mut current));
                }
                (false, false) => {}
            }
        }
        if inside(p) {
            current.push(p);
        }
        previous = Some(p);
    }
    if !current.is_empty() {
        runs.push(current);
    }
    runs
}

/// Where the segment from `a` to `b` (one end inside, one outside) meets the panel's edge.
fn crossing(a: (f64, f64), b: (f64, f64), x_min: f64, y_max: f64) -> (f64, f64) {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    [
        (dy != 0.0).then(|| (y_max - a.1) / dy),
        (dx != 0.0).then(|| (x_min - a.0) / dx),
    ]
    .into_iter()
    .flatten()
    .filter(|t| (0.0..=1.0).contains(t))
    .map(|t| (a.0 + dx * t, a.1 + dy * t))
    .find(|p| p.0 >= x_min - 1e-9 && p.1 <= y_max + 1e-9)
    .map_or_else(
        || if a.0 >= x_min && a.1 <= y_max { a } else { b },
        |p| (p.0.max(x_min), p.1.min(y_max)),
    )
}

/// One line of a chart: a name for the legend and its (x, y) points.
#[derive(Debug, Clone, PartialEq)]
pub struct Series<'a> {
    /// Legend label.
    pub name: &'a str,
    /// Points, in increasing x.
    pub points: Vec<(f64, f64)>,
}

/// What a chart against arrived workload shows on its y axis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Axes<'a> {
    /// Caption above the chart.
    pub title: &'a str,
    /// Label of the y axis.
    pub y_desc: &'a str,
    /// Top of the y axis (the bottom is 0).
    pub y_max: f64,
}

/// Renders lines against arrived workload % (x from 0 to 130, or further if the data goes
/// further) as an SVG document.
pub fn line_chart(axes: &Axes<'_>, series: &[Series<'_>]) -> Result<String, ChartError> {
    let mut svg = String::new();
    {
        // The backend borrows `svg` and flushes into it on `present`.
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE)?;
        let colours: Vec<usize> = (0..series.len()).collect();
        draw_lines(&root, axes, series, &colours, true)?;
        root.present()?;
    }
    Ok(svg)
}

/// Draws `series` (colour `colours[i]` of the palette for line `i`) on `root`, with a legend
/// when `legend`.
fn draw_lines(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    axes: &Axes<'_>,
    series: &[Series<'_>],
    colours: &[usize],
    legend: bool,
) -> Result<(), ChartError> {
    let x_max = series
        .iter()
        .flat_map(|s| &s.points)
        .map(|p| p.0)
        .fold(f64::from(X_MAX), f64::max);
    let mut chart = ChartBuilder::on(root)
        .caption(axes.title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..x_max, 0.0..axes.y_max)?;
    chart
        .configure_mesh()
        .x_desc("Arrived workload (% of cluster GPU capacity)")
        .y_desc(axes.y_desc)
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 17))
        .draw()?;

    for (index, line) in series.iter().enumerate() {
        let color = Palette99::pick(colours.get(index).copied().unwrap_or(index)).to_rgba();
        chart
            .draw_series(LineSeries::new(
                line.points.iter().copied(),
                color.stroke_width(2),
            ))?
            .label(line.name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    if legend {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 16))
            .draw()?;
    }
    Ok(())
}
