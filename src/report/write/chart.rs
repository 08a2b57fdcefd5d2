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
    let mut svg = String::new();
    {
        // The backend borrows `svg` and flushes into it on `present`.
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        draw(&root, curves)?;
        root.present()?;
    }
    Ok(svg)
}

fn draw(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    curves: &[PolicyCurve],
) -> Result<(), ChartError> {
    root.fill(&WHITE)?;
    let x_max = curves
        .iter()
        .flat_map(|c| &c.points)
        .map(|p| p.arrived_pct)
        .fold(X_MAX, u32::max);
    let mut chart = ChartBuilder::on(root)
        .caption(
            "Unallocated GPU vs. arrived workload (median over seeds)",
            ("sans-serif", 22),
        )
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..f64::from(x_max), 0.0..100.0)?;
    chart
        .configure_mesh()
        .x_desc("Arrived workload (% of cluster GPU capacity)")
        .y_desc("Unallocated GPU (%)")
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 17))
        .draw()?;

    for (index, curve) in curves.iter().enumerate() {
        let color = Palette99::pick(index).to_rgba();
        let line = curve
            .points
            .iter()
            .map(|p| (f64::from(p.arrived_pct), p.unalloc.median));
        chart
            .draw_series(LineSeries::new(line, color.stroke_width(2)))?
            .label(curve.policy.as_str())
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
