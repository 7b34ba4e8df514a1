//! Images tiled into one PNG: rows of [K, C, H, W] images in [-1, 1], each
//! pixel drawn as a zoom x zoom block, tiles separated by white gaps, each
//! row optionally named in a left margin.

use std::path::Path;

use candle_core::Tensor;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{plot_error, register_font, FAMILY};
use crate::data::images::to_bytes;
use crate::data::write_png;
use crate::{Error, Result};

/// One row of a grid: a label (empty for none) and its [K, C, H, W] images.
pub struct GridRow {
    pub label: String,
    pub images: Tensor,
}

impl GridRow {
    pub fn new(label: impl Into<String>, images: Tensor) -> Self {
        Self {
            label: label.into(),
            images,
        }
    }
}

/// Writes `rows` (one C, H, W for all) as one PNG grid; a row with fewer
/// images than the widest leaves white tiles. With no labels the PNG keeps
/// the images' channels; labels are drawn in black in a left margin, which
/// makes the PNG RGB.
pub fn write_image_grid(path: &Path, rows: &[GridRow], zoom: usize) -> Result<()> {
    let Some(first) = rows.first() else {
        return Err(Error::invalid(
            "image grid rows",
            0,
            "need at least one row",
        ));
    };
    let (_, channels, height, width) = first.images.dims4()?;
    let columns = rows
        .iter()
        .map(|r| r.images.dim(0).unwrap_or(0))
        .max()
        .unwrap_or(0);
    let gap = zoom.max(1);
    let (tile_h, tile_w) = (height * zoom + gap, width * zoom + gap);
    let grid_h = rows.len() * tile_h + gap;
    let labels: Vec<&str> = rows.iter().map(|r| r.label.as_str()).collect();
    let font_px = (tile_h as f64 * 0.8).clamp(8.0, 16.0);
    let margin = labels
        .iter()
        .any(|l| !l.is_empty())
        .then(|| LabelMargin::fit(&labels, font_px, path))
        .transpose()?;
    let left = margin.as_ref().map_or(0, |m| m.width);
    let grid_w = left + columns * tile_w + gap;
    let out_channels = if margin.is_some() { 3 } else { channels };
    let plane = grid_h * grid_w;
    let mut canvas = vec![255u8; out_channels * plane];
    for (r, row) in rows.iter().enumerate() {
        let (_, c, h, w) = row.images.dims4()?;
        if (c, h, w) != (channels, height, width) {
            return Err(Error::shape(
                format!("row {r} of the image grid"),
                format!("[K, {channels}, {height}, {width}]"),
                format!("{:?}", row.images.dims()),
            ));
        }
        let bytes = to_bytes(&row.images)?;
        for (k, image) in bytes.chunks_exact(channels * height * width).enumerate() {
            let (top, x0) = (gap + r * tile_h, left + gap + k * tile_w);
            for out_c in 0..out_channels {
                // Grayscale images fill all three planes of a labelled grid.
                let c = out_c.min(channels - 1);
                for y in 0..height * zoom {
                    for x in 0..width * zoom {
                        let value = image[(c * height + y / zoom) * width + x / zoom];
                        canvas[out_c * plane + (top + y) * grid_w + x0 + x] = value;
                    }
                }
            }
        }
    }
    if let Some(margin) = margin {
        let text = margin.draw(&labels, font_px, gap, tile_h, grid_h, path)?;
        for y in 0..grid_h {
            for x in 0..margin.width {
                for c in 0..3 {
                    canvas[c * plane + y * grid_w + x] = text[(y * margin.width + x) * 3 + c];
                }
            }
        }
    }
    write_png(path, &canvas, out_channels, grid_h, grid_w)
}

/// The left margin that holds the row labels.
struct LabelMargin {
    width: usize,
}

impl LabelMargin {
    /// Wide enough for the widest label with half a font size either side.
    fn fit(labels: &[&str], font_px: f64, path: &Path) -> Result<Self> {
        register_font();
        let font = (FAMILY, font_px).into_font();
        let mut widest = 0;
        for label in labels {
            let (w, _) = font.box_size(label).map_err(|e| plot_error(path, e))?;
            widest = widest.max(w as usize);
        }
        Ok(Self {
            width: widest + font_px as usize,
        })
    }

    /// The margin as an RGB bitmap [grid_h, width, 3]: each label
    /// left-aligned and vertically centred on its row of tiles.
    fn draw(
        &self,
        labels: &[&str],
        font_px: f64,
        gap: usize,
        tile_h: usize,
        grid_h: usize,
        path: &Path,
    ) -> Result<Vec<u8>> {
        let mut rgb = vec![255u8; grid_h * self.width * 3];
        {
            let size = (self.width as u32, grid_h as u32);
            let area = BitMapBackend::with_buffer(&mut rgb, size).into_drawing_area();
            let style = (FAMILY, font_px)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Left, VPos::Center));
            for (r, label) in labels.iter().enumerate() {
                let centre = gap + r * tile_h + (tile_h - gap) / 2;
                let at = (font_px as i32 / 2, centre as i32);
                area.draw(&Text::new(*label, at, &style))
                    .map_err(|e| plot_error(path, e))?;
            }
            area.present().map_err(|e| plot_error(path, e))?;
        }
        Ok(rgb)
    }
}
