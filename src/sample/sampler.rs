//! Euler, Heun, DDIM and the stochastic EDM sampler (THEORY §2), written to
//! read like the algorithms: `s` is sigma_i, `s_next` is sigma_{i+1}.

use candle_core::{DType, Device, Tensor};
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};

use super::Schedule;
use crate::denoise::Denoiser;
use crate::rng::{normal_rows, sample_streams};
use crate::{Error, Result};

/// Which integrator runs the probability-flow ODE.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Method {
    /// First order: one evaluation per step.
    Euler,
    /// EDM Algorithm 2 with S_churn = 0: second order, 2S - 1 evaluations.
    Heun,
    /// DDIM with eta = 0, integrated in VP variables; equals Euler in VE variables.
    Ddim,
    /// EDM's stochastic sampler: Langevin-like churn, then a Heun step.
    EdmStochastic(Churn),
    /// The reverse SDE's ancestral step (THEORY §2): a fresh draw of the
    /// noise at every level, as the clone test needs.
    Ancestral,
}

impl std::str::FromStr for Method {
    type Err = Error;

    /// `euler`, `heun`, `ddim`, `edm-stochastic` (EDM's churn defaults) or `ancestral`.
    fn from_str(name: &str) -> Result<Self> {
        Ok(match name {
            "euler" => Method::Euler,
            "heun" => Method::Heun,
            "ddim" => Method::Ddim,
            "edm-stochastic" => Method::EdmStochastic(Churn::default()),
            "ancestral" => Method::Ancestral,
            _ => {
                return Err(Error::invalid(
                    "sampler",
                    name,
                    "use euler, heun, ddim, edm-stochastic or ancestral",
                ))
            }
        })
    }
}

/// Parameters of the stochastic EDM sampler (THEORY §2).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Churn {
    pub s_churn: f64,
    pub s_tmin: f64,
    pub s_tmax: f64,
    pub s_noise: f64,
}

impl Default for Churn {
    /// The EDM paper's values for CIFAR-10 (VP): S_churn = 30, S_tmin = 0.01, S_tmax = 1, S_noise = 1.007.
    fn default() -> Self {
        Self {
            s_churn: 30.0,
            s_tmin: 0.01,
            s_tmax: 1.0,
            s_noise: 1.007,
        }
    }
}

/// What an observer sees at each step: the state x at noise level `sigma`
/// (s_hat for the stochastic sampler) and D(x; sigma).
pub struct Step<'a> {
    pub index: usize,
    pub sigma: f64,
    pub x: &'a Tensor,
    pub denoised: &'a Tensor,
}

/// A per-step callback; the loop itself knows nothing of logging.
pub type Observer<'a> = &'a mut dyn FnMut(&Step<'_>);

/// Standard-normal initial noise z, row k from stream (seed, indices[k]), and
/// those streams positioned after it, for any noise the sampler draws later.
/// Row k depends only on (seed, indices[k]).
pub fn initial_noise(
    seed: u64,
    indices: &[u64],
    dim: usize,
    dtype: DType,
    device: &Device,
) -> Result<(Tensor, Vec<ChaCha20Rng>)> {
    let mut streams = sample_streams(seed, indices);
    let z = normal_rows(&mut streams, dim, dtype, device)?;
    Ok((z, streams))
}

/// Generates samples `indices` of run `seed`: x_0 = sigma_max z, then `method`
/// over the schedule's sigmas.
#[allow(clippy::too_many_arguments)]
pub fn generate(
    denoiser: &dyn Denoiser,
    seed: u64,
    indices: &[u64],
    dtype: DType,
    device: &Device,
    schedule: &Schedule,
    method: &Method,
    observer: Option<Observer<'_>>,
) -> Result<Tensor> {
    let sigmas = schedule.sigmas()?;
    let (z, mut streams) = initial_noise(seed, indices, denoiser.dim(), dtype, device)?;
    sample(
        denoiser,
        &(z * sigmas[0])?,
        &sigmas,
        method,
        &mut streams,
        observer,
    )
}

/// Runs `method` from `x` at sigmas[0] through every level in `sigmas`
/// (decreasing; may end at 0). `streams` (one per row) supply the stochastic
/// sampler's noise and are untouched by the deterministic ones.
pub fn sample(
    denoiser: &dyn Denoiser,
    x: &Tensor,
    sigmas: &[f64],
    method: &Method,
    streams: &mut [ChaCha20Rng],
    mut observer: Option<Observer<'_>>,
) -> Result<Tensor> {
    check_sigmas(sigmas)?;
    let mut observe = |index: usize, sigma: f64, x: &Tensor, denoised: &Tensor| {
        if let Some(f) = observer.as_mut() {
            f(&Step {
                index,
                sigma,
                x,
                denoised,
            });
        }
    };
    if *method == Method::Ddim {
        return ddim(denoiser, x, sigmas, &mut observe);
    }
    let steps = sigmas.len() - 1;
    let mut x = x.clone();
    for (i, pair) in sigmas.windows(2).enumerate() {
        let (s, s_next) = (pair[0], pair[1]);
        x = match method {
            Method::Euler => {
                let denoised = denoiser.denoise(&x, s)?;
                observe(i, s, &x, &denoised);
                euler(&x, &denoised, s, s_next)?
            }
            Method::Heun => heun(denoiser, &x, s, s_next, i, &mut observe)?,
            Method::EdmStochastic(churn) => {
                let (x_hat, s_hat) = add_churn(&x, s, steps, churn, streams)?;
                heun(denoiser, &x_hat, s_hat, s_next, i, &mut observe)?
            }
            Method::Ancestral => {
                let denoised = denoiser.denoise(&x, s)?;
                observe(i, s, &x, &denoised);
                let z = row_noise(streams, &x)?;
                ancestral(&x, &denoised, s, s_next, &z)?
            }
            Method::Ddim => unreachable!("handled above"),
        };
    }
    Ok(x)
}

fn check_sigmas(sigmas: &[f64]) -> Result<()> {
    if sigmas.len() < 2 {
        return Err(Error::invalid(
            "number of sigmas",
            sigmas.len(),
            "need at least 2",
        ));
    }
    let last = sigmas.len() - 1;
    for (i, &s) in sigmas.iter().enumerate() {
        let ok = s.is_finite() && (s > 0.0 || (i == last && s == 0.0));
        if !ok || (i > 0 && s >= sigmas[i - 1]) {
            return Err(Error::invalid(
                format!("sigma[{i}]"),
                s,
                "sigmas must be positive and strictly decreasing (only the last may be 0)",
            ));
        }
    }
    Ok(())
}

/// Euler: d = (x - D) / s; x' = x + (s_next - s) d.
fn euler(x: &Tensor, denoised: &Tensor, s: f64, s_next: f64) -> Result<Tensor> {
    let d = ((x - denoised)? / s)?;
    Ok((x + (d * (s_next - s))?)?)
}

/// Heun (EDM Algorithm 2): Euler predictor, then the trapezoidal corrector when
/// s_next > 0; the step to sigma = 0 stays plain Euler.
fn heun(
    denoiser: &dyn Denoiser,
    x: &Tensor,
    s: f64,
    s_next: f64,
    index: usize,
    observe: &mut impl FnMut(usize, f64, &Tensor, &Tensor),
) -> Result<Tensor> {
    let denoised = denoiser.denoise(x, s)?;
    observe(index, s, x, &denoised);
    let d = ((x - &denoised)? / s)?;
    let x_next = (x + (&d * (s_next - s))?)?;
    if s_next == 0.0 {
        return Ok(x_next);
    }
    let d_next = ((&x_next - denoiser.denoise(&x_next, s_next)?)? / s_next)?;
    Ok((x + ((d + d_next)? * (0.5 * (s_next - s)))?)?)
}

/// Stochastic EDM churn: gamma = min(S_churn / S, sqrt(2) - 1) inside
/// [S_tmin, S_tmax], s_hat = s (1 + gamma),
/// x_hat = x + sqrt(s_hat^2 - s^2) S_noise z (THEORY §2).
fn add_churn(
    x: &Tensor,
    s: f64,
    steps: usize,
    churn: &Churn,
    streams: &mut [ChaCha20Rng],
) -> Result<(Tensor, f64)> {
    let gamma = if (churn.s_tmin..=churn.s_tmax).contains(&s) {
        (churn.s_churn / steps as f64).min(std::f64::consts::SQRT_2 - 1.0)
    } else {
        0.0
    };
    if gamma == 0.0 {
        return Ok((x.clone(), s));
    }
    let s_hat = s * (1.0 + gamma);
    let z = row_noise(streams, x)?;
    let x_hat = (x + (z * ((s_hat * s_hat - s * s).sqrt() * churn.s_noise))?)?;
    Ok((x_hat, s_hat))
}

/// One standard normal per entry of `x`, row k from `streams[k]`.
fn row_noise(streams: &mut [ChaCha20Rng], x: &Tensor) -> Result<Tensor> {
    if streams.len() != x.dims()[0] {
        return Err(Error::shape(
            "sampler noise streams",
            x.dims()[0],
            streams.len(),
        ));
    }
    normal_rows(streams, x.dims()[1], x.dtype(), x.device())
}

/// The ancestral step of the reverse SDE from s to s_next < s (THEORY §2):
/// the Gaussian posterior of x(s_next) given x(s) when the clean point is
/// D(x; s) (DDPM's posterior in VE form), x' = x + a (D - x) + sqrt(a) s_next z
/// with a = 1 - s_next^2 / s^2; at s_next = 0 it returns D.
fn ancestral(x: &Tensor, denoised: &Tensor, s: f64, s_next: f64, z: &Tensor) -> Result<Tensor> {
    let a = 1.0 - (s_next * s_next) / (s * s);
    Ok(((x + ((denoised - x)? * a)?)? + (z * (a.sqrt() * s_next))?)?)
}

/// DDIM (eta = 0) in VP variables, alpha_bar = 1 / (1 + sigma^2) and
/// x_VP = x_VE / sqrt(1 + sigma^2) (THEORY §1-2):
/// x_VP' = sqrt(alpha_bar') x0 + sqrt(1 - alpha_bar') eps, with eps = (x_VE - D) / sigma.
fn ddim(
    denoiser: &dyn Denoiser,
    x: &Tensor,
    sigmas: &[f64],
    observe: &mut impl FnMut(usize, f64, &Tensor, &Tensor),
) -> Result<Tensor> {
    let scale = |s: f64| (1.0 + s * s).sqrt();
    let mut x_vp = (x / scale(sigmas[0]))?;
    for (i, pair) in sigmas.windows(2).enumerate() {
        let (s, s_next) = (pair[0], pair[1]);
        let x_ve = (&x_vp * scale(s))?;
        let x0 = denoiser.denoise(&x_ve, s)?;
        observe(i, s, &x_ve, &x0);
        let eps = ((&x_ve - &x0)? / s)?;
        let alpha_bar_next = 1.0 / (1.0 + s_next * s_next);
        x_vp = ((x0 * alpha_bar_next.sqrt())? + (eps * (1.0 - alpha_bar_next).sqrt())?)?;
    }
    Ok((x_vp * scale(*sigmas.last().expect("checked non-empty")))?)
}
