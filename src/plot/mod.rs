//! Figures with plotters: line charts with confidence bands and shaded
//! regions, written as PNG and SVG. Text uses the embedded DejaVu Sans, so no
//! system font is needed.

use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::io::write_atomic;
use crate::{Error, Result};

mod chart;
mod heatmap;
mod image_grid;
mod run_losses;

pub use chart::{Axis, LineChart, Scale, Series, Shade};
pub use heatmap::Heatmap;
pub use image_grid::{write_image_grid, GridRow};
pub use run_losses::run_loss_charts;

const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";
const SIZE: (u32, u32) = (900, 600);

/// Colour-blind-safe qualitative palette (Okabe-Ito), in series order.
pub const PALETTE: [RGBColor; 7] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(230, 159, 0),
    RGBColor(0, 0, 0),
];

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for style in [FontStyle::Normal, FontStyle::Bold] {
            let parsed = plotters::style::register_font(FAMILY, style, FONT);
            assert!(parsed.is_ok(), "the embedded font parses");
        }
    });
}

/// Something that draws itself on any plotters backend.
pub trait Figure {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>, path: &Path) -> Result<()>;
}

/// Draws `figure` into `stem.png` and `stem.svg`, each written atomically
/// (the PNG through a temporary file and a rename). Returns both paths.
pub fn save_figure(stem: &Path, figure: &impl Figure) -> Result<[PathBuf; 2]> {
    register_font();
    // Appended, not `with_extension`: stems like `gap_sigma_0.05` hold dots.
    let with = |suffix: &str| {
        let mut name = stem.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    let (png, svg, partial) = (with(".png"), with(".svg"), with(".partial.png"));
    {
        let root = BitMapBackend::new(&partial, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_error(&png, e))?;
        figure.draw(&root, &png)?;
        root.present().map_err(|e| plot_error(&png, e))?;
    }
    std::fs::rename(&partial, &png).map_err(|e| Error::io(&png, e))?;
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_error(&svg, e))?;
        figure.draw(&root, &svg)?;
        root.present().map_err(|e| plot_error(&svg, e))?;
    }
    write_atomic(&svg, text.as_bytes())?;
    Ok([png, svg])
}

/// A plotters error, named by the file being drawn.
pub(crate) fn plot_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::format(path, format!("drawing the figure failed: {e}"))
}
