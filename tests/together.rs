//! Models trained together (nn::train::together): each model's checkpoints
//! are those of its solo training, bit for bit, whatever its N, seed,
//! framework or regression target; a diverged model stops alone; networks
//! that cannot be stacked are refused with the reason.

mod common;

use std::ops::ControlFlow;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use common::{by_name, gaussian, temp_dir};
use diffusion_regimes::nn::train::together::{run_together, step_together, why_not_together};
use diffusion_regimes::nn::train::{RunData, Target, Trainer};
use diffusion_regimes::nn::TrainOptions;

/// `rows` Gaussian rows of R^8, f32.
fn rows(index: u64, rows: usize) -> Tensor {
    (gaussian(3, index, rows, 8) * 0.7)
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap()
}

/// Three runs unlike each other but for the network's size (`width`) and
/// batch: N, seed, framework, target, schedule and evaluation.
fn options(width: usize, batch: usize) -> Vec<(TrainOptions, Tensor)> {
    let base = TrainOptions {
        width,
        depth: Some(2),
        steps: 30,
        batch,
        warmup: 5,
        checkpoint_every: 10,
        log_every: 5,
        eval_every: 15,
        eval_points: 32,
        ..TrainOptions::default()
    };
    vec![
        (
            TrainOptions {
                seed: 1,
                ..base.clone()
            },
            rows(0, 4),
        ),
        (
            TrainOptions {
                seed: 2,
                framework: by_name("flow"),
                lr: 3e-3,
                ..base.clone()
            },
            rows(1, 16),
        ),
        (
            TrainOptions {
                seed: 3,
                framework: by_name("vp"),
                target: Target::Empirical,
                ..base
            },
            rows(2, 64),
        ),
    ]
}

fn start(dir: &Path, options: &TrainOptions, train: &Tensor) -> Trainer {
    let config = options.config("test", train).unwrap().check().unwrap();
    // 16 held-out rows shaped like the examples.
    let dim = train.elem_count() / train.dim(0).unwrap();
    let mut shape = train.dims().to_vec();
    shape[0] = 16;
    let heldout = rows(9, 2 * dim).reshape(shape).unwrap();
    let data = RunData::new(train).heldout(Some(&heldout));
    Trainer::start(dir, config, data, &Device::Cpu).unwrap()
}

/// The runs `runs` started in `dir`/together0, together1, ...
fn start_together(dir: &Path, runs: &[(TrainOptions, Tensor)]) -> Vec<Trainer> {
    runs.iter()
        .enumerate()
        .map(|(k, (options, train))| start(&dir.join(format!("together{k}")), options, train))
        .collect()
}

/// Every file of `run`'s checkpoints folder, by name, with its bytes.
fn checkpoints(run: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(run.join("checkpoints"))
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            (path.display().to_string(), std::fs::read(&path).unwrap())
        })
        .map(|(p, bytes)| (p.rsplit('/').next().unwrap().to_string(), bytes))
        .collect();
    files.sort();
    files
}

/// metrics.csv without its seconds column (wall time).
fn metrics(run: &Path) -> Vec<String> {
    std::fs::read_to_string(run.join("metrics.csv"))
        .unwrap()
        .lines()
        .map(|line| {
            let mut cells: Vec<&str> = line.split(',').collect();
            cells.remove(4);
            cells.join(",")
        })
        .collect()
}

/// Width 32 takes the kernels' small-product paths; width 128 at batch 64
/// the split ones (rows shared by the threads, backward products side by side).
#[test]
fn models_trained_together_write_the_checkpoints_of_their_solo_training() {
    for (width, batch) in [(32, 16), (128, 64)] {
        trained_together_as_alone(width, batch);
    }
}

fn trained_together_as_alone(width: usize, batch: usize) {
    let dir = temp_dir(&format!("together-{width}"));
    let runs = options(width, batch);
    for (k, (options, train)) in runs.iter().enumerate() {
        let mut alone = start(&dir.join(format!("alone{k}")), options, train);
        alone.run(&mut |_| ControlFlow::Continue(())).unwrap();
    }
    let mut trainers = start_together(&dir, &runs);
    let mut seen = vec![0; runs.len()];
    let outcomes = run_together(&mut trainers, &mut |k, _| {
        seen[k] += 1;
        ControlFlow::Continue(())
    })
    .unwrap();
    assert!(outcomes.iter().all(Result::is_ok));
    assert_eq!(seen, [30, 30, 30]);
    for k in 0..runs.len() {
        let (alone, together) = (
            dir.join(format!("alone{k}")),
            dir.join(format!("together{k}")),
        );
        let (a, b) = (checkpoints(&alone), checkpoints(&together));
        assert_eq!(a.len(), 3, "checkpoints at 10, 20, 30");
        assert!(
            a == b,
            "model {k}: its checkpoints differ from its solo training's"
        );
        assert_eq!(metrics(&alone), metrics(&together), "model {k}");
    }
}

/// A model whose weight turns NaN stops with a divergence error at that
/// step; the others go on to the checkpoints of their solo training.
#[test]
fn a_diverged_model_stops_alone() {
    let dir = temp_dir("together-diverged");
    let runs = options(32, 16);
    let (options0, train0) = &runs[0];
    let mut alone = start(&dir.join("alone"), options0, train0);
    alone.run(&mut |_| ControlFlow::Continue(())).unwrap();
    let mut trainers = start_together(&dir, &runs);
    // Two steps together, then model 1's first weight is broken.
    for _ in 0..2 {
        let mut all: Vec<&mut Trainer> = trainers.iter_mut().collect();
        assert!(step_together(&mut all).unwrap().iter().all(Result::is_ok));
    }
    let (_, first) = trainers[1].params().named().into_iter().next().unwrap();
    first.set(&(first.as_tensor() * f64::NAN).unwrap()).unwrap();
    let outcomes = run_together(&mut trainers, &mut |_, _| ControlFlow::Continue(())).unwrap();
    let e = outcomes[1].as_ref().expect_err("model 1 diverged");
    assert!(
        matches!(e, diffusion_regimes::Error::Diverged { step: 2, ref what, .. } if what == "loss"),
        "{e}"
    );
    assert!(outcomes[0].is_ok() && outcomes[2].is_ok());
    assert_eq!(trainers[1].step(), 2);
    assert!(checkpoints(&dir.join("alone")) == checkpoints(&dir.join("together0")));
}

#[test]
fn networks_that_cannot_stack_are_refused_with_the_reason() {
    let dir = temp_dir("together-refused");
    let (options, train) = options(32, 16).remove(0);
    let a = start(&dir.join("a"), &options, &train);
    let wider = TrainOptions {
        width: 48,
        ..options.clone()
    };
    let b = start(&dir.join("b"), &wider, &train);
    assert!(why_not_together(&[&a, &b])
        .unwrap()
        .contains("network sizes"));
    let batch = TrainOptions {
        batch: 8,
        ..options.clone()
    };
    let c = start(&dir.join("c"), &batch, &train);
    assert!(why_not_together(&[&a, &c]).unwrap().contains("batch sizes"));
    let consistency = TrainOptions {
        framework: by_name("consistency"),
        ..options.clone()
    };
    let d = start(&dir.join("d"), &consistency, &train);
    assert!(why_not_together(&[&a, &d]).unwrap().contains("consistency"));
    let images = Tensor::zeros((4, 1, 4, 4), DType::F32, &Device::Cpu).unwrap();
    let unet = TrainOptions {
        arch: "unet".into(),
        width: 8,
        multipliers: vec![1, 2],
        depth: Some(1),
        no_attention: true,
        ..options
    };
    let e = start(&dir.join("e"), &unet, &(images + 0.5).unwrap());
    let f = start(
        &dir.join("f"),
        &unet,
        &rows(5, 8).reshape((4, 1, 4, 4)).unwrap(),
    );
    let refused = step_together(&mut [&mut { e }, &mut { f }])
        .err()
        .unwrap()
        .to_string();
    assert!(refused.contains("only MLPs train together"), "{refused}");
}
