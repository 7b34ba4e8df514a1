//! How a cell's network is trained: its run config from the sweep's
//! settings, resumable training in segments, and the loss it reports.

use std::ops::ControlFlow;
use std::path::Path;

use candle_core::Tensor;

use super::cell::{Cell, Model};
use super::engine::Sweep;
use super::lock;
use crate::data::sigma_data;
use crate::nn::checkpoint::{Weights, METRICS_FILE, STATE_FILE};
use crate::nn::optim::AdamWConfig;
use crate::nn::train::{Losses, MetricsTable, RunData, Sampling, TrainConfig, Trainer};
use crate::nn::InitFrom;
use crate::{Error, Result};

/// Trains the network of a trained cell in `run` from step `from` to `until`
/// (resuming where a previous process stopped), crediting `on_step` with
/// each step. A fresh run checkpoints every `checkpoint_every` steps (default:
/// a quarter of the sweep's steps) and always at `until`. Returns the
/// training and held-out losses at `until` (THEORY §15), when it evaluates.
pub fn train_model(
    sweep: &Sweep,
    run: &Path,
    cell: &Cell,
    (from, until): (u64, u64),
    checkpoint_every: Option<u64>,
    on_step: &(dyn Fn(u64) + Sync),
) -> Result<Option<Losses>> {
    let mut trainer = match run.join(STATE_FILE).exists() {
        true => Trainer::resume(run, Some(until), &sweep.device)?,
        false => {
            let train = cell.training_set(sweep)?;
            let mut config = train_config(sweep, &train, &cell.model)?;
            config.steps = until;
            config.checkpoint_every = checkpoint_every.unwrap_or(config.checkpoint_every);
            let labels = match config.labels {
                Some(_) => sweep.training_labels(cell.n, cell.part(sweep))?,
                None => None,
            };
            let heldout = sweep.heldout_rows()?;
            let data = RunData::new(&train)
                .labelled(labels.as_deref())
                .heldout(Some(&heldout));
            Trainer::start(run, config.check()?, data, &sweep.device)?
        }
    };
    if trainer.step() > until {
        return Err(Error::format(
            run,
            format!(
                "holds a run at step {}, past the budget {until} it should stop at",
                trainer.step()
            ),
        ));
    }
    let start = trainer.step();
    on_step(start.saturating_sub(from));
    let mut last = None;
    trainer.run(&mut |p| {
        on_step(1);
        if p.step == until {
            last = p.losses.clone();
        }
        ControlFlow::Continue(())
    })?;
    // The run folder sits in its cell's folder, whose log records the segment.
    if let Some(cell) = run.parent() {
        let me = lock::Holder::me().name();
        lock::log(cell, &format!("{me} trained steps {start}..{until}"))?;
    }
    // A run already at `until` took no step to evaluate at.
    match last {
        Some(losses) => Ok(Some(losses)),
        None => trainer.evaluate(),
    }
}

/// The training config of a trained cell's `model`: the sweep's settings,
/// its architecture, framework and seed, on the training set `train`;
/// sigma_data is the subset's own unless set (a fine-tuned model's is its
/// parent's). Checkpoints every quarter of
/// the steps.
pub fn train_config(sweep: &Sweep, train: &Tensor, model: &Model) -> Result<TrainConfig> {
    let Model::Trained {
        arch,
        framework,
        seed,
    } = model
    else {
        return Err(Error::invalid(
            "model",
            model.label(),
            "the empirical denoiser is not trained",
        ));
    };
    let s = &sweep.config.train;
    let log_every = (s.steps / 100).max(1);
    // A fine-tuned model keeps its parent's sigma_data (part of its network).
    let parent = match &s.init {
        Some(run) => Some(InitFrom::read(Path::new(run), Weights::Ema)?),
        None => None,
    };
    let sigma_data = match (&parent, s.sigma_data) {
        (Some((_, parent)), _) => parent.sigma_data,
        (None, Some(v)) => v,
        (None, None) => sigma_data(train)?.max(1e-3),
    };
    Ok(TrainConfig {
        data: sweep.data_origin.clone(),
        n: train.dim(0)?,
        subset_seed: sweep.config.subset_seed,
        sample_shape: train.dims()[1..].to_vec(),
        arch: arch.clone(),
        framework: *framework,
        sigma_data,
        p_mean: s.p_mean,
        p_std: s.p_std,
        steps: s.steps,
        batch: s.batch,
        sampling: Sampling::Replacement,
        lr: s.lr,
        warmup: s.warmup,
        adam: AdamWConfig {
            weight_decay: s.weight_decay,
            ..AdamWConfig::default()
        },
        clip: s.clip,
        ema_decay: s.ema_decay,
        seed: *seed,
        checkpoint_every: (s.steps / 4).max(1),
        log_every,
        // On logged steps, so evaluations add no rows to the loss's tail.
        eval_every: s.eval_every.div_ceil(log_every) * log_every,
        eval_points: s.eval_points,
        target: s.target,
        labels: sweep.conditioning(),
        init: parent.map(|(init, _)| init),
    })
}

/// Mean logged loss over the last 10% of `steps`, from the run's metrics.csv
/// (so a resumed cell reports the same value as an uninterrupted one).
pub(super) fn final_loss(run: &Path, steps: u64) -> Result<f64> {
    let from = steps - steps / 10;
    let tail: Vec<f64> = (MetricsTable::read(run)?.column("loss").into_iter())
        .filter(|&(step, _)| step >= from as f64)
        .map(|(_, loss)| loss)
        .collect();
    match tail.is_empty() {
        true => Err(Error::format(
            &run.join(METRICS_FILE),
            format!("no logged loss at steps >= {from}"),
        )),
        false => Ok(tail.iter().sum::<f64>() / tail.len() as f64),
    }
}
