//! A labelled square matrix of values in [0, 1], each cell coloured and
//! printed (e.g. RP between every pair of models).

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{plot_error, Figure, FAMILY};
use crate::Result;

#[derive(Clone, Debug)]
pub struct Heatmap {
    pub title: String,
    /// Row and column labels, in matrix order.
    pub labels: Vec<String>,
    /// values\[i\]\[j\], NaN for no value.
    pub values: Vec<Vec<f64>>,
}

/// White (0) to dark blue (1).
fn shade(v: f64) -> RGBColor {
    let t = v.clamp(0.0, 1.0);
    let mix = |a: f64, b: f64| (a + t * (b - a)).round() as u8;
    RGBColor(mix(255.0, 8.0), mix(255.0, 48.0), mix(255.0, 107.0))
}

impl Figure for Heatmap {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>, path: &Path) -> Result<()> {
        let err = |e: DrawingAreaErrorKind<DB::ErrorType>| plot_error(path, e);
        let k = self.labels.len() as i32;
        let label = |v: &SegmentValue<i32>| match v {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
                self.labels.get(*i as usize).cloned().unwrap_or_default()
            }
            SegmentValue::Last => String::new(),
        };
        let mut chart = ChartBuilder::on(area)
            .caption(&self.title, (FAMILY, 20))
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(150)
            // Integer ranges are inclusive in plotters: 0..k-1 gives k segments.
            .build_cartesian_2d((0..k - 1).into_segmented(), (0..k - 1).into_segmented())
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(k as usize)
            .y_labels(k as usize)
            .x_label_formatter(&label)
            .y_label_formatter(&label)
            .label_style((FAMILY, 12))
            .draw()
            .map_err(err)?;
        for (i, row) in self.values.iter().enumerate() {
            for (j, &v) in row.iter().enumerate() {
                let (x, y) = (j as i32, i as i32);
                let cell = [
                    (SegmentValue::Exact(x), SegmentValue::Exact(y)),
                    (SegmentValue::Exact(x + 1), SegmentValue::Exact(y + 1)),
                ];
                let color = if v.is_finite() {
                    shade(v)
                } else {
                    RGBColor(220, 220, 220)
                };
                chart
                    .draw_series([Rectangle::new(cell, color.filled())])
                    .map_err(err)?;
                let text = if v.is_finite() {
                    format!("{v:.2}")
                } else {
                    "-".into()
                };
                let ink = if v.is_finite() && v > 0.55 {
                    WHITE
                } else {
                    BLACK
                };
                chart
                    .draw_series([Text::new(
                        text,
                        (SegmentValue::CenterOf(x), SegmentValue::CenterOf(y)),
                        (FAMILY, 15)
                            .into_font()
                            .color(&ink)
                            .pos(Pos::new(HPos::Center, VPos::Center)),
                    )])
                    .map_err(err)?;
            }
        }
        Ok(())
    }
}
