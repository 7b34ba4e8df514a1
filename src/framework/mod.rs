//! Training frameworks as adapters to the one VE denoiser (THEORY §9, EDM
//! Table 1): each is a preconditioning D(x; sigma) = c_skip x + c_out
//! F(c_in x, c_noise), a training distribution of sigma, a loss weight
//! lambda(sigma) on ||D - y||^2, and a native sampler. One file per framework;
//! a new one is its file plus one line in [`FRAMEWORKS`].
//!
//! ```
//! use diffusion_regimes::framework::Framework;
//! let vp_eps: Framework = "vp-eps".parse().unwrap();
//! let native = vp_eps.native(10).unwrap();
//! // DDIM on the model's own timesteps t = 1000 ... 1, then sigma = 0.
//! assert!((native.sigmas[0] - 157.4).abs() < 0.1 && native.sigmas.len() == 11);
//! ```

use std::sync::Arc;

use candle_core::Tensor;
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};

use crate::sample::Plan;
use crate::{Error, Result};

mod consistency;
mod edm;
mod flow;
mod ve;
mod vp;
mod vp_eps;

pub use consistency::{Consistency, LevelPairs, PairWeights};
pub use edm::Edm;
pub use flow::{Flow, FlowTime};
pub use ve::Ve;
pub use vp::Vp;
pub use vp_eps::VpEps;

/// Per-row scalings of EDM Table 1, each `[B]` like sigma.
pub struct Scalings {
    pub c_skip: Tensor,
    pub c_out: Tensor,
    pub c_in: Tensor,
    pub c_noise: Tensor,
}

/// One training framework, seen through the VE denoiser (THEORY §9).
pub trait Parameterisation: Send + Sync {
    /// c_skip, c_out, c_in and c_noise of every row's noise level `sigma` \[B\].
    fn scalings(&self, sigma: &Tensor) -> Result<Scalings>;
    /// lambda(sigma) \[B\], the weight of mean_i (D - y)_i^2 in the loss.
    fn loss_weight(&self, sigma: &Tensor) -> Result<Tensor>;
    /// One training noise level, from the step's stream.
    fn draw_sigma(&self, rng: &mut ChaCha20Rng) -> f32;
    /// For consistency training (THEORY §16), the adjacent levels step
    /// `step` of `steps` draws its pairs from; None for the frameworks that
    /// regress on the clean example.
    fn level_pairs(&self, _step: u64, _steps: u64) -> Option<LevelPairs> {
        None
    }
    /// Whether the lower point of each pair is a teacher's ODE step
    /// (consistency distillation) rather than the same noise at the lower level.
    fn distills(&self) -> bool {
        false
    }
}

/// One training framework: a handle to its line of [`FRAMEWORKS`], which
/// holds everything about it. Configs, flags and run records name it.
#[derive(Clone, Copy)]
pub struct Framework(&'static FrameworkEntry);

/// One framework of the registry: its name, its adapter (EDM's takes the
/// run's sigma_data and its log-normal P_mean, P_std, THEORY §3; the others
/// their papers' constants) and its own sampler on `steps` levels.
pub struct FrameworkEntry {
    pub name: &'static str,
    /// One line for `--help` and the docs.
    pub about: &'static str,
    parameterisation: fn(f64, f64, f64) -> Arc<dyn Parameterisation>,
    native: fn(usize) -> Result<Plan>,
}

/// The registry: a new framework is its file plus one line here.
pub const FRAMEWORKS: &[FrameworkEntry] = &[
    FrameworkEntry {
        name: "edm",
        about: "EDM (Karras et al. 2022): the default",
        parameterisation: |sigma_data, p_mean, p_std| {
            Arc::new(Edm {
                sigma_data,
                p_mean,
                p_std,
            })
        },
        native: Edm::native,
    },
    FrameworkEntry {
        name: "vp-eps",
        about: "DDPM's epsilon-prediction on the discrete linear betas, T = 1000",
        parameterisation: |_, _, _| Arc::new(VpEps::ddpm()),
        native: |steps| VpEps::ddpm().native(steps),
    },
    FrameworkEntry {
        name: "vp",
        about: "the continuous VP schedule (EDM's VPPrecond / VPLoss)",
        parameterisation: |_, _, _| Arc::new(Vp::default()),
        native: |steps| Vp::default().native(steps),
    },
    FrameworkEntry {
        name: "ve",
        about: "score-SDE VE (EDM's VEPrecond / VELoss)",
        parameterisation: |_, _, _| Arc::new(Ve::default()),
        native: |steps| Ve::default().native(steps),
    },
    FrameworkEntry {
        name: "flow",
        about: "rectified flow, t logit-normal",
        parameterisation: |_, _, _| Arc::new(Flow::new(FlowTime::LogitNormal)),
        native: |steps| Flow::new(FlowTime::LogitNormal).native(steps),
    },
    FrameworkEntry {
        name: "flow-uniform",
        about: "rectified flow, t uniform",
        parameterisation: |_, _, _| Arc::new(Flow::new(FlowTime::Uniform)),
        native: |steps| Flow::new(FlowTime::Uniform).native(steps),
    },
    FrameworkEntry {
        name: "consistency",
        about: "consistency training (Song & Dhariwal 2023): f(x, sigma) is the ODE's endpoint, sampled in one step",
        parameterisation: |sigma_data, _, _| Arc::new(Consistency::new(sigma_data)),
        native: |steps| Consistency::new(0.5).native(steps),
    },
    FrameworkEntry {
        name: "consistency-distillation",
        about: "consistency distillation (Song et al. 2023) from a trained model (--teacher RUN)",
        parameterisation: |sigma_data, _, _| Arc::new(Consistency::distillation(sigma_data)),
        native: |steps| Consistency::distillation(0.5).native(steps),
    },
];

impl Framework {
    /// EDM (Karras et al. 2022), the default, the first line of the registry.
    pub const EDM: Framework = Framework(&FRAMEWORKS[0]);

    /// Every framework, in the registry's order.
    pub const ALL: [Framework; FRAMEWORKS.len()] = {
        let mut all = [Framework::EDM; FRAMEWORKS.len()];
        let mut i = 0;
        while i < all.len() {
            all[i] = Framework(&FRAMEWORKS[i]);
            i += 1;
        }
        all
    };

    pub fn name(self) -> &'static str {
        self.0.name
    }

    /// One line on what it is.
    pub fn about(self) -> &'static str {
        self.0.about
    }

    pub fn is_edm(&self) -> bool {
        *self == Framework::EDM
    }

    /// The framework's adapter; EDM's takes the run's sigma_data and its
    /// log-normal P_mean, P_std (THEORY §3), the others their papers' constants.
    pub fn parameterisation(
        self,
        sigma_data: f64,
        p_mean: f64,
        p_std: f64,
    ) -> Arc<dyn Parameterisation> {
        (self.0.parameterisation)(sigma_data, p_mean, p_std)
    }

    /// Whether it trains on pairs of its own outputs at adjacent levels
    /// (consistency training, THEORY §16) rather than on a regression target.
    pub fn trains_on_pairs(self) -> bool {
        self.parameterisation(1.0, 0.0, 1.0)
            .level_pairs(0, 1)
            .is_some()
    }

    /// Whether it learns from a teacher's ODE steps (consistency
    /// distillation, THEORY §16), so a run needs a teacher.
    pub fn distills(self) -> bool {
        self.parameterisation(1.0, 0.0, 1.0).distills()
    }

    /// The framework's own sampler on `steps` noise levels (then sigma = 0):
    /// Heun for EDM (about 2 `steps` evaluations), one evaluation per step
    /// for the others, and one evaluation in all for consistency models.
    pub fn native(self, steps: usize) -> Result<Plan> {
        (self.0.native)(steps)
    }
}

impl Default for Framework {
    fn default() -> Self {
        Framework::EDM
    }
}

/// Frameworks are one when their names are (names are unique: a test).
impl PartialEq for Framework {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name()
    }
}

impl Eq for Framework {}

impl std::hash::Hash for Framework {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name().hash(state)
    }
}

impl std::fmt::Debug for Framework {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Framework({})", self.name())
    }
}

impl std::fmt::Display for Framework {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Framework {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self> {
        Framework::ALL
            .into_iter()
            .find(|f| f.name() == name)
            .ok_or_else(|| {
                let names = Framework::ALL.map(Framework::name);
                Error::invalid("framework", name, format!("use {}", names.join(", ")))
            })
    }
}

/// Configs and run records hold a framework by its registry name.
impl Serialize for Framework {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Framework {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// An epsilon-predictor's scalings (THEORY §9: D = x_VE - sigma eps(x_VP,
/// t), x_VP = x_VE / sqrt(1 + sigma^2)): c_skip = 1, c_out = -sigma, c_in =
/// 1 / sqrt(1 + sigma^2), with the framework's time input `c_noise`.
fn epsilon_scalings(sigma: &Tensor, c_noise: Tensor) -> Result<Scalings> {
    Ok(Scalings {
        c_skip: sigma.ones_like()?,
        c_out: sigma.neg()?,
        c_in: (sigma.sqr()? + 1.0)?.sqrt()?.recip()?,
        c_noise,
    })
}

/// 1 / sigma^2: the loss weight that makes ||D - y||^2 the squared error of
/// an epsilon-prediction (VP) or of F = -z (VE).
fn inverse_square(sigma: &Tensor) -> Result<Tensor> {
    Ok(sigma.sqr()?.recip()?)
}

/// sigma [B] mapped row by row through `f` (for the scalings that are not
/// one tensor expression), in sigma's dtype and device.
pub(crate) fn per_row(sigma: &Tensor, f: impl Fn(f64) -> f64) -> Result<Tensor> {
    let values: Vec<f64> = sigma
        .to_dtype(candle_core::DType::F64)?
        .to_vec1::<f64>()?
        .into_iter()
        .map(f)
        .collect();
    let n = values.len();
    Ok(Tensor::from_vec(values, n, &candle_core::Device::Cpu)?
        .to_dtype(sigma.dtype())?
        .to_device(sigma.device())?)
}

/// An error unless a native sampler has at least 2 steps.
fn check_steps(steps: usize) -> Result<()> {
    match steps >= 2 {
        true => Ok(()),
        false => Err(Error::invalid("steps", steps, "need at least 2")),
    }
}

/// `steps` values from `from` to `to`, evenly spaced.
fn linspace(from: f64, to: f64, steps: usize) -> Vec<f64> {
    let last = (steps - 1) as f64;
    (0..steps)
        .map(|i| from + (to - from) * i as f64 / last)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_names_are_unique_and_parse_to_their_own_line() {
        for (i, f) in Framework::ALL.iter().enumerate() {
            assert!(Framework::ALL[i + 1..].iter().all(|g| g.name() != f.name()));
            let parsed: Framework = f.name().parse().unwrap();
            assert_eq!((parsed.name(), parsed.about()), (f.name(), f.about()));
        }
        assert!(Framework::default().is_edm() && Framework::EDM.name() == "edm");
        let json = serde_json::to_string(&Framework::ALL[1]).unwrap();
        assert_eq!(
            serde_json::from_str::<Framework>(&json).unwrap(),
            Framework::ALL[1]
        );
        assert!("ddpm"
            .parse::<Framework>()
            .unwrap_err()
            .to_string()
            .contains("vp-eps"));
    }
}
