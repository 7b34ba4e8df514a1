//! A dense layer y = x W^T + b with its backward (dx = dy W, dW = dy^T x,
//! db = column sums of dy): three gemm calls and a bias pass instead of
//! candle's matmul, broadcast add, transposes and reductions. Each product
//! has the bits of the one gemm call candle's matmul makes (the forward
//! splits its rows, the backward runs its two products side by side; see
//! [`Split`]), so the committed MLP results stand.
//!
//! Models trained together (`nn::train::together`) stack their layers on a
//! leading model axis: x \[K, B, in\], W \[K, out, in\], b \[K, out\]. Each
//! model's slice makes the same gemm calls as the model alone, so it gets
//! the same bits; the slices, not the rows, are shared among the threads.
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use diffusion_regimes::nn::ops::dense;
//! let x = Tensor::new(&[[1f32, 2.0]], &Device::Cpu).unwrap();
//! let w = Tensor::new(&[[1f32, 0.0], [1.0, 1.0], [0.0, -1.0]], &Device::Cpu).unwrap();
//! let b = Tensor::new(&[0f32, 0.5, 1.0], &Device::Cpu).unwrap();
//! let y = dense(&x, &w, Some(&b)).unwrap();
//! assert_eq!(y.to_vec2::<f32>().unwrap(), [[1.0, 3.5, -1.0]]);
//! ```

use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::matmul::{matmul, Split};
use super::{f32_data, runs_here, sum_rows, values, with_bias, ELEMENTS_PER_TASK, MACS_PER_TASK};
use crate::{Error, Result};

/// `x` \[B, in\] times `weight` \[out, in\] transposed, plus `bias` \[out\];
/// or, for K models at once, `x` \[K, B, in\], `weight` \[K, out, in\] and
/// `bias` \[K, out\]. f32 on the CPU runs this module's kernel; other dtypes
/// and devices candle's ops.
pub fn dense(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    if !matches!((x.rank(), weight.rank()), (2, 2) | (3, 3)) {
        return Err(Error::shape(
            "dense layer",
            "x [B, in] with weight [out, in], or x [K, B, in] with weight [K, out, in]",
            format!("x {:?}, weight {:?}", x.dims(), weight.dims()),
        ));
    }
    if runs_here(x) {
        let outputs = &weight.dims()[..weight.rank() - 1];
        return with_bias(x, weight, (bias, outputs), Dense);
    }
    let y = x.matmul(&weight.t()?)?;
    Ok(match bias {
        // [out] or [K, 1, out] against y's rows.
        Some(b) if x.rank() == 3 => y.broadcast_add(&b.unsqueeze(1)?)?,
        Some(b) => y.broadcast_add(b)?,
        None => y,
    })
}

/// candle-nn's `Linear` layer (which holds and initialises the weights) run by [`dense`].
pub fn linear_forward(layer: &candle_nn::Linear, x: &Tensor) -> Result<Tensor> {
    dense(x, layer.weight(), layer.bias())
}

struct Dense;

/// (models, batch, inputs, outputs) of a dense layer's operands, the model
/// axis absent (1) for a single model.
fn sizes(x: &Shape, w: &Shape, b: &Shape) -> candle_core::Result<(usize, usize, usize, usize)> {
    let (models, batch, inputs, w_models, outputs, w_inputs) = match (x.dims(), w.dims()) {
        (&[batch, inputs], &[outputs, w_inputs]) => (1, batch, inputs, 1, outputs, w_inputs),
        (&[k, batch, inputs], &[w_k, outputs, w_inputs]) => {
            (k, batch, inputs, w_k, outputs, w_inputs)
        }
        _ => candle_core::bail!("dense: input {x:?}, weight {w:?}"),
    };
    if w_models != models || w_inputs != inputs || b.elem_count() != models * outputs {
        candle_core::bail!("dense: input {x:?}, weight {w:?}, bias {b:?}");
    }
    Ok((models, batch, inputs, outputs))
}

/// How many models' slices one parallel task takes: enough multiply-adds to
/// be worth a thread hand-off.
fn models_per_task(macs_per_model: usize) -> usize {
    MACS_PER_TASK.div_ceil(macs_per_model.max(1))
}

impl CustomOp3 for Dense {
    fn name(&self) -> &'static str {
        "dense"
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
        let (x, w, b) = (
            f32_data(s1, l1, "dense")?,
            f32_data(s2, l2, "dense")?,
            f32_data(s3, l3, "dense")?,
        );
        let (models, batch, inputs, outputs) = sizes(l1.shape(), l2.shape(), l3.shape())?;
        let mut y = vec![0f32; models * batch * outputs];
        // One model's product and bias; the rows of a lone model shared
        // among the threads, those of a stack's slices not (same bits).
        let slice = |k: usize, y: &mut [f32], split| {
            let (x, w, b) = (
                &x[k * batch * inputs..],
                &w[k * outputs * inputs..],
                &b[k * outputs..(k + 1) * outputs],
            );
            matmul(
                (batch, outputs, inputs),
                y,
                (x, inputs, 1),
                (w, 1, inputs),
                false,
                split,
            );
            let rows_per_task = match split {
                Split::Rows => ELEMENTS_PER_TASK.div_ceil(outputs.max(1)),
                _ => batch,
            };
            y.par_chunks_mut(outputs.max(1))
                .with_min_len(rows_per_task.max(1))
                .for_each(|row| row.iter_mut().zip(b).for_each(|(y, &b)| *y += b));
        };
        match models {
            1 => slice(0, &mut y, Split::Rows),
            _ => y
                .par_chunks_mut((batch * outputs).max(1))
                .with_min_len(models_per_task(batch * inputs * outputs))
                .enumerate()
                .for_each(|(k, y)| slice(k, y, Split::Single)),
        }
        let shape = match l1.shape().rank() {
            2 => Shape::from((batch, outputs)),
            _ => Shape::from((models, batch, outputs)),
        };
        Ok((CpuStorage::F32(y), shape))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let like = |values, t: &Tensor| Tensor::from_vec(values, t.shape(), t.device());
        let (models, batch, inputs, outputs) = sizes(x.shape(), w.shape(), b.shape())?;
        let (xs, dys) = (values(x)?, values(dy)?);
        // A network's input (noisy data, noise embedding) needs no gradient.
        let ws = match x.track_op() {
            true => Some(values(w)?),
            false => None,
        };
        let mut dx = vec![0f32; ws.as_ref().map_or(0, |_| models * batch * inputs)];
        let mut dw = vec![0f32; models * outputs * inputs];
        let mut db = vec![0f32; models * outputs];
        // One model's gradients (`lone`: the only model, whose products
        // may take both threads).
        let slice = |k: usize, dx: &mut [f32], dw: &mut [f32], db: &mut [f32], lone: bool| {
            let dys = &dys[k * batch * outputs..(k + 1) * batch * outputs];
            let xs = &xs[k * batch * inputs..];
            let mut weight_grad = |split| {
                let (lhs, rhs) = ((dys, 1, outputs), (xs, inputs, 1));
                matmul((outputs, inputs, batch), dw, lhs, rhs, false, split);
                db.copy_from_slice(&sum_rows(dys, outputs));
            };
            let Some(ws) = &ws else {
                return weight_grad(if lone { Split::Rows } else { Split::Single });
            };
            let ws = &ws[k * outputs * inputs..];
            let mut input_grad = || {
                let (lhs, rhs) = ((dys, outputs, 1), (ws, inputs, 1));
                matmul((batch, inputs, outputs), dx, lhs, rhs, false, Split::Single)
            };
            // The two products are independent: one thread each, when they
            // are worth it.
            match lone && batch * inputs * outputs >= MACS_PER_TASK {
                true => drop(rayon::join(input_grad, || weight_grad(Split::Single))),
                false => {
                    input_grad();
                    weight_grad(Split::Single)
                }
            }
        };
        match models {
            1 => slice(0, &mut dx, &mut dw, &mut db, true),
            _ => {
                let dx: Vec<&mut [f32]> = match dx.is_empty() {
                    true => (0..models).map(|_| &mut [][..]).collect(),
                    false => dx.chunks_mut(batch * inputs).collect(),
                };
                dx.into_par_iter()
                    .zip(dw.par_chunks_mut((outputs * inputs).max(1)))
                    .zip(db.par_chunks_mut(outputs.max(1)))
                    .enumerate()
                    .with_min_len(models_per_task(2 * batch * inputs * outputs))
                    .for_each(|(k, ((dx, dw), db))| slice(k, dx, dw, db, false));
            }
        }
        let dx = match ws {
            Some(_) => Some(like(dx, x)?),
            None => None,
        };
        Ok((dx, Some(like(dw, w)?), Some(like(db, b)?)))
    }
}
