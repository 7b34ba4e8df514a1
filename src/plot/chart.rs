//! A line chart: series with optional confidence bands, shaded x ranges,
//! linear, log2 or log10 axes. Values are placed in transformed coordinates
//! (log2 N, log10 gap) and ticks are labelled in the original units.

use std::path::Path;

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::{plot_error, Figure, FAMILY, PALETTE};
use crate::Result;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scale {
    Linear,
    /// Ticks at powers of two, labelled 2^k.
    Log2,
    /// Ticks at powers of ten, labelled 1e-k.
    Log10,
}

impl Scale {
    fn to(&self, v: f64) -> f64 {
        match self {
            Scale::Linear => v,
            Scale::Log2 => v.log2(),
            Scale::Log10 => v.log10(),
        }
    }

    /// The tick at transformed position `t`, in original units. plotters may
    /// put ticks between powers, so those are labelled with their value.
    fn label(&self, t: f64) -> String {
        let power = (t - t.round()).abs() < 1e-9;
        match self {
            Scale::Linear => format!("{t:.2}"),
            Scale::Log2 if power => format!("{}", t.round().exp2()),
            Scale::Log2 => format!("{:.2}", t.exp2()),
            Scale::Log10 if power => format!("1e{}", t.round()),
            Scale::Log10 => format!("{:.1e}", 10f64.powf(t)),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Axis {
    pub label: String,
    pub scale: Scale,
    /// Fixed range in original units; None fits the data.
    pub range: Option<(f64, f64)>,
}

impl Axis {
    /// An axis that fits the data.
    pub fn new(label: impl Into<String>, scale: Scale) -> Self {
        Self {
            label: label.into(),
            scale,
            range: None,
        }
    }

    /// An axis over the fixed `range`.
    pub fn fixed(label: impl Into<String>, scale: Scale, range: (f64, f64)) -> Self {
        Self {
            range: Some(range),
            ..Self::new(label, scale)
        }
    }
}

/// One line: points (x, y) and, optionally, a band (x, low, high).
#[derive(Clone, Debug, Default)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    pub band: Vec<(f64, f64, f64)>,
    pub dashed: bool,
    /// Index into [`PALETTE`], so related series can share a colour.
    pub color: usize,
}

/// A shaded x range with a caption at its top, e.g. a regime.
#[derive(Clone, Debug)]
pub struct Shade {
    pub from: f64,
    pub to: f64,
    pub caption: String,
    pub color: RGBColor,
}

#[derive(Clone, Debug)]
pub struct LineChart {
    pub title: String,
    pub x: Axis,
    pub y: Axis,
    pub series: Vec<Series>,
    pub shades: Vec<Shade>,
}

impl LineChart {
    /// The (x, y) ranges in transformed coordinates, padded a little.
    fn ranges(&self) -> ((f64, f64), (f64, f64)) {
        let fit = |axis: &Axis, values: Vec<f64>| {
            let (lo, hi) = match axis.range {
                Some((lo, hi)) => (axis.scale.to(lo), axis.scale.to(hi)),
                None => values
                    .iter()
                    .map(|&v| axis.scale.to(v))
                    .filter(|v| v.is_finite())
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                        (lo.min(v), hi.max(v))
                    }),
            };
            match lo.is_finite() && hi.is_finite() {
                false => (0.0, 1.0),
                true if hi - lo < 1e-12 => (lo - 0.5, hi + 0.5),
                true => (lo - 0.03 * (hi - lo), hi + 0.03 * (hi - lo)),
            }
        };
        let xs = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0))
            .collect();
        let ys = self
            .series
            .iter()
            .flat_map(|s| {
                s.points
                    .iter()
                    .map(|p| p.1)
                    .chain(s.band.iter().flat_map(|b| [b.1, b.2]))
            })
            .collect();
        (fit(&self.x, xs), fit(&self.y, ys))
    }
}

impl LineChart {
    /// The regime bands behind the lines, each with its caption.
    fn draw_shades<DB: DrawingBackend>(
        &self,
        chart: &mut ChartContext<'_, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
        ((x0, x1), (y0, y1)): ((f64, f64), (f64, f64)),
        path: &Path,
    ) -> Result<()> {
        let err = |e: DrawingAreaErrorKind<DB::ErrorType>| plot_error(path, e);
        for shade in &self.shades {
            let (a, b) = (self.x.scale.to(shade.from), self.x.scale.to(shade.to));
            chart
                .draw_series([Rectangle::new(
                    [(a, y0), (b, y1)],
                    shade.color.mix(0.15).filled(),
                )])
                .map_err(err)?;
            chart
                .draw_series([Text::new(
                    shade.caption.clone(),
                    (a + 0.02 * (x1 - x0), y1 - 0.04 * (y1 - y0)),
                    (FAMILY, 14).into_font().color(&shade.color.mix(0.9)),
                )])
                .map_err(err)?;
        }
        Ok(())
    }
}

impl Figure for LineChart {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>, path: &Path) -> Result<()> {
        let err = |e: DrawingAreaErrorKind<DB::ErrorType>| plot_error(path, e);
        let ((x0, x1), (y0, y1)) = self.ranges();
        let mut chart = ChartBuilder::on(area)
            .caption(&self.title, (FAMILY, 22))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(65)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(err)?;
        let (xs, ys) = (self.x.scale, self.y.scale);
        let integer_ticks = |lo: f64, hi: f64| ((hi.floor() - lo.ceil()) as usize + 1).clamp(5, 12);
        let (x_format, y_format) = (|t: &f64| xs.label(*t), |t: &f64| ys.label(*t));
        let mut mesh = chart.configure_mesh();
        mesh.x_desc(self.x.label.as_str())
            .y_desc(self.y.label.as_str())
            .label_style((FAMILY, 15))
            .axis_desc_style((FAMILY, 17))
            .x_label_formatter(&x_format)
            .y_label_formatter(&y_format)
            .light_line_style(WHITE.mix(0.0));
        if xs != Scale::Linear {
            mesh.x_labels(integer_ticks(x0, x1));
        }
        if ys != Scale::Linear {
            mesh.y_labels(integer_ticks(y0, y1));
        }
        mesh.draw().map_err(err)?;

        self.draw_shades(&mut chart, ((x0, x1), (y0, y1)), path)?;
        for s in &self.series {
            let color = PALETTE[s.color % PALETTE.len()];
            let place = |x: f64, y: f64| (xs.to(x), ys.to(y));
            let finite = |p: &(f64, f64)| p.0.is_finite() && p.1.is_finite();
            if !s.band.is_empty() {
                let upper = s.band.iter().map(|b| place(b.0, b.2));
                let lower = s.band.iter().rev().map(|b| place(b.0, b.1));
                let outline: Vec<(f64, f64)> = upper.chain(lower).filter(finite).collect();
                chart
                    .draw_series([Polygon::new(outline, color.mix(0.18).filled())])
                    .map_err(err)?;
            }
            let line: Vec<(f64, f64)> = s
                .points
                .iter()
                .map(|p| place(p.0, p.1))
                .filter(finite)
                .collect();
            let style = ShapeStyle::from(&color).stroke_width(2);
            let drawn = match s.dashed {
                true => chart.draw_series(DashedLineSeries::new(line.clone(), 8, 5, style)),
                false => chart.draw_series(LineSeries::new(line.clone(), style)),
            }
            .map_err(err)?;
            drawn
                .label(s.label.as_str())
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], style));
            chart
                .draw_series(line.iter().map(|&p| Circle::new(p, 3, color.filled())))
                .map_err(err)?;
        }
        chart
            .configure_series_labels()
            .label_font((FAMILY, 14))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .position(SeriesLabelPosition::LowerRight)
            .draw()
            .map_err(err)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Scale;

    #[test]
    fn ticks_are_labelled_with_the_value_at_their_position() {
        assert_eq!(Scale::Log2.label(3.0), "8");
        assert_eq!(Scale::Log2.label(-1.0), "0.5");
        assert_eq!(Scale::Log2.label(0.5), "1.41");
        assert_eq!(Scale::Log10.label(-1.0), "1e-1");
        // A tick halfway between powers of ten is 10^-0.5, not a rounded power.
        assert_eq!(Scale::Log10.label(-0.5), "3.2e-1");
        assert_eq!(Scale::Linear.label(0.25), "0.25");
    }
}
