//! 2-D convolution with stride 1 and zero "same" padding (odd kernel k,
//! padding k / 2), the only kind the U-Net uses, as GEMMs on im2col panels.
//!
//! candle's CPU convolution computes the gradient for the input with a
//! direct transposed convolution (a scalar dot product per output pixel),
//! which took most of a U-Net step. Here all three products are GEMMs over
//! the whole batch, with the `gemm` crate called directly:
//! - forward: Y[co, (b, p)] = W[co, r] cols(X)[r, (b, p)], r = (ci, di, dj);
//! - input gradient: the same convolution of dY with the flipped,
//!   transposed kernel W'[ci, co, i, j] = W[co, ci, k-1-i, k-1-j];
//! - weight gradient: dW[co, r] = dY[co, (b, p)] cols(X)^T[(b, p), r].
//!
//! Threads split the output into panels fixed by the shape (never a dot
//! product), so the bits do not depend on the thread count.
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use diffusion_regimes::nn::ops::conv2d_same;
//! let x = Tensor::ones((1, 1, 3, 3), candle_core::DType::F32, &Device::Cpu).unwrap();
//! let w = Tensor::ones((1, 1, 3, 3), candle_core::DType::F32, &Device::Cpu).unwrap();
//! let y = conv2d_same(&x, &w, None).unwrap().flatten_all().unwrap();
//! // The centre sees 9 ones, an edge 6, a corner 4.
//! assert_eq!(y.to_vec1::<f32>().unwrap(), [4.0, 6.0, 4.0, 6.0, 9.0, 6.0, 4.0, 6.0, 4.0]);
//! ```

use candle_core::{CpuStorage, CustomOp2, CustomOp3, DType, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::matmul::{matmul, Split};
use super::{f32_data, runs_here, values, with_bias};
use crate::Result;

/// `x` [B, Cin, H, W] convolved with `weight` [Cout, Cin, k, k] (k odd),
/// stride 1, zero padding k / 2, plus `bias` \[Cout\]. f32 on the CPU runs the
/// GEMM kernels of this module; other dtypes and devices run candle's op.
pub fn conv2d_same(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    let (outputs, k) = (weight.dim(0)?, weight.dim(3)?);
    if runs_here(x) {
        return with_bias(x, weight, (bias, &weight.dims()[..1]), SameConv);
    }
    let y = x.conv2d(weight, k / 2, 1, 1, 1)?;
    Ok(match bias {
        Some(b) => y.broadcast_add(&b.reshape((1, outputs, 1, 1))?)?,
        None => y,
    })
}

/// W'[ci, co, i, j] = W[co, ci, k-1-i, k-1-j]: the kernel whose same-padded
/// convolution of dY is dX.
fn flipped_transposed(weight: &Tensor) -> candle_core::Result<Tensor> {
    let k = weight.dim(3)?;
    let reversed = Tensor::new((0..k as u32).rev().collect::<Vec<_>>(), weight.device())?;
    weight
        .transpose(0, 1)?
        .contiguous()?
        .index_select(&reversed, 2)?
        .index_select(&reversed, 3)?
        .contiguous()
}

/// The shapes of one convolution, read from X [B, Cin, H, W] and W [Cout, Cin, k, k].
#[derive(Clone, Copy)]
struct Dims {
    batch: usize,
    inputs: usize,
    outputs: usize,
    height: usize,
    width: usize,
    k: usize,
}

impl Dims {
    fn new(x: &Layout, w: &Layout) -> candle_core::Result<Self> {
        let (batch, inputs, height, width) = x.shape().dims4()?;
        let (outputs, w_inputs, k, k1) = w.shape().dims4()?;
        if w_inputs != inputs || k != k1 || k % 2 == 0 {
            candle_core::bail!(
                "conv2d_same: input {:?} and kernel {:?} (need matching channels, an odd square kernel)",
                x.shape(),
                w.shape()
            );
        }
        Ok(Dims {
            batch,
            inputs,
            outputs,
            height,
            width,
            k,
        })
    }

    /// Pixels per image.
    fn pixels(&self) -> usize {
        self.height * self.width
    }

    /// Rows of the im2col panel: Cin k k.
    fn patch(&self) -> usize {
        self.inputs * self.k * self.k
    }

    /// Images per im2col panel, so that a panel of about 4 MB stays in
    /// cache and one allocation serves every panel (whole-batch panels
    /// reached 75 MB, each a fresh mmap and page faults); set by the shape
    /// alone, so the order of sums is too.
    fn images_per_panel(&self) -> usize {
        const PANEL_FLOATS: usize = 1 << 20;
        (PANEL_FLOATS / (self.patch() * self.pixels()).max(1)).clamp(1, self.batch.max(1))
    }

    /// The image ranges (first, count) of the panels.
    fn panels(&self) -> impl Iterator<Item = (usize, usize)> {
        let (per, batch) = (self.images_per_panel(), self.batch);
        (0..batch)
            .step_by(per)
            .map(move |first| (first, per.min(batch - first)))
    }
}

/// Fills `panel` with the im2col panel of `x` [B, Cin, H, W]: [Cin k k, B H W],
/// row r = (ci k + di) k + dj holding x[b, ci, y + di - k/2, x + dj - k/2]
/// (0 outside the image).
fn im2col(x: &[f32], d: Dims, panel: &mut [f32]) {
    let (hw, cols) = (d.pixels(), d.batch * d.pixels());
    let pad = (d.k / 2) as isize;
    panel[..d.patch() * cols]
        .par_chunks_mut(cols)
        .enumerate()
        .for_each(|(r, row)| {
            let (ci, di, dj) = (r / (d.k * d.k), (r / d.k) % d.k, r % d.k);
            let (dy, dx) = (di as isize - pad, dj as isize - pad);
            // Columns x whose source x + dx lies inside the image.
            let x0 = ((-dx).max(0) as usize).min(d.width);
            let x1 = (d.width as isize - dx).clamp(x0 as isize, d.width as isize) as usize;
            for b in 0..d.batch {
                let image = &x[(b * d.inputs + ci) * hw..][..hw];
                for y in 0..d.height {
                    let dst = &mut row[b * hw + y * d.width..][..d.width];
                    let sy = y as isize + dy;
                    if sy < 0 || sy >= d.height as isize {
                        dst.fill(0.0);
                        continue;
                    }
                    let src = &image[sy as usize * d.width..][..d.width];
                    let shift = |x: usize| (x as isize + dx) as usize;
                    dst[..x0].fill(0.0);
                    dst[x0..x1].copy_from_slice(&src[shift(x0)..shift(x1)]);
                    dst[x1..].fill(0.0);
                }
            }
        });
}

/// dst = src [A, B, C] as [B, A, C], plus shift[a] in row a (no shift when
/// `shift` is empty).
fn swap_outer(src: &[f32], (a, b, c): (usize, usize, usize), shift: &[f32], dst: &mut [f32]) {
    dst[..a * b * c]
        .par_chunks_mut(a * c)
        .enumerate()
        .for_each(|(j, out)| {
            for i in 0..a {
                let (out, src) = (&mut out[i * c..][..c], &src[(i * b + j) * c..][..c]);
                match shift.get(i) {
                    Some(&s) => out.iter_mut().zip(src).for_each(|(o, &v)| *o = v + s),
                    None => out.copy_from_slice(src),
                }
            }
        });
}

/// sum over images and pixels of dY [B, C, P], per channel, images in order.
fn channel_sums(dy: &[f32], (batch, channels, pixels): (usize, usize, usize)) -> Vec<f32> {
    (0..channels)
        .into_par_iter()
        .map(|c| {
            (0..batch)
                .map(|b| {
                    dy[(b * channels + c) * pixels..][..pixels]
                        .iter()
                        .sum::<f32>()
                })
                .sum()
        })
        .collect()
}

/// The convolution with its bias; its backward runs it on dY with the
/// flipped kernel.
struct SameConv;

impl CustomOp3 for SameConv {
    fn name(&self) -> &'static str {
        "conv2d-same"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let d = Dims::new(l1, l2)?;
        let (x, w, b) = (
            f32_data(s1, l1, "conv2d_same")?,
            f32_data(s2, l2, "conv2d_same")?,
            f32_data(s3, l3, "conv2d_same")?,
        );
        if b.len() != d.outputs {
            candle_core::bail!("conv2d_same: bias of {} for {} outputs", b.len(), d.outputs);
        }
        let (image_in, image_out) = (d.inputs * d.pixels(), d.outputs * d.pixels());
        let per_panel = d.images_per_panel() * d.pixels();
        let mut panel = vec![0f32; d.patch() * per_panel];
        let mut product = vec![0f32; d.outputs * per_panel];
        let mut y = vec![0f32; d.batch * image_out];
        for (first, count) in d.panels() {
            let part = Dims { batch: count, ..d };
            let cols = count * d.pixels();
            im2col(&x[first * image_in..][..count * image_in], part, &mut panel);
            matmul(
                (d.outputs, cols, d.patch()),
                &mut product,
                (w, d.patch(), 1),
                (&panel, cols, 1),
                false,
                Split::Panels,
            );
            let dst = &mut y[first * image_out..][..count * image_out];
            swap_outer(&product, (d.outputs, count, d.pixels()), b, dst);
        }
        let shape = Shape::from((d.batch, d.outputs, d.height, d.width));
        Ok((CpuStorage::F32(y), shape))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dy = dy.contiguous()?;
        let no_bias = Tensor::zeros(x.dim(1)?, DType::F32, x.device())?;
        let dx = dy.apply_op3(&flipped_transposed(w)?, &no_bias, SameConv)?;
        let dw = dy.apply_op2_no_bwd(x, &WeightGradient { k: w.dim(3)? })?;
        let (batch, outputs, h, width) = dy.dims4()?;
        let sums = channel_sums(&values(&dy)?, (batch, outputs, h * width));
        let db = Tensor::from_vec(sums, outputs, x.device())?;
        Ok((Some(dx), Some(dw), Some(db)))
    }
}

/// dW [Cout, Cin, k, k] from dY [B, Cout, H, W] and X [B, Cin, H, W].
struct WeightGradient {
    k: usize,
}

impl CustomOp2 for WeightGradient {
    fn name(&self) -> &'static str {
        "conv2d-same-weight-gradient"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (dy, x) = (
            f32_data(s1, l1, "conv2d_same")?,
            f32_data(s2, l2, "conv2d_same")?,
        );
        let (batch, outputs, height, width) = l1.shape().dims4()?;
        let inputs = l2.shape().dims4()?.1;
        let d = Dims {
            batch,
            inputs,
            outputs,
            height,
            width,
            k: self.k,
        };
        let (image_in, image_out) = (inputs * d.pixels(), outputs * d.pixels());
        let per_panel = d.images_per_panel() * d.pixels();
        let mut panel = vec![0f32; d.patch() * per_panel];
        let mut grad = vec![0f32; outputs * per_panel];
        let mut dw = vec![0f32; outputs * d.patch()];
        for (first, count) in d.panels() {
            let part = Dims { batch: count, ..d };
            let cols = count * d.pixels();
            im2col(&x[first * image_in..][..count * image_in], part, &mut panel);
            let dy = &dy[first * image_out..][..count * image_out];
            swap_outer(dy, (count, outputs, d.pixels()), &[], &mut grad);
            matmul(
                (outputs, d.patch(), cols),
                &mut dw,
                (&grad, cols, 1),
                (&panel, 1, cols),
                true,
                Split::Panels,
            );
        }
        let shape = Shape::from((outputs, inputs, self.k, self.k));
        Ok((CpuStorage::F32(dw), shape))
    }
}
