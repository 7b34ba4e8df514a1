//! Images tiled into one PNG: rows of [K, C, H, W] images in [-1, 1], each
//! pixel drawn as a zoom x zoom block, tiles separated by white gaps.

use std::path::Path;

use candle_core::Tensor;

use crate::data::images::to_bytes;
use crate::data::write_png;
use crate::{Error, Result};

/// Writes `rows` (each [K, C, H, W] in [-1, 1], one C, H, W for all) as one
/// PNG grid; a row with fewer images than the widest leaves white tiles.
pub fn write_image_grid(path: &Path, rows: &[Tensor], zoom: usize) -> Result<()> {
    let Some(first) = rows.first() else {
        return Err(Error::invalid(
            "image grid rows",
            0,
            "need at least one row",
        ));
    };
    let (_, channels, height, width) = first.dims4()?;
    let columns = rows
        .iter()
        .map(|r| r.dim(0).unwrap_or(0))
        .max()
        .unwrap_or(0);
    let gap = zoom.max(1);
    let (tile_h, tile_w) = (height * zoom + gap, width * zoom + gap);
    let (grid_h, grid_w) = (rows.len() * tile_h + gap, columns * tile_w + gap);
    let plane = grid_h * grid_w;
    let mut canvas = vec![255u8; channels * plane];
    for (r, row) in rows.iter().enumerate() {
        let (_, c, h, w) = row.dims4()?;
        if (c, h, w) != (channels, height, width) {
            return Err(Error::shape(
                format!("row {r} of the image grid"),
                format!("[K, {channels}, {height}, {width}]"),
                format!("{:?}", row.dims()),
            ));
        }
        let bytes = to_bytes(row)?;
        for (k, image) in bytes.chunks_exact(channels * height * width).enumerate() {
            let (top, left) = (gap + r * tile_h, gap + k * tile_w);
            for c in 0..channels {
                for y in 0..height * zoom {
                    for x in 0..width * zoom {
                        let value = image[(c * height + y / zoom) * width + x / zoom];
                        canvas[c * plane + (top + y) * grid_w + left + x] = value;
                    }
                }
            }
        }
    }
    write_png(path, &canvas, channels, grid_h, grid_w)
}
