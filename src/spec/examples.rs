//! Training examples read from files as the denoisers take them.

use std::path::Path;

use candle_core::{DType, Tensor};

use super::kinds::rows;
use crate::data::npy::read_npy;
use crate::data::{data_file, examples_in};
use crate::{Error, Result};

/// The training examples at `path` (an .npy file, or a `regimes data`
/// folder) as the denoisers read them: float rows `[N, n]` or images
/// `[N, C, H, W]` in their own dtype; anything else as training reads it
/// (`[N, H, W]` as one channel, bytes mapped to [-1, 1]), converted once
/// into `dtype`.
pub fn training_examples(path: &Path, dtype: DType) -> Result<Tensor> {
    let file = data_file(path);
    let t = read_npy(&file)?;
    match (t.rank(), t.dtype()) {
        (2 | 4, d) if d != DType::U8 => Ok(t),
        _ => examples_in(t, &file, dtype),
    }
}

/// The rows of a training set (`Source::TrainingRows`), flattened from
/// [`training_examples`].
pub fn training_rows(path: &Path, dtype: DType) -> Result<Tensor> {
    rows(&training_examples(path, dtype)?)
}

/// Training images [N, C, H, W] ([`training_examples`]), for the patch denoisers.
pub fn training_images(path: &Path, dtype: DType) -> Result<Tensor> {
    let images = training_examples(path, dtype)?;
    match images.rank() {
        4 => Ok(images),
        _ => Err(Error::format(
            &data_file(path),
            format!(
                "patch denoisers need images [N, C, H, W], got {:?}",
                images.dims()
            ),
        )),
    }
}
