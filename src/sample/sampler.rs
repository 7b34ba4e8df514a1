//! The samplers (THEORY §2), one file each, and what they share: the one
//! registry of [`Method`]s, the same per-row initial noise, the observer.
//! A new sampler is its file (an [`Integrator`]) plus one line in
//! `samplers!` below.

use candle_core::{DType, Device, Tensor};
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};

use super::{Ancestral, Churn, ConsistencySteps, Ddim, Euler, Heun, Schedule};
use crate::denoise::Denoiser;
use crate::rng::{normal_rows, sample_streams};
use crate::{Error, Result};

/// One way to move samples from sigmas\[0\] down every level of `sigmas`,
/// calling `observe(index, sigma, x, D(x; sigma))` at each evaluation it
/// reports; `streams` (one per row) supply any noise it draws.
pub trait Integrator: Send + Sync {
    fn integrate(
        &self,
        denoiser: &dyn Denoiser,
        x: &Tensor,
        sigmas: &[f64],
        streams: &mut [ChaCha20Rng],
        observe: Observe<'_>,
    ) -> Result<Tensor>;
}

/// The per-step callback as the integrators receive it.
pub type Observe<'a> = &'a mut dyn FnMut(usize, f64, &Tensor, &Tensor) -> Result<()>;

/// The registry: from one line per sampler (variant, name, and, for
/// samplers with settings, their type, whose default the name selects),
/// [`Method`] with its names, `FromStr` and dispatch.
macro_rules! samplers {
    (
        plain { $($plain:ident = $plain_name:literal,)* }
        with_settings { $($set:ident($settings:ty) = $set_name:literal,)* }
    ) => {
        /// Which integrator runs the reverse process.
        #[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
        pub enum Method {
            $($plain,)*
            $($set($settings),)*
        }

        impl Method {
            /// Every sampler's name, as `FromStr` reads it.
            pub const NAMES: &'static [&'static str] = &[$($plain_name,)* $($set_name,)*];

            fn integrator(&self) -> &dyn Integrator {
                match self {
                    $(Method::$plain => &$plain,)*
                    $(Method::$set(settings) => settings,)*
                }
            }
        }

        impl std::str::FromStr for Method {
            type Err = Error;

            /// A name of [`Method::NAMES`]; samplers with settings get their defaults.
            fn from_str(name: &str) -> Result<Self> {
                match name {
                    $($plain_name => Ok(Method::$plain),)*
                    $($set_name => Ok(Method::$set(<$settings>::default())),)*
                    _ => Err(Error::invalid(
                        "sampler",
                        name,
                        format!("use {}", Method::NAMES.join(", ")),
                    )),
                }
            }
        }
    };
}

samplers! {
    plain {
        // First order: one evaluation per step.
        Euler = "euler",
        // EDM Algorithm 2 with S_churn = 0: second order, 2S - 1 evaluations.
        Heun = "heun",
        // DDIM with eta = 0, integrated in VP variables; equals Euler in VE variables.
        Ddim = "ddim",
        // The reverse SDE's ancestral step: fresh noise at every level.
        Ancestral = "ancestral",
    }
    with_settings {
        // EDM's stochastic sampler: Langevin-like churn, then a Heun step.
        EdmStochastic(Churn) = "edm-stochastic",
        // A consistency model's multistep sampler: f(x, sigma), then fresh noise.
        Consistency(ConsistencySteps) = "consistency",
    }
}

/// A method is its integrator, so it can stand wherever one is taken.
impl Integrator for Method {
    fn integrate(
        &self,
        denoiser: &dyn Denoiser,
        x: &Tensor,
        sigmas: &[f64],
        streams: &mut [ChaCha20Rng],
        observe: Observe<'_>,
    ) -> Result<Tensor> {
        self.integrator()
            .integrate(denoiser, x, sigmas, streams, observe)
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

/// A per-step callback; the loop itself knows nothing of logging. An error
/// it returns stops the sampler and is the sampler's result.
pub type Observer<'a> = &'a mut dyn FnMut(&Step<'_>) -> Result<()>;

/// Standard-normal initial noise z, row k from stream (seed, indices\[k\]), and
/// those streams positioned after it, for any noise the sampler draws later.
/// Row k depends only on (seed, indices\[k\]).
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

/// Samples `indices` of run `seed` at noise level `sigma`, x_0 = sigma z_j,
/// with the streams that go on to supply their stochastic noise.
pub fn starting_points(
    seed: u64,
    indices: &[u64],
    dim: usize,
    sigma: f64,
    dtype: DType,
    device: &Device,
) -> Result<(Tensor, Vec<ChaCha20Rng>)> {
    let (z, streams) = initial_noise(seed, indices, dim, dtype, device)?;
    Ok(((z * sigma)?, streams))
}

/// How a sampler runs (THEORY §2, §9): the noise levels it visits
/// (decreasing, ending at 0 or not) and how it steps between them. Sample j
/// starts at x = sigmas\[0\] z_j. [`Plan::new`] makes one of the EDM schedule
/// and a registered [`Method`]; a framework's own sampler is
/// `Framework::native`.
pub struct Plan {
    pub sigmas: Vec<f64>,
    pub integrator: Box<dyn Integrator>,
}

impl Plan {
    /// `method` over the levels of `schedule`.
    pub fn new(schedule: &Schedule, method: Method) -> Result<Plan> {
        Ok(Plan {
            sigmas: schedule.sigmas()?,
            integrator: Box::new(method),
        })
    }
}

/// Generates samples `indices` of run `seed`: x_0 = sigmas\[0\] z_j with z_j
/// the run's per-sample noise ([`initial_noise`]), then the plan's steps.
/// The one entry for sampling from seeds: EDM samplers, native samplers, the
/// CLI and the experiments all come through here.
#[allow(clippy::too_many_arguments)]
pub fn generate(
    denoiser: &dyn Denoiser,
    plan: &Plan,
    seed: u64,
    indices: &[u64],
    dtype: DType,
    device: &Device,
    observer: Option<Observer<'_>>,
) -> Result<Tensor> {
    let (z, mut streams) = initial_noise(seed, indices, denoiser.dim(), dtype, device)?;
    generate_from(denoiser, plan, &z, &mut streams, observer)
}

/// As [`generate`] from given standard-normal noise `z` [B, n] (a user's
/// own, or read from a file); `streams` (one per row) supply the stochastic
/// samplers' later noise.
pub fn generate_from(
    denoiser: &dyn Denoiser,
    plan: &Plan,
    z: &Tensor,
    streams: &mut [ChaCha20Rng],
    observer: Option<Observer<'_>>,
) -> Result<Tensor> {
    check_sigmas(&plan.sigmas)?;
    let x = (z * plan.sigmas[0])?;
    let integrator = plan.integrator.as_ref();
    sample(denoiser, &x, &plan.sigmas, integrator, streams, observer)
}

/// Runs `integrator` (a [`Method`], or a framework's native one) from `x` at
/// sigmas\[0\] through every level in `sigmas` (decreasing; may end at 0).
/// `streams` (one per row) supply the stochastic sampler's noise and are
/// untouched by the deterministic ones.
pub fn sample(
    denoiser: &dyn Denoiser,
    x: &Tensor,
    sigmas: &[f64],
    integrator: &dyn Integrator,
    streams: &mut [ChaCha20Rng],
    mut observer: Option<Observer<'_>>,
) -> Result<Tensor> {
    check_sigmas(sigmas)?;
    let mut observe =
        |index: usize, sigma: f64, x: &Tensor, denoised: &Tensor| match observer.as_mut() {
            Some(f) => f(&Step {
                index,
                sigma,
                x,
                denoised,
            }),
            None => Ok(()),
        };
    integrator.integrate(&Detached(denoiser), x, sigmas, streams, &mut observe)
}

/// The denoiser as the integrators see it: each output detached from any
/// autodiff graph (a trained network's weights are variables), so every
/// step's activations are freed with it instead of being chained into the
/// whole trajectory's graph. The values are the same bits. Each evaluation
/// first checks for an interrupt ([`crate::jobs::check_interrupt`]).
struct Detached<'a>(&'a dyn Denoiser);

impl Denoiser for Detached<'_> {
    fn denoise(&self, x: &Tensor, sigma: f64) -> Result<Tensor> {
        crate::jobs::check_interrupt()?;
        Ok(self.0.denoise(x, sigma)?.detach())
    }

    fn dim(&self) -> usize {
        self.0.dim()
    }
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

/// `x` carried down every level of `sigmas` by `step(index, (s, s_next), x)`:
/// the loop the single-step samplers share.
pub(super) fn step_by_step(
    x: &Tensor,
    sigmas: &[f64],
    mut step: impl FnMut(usize, (f64, f64), &Tensor) -> Result<Tensor>,
) -> Result<Tensor> {
    let mut x = x.clone();
    for (i, pair) in sigmas.windows(2).enumerate() {
        x = step(i, (pair[0], pair[1]), &x)?;
    }
    Ok(x)
}

/// One standard normal per entry of `x`, row k from `streams[k]`.
pub(super) fn row_noise(streams: &mut [ChaCha20Rng], x: &Tensor) -> Result<Tensor> {
    if streams.len() != x.dims()[0] {
        return Err(Error::shape(
            "sampler noise streams",
            x.dims()[0],
            streams.len(),
        ));
    }
    normal_rows(streams, x.dims()[1], x.dtype(), x.device())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_registered_name_parses_to_its_own_sampler() {
        let methods: Vec<Method> = Method::NAMES.iter().map(|n| n.parse().unwrap()).collect();
        for (i, a) in methods.iter().enumerate() {
            assert!(methods[i + 1..].iter().all(|b| b != a), "{a:?} twice");
        }
        assert_eq!("heun".parse::<Method>().unwrap(), Method::Heun);
        assert_eq!(
            "edm-stochastic".parse::<Method>().unwrap(),
            Method::EdmStochastic(Churn::default())
        );
        let message = "rk4".parse::<Method>().unwrap_err().to_string();
        assert!(
            message.contains("rk4") && message.contains("ancestral"),
            "{message}"
        );
    }
}
