//! Training a neural denoiser with its framework's loss (EDM's by default,
//! THEORY §3, §9) on exactly N examples.
//!
//! Step k draws everything it needs from stream (seed, Batch, k): which
//! examples, their noise levels (the framework's draw) and the noise itself. The weights
//! start from stream (seed, Weights, name). So a run is a pure function of its
//! config, and a run resumed from a checkpoint at step k continues exactly as
//! the uninterrupted run would: on the CPU, bit for bit.
//!
//! Batches, two documented ways ([`Sampling`]):
//! - `Replacement`: each of the B examples of a batch is drawn uniformly with
//!   replacement from the N training examples;
//! - `Epochs`: the batches walk through one permutation of the N examples
//!   per epoch (epoch e's from stream (seed, Epoch, e)), batch k holding
//!   positions kB..(k+1)B of the concatenated epochs, so when B > N one batch
//!   spans several epochs.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, Var};

use super::checkpoint::{
    self, build_with, load_model, read_checkpoint, read_state, write_checkpoint, write_state,
    Groups, RunState, Weights,
};
pub use super::config::{CheckedTrainConfig, LabelConditioning, Sampling, Target, TrainConfig};
use super::observer::metrics_header;
pub use super::observer::{MetricsTable, Observer, RunFiles};
use super::optim::{clip_scale, global_norm, update_ema, AdamW};
use super::params::assign_named;
use super::{consistency_errors, weighted_errors, Params, Precond};
use crate::data::npy::{read_npy, write_npy};
use crate::data::{read_labels, write_labels};
use crate::denoise::EmpiricalDenoiser;
use crate::io::{write_atomic, write_folder};
use crate::{Error, Result};

mod batches;
mod evaluation;
pub mod together;

pub use batches::Batch;
use evaluation::{read_heldout, FixedDraws};
pub use evaluation::{Loss, Losses, BAND_EDGES, BAND_NAMES};

/// What a run trains on: its examples `[N, ...]`, their labels for a
/// class-conditional config, and held-out rows of the same distribution
/// `[M, ...]` for the held-out loss (THEORY §15).
#[derive(Clone, Copy)]
pub struct RunData<'a> {
    pub train: &'a Tensor,
    pub labels: Option<&'a [u32]>,
    pub heldout: Option<&'a Tensor>,
}

impl<'a> RunData<'a> {
    /// The examples alone: unlabelled, without held-out rows.
    pub fn new(train: &'a Tensor) -> Self {
        Self {
            train,
            labels: None,
            heldout: None,
        }
    }

    pub fn labelled(self, labels: Option<&'a [u32]>) -> Self {
        Self { labels, ..self }
    }

    pub fn heldout(self, heldout: Option<&'a Tensor>) -> Self {
        Self { heldout, ..self }
    }
}

/// What the observer sees after each step.
#[derive(Clone, Debug)]
pub struct Progress {
    /// Steps taken so far, including this one.
    pub step: u64,
    pub steps: u64,
    pub loss: f64,
    pub lr: f64,
    pub grad_norm: f64,
    /// Training seconds, summed over resumed sessions.
    pub seconds: f64,
    /// The losses on the fixed draws, at the steps the config evaluates.
    pub losses: Option<Losses>,
}

/// When a training session started, and the run's training seconds before it.
pub(crate) struct Clock {
    start: Instant,
    before: f64,
}

impl Clock {
    pub(crate) fn start(trainer: &Trainer) -> Self {
        Clock {
            start: Instant::now(),
            before: trainer.elapsed,
        }
    }
}

/// A training run in progress: the model, its EMA, the optimizer and the run folder.
pub struct Trainer {
    pub config: CheckedTrainConfig,
    dir: PathBuf,
    train: Tensor,
    /// The training set's labels, for a class-conditional run.
    labels: Option<Vec<u32>>,
    model: Precond,
    params: Params,
    ema: Params,
    /// The network with the EMA weights (shared with `ema`), the one sampled.
    ema_model: Precond,
    /// The fixed draws of the training and held-out losses.
    draws: Option<FixedDraws>,
    /// The training set's memorizer, for a run that regresses on it.
    memorizer: Option<EmpiricalDenoiser>,
    /// The network a distilling run learns from (its EMA weights).
    teacher: Option<Precond>,
    optimizer: AdamW,
    step: u64,
    elapsed: f64,
}

/// An error unless `train` is [config.n, ...config.sample_shape] and the
/// held-out rows, if any, [M >= 1, ...config.sample_shape].
fn check_rows(config: &TrainConfig, train: &Tensor, heldout: Option<&Tensor>) -> Result<()> {
    let check = |what: &str, rows: &Tensor, count: Option<usize>| {
        let length = rows.dims().first().copied();
        let fits = match count {
            Some(n) => length == Some(n),
            None => length.is_some_and(|m| m > 0),
        };
        match fits && rows.dims()[1..] == config.sample_shape[..] {
            true => Ok(()),
            false => Err(Error::shape(
                what,
                format!(
                    "[{}, {:?}]",
                    count.map_or("M >= 1".into(), |n| n.to_string()),
                    config.sample_shape
                ),
                format!("{:?}", rows.dims()),
            )),
        }
    };
    check("training set", train, Some(config.n))?;
    heldout.map_or(Ok(()), |rows| check("held-out rows", rows, None))
}

/// The EMA network of the run folder `run`, the teacher of `config`'s run,
/// refused unless it takes examples of the run's shape.
fn load_teacher(run: &Path, config: &TrainConfig, device: &Device) -> Result<Precond> {
    let taught = read_state(run)?.config.sample_shape;
    if taught != config.sample_shape {
        return Err(Error::invalid(
            "teacher",
            run.display(),
            format!(
                "learned examples shaped {taught:?}, this run's are {:?}",
                config.sample_shape
            ),
        ));
    }
    load_model(run, Weights::Ema, device)
}

fn vars(params: &Params) -> Vec<Var> {
    params.named().into_iter().map(|(_, v)| v).collect()
}

impl Trainer {
    /// Starts a run in `dir` on `data` (examples, labels for a
    /// class-conditional config, held-out rows); refuses a folder that
    /// already holds a run.
    pub fn start(
        dir: &Path,
        config: CheckedTrainConfig,
        data: RunData,
        device: &Device,
    ) -> Result<Self> {
        let RunData {
            train,
            labels,
            heldout,
        } = data;
        if dir.join(checkpoint::STATE_FILE).exists() {
            return Err(Error::invalid(
                "--out",
                dir.display(),
                "already holds a training run; pass --resume to continue it or choose another folder",
            ));
        }
        check_rows(&config, train, heldout)?;
        config.check_labels(labels)?;
        // A fine-tuned run's weights are its parent's (checked before
        // anything is written).
        let params = match &config.init {
            Some(init) => {
                let parent = read_state(Path::new(&init.run))?.config;
                init.check_compatible(&parent, &config)?;
                Params::preloaded(init.load()?, &init.run)
            }
            None => Params::new(config.seed),
        };
        // A teacher that cannot be read is refused before anything is written.
        if let Some(run) = &config.teacher {
            load_teacher(run, &config, device)?;
        }
        let toml =
            toml::to_string(&*config).map_err(|e| Error::invalid("config", "", e.to_string()))?;
        // All or nothing: a failed start leaves no half-made run folder.
        write_folder(dir, |dir| {
            write_npy(&dir.join(checkpoint::TRAIN_FILE), train, DType::F32)?;
            if let Some(labels) = labels {
                write_labels(&dir.join(checkpoint::TRAIN_LABELS_FILE), labels)?;
            }
            if let Some(heldout) = heldout {
                write_npy(&dir.join(checkpoint::HELDOUT_FILE), heldout, DType::F32)?;
            }
            write_atomic(&dir.join(checkpoint::CONFIG_FILE), toml.as_bytes())
        })?;
        let labels = labels.map(<[u32]>::to_vec);
        Self::build(
            dir,
            config,
            train.to_device(device)?,
            labels,
            heldout,
            params,
            device,
        )
    }

    /// Continues the run in `dir` from its latest checkpoint, optionally
    /// with a different total number of steps (the schedule does not depend on it).
    pub fn resume(dir: &Path, steps: Option<u64>, device: &Device) -> Result<Self> {
        let state = read_state(dir)?;
        let mut config = state.config.clone();
        if let Some(steps) = steps {
            config.steps = steps;
        }
        let config = config.check()?;
        let train = read_npy(&dir.join(checkpoint::TRAIN_FILE))?.to_dtype(DType::F32)?;
        let labels = match config.labels {
            Some(_) => Some(read_labels(&dir.join(checkpoint::TRAIN_LABELS_FILE))?),
            None => None,
        };
        config.check_labels(labels.as_deref())?;
        let heldout = read_heldout(&dir.join(checkpoint::HELDOUT_FILE), device)?;
        check_rows(&config, &train, heldout.as_ref())?;
        let path = dir.join(&state.checkpoint);
        let groups = read_checkpoint(&path)?;
        let source = path.display().to_string();
        // The network is built from the checkpoint's weights, so a corrupt
        // state.json cannot make it larger than they are.
        let weights =
            Params::preloaded(checkpoint::group(&groups, "model", &path)?.clone(), &source);
        let mut trainer = Self::build(
            dir,
            config,
            train.to_device(device)?,
            labels,
            heldout.as_ref(),
            weights,
            device,
        )?;
        trainer
            .ema
            .assign(checkpoint::group(&groups, "ema", &path)?, &source)?;
        let names: Vec<String> = trainer.params.named().into_iter().map(|(k, _)| k).collect();
        for (group, moments) in [
            ("adam_m", &trainer.optimizer.m),
            ("adam_v", &trainer.optimizer.v),
        ] {
            let named: Vec<(String, Var)> =
                names.iter().cloned().zip(moments.iter().cloned()).collect();
            assign_named(
                &named,
                checkpoint::group(&groups, group, &path)?,
                &format!("{source} ({group})"),
            )?;
        }
        trainer.optimizer.t = state.step;
        trainer.step = state.step;
        trainer.elapsed = state.elapsed_seconds;
        Ok(trainer)
    }

    /// The trainer of `config` at step 0, its network's parameters taken
    /// from `params` (drawn from the seed, or preloaded).
    fn build(
        dir: &Path,
        config: CheckedTrainConfig,
        train: Tensor,
        labels: Option<Vec<u32>>,
        heldout: Option<&Tensor>,
        params: Params,
        device: &Device,
    ) -> Result<Self> {
        let model = build_with(&config, &params, device)?;
        params.check_complete()?;
        // The EMA starts equal to the initial weights.
        let ema = params.copy()?;
        let ema_model = build_with(&config, &ema, device)?;
        let optimizer = AdamW::new(vars(&params), config.adam.clone())?;
        let memorizer = match config.target {
            Target::Sample => None,
            Target::Empirical => Some(EmpiricalDenoiser::new(
                &train.flatten_from(1)?.to_dtype(DType::F64)?,
            )?),
        };
        let draws = FixedDraws::new(&config, &train, heldout)?;
        let teacher = config
            .teacher
            .as_ref()
            .map(|run| load_teacher(run, &config, device))
            .transpose()?;
        Ok(Trainer {
            dir: dir.to_path_buf(),
            train,
            labels,
            model,
            params,
            ema,
            ema_model,
            draws,
            memorizer,
            teacher,
            optimizer,
            step: 0,
            elapsed: 0.0,
            config,
        })
    }

    pub fn step(&self) -> u64 {
        self.step
    }

    /// The run folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The model with its current (not EMA) weights.
    pub fn model(&self) -> &Precond {
        &self.model
    }

    /// The model with its EMA weights, the one sampled and checkpointed as `ema`.
    pub fn ema_model(&self) -> &Precond {
        &self.ema_model
    }

    /// The EMA model's training and held-out losses on the run's fixed
    /// draws (THEORY §15); None when the config has no evaluation points.
    pub fn evaluate(&self) -> Result<Option<Losses>> {
        self.draws
            .as_ref()
            .map(|draws| draws.losses(&self.ema_model))
            .transpose()
    }

    /// What batch `batch` regresses on: its clean examples, or the
    /// training set's empirical denoiser at its noisy inputs (THEORY §15).
    pub fn target(&self, batch: &Batch) -> Result<Tensor> {
        let Some(memorizer) = &self.memorizer else {
            return Ok(batch.y.clone());
        };
        let b = batch.y.dim(0)?;
        let x = (batch.y.flatten_from(1)?
            + batch
                .z
                .flatten_from(1)?
                .broadcast_mul(&batch.sigma.reshape((b, 1))?)?)?;
        let sigmas: Vec<f64> = batch
            .sigma
            .to_vec1::<f32>()?
            .into_iter()
            .map(f64::from)
            .collect();
        let target = memorizer.denoise_rows(&x.to_dtype(DType::F64)?, &sigmas)?;
        Ok(target.to_dtype(DType::F32)?.reshape(batch.y.shape())?)
    }

    pub fn params(&self) -> &Params {
        &self.params
    }

    pub fn ema(&self) -> &Params {
        &self.ema
    }

    /// One optimizer step on batch `self.step`, without logging or
    /// checkpointing; returns (loss, lr, grad norm).
    pub fn train_step(&mut self) -> Result<(f64, f64, f64)> {
        let batch = self.batch(self.step)?;
        let target = self.target(&batch)?;
        let Batch {
            y,
            sigma,
            z,
            lower,
            labels,
        } = batch;
        let errors = match &lower {
            Some(lower) => consistency_errors(
                &self.model,
                self.teacher.as_ref(),
                &y,
                (&sigma, lower),
                &z,
                labels.as_ref(),
            )?,
            None => weighted_errors(&self.model, &y, &sigma, &z, &target, labels.as_ref())?,
        };
        let loss = errors.mean_all()?;
        let loss_value = self.checked_loss(&loss)?;
        self.update(loss_value, &loss.backward()?)
    }

    /// The value of this step's batch loss, or a divergence error.
    fn checked_loss(&self, loss: &Tensor) -> Result<f64> {
        let value = loss.to_scalar::<f32>()? as f64;
        self.check_finite("loss", value)?;
        Ok(value)
    }

    /// The step's update from the gradients of its loss `loss_value` in
    /// `grads` (which may hold other models' too): clipping, AdamW, the EMA;
    /// returns (loss, lr, grad norm).
    fn update(&mut self, loss_value: f64, grads: &GradStore) -> Result<(f64, f64, f64)> {
        let weights = vars(&self.params);
        let grads = weights
            .iter()
            .map(|v| match grads.get(v) {
                Some(g) => Ok(g.clone()),
                None => Ok(v.zeros_like()?),
            })
            .collect::<Result<Vec<_>>>()?;
        let (norm, scale) = clip_scale(&grads, self.config.clip)?;
        self.check_finite("gradient norm", norm)?;
        let lr = self.config.lr_at(self.step);
        self.optimizer.step(&grads, lr, scale)?;
        let t = self.optimizer.t as f64;
        let decay = self.config.ema_decay.min((1.0 + t) / (10.0 + t));
        update_ema(&vars(&self.ema), &weights, decay)?;
        self.step += 1;
        Ok((loss_value, lr, norm))
    }

    /// A divergence error at the current step unless `value` is finite.
    fn check_finite(&self, what: &str, value: f64) -> Result<()> {
        match value.is_finite() {
            true => Ok(()),
            false => Err(Error::Diverged {
                step: self.step,
                what: what.into(),
                value,
            }),
        }
    }

    /// Trains until `config.steps` with the run folder's files kept by
    /// [`RunFiles`] (metrics every `log_every` steps, a checkpoint every
    /// `checkpoint_every` and at the end). `observer` sees each step first;
    /// `Break` stops at once without a checkpoint, like a killed process.
    pub fn run(
        &mut self,
        mut observer: &mut dyn FnMut(&Progress) -> ControlFlow<()>,
    ) -> Result<()> {
        let mut files = RunFiles::new(self)?;
        self.run_observed(&mut [&mut observer, &mut files])
    }

    /// Trains until `config.steps`, showing each step to every observer in
    /// turn; the first `Break` stops the run there, and an interrupt
    /// ([`crate::jobs::interrupt`]) before the next step's update. The loop
    /// itself writes nothing.
    pub fn run_observed(&mut self, observers: &mut [&mut dyn Observer]) -> Result<()> {
        let clock = Clock::start(self);
        while self.step < self.config.steps {
            crate::jobs::check_interrupt()?;
            let taken = self.train_step()?;
            if self.after_step(taken, &clock, observers)?.is_break() {
                break;
            }
        }
        Ok(())
    }

    /// What follows a step that returned `(loss, lr, grad_norm)`: the
    /// training time from `clock`, the evaluation when due, and the step
    /// shown to every observer in turn (the first `Break` is returned).
    pub(crate) fn after_step(
        &mut self,
        (loss, lr, grad_norm): (f64, f64, f64),
        clock: &Clock,
        observers: &mut [&mut dyn Observer],
    ) -> Result<ControlFlow<()>> {
        self.elapsed = clock.before + clock.start.elapsed().as_secs_f64();
        let due = self.step == self.config.steps
            || self.step.is_multiple_of(self.config.eval_every.max(1));
        let progress = Progress {
            step: self.step,
            steps: self.config.steps,
            loss,
            lr,
            grad_norm,
            seconds: self.elapsed,
            losses: match due {
                true => self.evaluate()?,
                false => None,
            },
        };
        for observer in observers.iter_mut() {
            if observer.observe(self, &progress)?.is_break() {
                return Ok(ControlFlow::Break(()));
            }
        }
        Ok(ControlFlow::Continue(()))
    }

    /// Writes the checkpoint of the current step (a divergence error instead
    /// when a weight is not finite), metrics.csv (`metrics`:
    /// its rows), then state.json.
    pub fn save(&self, metrics: &[String]) -> Result<()> {
        // A checkpoint of broken weights would become the run's latest.
        let weights: Vec<Tensor> = vars(&self.params)
            .iter()
            .map(|v| v.as_tensor().clone())
            .collect();
        self.check_finite("weight norm", global_norm(&weights)?)?;
        let state = RunState::new(self.step, self.elapsed, (*self.config).clone());
        let names: Vec<String> = self.params.named().into_iter().map(|(k, _)| k).collect();
        let by_name = |vars: Vec<Var>| {
            names
                .iter()
                .cloned()
                .zip(vars.into_iter().map(|v| v.as_tensor().clone()))
                .collect()
        };
        let mut groups = Groups::new();
        groups.insert("model".into(), by_name(vars(&self.params)));
        groups.insert("ema".into(), by_name(vars(&self.ema)));
        groups.insert("adam_m".into(), by_name(self.optimizer.m.clone()));
        groups.insert("adam_v".into(), by_name(self.optimizer.v.clone()));
        write_checkpoint(&self.dir.join(&state.checkpoint), &groups)?;
        let mut csv = metrics_header(&self.config);
        for row in metrics {
            csv.push_str(row);
            csv.push('\n');
        }
        write_atomic(&self.dir.join(checkpoint::METRICS_FILE), csv.as_bytes())?;
        write_state(&self.dir, &state)
    }
}
