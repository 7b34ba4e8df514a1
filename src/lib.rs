//! # diffusion-regimes
//!
//! Does a diffusion model memorize its training set or learn the underlying
//! distribution, and where is the boundary? The pipeline, in ten lines:
//!
//! 1. draw data from a synthetic distribution that knows its exact denoiser ([`data`]),
//! 2. take nested training subsets of size N,
//! 3. build the memorizing denoiser of each subset ([`denoise::EmpiricalDenoiser`]),
//! 4. and the references: the true ([`denoise::Mixture`]) and the fitted Gaussian
//!    ([`denoise::GaussianDenoiser`]) denoisers,
//! 5. train neural denoisers on the same subsets (all implement [`denoise::Denoiser`]),
//! 6. sample every model from the same per-sample noise ([`sample::generate`]),
//! 7. with a deterministic sampler (Euler, Heun, DDIM) or EDM's stochastic one,
//! 8. compare samples with each other and with the training set,
//! 9. and compare the denoisers themselves, per noise level,
//! 10. then read off the memorization and generalization regimes: [`sweep`]
//!     runs steps 2-9 as a resumable, shardable sweep and [`plot`] draws it.
//!
//! Each pluggable family has one registry: denoisers
//! ([`spec::DENOISERS`], named by [`spec::DenoiserSpec`]), samplers
//! ([`sample::Method`]), training frameworks ([`framework::Framework`]),
//! experiments ([`experiments::EXPERIMENTS`], also `regimes run NAME`). The binaries' command lines live behind the `cli`
//! feature (on by default); the library itself sets no process state.
//!
//! Layers, bottom first; every import points down (`tests/layering.rs`
//! checks it): `error`, `io`, `rng`, `linalg`, `device`, `jobs` (progress
//! bars, worker threads); [`denoise`] (the `Denoiser` trait and the exact
//! denoisers); [`data`]; [`sample`]; [`framework`]; [`nn`]; [`plot`];
//! [`metrics`]; [`spec`] (names to built denoisers, trained ones included);
//! [`inverse`]; [`sweep`]; [`theory`]; [`experiments`]; `cli`.
//!
//! Formulas follow the theory notes in `docs/THEORY.md`; each function that
//! implements one cites its section ("THEORY §4"), and a test checks that
//! every citation resolves. Where each section lives:
//!
//! | section | formula | modules |
//! | --- | --- | --- |
//! | §1 | denoiser, score, probability-flow ODE, VP <-> VE | [`denoise`], [`sample`] |
//! | §2 | Karras schedule, Euler, Heun, DDIM, stochastic EDM sampler, ancestral step, exact Gaussian flow | [`sample`], [`rng`], [`denoise`] (Gaussian flow) |
//! | §3 | EDM preconditioning and loss | [`nn`] (`precond`, `train`, `config`), [`data`] (sigma_data) |
//! | §4 | empirical (memorizing) denoiser, its Jacobian and limits | [`denoise`] (`empirical`), [`sweep`] |
//! | §5 | Gaussian (Wiener) denoiser | [`denoise`] (`gaussian`), [`data`] |
//! | §6 | Gaussian mixtures, MoLRG | [`denoise`] (`mixture`), [`data`] (`synthetic`) |
//! | §7 | RP, GL, distance ratio, denoiser gap, Jacobian rank, bootstrap | [`metrics`], [`sweep`] (`criteria`, `results`) |
//! | §8 | regime predictions: paper's results, speciation, collapse, MoLRG threshold, training time | [`theory`], [`experiments`] |
//! | §9 | training frameworks (EDM, DDPM eps, VP, VE, flow matching) as adapters, their native samplers | [`framework`], [`sample`] (`time_euler`), [`nn`] (`precond`) |
//! | §10 | class labels, class-conditional exact denoisers, classifier-free guidance, class-conditional networks | [`data`] (labels), [`denoise`] (`conditional`), [`nn`] (`embedding`, `train`), [`experiments`] (`conditional`) |
//! | §11 | inverse problems: operators, exact posteriors, DPS and projection solvers | [`inverse`], [`experiments`] (`inverse_problems`) |
//! | §12 | patch-based closed forms, kernel-smoothed empirical denoiser | [`denoise`] (`patches`, `patch_denoiser`, `kde`), [`experiments`] (`closed_forms`, patch-size calibration) |
//! | §13 | budget convergence of a boundary | [`sweep`] (`analysis`, `budget`) |
//! | §14 | fine-tuning from another run: its memorizing solution, what the base contributes | [`nn`] (`init`), [`sweep`] (`training`), [`experiments`] (`finetuning`) |
//! | §15 | training dynamics: held-out loss, tau_gen, tau_mem, the closed-form target | [`nn`] (`train`, `precond`), [`denoise`] (`empirical`), [`experiments`] (`dynamics`) |
//! | §16 | consistency models: consistency training (iCT) and distillation, the one-step and multistep samplers | [`framework`] (`consistency`), [`nn`] (`precond`), [`sample`] (`consistency`) |

#[cfg(feature = "cli")]
pub mod cli;
pub mod data;
pub mod denoise;
pub mod device;
pub mod error;
pub mod experiments;
pub mod framework;
pub mod inverse;
pub mod io;
pub mod jobs;
pub mod linalg;
pub mod metrics;
pub mod nn;
pub mod plot;
pub mod rng;
pub mod sample;
pub mod spec;
pub mod sweep;
pub mod theory;

pub use error::{Error, Result};
