//! One-time dense factorizations in f64 with faer, and conversions between
//! faer matrices and candle tensors (no LAPACK: everything builds from crates.io).

use candle_core::{DType, Device, Tensor};
use faer::{Mat, Side};
use rand_chacha::ChaCha20Rng;

use crate::rng::standard_normal;
use crate::{Error, Result};

/// A tensor `[rows, cols]` (any float dtype) as an f64 faer matrix.
pub fn to_mat(t: &Tensor) -> Result<Mat<f64>> {
    let rows = t
        .to_dtype(DType::F64)?
        .to_device(&Device::Cpu)?
        .to_vec2::<f64>()?;
    let (r, c) = (rows.len(), rows.first().map_or(0, Vec::len));
    Ok(Mat::from_fn(r, c, |i, j| rows[i][j]))
}

/// An f64 faer matrix as a `[rows, cols]` f64 CPU tensor.
pub fn to_tensor(m: &Mat<f64>) -> Result<Tensor> {
    let values: Vec<f64> = (0..m.nrows())
        .flat_map(|i| (0..m.ncols()).map(move |j| m[(i, j)]))
        .collect();
    Ok(Tensor::from_vec(
        values,
        (m.nrows(), m.ncols()),
        &Device::Cpu,
    )?)
}

/// Eigendecomposition of a symmetric matrix: (eigenvalues ascending, eigenvectors as columns).
pub fn symmetric_eigen(m: &Mat<f64>) -> Result<(Vec<f64>, Mat<f64>)> {
    let evd = m.self_adjoint_eigen(Side::Lower).map_err(|e| {
        Error::Linalg(format!(
            "symmetric eigendecomposition did not converge: {e:?}"
        ))
    })?;
    let values = evd.S().column_vector().iter().copied().collect();
    Ok((values, evd.U().to_owned()))
}

/// U diag(values) U^T for the orthonormal columns U of `basis`: a symmetric
/// matrix from its eigendecomposition (with 1 / values, its inverse).
pub fn spectral(basis: &Mat<f64>, values: &[f64]) -> Mat<f64> {
    let n = basis.nrows();
    Mat::from_fn(n, n, |i, j| {
        (0..values.len())
            .map(|k| basis[(i, k)] * values[k] * basis[(j, k)])
            .sum()
    })
}

/// A Haar-distributed random orthogonal `n x n` matrix: QR of a Gaussian
/// matrix with the signs of R's diagonal folded into Q.
pub fn random_orthogonal(n: usize, rng: &mut ChaCha20Rng) -> Mat<f64> {
    let g = standard_normal(rng, n * n);
    let g = Mat::from_fn(n, n, |i, j| g[i * n + j]);
    let qr = g.qr();
    let r = qr.R();
    let q = qr.compute_Q();
    Mat::from_fn(n, n, |i, j| {
        if r[(j, j)] < 0.0 {
            -q[(i, j)]
        } else {
            q[(i, j)]
        }
    })
}

/// Largest |(V^T V - I)_ij|: how far the columns of `v` are from orthonormal.
pub fn orthonormality_error(v: &Mat<f64>) -> f64 {
    let gram = v.transpose() * v;
    let mut worst = 0.0f64;
    for i in 0..gram.nrows() {
        for j in 0..gram.ncols() {
            let target = if i == j { 1.0 } else { 0.0 };
            worst = worst.max((gram[(i, j)] - target).abs());
        }
    }
    worst
}
