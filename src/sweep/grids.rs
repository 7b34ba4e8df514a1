//! Sample grids of an image sweep: at each N, every model's first samples in
//! seed order (the same initial noise in every column), each above the
//! nearest image of its training set, so memorized and novel samples can be
//! told apart by eye.

use std::path::{Path, PathBuf};

use candle_core::{DType, Tensor};

use super::cell::SAMPLES_FILE;
use super::engine::Sweep;
use super::results::Results;
use crate::data::npy::read_npy;
use crate::metrics::{nearest_two, DEFAULT_CHUNK};
use crate::plot::{write_image_grid, GridRow};
use crate::Result;

/// Samples per row of a grid.
pub const GRID_COLUMNS: usize = 16;
/// Each image pixel is drawn as a GRID_ZOOM x GRID_ZOOM block.
pub const GRID_ZOOM: usize = 4;
/// The label of a row of nearest training images.
pub const NEAREST_LABEL: &str = "nearest training";

/// Writes `dir/samples_nNNNNN.png` for every N of a sweep whose examples are
/// images (read from a file, each [C, H, W] with C = 1 or 3): per model
/// (empirical denoiser first), a row of samples 0..16 labelled with the
/// model and beneath it the nearest training image of each (Euclidean, as in
/// the memorization ratio).
/// Other sweeps get no grids.
pub fn sample_grids(root: &Path, results: &Results, dir: &Path) -> Result<Vec<PathBuf>> {
    if results.config.data.file.is_none() {
        return Ok(Vec::new());
    }
    let sweep = Sweep::open(results.config.clone(), root)?;
    if !matches!(sweep.training_set(1)?.dims(), [_, 1 | 3, _, _]) {
        return Ok(Vec::new());
    }
    let mut written = Vec::new();
    for &n in &results.config.ns {
        let train = sweep.training_set(n)?;
        let mut rows = Vec::new();
        for cell in Sweep::grid(&results.config).iter().filter(|c| c.n == n) {
            let samples = read_npy(&cell.dir(root).join(SAMPLES_FILE))?.to_dtype(DType::F32)?;
            let shown = samples.narrow(0, 0, samples.dim(0)?.min(GRID_COLUMNS))?;
            let shown = shown.reshape([&[shown.dim(0)?][..], &train.dims()[1..]].concat())?;
            let nearest = nearest_images(&shown, &train)?;
            rows.extend([
                GridRow::new(cell.model.label(), shown),
                GridRow::new(NEAREST_LABEL, nearest),
            ]);
        }
        let path = dir.join(format!("samples_n{n:05}.png"));
        write_image_grid(&path, &rows, GRID_ZOOM)?;
        written.push(path);
    }
    Ok(written)
}

/// The training example nearest to each of `samples` (Euclidean), shaped like them.
pub fn nearest_images(samples: &Tensor, train: &Tensor) -> Result<Tensor> {
    let flat = |t: &Tensor| -> Result<Tensor> { Ok(t.flatten_from(1)?.to_dtype(DType::F64)?) };
    let nearest: Vec<u32> = match train.dim(0)? {
        1 => vec![0; samples.dim(0)?],
        _ => nearest_two(&flat(samples)?, &flat(train)?, DEFAULT_CHUNK)?
            .nearest
            .into_iter()
            .map(|i| i as u32)
            .collect(),
    };
    let index = Tensor::new(nearest.as_slice(), train.device())?;
    Ok(train.index_select(&index, 0)?.reshape(samples.shape())?)
}
