//! The CPU path of [`super::softmax_mean::SoftmaxMean`]'s block step, for
//! f32 and f64 when no gradient is tracked (THEORY §4): one parallel pass
//! turns the GEMM's dot products into logits, their running maximum,
//! p = exp(l - max) by a vectorized exp, and the row sums, where candle
//! would make five passes with a scalar exp. Weights below the cutoff are
//! exactly 0, and the products with the weights then skip them
//! (`super::sparse_weights`).
//!
//! Why the skip is exact to rounding (THEORY §4): a weight is dropped only when
//! l - max < -(ln M + p ln 2), M the keys, p the dtype's mantissa bits, so
//! the dropped weights sum to less than M e^{-cutoff} = 2^-p while the
//! softmax total is at least 1 (the maximum's own weight): the result moves
//! by less than one rounding unit of the largest value.

use std::mem::MaybeUninit;

use candle_core::{DType, Device, Storage, Tensor, WithDType};
use rayon::prelude::*;

use crate::Result;

/// The float types the path runs for.
pub(crate) trait Real: WithDType {
    const MANTISSA_BITS: u32;
    /// exp(x) for x in [-80, 0], within about 2 units of the last place.
    fn exp_nonpositive(x: Self) -> Self;
}

/// `Real` for one float type. Its exp: x = k ln 2 + r with |r| <= ln 2 / 2,
/// k rounded by adding `magic` (1.5 x 2^mantissa, whose low bits then hold
/// k, so 2^k is integer arithmetic on them), ln 2 split in two (Cody and
/// Waite) so k ln 2 is exact to the dtype; exp(r) by its Taylor series to
/// the degree whose remainder is below half an ulp. Plain multiplies and
/// adds (no fused multiply-add), so every instruction set rounds alike and
/// the bits do not depend on the machine; no branch or float-to-int cast,
/// so it vectorizes.
macro_rules! real {
    ($t:ty, $magic:expr, $ln2_hi:expr, $ln2_lo:expr, $bias:expr, $shift:expr, $coefficients:expr) => {
        impl Real for $t {
            const MANTISSA_BITS: u32 = <$t>::MANTISSA_DIGITS;
            #[inline(always)]
            fn exp_nonpositive(x: $t) -> $t {
                let x = if x < -80.0 { -80.0 } else { x };
                let shifted = x * std::f64::consts::LOG2_E as $t + $magic;
                let k = shifted - $magic;
                let r = (x - k * $ln2_hi) - k * $ln2_lo;
                let mut poly: $t = 0.0;
                for c in $coefficients {
                    poly = poly * r + c;
                }
                let biased =
                    (shifted.to_bits().wrapping_sub(($magic as $t).to_bits())).wrapping_add($bias);
                poly * <$t>::from_bits(biased << $shift)
            }
        }
    };
}

/// 1/j!, highest degree first.
const F32_TAYLOR: [f32; 8] = [
    1.0 / 5040.0,
    1.0 / 720.0,
    1.0 / 120.0,
    1.0 / 24.0,
    1.0 / 6.0,
    0.5,
    1.0,
    1.0,
];
const F64_TAYLOR: [f64; 14] = [
    1.0 / 6_227_020_800.0,
    1.0 / 479_001_600.0,
    1.0 / 39_916_800.0,
    1.0 / 3_628_800.0,
    1.0 / 362_880.0,
    1.0 / 40_320.0,
    1.0 / 5_040.0,
    1.0 / 720.0,
    1.0 / 120.0,
    1.0 / 24.0,
    1.0 / 6.0,
    0.5,
    1.0,
    1.0,
];

real!(
    f32,
    12_582_912.0f32,
    0.693_359_4f32,
    -2.121_944_4e-4f32,
    127,
    23,
    F32_TAYLOR
);
real!(
    f64,
    6_755_399_441_055_744.0f64,
    6.931_471_803_691_238e-1f64,
    1.908_214_929_270_587_7e-10f64,
    1023,
    52,
    F64_TAYLOR
);

/// Whether a block step on these queries takes this path.
pub(crate) fn runs_here(queries: &Tensor) -> bool {
    matches!(queries.device(), Device::Cpu)
        && matches!(queries.dtype(), DType::F32 | DType::F64)
        && !queries.track_op()
}

/// The weights at or above exp(-cutoff) that [`sparse_matmul`] keeps for `keys` keys.
pub(crate) fn cutoff(keys: usize, dtype: DType) -> f64 {
    let bits = match dtype {
        DType::F32 => f32::MANTISSA_BITS,
        _ => f64::MANTISSA_BITS,
    };
    (keys.max(1) as f64).ln() + bits as f64 * std::f64::consts::LN_2
}

/// `f` on the contiguous values of a CPU tensor of `T`s.
pub(crate) fn with_values<T: Real, R>(t: &Tensor, f: impl FnOnce(&[T]) -> R) -> Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    let (start, end) = layout.contiguous_offsets().expect("made contiguous");
    match &*storage {
        Storage::Cpu(cpu) => Ok(f(&cpu.as_slice::<T>()?[start..end])),
        _ => Err(crate::Error::invalid(
            "device",
            format!("{:?}", t.device()),
            "the CPU softmax path needs CPU tensors",
        )),
    }
}

/// One block of the streaming softmax: p = exp(l - max) (`[.., Q, c]`, 0
/// below the cutoff), the running maximum `max` and sum_j p_j (`[.., Q, 1]`).
pub(crate) struct BlockWeights {
    pub p: Tensor,
    pub max: Tensor,
    pub total: Tensor,
}

/// The block step from the GEMM's `dot` = q . k (`[.., Q, c]`): logits
/// l = (dot - offset) / sigma^2 with `offset` `[.., 1, c]` (||k||^2 / 2,
/// less sigma^2 ln m for a key that stands for m equal ones), the
/// maximum over this block and `previous` (`[.., Q, 1]`), then the weights.
pub(crate) fn block_weights(
    dot: &Tensor,
    offset: &Tensor,
    sigma: f64,
    previous: Option<&Tensor>,
    cutoff: f64,
) -> Result<BlockWeights> {
    match dot.dtype() {
        DType::F32 => block_weights_in::<f32>(dot, offset, sigma, previous, cutoff),
        _ => block_weights_in::<f64>(dot, offset, sigma, previous, cutoff),
    }
}

fn block_weights_in<T: Real>(
    dot: &Tensor,
    offset: &Tensor,
    sigma: f64,
    previous: Option<&Tensor>,
    cutoff: f64,
) -> Result<BlockWeights> {
    let dims = dot.dims().to_vec();
    let (queries, cols) = (dims[dims.len() - 2], dims[dims.len() - 1]);
    let rows = dot.elem_count() / cols;
    let h = offset.flatten_all()?.to_vec1::<T>()?;
    let previous = match previous {
        Some(m) => m.flatten_all()?.to_vec1::<T>()?,
        None => vec![T::from_f64(f64::NEG_INFINITY); rows],
    };
    let (inv_var, cutoff) = (T::from_f64(1.0 / (sigma * sigma)), T::from_f64(cutoff));
    let mut p: Vec<T> = Vec::with_capacity(rows * cols);
    let mut max = previous;
    let mut total = vec![T::zero(); rows];
    with_values::<T, _>(dot, |dot| {
        (
            p.spare_capacity_mut()[..rows * cols].par_chunks_mut(cols),
            max.par_iter_mut(),
            total.par_iter_mut(),
        )
            .into_par_iter()
            .enumerate()
            .for_each(|(r, (p, max, total))| {
                let h = &h[(r / queries) * cols..][..cols];
                (*max, *total) = row(&dot[r * cols..][..cols], h, inv_var, *max, cutoff, p);
            })
    })?;
    // SAFETY: `row` wrote every element of every row of the spare capacity.
    unsafe { p.set_len(rows * cols) };
    let mut stat_dims = dims.clone();
    *stat_dims.last_mut().expect("rank >= 2") = 1;
    Ok(BlockWeights {
        p: Tensor::from_vec(p, dims, &Device::Cpu)?,
        max: Tensor::from_vec(max, stat_dims.clone(), &Device::Cpu)?,
        total: Tensor::from_vec(total, stat_dims, &Device::Cpu)?,
    })
}

/// Independent accumulators per row, so the loops vectorize while every
/// machine adds in the same order.
const LANES: usize = 8;

/// One row: the maximum of its logits and `previous`, then the weights
/// written to `p` (every element); returns (max, sum of weights). The
/// logits are formed twice from `dot`, whose row is in cache the second
/// time, rather than stored: `p` is written once and never zeroed first.
fn row<T: Real>(
    dot: &[T],
    h: &[T],
    inv_var: T,
    previous: T,
    cutoff: T,
    p: &mut [MaybeUninit<T>],
) -> (T, T) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F, checked on the line above.
            return unsafe { row_avx512(dot, h, inv_var, previous, cutoff, p) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, checked on the line above.
            return unsafe { row_avx2(dot, h, inv_var, previous, cutoff, p) };
        }
    }
    row_portable(dot, h, inv_var, previous, cutoff, p)
}

/// `row_portable` compiled for an instruction set, for `row` to pick at run time.
macro_rules! row_for {
    ($name:ident, $feature:literal) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $feature)]
        unsafe fn $name<T: Real>(
            dot: &[T],
            h: &[T],
            inv_var: T,
            previous: T,
            cutoff: T,
            p: &mut [MaybeUninit<T>],
        ) -> (T, T) {
            row_portable(dot, h, inv_var, previous, cutoff, p)
        }
    };
}
row_for!(row_avx512, "avx512f");
row_for!(row_avx2, "avx2");

#[inline(always)]
fn row_portable<T: Real>(
    dot: &[T],
    h: &[T],
    inv_var: T,
    previous: T,
    cutoff: T,
    p: &mut [MaybeUninit<T>],
) -> (T, T) {
    let larger = |a: T, b: T| if b > a { b } else { a };
    let logit = |d: T, h: T| (d - h) * inv_var;
    let tail = dot.len() - dot.len() % LANES;
    let mut lanes = [previous; LANES];
    for (d, h) in dot.chunks_exact(LANES).zip(h.chunks_exact(LANES)) {
        for i in 0..LANES {
            lanes[i] = larger(lanes[i], logit(d[i], h[i]));
        }
    }
    for j in tail..dot.len() {
        lanes[0] = larger(lanes[0], logit(dot[j], h[j]));
    }
    let max = lanes.into_iter().fold(previous, larger);
    let floor = T::zero() - cutoff;
    let weight = |d: T, h: T| {
        let x = logit(d, h) - max;
        let e = T::exp_nonpositive(x);
        if x >= floor {
            e
        } else {
            T::zero()
        }
    };
    let mut sums = [T::zero(); LANES];
    let chunks =
        (p.chunks_exact_mut(LANES).zip(dot.chunks_exact(LANES))).zip(h.chunks_exact(LANES));
    for ((p, d), h) in chunks {
        for i in 0..LANES {
            let w = weight(d[i], h[i]);
            p[i].write(w);
            sums[i] += w;
        }
    }
    for j in tail..dot.len() {
        let w = weight(dot[j], h[j]);
        p[j].write(w);
        sums[0] += w;
    }
    (max, sums.into_iter().fold(T::zero(), |s, v| s + v))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Relative error of exp_nonpositive against the f64 libm exp, in units
    /// of the type's epsilon, over 200,001 points of [-80, 0].
    fn worst_ulps<T: Real>(eps: f64) -> f64 {
        (0..=200_000)
            .map(|i| -80.0 * i as f64 / 200_000.0)
            .map(|x| {
                let x = T::from_f64(x);
                let exact = x.to_f64().exp();
                (T::exp_nonpositive(x).to_f64() - exact).abs() / exact / eps
            })
            .fold(0.0, f64::max)
    }

    #[test]
    fn vectorized_exp_is_within_two_ulps() {
        let (f32_ulps, f64_ulps) = (
            worst_ulps::<f32>(f32::EPSILON as f64),
            worst_ulps::<f64>(f64::EPSILON),
        );
        assert!(f32_ulps < 2.0, "f32 exp off by {f32_ulps} ulps");
        assert!(f64_ulps < 2.0, "f64 exp off by {f64_ulps} ulps");
    }
}
