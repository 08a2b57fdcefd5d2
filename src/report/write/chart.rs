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

/// Renders the chart as an SVG document.
pub fn unallocated_svg(curves: &[PolicyCurve]) -> Result<String, ChartError> {
    let series: Vec<Series<'_>> = curves
        .iter()
        .map(|curve| Series {
            name: curve.policy.as_str(),
            points: curve
                .points
                .iter()
                .map(|p| (f64::from(p.arrived_pct), p.unalloc.median))
                .collect(),
        })
        .collect();
    line_chart(
        &Axes {
            title: "Unallocated GPU vs. arrived workload (median over seeds)",
            y_desc: "Unallocated GPU (%)",
            y_max: 100.0,
        },
        &series,
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
        draw(&root, axes, series)?;
        root.present()?;
    }
    Ok(svg)
}

fn draw(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    axes: &Axes<'_>,
    series: &[Series<'_>],
) -> Result<(), ChartError> {
    root.fill(&WHITE)?;
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
        let color = Palette99::pick(index).to_rgba();
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
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 16))
        .draw()?;
    Ok(())
}
