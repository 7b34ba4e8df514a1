//! Models trained together: K training runs of one MLP size (a sweep's
//! cells, differing in data, N, seed and framework) take each step as one
//! network whose weights carry a leading model axis ([`Mlp::stack`]), so the
//! per-operation cost of a small model is paid once for all K.
//!
//! Everything else stays each run's own: its batch and noise (its own
//! streams), its framework's scalings and loss weight, its loss, gradient
//! clipping, AdamW, EMA, evaluation, metrics and checkpoints in its own
//! folder. Each model's slice runs the same kernels as the model alone, so
//! every model gets the bits of its solo training (tests/together.rs). A
//! model that diverges stops with its error; the others go on.

use std::ops::ControlFlow;

use candle_core::Tensor;

use super::{Batch, Clock, Progress, TrainConfig, Trainer};
use crate::framework::Framework;
use crate::framework::Scalings;
use crate::nn::observer::{Observer, RunFiles};
use crate::nn::precond::{precondition, Preconditioned};
use crate::nn::{weighted_errors, Arch, Mlp, Precond};
use crate::{Error, Result};

/// K models seen as one: their networks stacked, each row of a batch of
/// K x B rows (model k's rows kB..(k+1)B) scaled by its own model's framework.
struct Stacked<'a> {
    models: Vec<&'a Precond>,
    net: Mlp,
}

impl Stacked<'_> {
    /// Model k's rows of `t` \[K B, ...\].
    fn rows(&self, t: &Tensor, k: usize) -> Result<Tensor> {
        let b = t.dim(0)? / self.models.len();
        Ok(t.narrow(0, k * b, b)?)
    }

    /// Each model's `f` of its own rows, concatenated.
    fn per_model(
        &self,
        t: &Tensor,
        f: impl Fn(&Precond, &Tensor) -> Result<Tensor>,
    ) -> Result<Tensor> {
        let parts = (0..self.models.len())
            .map(|k| f(self.models[k], &self.rows(t, k)?))
            .collect::<Result<Vec<_>>>()?;
        Ok(Tensor::cat(&parts, 0)?)
    }
}

impl Preconditioned for Stacked<'_> {
    fn forward(&self, x: &Tensor, sigma: &Tensor, labels: Option<&Tensor>) -> Result<Tensor> {
        let of = |pick: fn(Scalings) -> Tensor| {
            self.per_model(sigma, |m, s| Ok(pick(m.framework().scalings(s)?)))
        };
        let scalings = Scalings {
            c_skip: of(|s| s.c_skip)?,
            c_out: of(|s| s.c_out)?,
            c_in: of(|s| s.c_in)?,
            c_noise: of(|s| s.c_noise)?,
        };
        let k = self.models.len();
        let lead = [k, x.dim(0)? / k];
        let input_shape = self.models[0].input_shape();
        precondition(&self.net, input_shape, x, &lead, scalings, labels)
    }

    fn loss_weight(&self, sigma: &Tensor) -> Result<Tensor> {
        self.per_model(sigma, |m, s| m.framework().loss_weight(s))
    }
}

/// Why a run of `arch` and `framework` (class-conditional when `labelled`)
/// trains alone, or None when it can train with others: unconditional MLPs
/// do, unless trained by consistency training (whose pairs of levels take
/// their own loss).
pub fn why_alone(arch: &Arch, framework: Framework, labelled: bool) -> Option<&'static str> {
    match (arch, labelled, framework.trains_on_pairs()) {
        (Arch::Mlp(_), false, false) => None,
        (Arch::Mlp(_), true, _) => Some("class-conditional networks train alone"),
        (Arch::Mlp(_), _, true) => Some("consistency training trains alone"),
        _ => Some("only MLPs train together"),
    }
}

/// Why `trainers` cannot take their steps together, or None when they can:
/// each can ([`why_alone`]), with one network size, batch size and example
/// shape.
pub fn why_not_together(trainers: &[&Trainer]) -> Option<String> {
    let first = &trainers.first()?.config;
    let alone = trainers.iter().find_map(|t| {
        let c = &t.config;
        why_alone(&c.arch, c.framework, c.labels.is_some())
    });
    if let Some(why) = alone {
        return Some(why.into());
    }
    let shape = |c: &TrainConfig| (c.arch.clone(), c.batch, c.sample_shape.clone());
    match trainers.iter().all(|t| shape(&t.config) == shape(first)) {
        true => None,
        false => Some("their network sizes, batch sizes or example shapes differ".into()),
    }
}

/// One step of each of `trainers` (see [`why_not_together`]), their
/// forward and backward passes as one stacked network; each trainer's
/// (loss, lr, grad norm), or its divergence error (a diverged model takes
/// no step and holds back no other).
pub fn step_together(trainers: &mut [&mut Trainer]) -> Result<Vec<Result<(f64, f64, f64)>>> {
    let views: Vec<&Trainer> = trainers.iter().map(|t| &**t).collect();
    if let Some(why) = why_not_together(&views) {
        return Err(Error::invalid("models trained together", views.len(), why));
    }
    let batches = trainers
        .iter()
        .map(|t| t.batch(t.step))
        .collect::<Result<Vec<Batch>>>()?;
    let targets = trainers
        .iter()
        .zip(&batches)
        .map(|(t, b)| t.target(b))
        .collect::<Result<Vec<_>>>()?;
    let cat = |pick: fn(&Batch) -> &Tensor| -> Result<Tensor> {
        Ok(Tensor::cat(
            &batches.iter().map(pick).collect::<Vec<_>>(),
            0,
        )?)
    };
    let (y, sigma, z) = (cat(|b| &b.y)?, cat(|b| &b.sigma)?, cat(|b| &b.z)?);
    let stacked = Stacked {
        models: views.iter().map(|t| t.model()).collect(),
        net: Mlp::stack(
            &views
                .iter()
                .map(|t| t.model().network())
                .collect::<Vec<_>>(),
        )
        .expect("why_not_together checked the networks stack")?,
    };
    let errors = weighted_errors(&stacked, &y, &sigma, &z, &Tensor::cat(&targets, 0)?, None)?;
    let mut losses = Vec::with_capacity(trainers.len());
    let mut checked = Vec::with_capacity(trainers.len());
    for (k, trainer) in trainers.iter().enumerate() {
        let loss = stacked.rows(&errors, k)?.mean_all()?;
        checked.push(trainer.checked_loss(&loss));
        if checked[k].is_ok() {
            losses.push(loss);
        }
    }
    drop(stacked);
    // Each model's loss reaches only its own slice of the stacked weights,
    // so the sum's gradients are each model's own.
    let grads = match losses.is_empty() {
        true => None,
        false => Some(Tensor::stack(&losses, 0)?.sum_all()?.backward()?),
    };
    Ok(trainers
        .iter_mut()
        .zip(checked)
        .map(|(trainer, loss)| trainer.update(loss?, grads.as_ref().expect("a finite loss")))
        .collect())
}

/// Trains each of `trainers` until its `config.steps`, all together
/// ([`step_together`]), each run's folder kept by its own [`RunFiles`] and
/// each step shown to `observe` (with the trainer's index) after them; a
/// trainer whose observer says `Break` stops there, like [`Trainer::run`].
/// Each run's training seconds are the group's wall time. Returns each
/// trainer's outcome: Ok, or the error that stopped it (a divergence, a
/// file it could not write); an interrupt stops them all.
pub fn run_together(
    trainers: &mut [Trainer],
    observe: &mut dyn FnMut(usize, &Progress) -> ControlFlow<()>,
) -> Result<Vec<Result<()>>> {
    let mut files = trainers
        .iter()
        .map(RunFiles::new)
        .collect::<Result<Vec<_>>>()?;
    let clocks: Vec<Clock> = trainers.iter().map(Clock::start).collect();
    let mut outcomes: Vec<Option<Result<()>>> = trainers
        .iter()
        .map(|t| (t.step >= t.config.steps).then_some(Ok(())))
        .collect();
    while outcomes.iter().any(Option::is_none) {
        crate::jobs::check_interrupt()?;
        let (ks, mut active): (Vec<usize>, Vec<&mut Trainer>) = trainers
            .iter_mut()
            .enumerate()
            .filter(|(k, _)| outcomes[*k].is_none())
            .unzip();
        let taken = step_together(&mut active)?;
        for ((k, trainer), taken) in ks.into_iter().zip(active).zip(taken) {
            let mut tell = |p: &Progress| observe(k, p);
            let observers: &mut [&mut dyn Observer] = &mut [&mut files[k], &mut tell];
            let flow = taken.and_then(|taken| trainer.after_step(taken, &clocks[k], observers));
            outcomes[k] = match flow {
                Err(e) => Some(Err(e)),
                Ok(ControlFlow::Break(())) => Some(Ok(())),
                Ok(ControlFlow::Continue(())) => {
                    (trainer.step >= trainer.config.steps).then_some(Ok(()))
                }
            };
        }
    }
    Ok(outcomes.into_iter().map(Option::unwrap).collect())
}
