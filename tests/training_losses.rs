//! The losses a run measures besides its batch loss (THEORY §15): the
//! training and held-out losses on fixed draws, and the closed-form
//! (empirical-denoiser) regression target.

mod common;

use std::ops::ControlFlow;

use candle_core::{DType, Device, Tensor};
use common::{gaussian, temp_dir};
use diffusion_regimes::denoise::{Denoiser, EmpiricalDenoiser};
use diffusion_regimes::nn::train::{Losses, RunData, Target, Trainer};
use diffusion_regimes::nn::{weighted_errors, TrainOptions};

/// A small MLP run's options: width 64, depth 2, batch 32.
fn options(steps: u64, eval_every: u64, eval_points: usize) -> TrainOptions {
    TrainOptions {
        width: 64,
        depth: Some(2),
        steps,
        batch: 32,
        lr: 2e-3,
        warmup: 20,
        ema_decay: 0.99,
        seed: 5,
        checkpoint_every: steps,
        log_every: 50,
        eval_every,
        eval_points,
        ..TrainOptions::default()
    }
}

/// `rows` Gaussian rows of R^8 with per-coordinate std 0.5 (sigma_data), f32.
fn rows(index: u64, rows: usize) -> Tensor {
    (gaussian(11, index, rows, 8) * 0.5)
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap()
}

/// A run started in a fresh folder named `name`.
fn start(name: &str, options: &TrainOptions, train: &Tensor, heldout: &Tensor) -> Trainer {
    let dir = temp_dir(name);
    let config = options.config("test", train).unwrap().check().unwrap();
    let data = RunData::new(train).heldout(Some(heldout));
    Trainer::start(&dir, config, data, &Device::Cpu).unwrap()
}

/// Trains to the end, collecting every evaluation as (step, train, held-out).
fn evaluations(trainer: &mut Trainer) -> Vec<(u64, f64, f64)> {
    let mut seen = Vec::new();
    trainer
        .run(&mut |p| {
            if let Some(Losses { train, heldout }) = &p.losses {
                seen.push((p.step, train.total, heldout.as_ref().unwrap().total));
            }
            ControlFlow::Continue(())
        })
        .unwrap();
    seen
}

#[test]
fn a_memorizing_run_parts_its_training_and_heldout_losses_and_the_gap_grows() {
    // Four training rows, a network of thousands of weights: it memorizes.
    let mut trainer = start(
        "losses_memorizing",
        &options(3000, 500, 256),
        &rows(0, 4),
        &rows(1, 256),
    );
    let seen = evaluations(&mut trainer);
    assert_eq!(
        seen.iter().map(|e| e.0).collect::<Vec<_>>(),
        [500, 1000, 1500, 2000, 2500, 3000]
    );
    let gaps: Vec<f64> = seen
        .iter()
        .map(|(_, train, heldout)| heldout - train)
        .collect();
    let (first, last) = (gaps[0], gaps[gaps.len() - 1]);
    assert!(
        seen.iter().all(|(_, train, heldout)| train < heldout),
        "{seen:?}"
    );
    assert!(last > 2.0 * first && last > 0.1 * seen[5].2, "{gaps:?}");

    // metrics.csv holds them at the evaluated steps, empty cells elsewhere.
    let csv = std::fs::read_to_string(trainer.dir().join("metrics.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    assert_eq!(header[5..7], ["train_loss", "heldout_loss"]);
    assert_eq!(header.len(), 7 + 8);
    let row = |step: &str| -> Vec<String> {
        let line = csv
            .lines()
            .find(|l| l.split(',').next() == Some(step))
            .unwrap();
        line.split(',').map(str::to_string).collect()
    };
    assert_eq!(row("3000")[6].parse::<f64>().unwrap(), seen[5].2);
    assert_eq!(row("50")[6], "");
}

/// Mean and standard error of `values`.
fn mean_and_error(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, (var / n).sqrt())
}

#[test]
fn a_generalizing_run_has_equal_training_and_heldout_losses_within_noise() {
    // 4096 training rows against 300 steps of 32: no row is seen twice often.
    let options = options(300, 300, 2048);
    let (train, heldout) = (rows(0, 4096), rows(1, 2048));
    let mut trainer = start("losses_generalizing", &options, &train, &heldout);
    let seen = evaluations(&mut trainer);
    let (_, train_loss, heldout_loss) = seen[0];

    // The noise of the difference, from independent paired draws: each
    // training row beside a held-out row, with the same sigma and noise.
    let model = trainer.ema_model();
    let count = 2048;
    // EDM's log-normal noise levels, from a seeded stream.
    let sigma = (gaussian(12, 0, count, 1)
        .affine(1.2, -1.2)
        .unwrap()
        .exp()
        .unwrap())
    .flatten_all()
    .unwrap()
    .to_dtype(DType::F32)
    .unwrap();
    let z = rows(7, count).affine(2.0, 0.0).unwrap();
    let terms = |y: &Tensor| -> Vec<f64> {
        let e = weighted_errors(model, y, &sigma, &z, y, None).unwrap();
        e.to_vec1::<f32>()
            .unwrap()
            .into_iter()
            .map(f64::from)
            .collect()
    };
    let (a, b) = (terms(&train.narrow(0, 0, count).unwrap()), terms(&heldout));
    let differences: Vec<f64> = a.iter().zip(&b).map(|(a, b)| a - b).collect();
    let (_, error) = mean_and_error(&differences);
    assert!(
        (train_loss - heldout_loss).abs() < 4.0 * error,
        "train {train_loss} held-out {heldout_loss}, standard error {error}"
    );
}

#[test]
fn evaluation_is_the_weighted_loss_on_its_stated_draws() {
    // Recomputed from the documented draws: stream (seed, Evaluation, 0)
    // gives the points' sigmas, then their noise; point i takes row i mod N.
    use diffusion_regimes::rng::{stream, Purpose};
    use rand_distr::{Distribution, StandardNormal};
    let options = options(20, 20, 10);
    let (train, heldout) = (rows(0, 3), rows(1, 4));
    let mut trainer = start("losses_recomputed", &options, &train, &heldout);
    let seen = evaluations(&mut trainer);
    let framework = trainer.config.parameterisation();
    let mut rng = stream(options.seed, Purpose::Evaluation, 0);
    let sigma: Vec<f32> = (0..10).map(|_| framework.draw_sigma(&mut rng)).collect();
    let z: Vec<f32> = (0..80).map(|_| StandardNormal.sample(&mut rng)).collect();
    let (sigma, z) = (
        Tensor::new(sigma, &Device::Cpu).unwrap(),
        Tensor::from_vec(z, (10, 8), &Device::Cpu).unwrap(),
    );
    let loss = |rows: &Tensor| -> f64 {
        let index: Vec<u32> = (0..10).map(|i| i % rows.dim(0).unwrap() as u32).collect();
        let index = Tensor::new(index.as_slice(), &Device::Cpu).unwrap();
        let y = rows.index_select(&index, 0).unwrap();
        let e = weighted_errors(trainer.ema_model(), &y, &sigma, &z, &y, None).unwrap();
        let e: Vec<f32> = e.to_vec1().unwrap();
        e.iter().map(|&v| v as f64).sum::<f64>() / 10.0
    };
    let (_, train_loss, heldout_loss) = seen[0];
    assert!(
        (loss(&train) - train_loss).abs() <= 1e-6 * train_loss,
        "{train_loss}"
    );
    assert!((loss(&heldout) - heldout_loss).abs() <= 1e-6 * heldout_loss);
}

#[test]
fn the_empirical_target_is_the_memorizer_at_each_drawn_point() {
    let train = rows(0, 16);
    let options = TrainOptions {
        target: Target::Empirical,
        ..options(10, 10, 0)
    };
    let trainer = start("losses_target", &options, &train, &rows(1, 4));
    // The streaming memorizer, one row at its own sigma at a time: an
    // independent path from the dense per-row one the trainer takes.
    let memorizer = EmpiricalDenoiser::new(&train.to_dtype(DType::F64).unwrap()).unwrap();
    for step in [0, 3] {
        let batch = trainer.batch(step).unwrap();
        let target = trainer.target(&batch).unwrap();
        let sigmas: Vec<f32> = batch.sigma.to_vec1().unwrap();
        for (b, &sigma) in sigmas.iter().enumerate() {
            let row = |t: &Tensor| t.narrow(0, b, 1).unwrap().to_dtype(DType::F64).unwrap();
            let x = (row(&batch.y) + (row(&batch.z) * sigma as f64).unwrap()).unwrap();
            let expected = memorizer.denoise(&x, sigma as f64).unwrap();
            let got = row(&target);
            let err = common::max_abs_diff(&got, &expected);
            // f32 rounding of values of size about 1 (and of x).
            assert!(err < 1e-5, "step {step} row {b} sigma {sigma}: {err}");
        }
    }
}

#[test]
fn the_ordinary_loss_is_the_closed_form_targets_plus_a_constant_in_expectation() {
    // E lambda |D - y|^2 = E lambda |D - D_N|^2 + E lambda |D_N - y|^2 for any
    // network D, as D_N(x) = E[y | x] under the empirical distribution: the
    // cross term 2 lambda <D - D_N, D_N - y> has mean zero (THEORY §15).
    let train = rows(0, 16);
    let options = TrainOptions {
        target: Target::Empirical,
        ..options(10, 10, 0)
    };
    let trainer = start("losses_expectation", &options, &train, &rows(1, 4));
    let model = trainer.model();
    let (mut cross, mut ordinary) = (Vec::new(), Vec::new());
    for step in 0..512 {
        let batch = trainer.batch(step).unwrap();
        let target = trainer.target(&batch).unwrap();
        let terms = |t: &Tensor| -> Vec<f64> {
            let e = weighted_errors(model, &batch.y, &batch.sigma, &batch.z, t, None).unwrap();
            e.to_vec1::<f32>()
                .unwrap()
                .into_iter()
                .map(f64::from)
                .collect()
        };
        let to_y = terms(&batch.y);
        let to_target = terms(&target);
        // lambda |D_N - y|^2 per row, with the same weight and averaging.
        let lambda: Vec<f32> = model
            .framework()
            .loss_weight(&batch.sigma)
            .unwrap()
            .to_vec1()
            .unwrap();
        let gap: Vec<f32> = (&target - &batch.y)
            .unwrap()
            .sqr()
            .unwrap()
            .mean(1)
            .unwrap()
            .to_vec1()
            .unwrap();
        for b in 0..to_y.len() {
            let constant = lambda[b] as f64 * gap[b] as f64;
            cross.push(to_y[b] - to_target[b] - constant);
            ordinary.push(to_y[b]);
        }
    }
    let (mean, error) = mean_and_error(&cross);
    let (loss, _) = mean_and_error(&ordinary);
    // The cross term is not zero row by row, only in mean: the check can fail.
    assert!(cross.iter().any(|c| c.abs() > 1e-2 * loss));
    assert!(mean.abs() < 4.0 * error, "cross term {mean} +- {error}");
    assert!(error < 0.05 * loss, "{error} against {loss}");
}
