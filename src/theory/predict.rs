//! Analytic predictions of the regime boundaries (THEORY §8).

use candle_core::{DType, Tensor};
use serde::Serialize;

use crate::data::{nested_subset, Synthetic, SyntheticSpec};
use crate::denoise::{EmpiricalDenoiser, GaussianDenoiser};
use crate::rng::{standard_normal, stream, Purpose};
use crate::{Error, Result};

/// Largest eigenvalue Lambda of the covariance of the rows of `examples` [M, ...].
pub fn top_eigenvalue(examples: &Tensor) -> Result<f64> {
    let fitted = GaussianDenoiser::fit(&examples.flatten_from(1)?)?;
    Ok(fitted
        .eigenvalues()
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max))
}

/// Speciation level sigma_S = sqrt(Lambda - 1) (Biroli et al. 2024, THEORY §8):
/// the Ornstein-Uhlenbeck time t_S = ln(Lambda) / 2 in VE units, sigma^2 =
/// e^(2t) - 1. None when Lambda <= 1 (no direction stands out of the noise).
pub fn speciation_sigma(top_eigenvalue: f64) -> Option<f64> {
    (top_eigenvalue > 1.0).then(|| (top_eigenvalue - 1.0).sqrt())
}

/// Collapse level sigma_C = s / sqrt(N^(2/d) - 1) for N points of an isotropic
/// Gaussian with variance s^2 per coordinate in dimension d (THEORY §8); for a
/// mixture of well-separated isotropic components pass N per component.
pub fn collapse_sigma_isotropic(std: f64, points: f64, dim: usize) -> f64 {
    std / (points.powf(2.0 / dim as f64) - 1.0).sqrt()
}

/// Excess entropy per dimension of the noisy data distribution p_sigma over
/// one noise kernel, (H\[p_sigma\] - (d/2) ln(2 pi e sigma^2)) / d, estimated by
/// Monte Carlo with log-sum-exp: p_sigma is the empirical noisy distribution of
/// the `reference` rows and the points x = y + sigma z take y from the
/// disjoint `probe` rows (a cross-entropy, so no point sees its own kernel).
/// Noise for probe k comes from stream (seed, Clone, k).
pub fn excess_entropy_per_dim(
    reference: &EmpiricalDenoiser,
    probe: &Tensor,
    sigma: f64,
    seed: u64,
) -> Result<f64> {
    let (m, d) = probe.dims2()?;
    let z: Vec<f64> = (0..m)
        .flat_map(|k| standard_normal(&mut stream(seed, Purpose::Clone, k as u64), d))
        .collect();
    let z = Tensor::from_vec(z, (m, d), probe.device())?;
    let x = (probe.to_dtype(DType::F64)? + (z * sigma)?)?;
    let entropy = -reference
        .log_density(&x, sigma)?
        .mean_all()?
        .to_scalar::<f64>()?;
    let kernel =
        0.5 * d as f64 * (2.0 * std::f64::consts::PI * std::f64::consts::E * sigma * sigma).ln();
    Ok((entropy - kernel) / d as f64)
}

/// Collapse level for any data set: the sigma at which the excess entropy per
/// dimension of p_sigma falls to ln(N) / d (THEORY §8), found by bisection in
/// ln sigma on [lo, hi]. `examples` [M, ...] stand in for the distribution:
/// one half is the reference, the other the probes, so M should well exceed N.
/// For an isotropic Gaussian this is the closed form's criterion exactly:
/// (d/2) ln((s^2 + sigma^2) / sigma^2) = ln N.
pub fn collapse_sigma_entropy(examples: &Tensor, n: usize, seed: u64) -> Result<Option<f64>> {
    let rows = examples.flatten_from(1)?.to_dtype(DType::F64)?;
    let (m, d) = rows.dims2()?;
    if m < 4 {
        return Err(Error::invalid(
            "examples",
            m,
            "need at least 4 rows to estimate the entropy",
        ));
    }
    let order: Vec<u32> = nested_subset(m, m, seed)?
        .into_iter()
        .map(|i| i as u32)
        .collect();
    let half = m / 2;
    let pick = |range: &[u32]| rows.index_select(&Tensor::new(range, rows.device())?, 0);
    let reference = EmpiricalDenoiser::new(&pick(&order[..half])?)?;
    let probe = pick(&order[half..(2 * half).min(half + 1024)])?;
    let target = (n as f64).ln() / d as f64;
    let excess = |sigma: f64| excess_entropy_per_dim(&reference, &probe, sigma, seed);
    // The excess decreases with sigma; bracket the target, then bisect.
    let scale = rows.var_keepdim(0)?.mean_all()?.to_scalar::<f64>()?.sqrt();
    let (mut lo, mut hi) = (1e-3 * scale, 1e3 * scale);
    if excess(lo)? < target || excess(hi)? > target {
        return Ok(None);
    }
    for _ in 0..40 {
        let mid = (lo * hi).sqrt();
        match excess(mid)? > target {
            true => lo = mid,
            false => hi = mid,
        }
    }
    Ok(Some((lo * hi).sqrt()))
}

/// The per-component sample ratio of a MoLRG training set (Wang et al. 2024, THEORY §8).
#[derive(Clone, Debug, Serialize)]
pub struct MolrgRatio {
    pub component: usize,
    pub dim: usize,
    /// Expected training points in the component, N pi_k.
    pub expected_points: f64,
    /// N_k / d_k.
    pub ratio: f64,
    /// Whether N_k >= d_k, enough to recover the subspace.
    pub recoverable: bool,
}

/// N_k / d_k for each component of a MoLRG distribution, None for other kinds.
pub fn molrg_ratios(dist: &Synthetic, n: usize) -> Option<Vec<MolrgRatio>> {
    let SyntheticSpec::Molrg { ranks, .. } = &dist.spec else {
        return None;
    };
    Some(
        ranks
            .iter()
            .zip(dist.mixture.components())
            .enumerate()
            .map(|(k, (&dim, c))| {
                let expected_points = n as f64 * c.weight;
                MolrgRatio {
                    component: k,
                    dim,
                    expected_points,
                    ratio: expected_points / dim as f64,
                    recoverable: expected_points >= dim as f64,
                }
            })
            .collect(),
    )
}

/// Everything `regimes predict` reports.
#[derive(Clone, Debug, Serialize)]
pub struct Prediction {
    pub n: usize,
    pub dim: usize,
    pub examples: usize,
    pub top_eigenvalue: f64,
    pub speciation_sigma: Option<f64>,
    /// Closed form, for isotropic synthetic distributions (Gaussian or GMM).
    pub collapse_sigma_closed_form: Option<f64>,
    pub collapse_sigma_entropy: Option<f64>,
    pub molrg: Option<Vec<MolrgRatio>>,
}

/// The predictions for training sets of size `n` drawn from `examples`
/// [M, ...], with the closed forms and MoLRG ratios when the examples come
/// from the synthetic distribution `synthetic`.
pub fn predict(
    examples: &Tensor,
    n: usize,
    synthetic: Option<&Synthetic>,
    seed: u64,
) -> Result<Prediction> {
    let rows = examples.flatten_from(1)?;
    let (m, dim) = rows.dims2()?;
    let lambda = top_eigenvalue(&rows)?;
    let closed_form = synthetic.and_then(|s| match &s.spec {
        SyntheticSpec::Gaussian {
            spectrum: crate::data::Spectrum::Isotropic { variance },
            ..
        } => Some(collapse_sigma_isotropic(variance.sqrt(), n as f64, dim)),
        SyntheticSpec::Gmm {
            components, std, ..
        } => Some(collapse_sigma_isotropic(
            *std,
            n as f64 / *components as f64,
            dim,
        )),
        _ => None,
    });
    Ok(Prediction {
        n,
        dim,
        examples: m,
        top_eigenvalue: lambda,
        speciation_sigma: speciation_sigma(lambda),
        collapse_sigma_closed_form: closed_form,
        collapse_sigma_entropy: collapse_sigma_entropy(&rows, n, seed)?,
        molrg: synthetic.and_then(|s| molrg_ratios(s, n)),
    })
}
