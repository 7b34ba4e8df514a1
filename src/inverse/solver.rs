//! Posterior solvers that take any [`Denoiser`] (THEORY §11). Each is a
//! denoiser built around the prior's, sampled with the deterministic Euler
//! steps, so that the same initial noise and the same measurement give the
//! same reconstruction.

use std::str::FromStr;

use candle_core::Tensor;

use super::Operator;
use crate::denoise::Denoiser;
use crate::sample::{initial_noise, sample, Method};
use crate::{Error, Result};

/// How the measurement steers the reverse process.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Solver {
    /// Diffusion posterior sampling (Chung et al.): the likelihood score
    /// grad_x log p(y | x) ~ -zeta grad_x ||y - A D(x; sigma)|| (the norm,
    /// the gradient through the denoiser, [`Denoiser::vjp`]) joins the
    /// prior's, so the Euler steps follow D - zeta sigma^2 grad_x ||y - A D||
    /// (THEORY §11): the guidance fades with the noise level instead of
    /// kicking the last step.
    Dps { zeta: f64 },
    /// Range-null space projection (DDNM): each D(x; sigma) is replaced by
    /// A^+ y + (I - A^+ A) D(x; sigma) before the Euler step, so the
    /// reconstruction agrees exactly with the (noiseless) measurement.
    Projection,
}

impl Solver {
    /// The names `FromStr` reads.
    pub const NAMES: &'static [&'static str] = &["dps", "projection"];
}

impl FromStr for Solver {
    type Err = Error;

    /// `dps` (zeta 10, which recovers measured training points with the
    /// memorizing denoiser in tests/inverse.rs; set it with [`Solver::Dps`])
    /// or `projection`.
    fn from_str(name: &str) -> Result<Self> {
        match name {
            "dps" => Ok(Solver::Dps { zeta: 10.0 }),
            "projection" => Ok(Solver::Projection),
            _ => Err(Error::invalid(
                "solver",
                name,
                format!("use {}", Solver::NAMES.join(" or ")),
            )),
        }
    }
}

/// Clean rows measured, each paired with every initial noise: the inputs of
/// [`solve`] for K clean rows and S noise indices.
pub struct Problems {
    /// A x_k + noise_y e_k, [K, m], e_k from stream (seed, Measurement, k).
    pub measurements: Tensor,
    /// Row k S + j: measurement k, [K S, m].
    pub y: Tensor,
    /// Row k S + j: sigma_max z_j, z_j sample j's noise of `seed`, [K S, n].
    pub x: Tensor,
}

impl Problems {
    /// `clean` [K, n] measured by `a`, in the dtype of `clean`.
    pub fn new(
        a: &Operator,
        clean: &Tensor,
        noise_y: f64,
        seed: u64,
        indices: &[u64],
        sigma_max: f64,
    ) -> Result<Self> {
        let count = clean.dim(0)?;
        let rows: Vec<u64> = (0..count as u64).collect();
        let measurements = a.measure(clean, noise_y, seed, &rows)?;
        let s = indices.len();
        let picks: Vec<u32> = (0..count * s).map(|r| (r / s) as u32).collect();
        let y = measurements.index_select(&Tensor::new(picks.as_slice(), clean.device())?, 0)?;
        let (z, _) = initial_noise(seed, indices, a.dim(), clean.dtype(), clean.device())?;
        let x = (Tensor::cat(&vec![z; count], 0)? * sigma_max)?;
        Ok(Self { measurements, y, x })
    }
}

/// Reconstructions from measurements `y` [R, m] (row r for reconstruction
/// r), starting at `x` = sigmas\[0\] z \[R, n\] and run down `sigmas`.
pub fn solve(
    denoiser: &dyn Denoiser,
    a: &Operator,
    y: &Tensor,
    solver: Solver,
    x: &Tensor,
    sigmas: &[f64],
) -> Result<Tensor> {
    if y.dims() != [x.dims()[0], a.measured_dim()] || a.dim() != denoiser.dim() {
        return Err(Error::shape(
            "measurements",
            format!(
                "[{}, {}] for data of dimension {}",
                x.dims()[0],
                a.measured_dim(),
                a.dim()
            ),
            format!(
                "{:?} for a denoiser of dimension {}",
                y.dims(),
                denoiser.dim()
            ),
        ));
    }
    match solver {
        Solver::Projection => {
            let projected = RangeNull { denoiser, a, y };
            sample(&projected, x, sigmas, &Method::Euler, &mut [], None)
        }
        Solver::Dps { zeta } => {
            if !(zeta.is_finite() && zeta >= 0.0) {
                return Err(Error::invalid("zeta", zeta, "must be finite and >= 0"));
            }
            let guided = DpsGuided {
                denoiser,
                a,
                y,
                zeta,
            };
            sample(&guided, x, sigmas, &Method::Euler, &mut [], None)
        }
    }
}

/// DPS's likelihood score, -zeta grad_x ||y - A D(x; sigma)||, added to the
/// prior's by Tweedie's formula: D(x; sigma) - zeta sigma^2 J^T v with
/// v = A^T (A D - y) / ||A D - y||, the gradient through the denoiser.
struct DpsGuided<'a> {
    denoiser: &'a dyn Denoiser,
    a: &'a Operator,
    y: &'a Tensor,
    zeta: f64,
}

impl Denoiser for DpsGuided<'_> {
    fn denoise(&self, x: &Tensor, sigma: f64) -> Result<Tensor> {
        let d = self.denoiser.denoise(x, sigma)?;
        if self.zeta == 0.0 {
            return Ok(d);
        }
        let residual = (self.a.apply(&d)? - self.y.to_dtype(d.dtype())?)?;
        let norm = residual
            .sqr()?
            .sum_keepdim(1)?
            .sqrt()?
            .clamp(1e-30, f64::INFINITY)?;
        let direction = self.a.adjoint(&residual.broadcast_div(&norm)?)?;
        let gradient = self.denoiser.vjp(x, sigma, &direction)?;
        Ok((d - (gradient * (self.zeta * sigma * sigma))?)?)
    }

    fn dim(&self) -> usize {
        self.denoiser.dim()
    }
}

/// D(x; sigma) with its range-space component replaced by the measurement's:
/// A^+ y + (I - A^+ A) D = D + A^+ (y - A D).
struct RangeNull<'a> {
    denoiser: &'a dyn Denoiser,
    a: &'a Operator,
    y: &'a Tensor,
}

impl Denoiser for RangeNull<'_> {
    fn denoise(&self, x: &Tensor, sigma: f64) -> Result<Tensor> {
        let d = self.denoiser.denoise(x, sigma)?;
        let gap = (self.y.to_dtype(d.dtype())? - self.a.apply(&d)?)?;
        Ok((&d + self.a.pseudo_inverse(&gap)?)?)
    }

    fn dim(&self) -> usize {
        self.denoiser.dim()
    }
}
