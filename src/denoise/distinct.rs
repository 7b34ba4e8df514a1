//! Equal training patches merged into one key with a count (THEORY §12).
//! Digits' backgrounds make most small patches of MNIST alike (at 28x28 and
//! N = 1000, 26% of the 3x3 patches are distinct, 41% of the 5x5, 54% of the
//! 7x7), and a softmax over m equal keys is the softmax over one key of
//! weight m: ln m joins its logit. So a patch denoiser computes with the
//! distinct patches only, and equals the one over all of them up to the
//! order of its additions.

use std::cmp::Ordering;

use candle_core::{DType, Device, Tensor};
use rayon::prelude::*;

use super::softmax_cpu::{with_values, Real};
use crate::Result;

/// Equal rows of `keys` `[G, M, F]` whose `values` `[G, M, V]` are equal
/// too, merged within each group: the distinct rows of each group (first
/// occurrences, in order), every group padded to the longest by its own
/// first row with count 0, as keys `[G, M', F]`, values `[G, M', V]` and
/// counts `[G, M']` (f64).
pub(crate) fn merge_equal(keys: &Tensor, values: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
    let (groups, rows, _) = keys.dims3()?;
    let on_cpu = |t: &Tensor| t.to_device(&Device::Cpu);
    let (k, v) = (on_cpu(keys)?, on_cpu(values)?);
    let distinct: Vec<Vec<(u32, f64)>> = match keys.dtype() {
        DType::F32 => distinct_in::<f32>(&k, &v)?,
        _ => distinct_in::<f64>(&k.to_dtype(DType::F64)?, &v.to_dtype(DType::F64)?)?,
    };
    let longest = distinct.iter().map(Vec::len).max().unwrap_or(0);
    let (mut index, mut counts) = (Vec::new(), Vec::new());
    for (g, kept) in distinct.iter().enumerate() {
        let padding = std::iter::repeat_n((kept[0].0, 0.0), longest - kept.len());
        for (row, count) in kept.iter().copied().chain(padding) {
            index.push((g * rows) as u32 + row);
            counts.push(count);
        }
    }
    let index = Tensor::new(index, keys.device())?;
    let pick = |t: &Tensor| -> Result<Tensor> {
        let width = t.dim(2)?;
        let flat = t.reshape((groups * rows, width))?.index_select(&index, 0)?;
        Ok(flat.reshape((groups, longest, width))?)
    };
    let counts = Tensor::from_vec(counts, (groups, longest), keys.device())?;
    Ok((pick(keys)?, pick(values)?, counts))
}

/// Per group, each distinct row's first index and how many rows equal it.
fn distinct_in<T: Real>(keys: &Tensor, values: &Tensor) -> Result<Vec<Vec<(u32, f64)>>> {
    let (groups, rows, f) = keys.dims3()?;
    let v = values.dim(2)?;
    with_values::<T, _>(keys, |keys| {
        with_values::<T, _>(values, |values| {
            (0..groups)
                .into_par_iter()
                .map(|g| {
                    let row = |i: usize| {
                        let at = g * rows + i;
                        (&keys[at * f..][..f], &values[at * v..][..v])
                    };
                    let order = |a: &usize, b: &usize| {
                        let ((ka, va), (kb, vb)) = (row(*a), row(*b));
                        compare(ka, kb).then_with(|| compare(va, vb)).then(a.cmp(b))
                    };
                    let mut sorted: Vec<usize> = (0..rows).collect();
                    sorted.sort_unstable_by(order);
                    let mut runs: Vec<(u32, f64)> = Vec::new();
                    for (j, &i) in sorted.iter().enumerate() {
                        match j > 0 && row(sorted[j - 1]) == row(i) {
                            true => runs.last_mut().expect("a run is open").1 += 1.0,
                            false => runs.push((i as u32, 1.0)),
                        }
                    }
                    runs.sort_unstable_by_key(|&(first, _)| first);
                    runs
                })
                .collect()
        })
    })?
}

/// Lexicographic order of two rows by each entry's total order.
fn compare<T: Real>(a: &[T], b: &[T]) -> Ordering {
    (a.iter().zip(b))
        .map(|(x, y)| x.to_f64().total_cmp(&y.to_f64()))
        .find(|o| o.is_ne())
        .unwrap_or(Ordering::Equal)
}
