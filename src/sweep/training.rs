//! How a cell's network is trained: its run config from the sweep's
//! settings, resumable training in segments, and the loss it reports.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use candle_core::Tensor;

use super::cell::{Cell, Model};
use super::engine::Sweep;
use super::lock;
use crate::data::sigma_data;
use crate::nn::checkpoint::{Weights, METRICS_FILE, STATE_FILE};
use crate::nn::optim::AdamWConfig;
use crate::nn::train::together::{run_together, why_not_together};
use crate::nn::train::{Losses, MetricsTable, Progress, RunData, Sampling, TrainConfig, Trainer};
use crate::nn::InitFrom;
use crate::{Error, Result};

/// Trains the network of a trained cell in `run` from step `from` to
/// `until` ([`train_models`] of one cell), checkpointing every
/// `checkpoint_every` steps when given.
pub fn train_model(
    sweep: &Sweep,
    run: &Path,
    cell: &Cell,
    segment: (u64, u64),
    checkpoint_every: Option<u64>,
    on_step: &(dyn Fn(u64) + Sync),
) -> Result<Option<Losses>> {
    let runs = [(run.to_path_buf(), cell)];
    let mut outcomes = train_models(sweep, &runs, segment, checkpoint_every, on_step)?;
    outcomes.remove(0)
}

/// Trains the networks of trained cells (`runs`: each run folder with its
/// cell) from step `from` to `until`, resuming where a previous process
/// stopped, together where they can (`nn::train::together`: every model
/// gets the bits of its solo training), else one after another; `on_step`
/// is credited with every model's every step. A fresh run checkpoints every
/// `checkpoint_every` steps (default: a quarter of the sweep's steps) and
/// always at `until`. Returns each cell's training and held-out losses at
/// `until` (THEORY §15, when it evaluates), or the error that stopped it;
/// an interrupt stops them all.
pub fn train_models(
    sweep: &Sweep,
    runs: &[(PathBuf, &Cell)],
    (from, until): (u64, u64),
    checkpoint_every: Option<u64>,
    on_step: &(dyn Fn(u64) + Sync),
) -> Result<Vec<Result<Option<Losses>>>> {
    let mut outcomes: Vec<Option<Result<Option<Losses>>>> = Vec::new();
    let (mut trainers, mut opened) = (Vec::new(), Vec::new());
    for (k, (run, cell)) in runs.iter().enumerate() {
        match open(sweep, run, cell, until, checkpoint_every) {
            Ok(trainer) => {
                on_step(trainer.step().saturating_sub(from));
                opened.push((k, trainer.step()));
                trainers.push(trainer);
                outcomes.push(None);
            }
            Err(e) => outcomes.push(Some(Err(e))),
        }
    }
    let mut last: Vec<Option<Losses>> = vec![None; trainers.len()];
    let mut observe = |j: usize, p: &Progress| {
        on_step(1);
        if p.step == until {
            last[j] = p.losses.clone();
        }
        ControlFlow::Continue(())
    };
    let views: Vec<&Trainer> = trainers.iter().collect();
    let trained: Vec<Result<()>> = match why_not_together(&views) {
        None if trainers.len() > 1 => run_together(&mut trainers, &mut observe)?,
        _ => trainers
            .iter_mut()
            .enumerate()
            .map(|(j, t)| t.run(&mut |p| observe(j, p)))
            .collect(),
    };
    let finished = opened.into_iter().zip(&trainers).zip(trained);
    for (j, (((k, start), trainer), result)) in finished.enumerate() {
        outcomes[k] = Some(result.and_then(|()| {
            // The run folder sits in its cell's folder, whose log records the segment.
            if let Some(cell) = runs[k].0.parent() {
                let me = lock::Holder::me().name();
                lock::log(cell, &format!("{me} trained steps {start}..{until}"))?;
            }
            // A run already at `until` took no step to evaluate at.
            match last[j].take() {
                Some(losses) => Ok(Some(losses)),
                None => trainer.evaluate(),
            }
        }));
    }
    Ok(outcomes
        .into_iter()
        .map(|o| o.expect("every run trained or failed"))
        .collect())
}

/// The trainer of a trained cell's run folder `run`, resumed to stop at
/// `until`, or started there from the sweep's settings.
fn open(
    sweep: &Sweep,
    run: &Path,
    cell: &Cell,
    until: u64,
    checkpoint_every: Option<u64>,
) -> Result<Trainer> {
    let trainer = match run.join(STATE_FILE).exists() {
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
    Ok(trainer)
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
        teacher: None,
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
