//! Products with softmax weights, which on the CPU path are mostly exactly
//! 0 (it drops those below its cutoff, THEORY §4): each visits only the
//! nonzero weights of a row where that pays, and runs the dense GEMM where
//! too many are kept or the path does not run (another device, a tracked
//! gradient).
//! Skipping an exact 0 changes no sum, so a sparse product equals the dense
//! one up to the order of its additions.

use candle_core::{DType, Device, Tensor};
use rayon::prelude::*;

use super::softmax_cpu::{self, with_values, Real};
use crate::Result;

/// A dense GEMM wins once more than this fraction of the weights is nonzero.
const SPARSE_DENSITY: f64 = 1.0 / 16.0;

/// Value widths below this leave the weighted sum too cheap to be worth a skip.
const SPARSE_MIN_WIDTH: usize = 32;

/// p `[.., Q, c]` times `values` `[.., c, V]`: over the nonzero weights
/// only where that beats the GEMM (the CPU path, few weights kept, values
/// at least `SPARSE_MIN_WIDTH` wide), else by the GEMM.
pub(crate) fn weighted_sum(p: &Tensor, values: &Tensor) -> Result<Tensor> {
    let width = values.dims()[values.rank() - 1];
    let sparse = match softmax_cpu::runs_here(p) && width >= SPARSE_MIN_WIDTH {
        true => match p.dtype() {
            DType::F32 => sparse_rows::<f32>(p, values, width, add_scaled)?,
            _ => sparse_rows::<f64>(p, values, width, add_scaled)?,
        },
        false => None,
    };
    sparse.map_or_else(|| Ok(p.matmul(values)?), Ok)
}

/// out += weight v.
fn add_scaled<T: Real>(out: &mut [T], weight: T, value: &[T]) {
    out.iter_mut()
        .zip(value)
        .for_each(|(o, &v)| *o += weight * v)
}

/// sum_i p_bi v_i v_i^T for each row b of p `[B, c]`, with `values` `[c, n]`:
/// `[B, n, n]` (the closed-form Jacobian's weighted second moment, THEORY
/// §4): by rank-one updates over the nonzero weights only where few are
/// kept on the CPU path, else as (p_b * V)^T V by a batched GEMM.
pub(crate) fn weighted_second_moment(p: &Tensor, values: &Tensor) -> Result<Tensor> {
    let n = values.dims()[values.rank() - 1];
    let sparse = match softmax_cpu::runs_here(p) {
        true => match p.dtype() {
            DType::F32 => sparse_rows::<f32>(p, values, n * n, add_outer)?,
            _ => sparse_rows::<f64>(p, values, n * n, add_outer)?,
        },
        false => None,
    };
    match sparse {
        Some(m) => Ok(m.reshape((p.dims()[0], n, n))?),
        None => Ok(p
            .unsqueeze(2)?
            .broadcast_mul(&values.unsqueeze(0)?)?
            .transpose(1, 2)?
            .contiguous()?
            .broadcast_matmul(values)?),
    }
}

/// out ([n, n], row-major) += weight v v^T, one row (weight v_a) v at a time.
fn add_outer<T: Real>(out: &mut [T], weight: T, value: &[T]) {
    for (out, &a) in out.chunks_exact_mut(value.len()).zip(value) {
        add_scaled(out, weight * a, value);
    }
}

/// For each row of p `[.., Q, c]` (CPU), an output of `width` values, zeroed, to
/// which `add(out, p_i, v_i)` adds each nonzero weight's term (v_i the i-th
/// row of its group's `values` `[.., c, V]`): `[.., Q, width]`; `None`
/// where the weights are too dense.
fn sparse_rows<T: Real>(
    p: &Tensor,
    values: &Tensor,
    width: usize,
    add: fn(&mut [T], T, &[T]),
) -> Result<Option<Tensor>> {
    let dims = p.dims().to_vec();
    let (queries, cols) = (dims[dims.len() - 2], dims[dims.len() - 1]);
    let value_width = values.dims()[values.rank() - 1];
    let rows = p.elem_count() / cols;
    let product = with_values::<T, _>(p, |p| {
        let nonzero = p.par_iter().filter(|&&w| w != T::zero()).count();
        if nonzero as f64 > SPARSE_DENSITY * p.len() as f64 {
            return Ok(None);
        }
        with_values::<T, _>(values, |values| {
            let mut out = vec![T::zero(); rows * width];
            out.par_chunks_mut(width).enumerate().for_each(|(r, out)| {
                let group = &values[(r / queries) * cols * value_width..][..cols * value_width];
                let weights = p[r * cols..][..cols].iter();
                for (&weight, value) in weights.zip(group.chunks(value_width)) {
                    if weight != T::zero() {
                        add(out, weight, value);
                    }
                }
            });
            out
        })
        .map(Some)
    })??;
    let mut out_dims = dims;
    *out_dims.last_mut().expect("rank >= 2") = width;
    product
        .map(|out| Ok(Tensor::from_vec(out, out_dims, &Device::Cpu)?))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two nonzero weights in each of 6 rows of 64, integer values: every
    /// sum is exact, so sparse and dense must agree bit for bit.
    fn sparse_weights() -> Tensor {
        let (rows, cols) = (6, 64);
        let mut p = vec![0f64; rows * cols];
        for r in 0..rows {
            p[r * cols + (7 * r) % cols] = 0.5 + r as f64;
            p[r * cols + (11 * r + 3) % cols] = 1.0;
        }
        Tensor::from_vec(p, (rows, cols), &Device::Cpu).unwrap()
    }

    fn integer_values(groups: usize, cols: usize, width: usize) -> Tensor {
        let values: Vec<f64> = (0..groups * cols * width)
            .map(|i| ((i * 37) % 101) as f64 - 50.0)
            .collect();
        Tensor::from_vec(values, (groups, cols, width), &Device::Cpu).unwrap()
    }

    fn max_gap(a: &Tensor, b: &Tensor) -> f64 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f64>()
            .unwrap()
    }

    /// The sparse product alone, or None where it declines.
    fn sparse_product(p: &Tensor, values: &Tensor, width: usize) -> Option<Tensor> {
        sparse_rows::<f64>(p, values, width, add_scaled).unwrap()
    }

    #[test]
    fn sparse_weighted_sum_equals_the_dense_product_and_declines_dense_weights() {
        // Two groups of three queries, each with its own values.
        let p = sparse_weights().reshape((2, 3, 64)).unwrap();
        let values = integer_values(2, 64, 40);
        let sparse = sparse_product(&p, &values, 40).expect("2 of 64 weights are nonzero");
        assert_eq!(max_gap(&sparse, &p.matmul(&values).unwrap()), 0.0);
        assert_eq!(max_gap(&weighted_sum(&p, &values).unwrap(), &sparse), 0.0);
        let full = (p + 1.0).unwrap();
        assert!(sparse_product(&full, &values, 40).is_none());
        let dense = full.matmul(&values).unwrap();
        assert_eq!(max_gap(&weighted_sum(&full, &values).unwrap(), &dense), 0.0);
    }

    #[test]
    fn sparse_second_moment_equals_the_dense_weighted_outer_products() {
        let (p, values) = (
            sparse_weights(),
            integer_values(1, 64, 5).squeeze(0).unwrap(),
        );
        let sparse = sparse_rows::<f64>(&p, &values, 25, add_outer)
            .unwrap()
            .expect("2 of 64 weights are nonzero")
            .reshape((6, 5, 5))
            .unwrap();
        // (p_b * V)^T V for each row b.
        let weighted = p
            .unsqueeze(2)
            .unwrap()
            .broadcast_mul(&values.unsqueeze(0).unwrap());
        let dense = weighted
            .unwrap()
            .transpose(1, 2)
            .unwrap()
            .contiguous()
            .unwrap()
            .broadcast_matmul(&values)
            .unwrap();
        assert_eq!(max_gap(&sparse, &dense), 0.0);
        let moment = weighted_second_moment(&p, &values).unwrap();
        assert_eq!(max_gap(&moment, &sparse), 0.0);
        let full = (p + 1.0).unwrap();
        assert!(sparse_rows::<f64>(&full, &values, 25, add_outer)
            .unwrap()
            .is_none());
    }
}
