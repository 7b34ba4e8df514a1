//! Training examples: loading them from a file, and nested subsets of size N.

use std::path::{Path, PathBuf};

use candle_core::{DType, Tensor};
use rand::Rng;
use rand_chacha::ChaCha20Rng;

use super::npy::read_npy;
use crate::rng::{stream, Purpose};
use crate::{Error, Result};

/// Examples `[N, ...]` as f32 from an .npy file, or from `DIR/data.npy` (the
/// layout `regimes data` writes). Byte images (u8) are mapped to [-1, 1];
/// a rank-3 array `[N, H, W]` is read as grayscale images `[N, 1, H, W]`, as
/// `regimes data import` reads it (an MLP flattens either to the same rows).
pub fn load_examples(path: &Path) -> Result<Tensor> {
    let file = data_file(path);
    examples_from(read_npy(&file)?, &file)
}

/// `path` itself, or the data.npy of a `regimes data` folder.
pub fn data_file(path: &Path) -> PathBuf {
    match path.is_dir() {
        true => path.join("data.npy"),
        false => path.to_path_buf(),
    }
}

/// The array `t` read from `file` as examples, as [`load_examples`] returns them.
pub fn examples_from(t: Tensor, file: &Path) -> Result<Tensor> {
    examples_in(t, file, DType::F32)
}

/// As [`examples_from`], in `dtype`: bytes are mapped to [-1, 1] and floats
/// converted, once, straight into it.
pub fn examples_in(t: Tensor, file: &Path, dtype: DType) -> Result<Tensor> {
    if t.rank() < 2 || t.dim(0)? == 0 {
        return Err(Error::format(
            file,
            format!(
                "expected examples [N, n] or [N, C, H, W] with N >= 1, got shape {:?}",
                t.dims()
            ),
        ));
    }
    let t = match t.dims() {
        &[n, h, w] => t.reshape((n, 1, h, w))?,
        _ => t,
    };
    Ok(match t.dtype() {
        DType::U8 => t.to_dtype(dtype)?.affine(2.0 / 255.0, -1.0)?,
        _ => t.to_dtype(dtype)?,
    })
}

/// A uniformly random permutation of 0..n (Fisher-Yates).
pub fn permutation(n: usize, rng: &mut ChaCha20Rng) -> Vec<usize> {
    let mut p: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        p.swap(i, rng.gen_range(0..=i));
    }
    p
}

/// The row indices of the training set of size `n` out of `total`: the first
/// `n` entries of one permutation drawn from stream (seed, Subset, 0). The
/// permutation does not depend on `n`, so the sets are nested: the N = 64 set
/// lies inside the N = 128 set.
pub fn nested_subset(total: usize, n: usize, seed: u64) -> Result<Vec<usize>> {
    disjoint_subset(total, n, 0, seed)
}

/// Training set `part` of size `n` among disjoint ones (Kadkhodaie et al.):
/// entries part n .. (part + 1) n of the permutation of [`nested_subset`],
/// so part 0 is the nested set and no two parts share an example.
pub fn disjoint_subset(total: usize, n: usize, part: usize, seed: u64) -> Result<Vec<usize>> {
    let end = n.checked_mul(part + 1).filter(|&end| n > 0 && end <= total);
    let Some(end) = end else {
        return Err(Error::invalid(
            "training-set size N",
            n,
            match part {
                0 => format!("must be between 1 and the {total} examples available"),
                _ => format!(
                    "must be at least 1, and {} disjoint sets of it must fit in the {total} examples available",
                    part + 1
                ),
            },
        ));
    };
    let mut p = permutation(total, &mut stream(seed, Purpose::Subset, 0));
    p.truncate(end);
    Ok(p.split_off(end - n))
}

/// The nested training set of size `n` (see [`nested_subset`]) as rows of `examples`.
pub fn training_set(examples: &Tensor, n: usize, seed: u64) -> Result<Tensor> {
    training_part(examples, n, 0, seed)
}

/// Up to `count` rows of `examples` outside the nested training set of size
/// `n`: the next entries of its permutation (THEORY §15's held-out rows);
/// None when the training set takes every example.
pub fn heldout_set(examples: &Tensor, n: usize, count: usize, seed: u64) -> Result<Option<Tensor>> {
    let total = examples.dim(0)?;
    let end = n.saturating_add(count).min(total);
    if n >= end {
        return Ok(None);
    }
    let rows: Vec<u32> = disjoint_subset(total, end, 0, seed)?[n..]
        .iter()
        .map(|&i| i as u32)
        .collect();
    let index = Tensor::new(rows.as_slice(), examples.device())?;
    Ok(Some(examples.index_select(&index, 0)?))
}

/// Disjoint training set `part` of size `n` (see [`disjoint_subset`]) as rows of `examples`.
pub fn training_part(examples: &Tensor, n: usize, part: usize, seed: u64) -> Result<Tensor> {
    let rows: Vec<u32> = disjoint_subset(examples.dim(0)?, n, part, seed)?
        .into_iter()
        .map(|i| i as u32)
        .collect();
    let index = Tensor::new(rows.as_slice(), examples.device())?;
    Ok(examples.index_select(&index, 0)?)
}

/// The labels of training set `part` of size `n`, in its row order: `labels`
/// holds one per example, as [`training_part`] picks its rows.
pub fn training_labels(labels: &[u32], n: usize, part: usize, seed: u64) -> Result<Vec<u32>> {
    Ok(disjoint_subset(labels.len(), n, part, seed)?
        .into_iter()
        .map(|i| labels[i])
        .collect())
}

/// The per-coordinate standard deviation of `examples`, pooled over
/// coordinates: sqrt(mean_i Var\[y_i\]); EDM's sigma_data (THEORY §3).
pub fn sigma_data(examples: &Tensor) -> Result<f64> {
    let y = examples.flatten_from(1)?.to_dtype(DType::F64)?;
    let centred = y.broadcast_sub(&y.mean_keepdim(0)?)?;
    let variance = centred.sqr()?.mean_all()?.to_scalar::<f64>()?;
    Ok(variance.sqrt())
}
