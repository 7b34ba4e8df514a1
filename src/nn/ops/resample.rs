//! 2x average pooling and 2x nearest upsampling of [B, C, H, W], each the
//! other's adjoint: the gradient of pooling is upsampling / 4, that of
//! upsampling is 4 x pooling (a 2x2 block sum). candle differentiates its
//! upsampling by a grouped convolution, one small convolution per channel.
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use diffusion_regimes::nn::ops::{avg_pool2x, upsample2x};
//! let x = Tensor::arange(0f32, 16.0, &Device::Cpu).unwrap().reshape((1, 1, 4, 4)).unwrap();
//! let pooled = avg_pool2x(&x).unwrap();
//! assert_eq!(pooled.flatten_all().unwrap().to_vec1::<f32>().unwrap(), [2.5, 4.5, 10.5, 12.5]);
//! assert_eq!(upsample2x(&pooled).unwrap().dims(), [1, 1, 4, 4]);
//! ```

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::{f32_data, runs_here};
use crate::Result;

/// The mean of each 2x2 block (H and W even).
pub fn avg_pool2x(x: &Tensor) -> Result<Tensor> {
    run(x, Resample::Pool)
}

/// Each pixel repeated as a 2x2 block.
pub fn upsample2x(x: &Tensor) -> Result<Tensor> {
    run(x, Resample::Upsample)
}

fn run(x: &Tensor, op: Resample) -> Result<Tensor> {
    if runs_here(x) {
        return Ok(x.contiguous()?.apply_op1(op)?);
    }
    let (_, _, h, w) = x.dims4()?;
    Ok(match op {
        Resample::Pool => x.avg_pool2d(2)?,
        Resample::Upsample => x.upsample_nearest2d(2 * h, 2 * w)?,
    })
}

#[derive(Clone, Copy)]
enum Resample {
    Pool,
    Upsample,
}

impl CustomOp1 for Resample {
    fn name(&self) -> &'static str {
        match self {
            Resample::Pool => "avg-pool-2x",
            Resample::Upsample => "upsample-2x",
        }
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32_data(s, l, self.name())?;
        let (b, c, h, w) = l.shape().dims4()?;
        Ok(match self {
            Resample::Pool => {
                if h % 2 != 0 || w % 2 != 0 {
                    candle_core::bail!("avg-pool-2x needs even sides, got {h}x{w}");
                }
                let (oh, ow) = (h / 2, w / 2);
                let mut y = vec![0f32; b * c * oh * ow];
                y.par_chunks_mut(oh * ow)
                    .zip(x.par_chunks(h * w))
                    .for_each(|(y, x)| {
                        for (i, y) in y.chunks_mut(ow).enumerate() {
                            let (top, bottom) = (&x[2 * i * w..][..w], &x[(2 * i + 1) * w..][..w]);
                            for (j, y) in y.iter_mut().enumerate() {
                                let sum = (top[2 * j] + top[2 * j + 1])
                                    + (bottom[2 * j] + bottom[2 * j + 1]);
                                *y = 0.25 * sum;
                            }
                        }
                    });
                (CpuStorage::F32(y), Shape::from((b, c, oh, ow)))
            }
            Resample::Upsample => {
                let (oh, ow) = (2 * h, 2 * w);
                let mut y = vec![0f32; b * c * oh * ow];
                y.par_chunks_mut(oh * ow)
                    .zip(x.par_chunks(h * w))
                    .for_each(|(y, x)| {
                        for (i, rows) in y.chunks_mut(2 * ow).enumerate() {
                            let src = &x[i * w..][..w];
                            let (first, second) = rows.split_at_mut(ow);
                            for (j, &v) in src.iter().enumerate() {
                                first[2 * j] = v;
                                first[2 * j + 1] = v;
                            }
                            second.copy_from_slice(first);
                        }
                    });
                (CpuStorage::F32(y), Shape::from((b, c, oh, ow)))
            }
        })
    }

    fn bwd(&self, _x: &Tensor, _y: &Tensor, dy: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let dy = dy.contiguous()?;
        Ok(Some(match self {
            Resample::Pool => (dy.apply_op1(Resample::Upsample)? * 0.25)?,
            Resample::Upsample => (dy.apply_op1(Resample::Pool)? * 4.0)?,
        }))
    }
}
