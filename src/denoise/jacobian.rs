//! Jacobians dD/dx of any denoiser: by candle autodiff (for denoisers built
//! from differentiable tensor ops) and by central finite differences.

use candle_core::{Tensor, Var};

use super::Denoiser;
use crate::Result;

/// dD/dx at each row of `x` by reverse-mode autodiff: one backward pass per
/// output coordinate. Returns [B, n, n] with entry (b, i, j) = dD_i / dx_j.
/// Rows are independent inputs, so the gradient of sum_b D_bi gives row i of every J_b.
pub fn jacobian_autodiff<T: Denoiser + ?Sized>(
    denoiser: &T,
    x: &Tensor,
    sigma: f64,
) -> Result<Tensor> {
    let var = Var::from_tensor(x)?;
    let d = denoiser.denoise(var.as_tensor(), sigma)?;
    let n = denoiser.dim();
    let mut rows = Vec::with_capacity(n);
    for i in 0..n {
        let grads = d.narrow(1, i, 1)?.sum_all()?.backward()?;
        let g = grads
            .get(var.as_tensor())
            .cloned()
            .unwrap_or(var.as_tensor().zeros_like()?);
        rows.push(g);
    }
    Ok(Tensor::stack(&rows, 1)?)
}

/// (dD/dx)^T v at each row of `x` and `v` by one reverse-mode pass: the
/// gradient of sum_b v_b . D(x_b) with respect to x.
pub fn vjp_autodiff<T: Denoiser + ?Sized>(
    denoiser: &T,
    x: &Tensor,
    sigma: f64,
    v: &Tensor,
) -> Result<Tensor> {
    let var = Var::from_tensor(&x.detach())?;
    let d = denoiser.denoise(var.as_tensor(), sigma)?;
    let grads = (&d * v.to_dtype(d.dtype())?)?.sum_all()?.backward()?;
    Ok(match grads.get(var.as_tensor()) {
        Some(g) => g.clone(),
        None => var.as_tensor().zeros_like()?,
    })
}

/// dD/dx at each row of `x` by central differences with step `h`: [B, n, n].
/// Truncation error O(h^2) per entry.
pub fn jacobian_finite_difference<T: Denoiser + ?Sized>(
    denoiser: &T,
    x: &Tensor,
    sigma: f64,
    h: f64,
) -> Result<Tensor> {
    let n = denoiser.dim();
    let mut columns = Vec::with_capacity(n);
    for j in 0..n {
        let step = (Tensor::eye(n, x.dtype(), x.device())?.narrow(0, j, 1)? * h)?;
        let plus = denoiser.denoise(&x.broadcast_add(&step)?, sigma)?;
        let minus = denoiser.denoise(&x.broadcast_sub(&step)?, sigma)?;
        columns.push(((plus - minus)? / (2.0 * h))?);
    }
    Ok(Tensor::stack(&columns, 2)?)
}
