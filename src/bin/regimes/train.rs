//! `regimes train`: builds a TrainConfig from the flags, or resumes a run,
//! and shows progress while the library trains.

use std::ops::ControlFlow;

use candle_core::Tensor;
use indicatif::{ProgressBar, ProgressStyle};

use diffusion_regimes::data::{
    check_label_count, load_examples, read_labels, sigma_data, training_labels, training_set,
};
use diffusion_regimes::device::device;
use diffusion_regimes::nn::optim::AdamWConfig;
use diffusion_regimes::nn::train::{LabelConditioning, TrainConfig, Trainer};
use diffusion_regimes::nn::Arch;
use diffusion_regimes::{Error, Result};

use crate::args::TrainArgs;

/// Flags that may accompany --resume; everything else comes from the run's config.
const RESUME_FLAGS: [&str; 4] = ["out", "steps", "device", "resume"];

/// Trains (or resumes) as `args` say; `explicit` lists the flags given on the command line.
pub(crate) fn train(args: TrainArgs, explicit: &[String]) -> Result<()> {
    let device = device(&args.device)?;
    let mut trainer = match args.resume {
        true => {
            if let Some(flag) = explicit
                .iter()
                .find(|f| !RESUME_FLAGS.contains(&f.as_str()))
            {
                return Err(Error::invalid(
                    format!("--{}", flag.replace('_', "-")),
                    "given with --resume",
                    "a resumed run keeps its config.toml; only --steps and --device may change",
                ));
            }
            let steps = explicit.iter().any(|f| f == "steps").then_some(args.steps);
            Trainer::resume(&args.out, steps, &device)?
        }
        false => {
            let data = args
                .data
                .as_ref()
                .expect("clap requires --data without --resume");
            let n = args.n.expect("clap requires --n without --resume");
            let examples = load_examples(data)?;
            let train = training_set(&examples, n, args.subset_seed)?;
            let mut config = new_config(&args, &train)?;
            let labels = match &args.labels {
                Some(path) => {
                    let all = read_labels(path)?;
                    check_label_count(&all, examples.dim(0)?, path)?;
                    config.labels = Some(LabelConditioning::for_labels(&all, args.p_uncond));
                    Some(training_labels(&all, n, 0, args.subset_seed)?)
                }
                None => None,
            };
            Trainer::start_labelled(
                &args.out,
                config.check()?,
                &train,
                labels.as_deref(),
                &device,
            )?
        }
    };
    let bar = ProgressBar::new(trainer.config.steps);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} {per_sec} eta {eta}")
            .expect("valid template"),
    );
    bar.set_position(trainer.step());
    trainer.run(&mut |p| {
        bar.set_position(p.step);
        bar.set_message(format!("loss {:.4} lr {:.1e}", p.loss, p.lr));
        ControlFlow::Continue(())
    })?;
    bar.finish_and_clear();
    eprintln!(
        "trained to step {} of {}; run folder {}",
        trainer.step(),
        trainer.config.steps,
        args.out.display()
    );
    Ok(())
}

/// The config of a fresh run on the training set `train` `[N, ...]`.
fn new_config(args: &TrainArgs, train: &Tensor) -> Result<TrainConfig> {
    let arch = Arch::of_kind(
        &args.arch,
        args.width,
        args.depth,
        parse_list(&args.multipliers, "--multipliers")?,
        !args.no_attention,
    )?;
    let sigma_data = match args.sigma_data.as_str() {
        "auto" => sigma_data(train)?,
        s => s
            .parse()
            .map_err(|_| Error::invalid("--sigma-data", s, "use a positive number or auto"))?,
    };
    Ok(TrainConfig {
        data: args
            .data
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        n: train.dim(0)?,
        subset_seed: args.subset_seed,
        sample_shape: train.dims()[1..].to_vec(),
        arch,
        framework: args.framework,
        sigma_data,
        p_mean: args.p_mean,
        p_std: args.p_std,
        steps: args.steps,
        batch: args.batch,
        sampling: args.sampling,
        lr: args.lr,
        warmup: args.warmup,
        adam: AdamWConfig {
            weight_decay: args.weight_decay,
            ..AdamWConfig::default()
        },
        clip: args.clip,
        ema_decay: args.ema_decay,
        seed: args.seed,
        checkpoint_every: args.checkpoint_every,
        log_every: args.log_every,
        labels: None,
    })
}

/// "1,2,2" as numbers.
pub(crate) fn parse_list(text: &str, flag: &str) -> Result<Vec<usize>> {
    text.split(',')
        .map(|s| s.trim().parse::<usize>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| Error::invalid(flag, text, "use a comma-separated list like 1,2,2"))
}
