//! Posterior solvers that take any [`Denoiser`] (THEORY §11), each on a
//! deterministic Euler base so that the same initial noise and the same
//! measurement give the same reconstruction.

use std::str::FromStr;

use candle_core::Tensor;

use super::Operator;
use crate::denoise::Denoiser;
use crate::sample::{sample, Method};
use crate::{Error, Result};

/// How the measurement steers the reverse process.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Solver {
    /// Diffusion posterior sampling (Chung et al.): after each Euler step,
    /// x <- x - zeta (1 + sigma^2) grad_x ||y - A D(x; sigma)||, the gradient
    /// through the denoiser ([`Denoiser::vjp`]). The factor 1 + sigma^2 makes
    /// zeta the step of DPS's own VP coordinates, x_VP = x / sqrt(1 + sigma^2)
    /// (THEORY §11); without it the guidance vanishes at high noise.
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

    /// `dps` (zeta 1; set it with [`Solver::Dps`]) or `projection`.
    fn from_str(name: &str) -> Result<Self> {
        match name {
            "dps" => Ok(Solver::Dps { zeta: 1.0 }),
            "projection" => Ok(Solver::Projection),
            _ => Err(Error::invalid(
                "solver",
                name,
                format!("use {}", Solver::NAMES.join(" or ")),
            )),
        }
    }
}

/// Reconstructions from measurements `y` [R, m] (row r for reconstruction
/// r), starting at `x` = sigmas[0] z [R, n] and run down `sigmas`.
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
            crate::sample::step_by_step(x, sigmas, |_, (s, s_next), x| {
                let d = denoiser.denoise(x, s)?;
                let residual = (a.apply(&d)? - y.to_dtype(d.dtype())?)?;
                let norm = residual
                    .sqr()?
                    .sum_keepdim(1)?
                    .sqrt()?
                    .clamp(1e-30, f64::INFINITY)?;
                let direction = a.adjoint(&residual.broadcast_div(&norm)?)?;
                let gradient = denoiser.vjp(x, s, &direction)?;
                let step = (((x - &d)? / s)? * (s_next - s))?;
                Ok(((x + step)? - (gradient * (zeta * (1.0 + s * s)))?)?)
            })
        }
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
