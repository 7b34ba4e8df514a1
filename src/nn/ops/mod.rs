//! CPU kernels for what the networks spend their time in, as candle custom
//! ops with their own backward; each is tested against candle's own op
//! (tests/kernels.rs). Each runs for f32 on the CPU and hands any other
//! dtype or device to candle's ops, so the networks have one code path.

mod conv;
mod group_norm;
mod linear;
mod matmul;
pub(crate) use matmul::{matmul, Split};
mod resample;
mod silu;

pub use conv::conv2d_same;
pub use group_norm::GroupNorm;
pub use linear::{dense, linear_forward};
pub use resample::{avg_pool2x, upsample2x};
pub use silu::silu;

use std::ops::Range;

/// Elements per parallel task of an elementwise loop (the kernels here and
/// the fused optimizer updates): below this a thread hand-off costs more
/// than it saves. Every element is computed alone, so the split changes no bit.
pub(crate) const ELEMENTS_PER_TASK: usize = 1 << 14;

/// Multiply-adds below which two independent products run one after the
/// other on one thread: a 64 x 64 x 64 product (2.6e5) is a few
/// microseconds, about what waking the second thread costs.
const MACS_PER_TASK: usize = 1 << 20;

use candle_core::{CpuStorage, CustomOp3, DType, Device, Layout, Storage, StorageRef, Tensor};

/// Whether `x` takes these kernels (f32 on the CPU) rather than candle's ops.
fn runs_here(x: &Tensor) -> bool {
    matches!(x.device(), Device::Cpu) && x.dtype() == DType::F32
}

/// `op` applied to contiguous `x`, `weight` and `bias` (zeros shaped
/// `bias_shape` when None): the CPU f32 path of the layers with a bias.
fn with_bias(
    x: &Tensor,
    weight: &Tensor,
    (bias, bias_shape): (Option<&Tensor>, &[usize]),
    op: impl CustomOp3 + Send + Sync + 'static,
) -> crate::Result<Tensor> {
    let zeros;
    let bias = match bias {
        Some(b) => b,
        None => {
            zeros = Tensor::zeros(bias_shape, DType::F32, x.device())?;
            &zeros
        }
    };
    Ok(x.contiguous()?.apply_op3(&weight.contiguous()?, bias, op)?)
}

/// A tensor's f32 values in row-major order, as the backward passes read
/// them (and the neighbour search): in place when the tensor is a contiguous f32 tensor on the CPU,
/// else a copy.
pub(crate) enum Values<'a> {
    InPlace(StorageRef<'a>, Range<usize>),
    Copied(Vec<f32>),
}

pub(crate) fn values(t: &Tensor) -> candle_core::Result<Values<'_>> {
    let (storage, layout) = t.storage_and_layout();
    match (&*storage, layout.contiguous_offsets()) {
        (Storage::Cpu(CpuStorage::F32(_)), Some((start, end))) => {
            Ok(Values::InPlace(storage, start..end))
        }
        _ => {
            drop(storage);
            Ok(Values::Copied(t.flatten_all()?.to_vec1::<f32>()?))
        }
    }
}

impl std::ops::Deref for Values<'_> {
    type Target = [f32];

    fn deref(&self) -> &[f32] {
        match self {
            Values::InPlace(storage, range) => match &**storage {
                Storage::Cpu(CpuStorage::F32(data)) => &data[range.clone()],
                _ => unreachable!("values() keeps only f32 CPU storage in place"),
            },
            Values::Copied(data) => data,
        }
    }
}

/// The f32 values of a contiguous storage, or an error naming `op`.
fn f32_data<'a>(s: &'a CpuStorage, l: &Layout, op: &str) -> candle_core::Result<&'a [f32]> {
    match (s, l.contiguous_offsets()) {
        (CpuStorage::F32(data), Some((start, end))) => Ok(&data[start..end]),
        _ => candle_core::bail!("{op} needs contiguous f32 inputs"),
    }
}

/// Column sums of a row-major [rows, width] array, rows added in order.
fn sum_rows(values: &[f32], width: usize) -> Vec<f32> {
    let mut sums = vec![0f32; width];
    for row in values.chunks(width) {
        sums.iter_mut().zip(row).for_each(|(s, &v)| *s += v);
    }
    sums
}
