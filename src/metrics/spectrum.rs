//! Singular values of a denoiser's Jacobian and its effective rank (THEORY §7).

use candle_core::Tensor;

use crate::linalg::to_mat;
use crate::{Error, Result};

/// Singular values of an [n, n] (or [m, n]) matrix, largest first (faer SVD, f64).
pub fn singular_values(jacobian: &Tensor) -> Result<Vec<f64>> {
    let mat = to_mat(jacobian)?;
    let mut s = mat
        .singular_values()
        .map_err(|e| Error::Linalg(format!("singular values did not converge: {e:?}")))?;
    s.sort_by(|a, b| b.total_cmp(a));
    Ok(s)
}

/// The smallest r with sqrt(sum_{j<=r} s_j^2) > fraction * sqrt(sum_j s_j^2),
/// for singular values sorted largest first (THEORY §7 uses fraction 0.99).
/// 0 for the zero matrix.
pub fn effective_rank(singular_values: &[f64], fraction: f64) -> usize {
    let total: f64 = singular_values.iter().map(|s| s * s).sum();
    if total == 0.0 {
        return 0;
    }
    let mut partial = 0.0;
    for (r, s) in singular_values.iter().enumerate() {
        partial += s * s;
        if partial.sqrt() > fraction * total.sqrt() {
            return r + 1;
        }
    }
    singular_values.len()
}
