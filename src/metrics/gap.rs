//! Denoiser gaps per noise level (THEORY §7).

use candle_core::{DType, Device, Tensor};

use crate::denoise::Denoiser;
use crate::error::check_sigma;
use crate::sample::initial_noise;
use crate::{Error, Result};

/// Rows per denoiser call, to bound memory.
const BLOCK: usize = 1024;

/// gap(sigma) = E ||D_a(x; sigma) - D_b(x; sigma)||^2 / E ||D_b(x; sigma)||^2
/// over x = y + sigma z, for each sigma in `sigmas` (THEORY §7). `y` are
/// clean rows (training points or fresh draws); z for row i comes from
/// stream (seed, Sample, i) and is shared by every sigma (common random
/// numbers, so the curve is smooth in sigma). Computed in f64.
pub fn denoiser_gap(
    a: &dyn Denoiser,
    b: &dyn Denoiser,
    y: &Tensor,
    sigmas: &[f64],
    seed: u64,
) -> Result<Vec<f64>> {
    let (m, n) = y.dims2()?;
    for d in [a, b] {
        if d.dim() != n {
            return Err(Error::shape(
                "denoiser gap: points vs denoiser",
                format!("[M, {}]", d.dim()),
                format!("[{m}, {n}]"),
            ));
        }
    }
    sigmas.iter().try_for_each(|&s| check_sigma(s))?;
    let indices: Vec<u64> = (0..m as u64).collect();
    let (z, _) = initial_noise(seed, &indices, n, DType::F64, &Device::Cpu)?;
    let y = y.to_dtype(DType::F64)?;
    sigmas
        .iter()
        .map(|&sigma| {
            let (mut num, mut den) = (0.0, 0.0);
            for first in (0..m).step_by(BLOCK) {
                let rows = BLOCK.min(m - first);
                let x = (y.narrow(0, first, rows)? + (z.narrow(0, first, rows)? * sigma)?)?;
                let db = b.denoise(&x, sigma)?.to_dtype(DType::F64)?;
                let da = a.denoise(&x, sigma)?.to_dtype(DType::F64)?;
                num += (da - &db)?.sqr()?.sum_all()?.to_scalar::<f64>()?;
                den += db.sqr()?.sum_all()?.to_scalar::<f64>()?;
            }
            Ok(num / den)
        })
        .collect()
}
