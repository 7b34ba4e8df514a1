//! `regimes train`: builds a TrainConfig from the flags, or resumes a run,
//! and shows progress while the library trains.

use std::ops::ControlFlow;

use indicatif::{ProgressBar, ProgressStyle};

use diffusion_regimes::data::{
    check_label_count, heldout_set, load_examples, read_labels, training_labels, training_set,
};
use diffusion_regimes::device::device;
use diffusion_regimes::nn::train::{LabelConditioning, RunData, Trainer};
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
            let steps = explicit
                .iter()
                .any(|f| f == "steps")
                .then_some(args.options.steps);
            Trainer::resume(&args.out, steps, &device)?
        }
        false => {
            let data = args
                .data
                .as_ref()
                .expect("clap requires --data without --resume");
            let n = args.n.expect("clap requires --n without --resume");
            args.options
                .check_init_alone(explicit.iter().map(String::as_str), |name| {
                    format!("--{}", name.replace('_', "-"))
                })?;
            let examples = load_examples(data)?;
            let train = training_set(&examples, n, args.options.subset_seed)?;
            let mut config = args.options.config(&data.display().to_string(), &train)?;
            let labels = match &args.labels {
                Some(path) => {
                    let all = read_labels(path)?;
                    check_label_count(&all, examples.dim(0)?, path)?;
                    config.labels =
                        Some(LabelConditioning::for_labels(&all, args.options.p_uncond));
                    Some(training_labels(&all, n, 0, args.options.subset_seed)?)
                }
                None => None,
            };
            // The held-out loss's rows: the data's next rows after the training set.
            let heldout = heldout_set(
                &examples,
                n,
                args.options.eval_points,
                args.options.subset_seed,
            )?;
            let data = RunData::new(&train)
                .labelled(labels.as_deref())
                .heldout(heldout.as_ref());
            Trainer::start(&args.out, config.check()?, data, &device)?
        }
    };
    if let Some(side) = trainer.config.arch.receptive_field() {
        let label = trainer.config.arch.label();
        eprintln!("{label}: each output pixel sees {side}x{side} input pixels");
    }
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

/// "1,2,2" as numbers.
pub(crate) fn parse_list(text: &str, flag: &str) -> Result<Vec<usize>> {
    text.split(',')
        .map(|s| s.trim().parse::<usize>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| Error::invalid(flag, text, "use a comma-separated list like 1,2,2"))
}
