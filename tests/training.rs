//! Training neural denoisers: the loss falls, a small MLP moves toward the
//! memorizing denoiser, runs are pure functions of their seed, resumed runs
//! are bit-identical to uninterrupted ones, checkpoints round-trip.

mod common;

use std::ops::ControlFlow;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use common::{gaussian, max_abs_diff, temp_dir};
use diffusion_regimes::denoise::{Denoiser, EmpiricalDenoiser};
use diffusion_regimes::metrics::denoiser_gap;
use diffusion_regimes::nn::checkpoint::{load_model, read_checkpoint, read_state, Weights};
use diffusion_regimes::nn::optim::AdamWConfig;
use diffusion_regimes::nn::train::{Batch, RunData, Sampling, TrainConfig, Trainer};
use diffusion_regimes::nn::{Arch, MlpConfig};

/// A run started in `dir` with `config` (checked) on `train`, on the CPU.
fn start(dir: &Path, config: TrainConfig, train: &Tensor) -> Trainer {
    Trainer::start(
        dir,
        config.check().unwrap(),
        RunData::new(train),
        &Device::Cpu,
    )
    .unwrap()
}

fn config(n: usize, dim: usize, steps: u64) -> TrainConfig {
    TrainConfig {
        data: "test".into(),
        n,
        subset_seed: 0,
        sample_shape: vec![dim],
        arch: Arch::Mlp(MlpConfig {
            width: 64,
            depth: 2,
        }),
        framework: Default::default(),
        sigma_data: 0.5,
        p_mean: -1.2,
        p_std: 1.2,
        steps,
        batch: 32,
        sampling: Sampling::Replacement,
        lr: 2e-3,
        warmup: 20,
        adam: AdamWConfig::default(),
        clip: 1.0,
        ema_decay: 0.99,
        seed: 7,
        checkpoint_every: 10,
        log_every: 5,
        eval_every: 0,
        eval_points: 0,
        target: Default::default(),
        labels: None,
        init: None,
        teacher: None,
    }
}

/// Vertices of the cube {-1/2, 1/2}^dim (per-coordinate std 0.5 = sigma_data):
/// far from Gaussian, so the untrained denoiser c_skip x, optimal for a
/// Gaussian of that variance, has much to learn.
fn train_set(n: usize, dim: usize) -> Tensor {
    let signs = gaussian(3, 0, n, dim)
        .ge(0.0)
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap();
    (signs - 0.5).unwrap()
}

fn losses(trainer: &mut Trainer) -> Vec<f64> {
    let mut losses = Vec::new();
    trainer
        .run(&mut |p| {
            losses.push(p.loss);
            ControlFlow::Continue(())
        })
        .unwrap();
    losses
}

/// Bytes of every tensor of the latest checkpoint in `dir`, by name.
fn checkpoint_tensors(dir: &Path, step: u64) -> Vec<(String, Vec<f32>)> {
    let path = dir.join(format!("checkpoints/step-{step:08}.safetensors"));
    let mut out = Vec::new();
    for (group, tensors) in read_checkpoint(&path).unwrap() {
        for (name, t) in tensors {
            out.push((
                format!("{group}/{name}"),
                t.flatten_all().unwrap().to_vec1().unwrap(),
            ));
        }
    }
    out
}

fn same_bits(a: &[(String, Vec<f32>)], b: &[(String, Vec<f32>)]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|((na, va), (nb, vb))| {
            na == nb && va.iter().zip(vb).all(|(x, y)| x.to_bits() == y.to_bits())
        })
}

/// The EDM loss (THEORY §3) of `d` on 20 fixed batches that training never
/// draws (steps 10_000..10_020): an estimate free of the per-batch noise of
/// the training loss. Computed row by row with scalar sigma, in f64.
fn held_out_loss(trainer: &Trainer, d: &dyn Denoiser) -> f64 {
    let sd2 = 0.25;
    let mut total = Vec::new();
    for k in 10_000..10_020 {
        let Batch { y, sigma, z, .. } = trainer.batch(k).unwrap();
        let (y, z) = (
            y.to_dtype(DType::F64).unwrap(),
            z.to_dtype(DType::F64).unwrap(),
        );
        for (b, s) in sigma.to_vec1::<f32>().unwrap().into_iter().enumerate() {
            let s = s as f64;
            let (yb, zb) = (y.narrow(0, b, 1).unwrap(), z.narrow(0, b, 1).unwrap());
            let x = (&yb + (zb * s).unwrap()).unwrap();
            let err = (d.denoise(&x, s).unwrap() - &yb)
                .unwrap()
                .sqr()
                .unwrap()
                .mean_all()
                .unwrap();
            let lambda = (s * s + sd2) / (s * s * sd2);
            total.push(lambda * err.to_scalar::<f64>().unwrap());
        }
    }
    total.iter().sum::<f64>() / total.len() as f64
}

#[test]
fn denoising_loss_decreases_toward_the_memorizing_optimum_during_training() {
    let dir = temp_dir("loss");
    let train = train_set(64, 8);
    let mut trainer = start(&dir, config(64, 8, 1000), &train);
    // The empirical denoiser minimises the loss over the training set (THEORY §4).
    let optimum = held_out_loss(&trainer, &EmpiricalDenoiser::new(&train).unwrap());
    let before = held_out_loss(&trainer, trainer.model());
    losses(&mut trainer);
    let after = held_out_loss(&trainer, trainer.model());
    // Measured: 0.994 -> 0.755 with optimum 0.399 (60% of the excess remains after 1000 steps).
    assert!(
        after - optimum < 0.75 * (before - optimum),
        "held-out EDM loss went from {before} to {after}; the optimum is {optimum}"
    );
}

/// The library's relative gap (THEORY §7) at one sigma over 16 noisy copies of each training point.
fn gap_to(d: &dyn Denoiser, reference: &dyn Denoiser, train: &Tensor, sigma: f64) -> f64 {
    let y = train.to_dtype(DType::F64).unwrap().repeat((16, 1)).unwrap();
    denoiser_gap(d, reference, &y, &[sigma], 11).unwrap()[0]
}

#[test]
fn mlp_trained_on_four_points_moves_toward_the_empirical_denoiser_at_small_sigma() {
    let dir = temp_dir("four-points");
    let train = train_set(4, 8);
    let mut cfg = config(4, 8, 400);
    cfg.p_mean = -1.0; // concentrate training on small and moderate noise
    let mut trainer = start(&dir, cfg, &train);
    let empirical = EmpiricalDenoiser::new(&train.to_dtype(DType::F64).unwrap()).unwrap();
    let sigma = 0.1;
    let before = gap_to(trainer.model(), &empirical, &train, sigma);
    losses(&mut trainer);
    let after = gap_to(
        &load_model(&dir, Weights::Ema, &Device::Cpu).unwrap(),
        &empirical,
        &train,
        sigma,
    );
    assert!(
        after < 0.5 * before,
        "gap to the empirical denoiser at sigma {sigma}: {before} -> {after}"
    );
}

#[test]
fn same_seed_gives_bit_identical_weights() {
    let (a, b) = (temp_dir("seed-a"), temp_dir("seed-b"));
    for dir in [&a, &b] {
        losses(&mut start(dir, config(16, 4, 20), &train_set(16, 4)));
    }
    assert!(same_bits(
        &checkpoint_tensors(&a, 20),
        &checkpoint_tensors(&b, 20)
    ));
    let c = temp_dir("seed-c");
    let mut other = config(16, 4, 20);
    other.seed = 8;
    losses(&mut start(&c, other, &train_set(16, 4)));
    assert!(!same_bits(
        &checkpoint_tensors(&a, 20),
        &checkpoint_tensors(&c, 20)
    ));
}

#[test]
fn run_killed_midway_and_resumed_is_bit_identical_to_an_uninterrupted_run() {
    for sampling in [Sampling::Replacement, Sampling::Epochs] {
        let mut cfg = config(24, 6, 30);
        cfg.sampling = sampling;
        let whole = temp_dir("whole");
        losses(&mut start(&whole, cfg.clone(), &train_set(24, 6)));

        // Stop at step 17 without saving, as a kill would: steps 11..17 are lost.
        let killed = temp_dir("killed");
        let mut trainer = start(&killed, cfg.clone(), &train_set(24, 6));
        trainer
            .run(&mut |p| match p.step {
                17 => ControlFlow::Break(()),
                _ => ControlFlow::Continue(()),
            })
            .unwrap();
        drop(trainer);
        let mut resumed = Trainer::resume(&killed, None, &Device::Cpu).unwrap();
        assert_eq!(resumed.step(), 10);
        losses(&mut resumed);
        assert!(same_bits(
            &checkpoint_tensors(&whole, 30),
            &checkpoint_tensors(&killed, 30)
        ));

        // A shorter run extended with a larger step count also continues exactly.
        let extended = temp_dir("extended");
        cfg.steps = 20;
        losses(&mut start(&extended, cfg, &train_set(24, 6)));
        losses(&mut Trainer::resume(&extended, Some(30), &Device::Cpu).unwrap());
        assert!(same_bits(
            &checkpoint_tensors(&whole, 30),
            &checkpoint_tensors(&extended, 30)
        ));
        let rows = std::fs::read_to_string(killed.join("metrics.csv")).unwrap();
        let steps: Vec<&str> = rows
            .lines()
            .skip(1)
            .map(|r| r.split(',').next().unwrap())
            .collect();
        assert_eq!(steps, ["5", "10", "15", "20", "25", "30"]);
    }
}

#[test]
fn checkpoint_round_trip_restores_the_model_and_its_ema() {
    let dir = temp_dir("round-trip");
    let mut trainer = start(&dir, config(16, 4, 20), &train_set(16, 4));
    losses(&mut trainer);
    let x = gaussian(5, 0, 9, 4).to_dtype(DType::F32).unwrap();
    let loaded = load_model(&dir, Weights::Model, &Device::Cpu).unwrap();
    let live = trainer.model().denoise(&x, 0.3).unwrap();
    assert_eq!(max_abs_diff(&loaded.denoise(&x, 0.3).unwrap(), &live), 0.0);
    let ema = load_model(&dir, Weights::Ema, &Device::Cpu).unwrap();
    let ema_out = ema.denoise(&x, 0.3).unwrap();
    assert!(
        max_abs_diff(&ema_out, &live) > 0.0,
        "EMA weights should differ from the iterate"
    );
}

#[test]
fn truncated_or_foreign_checkpoints_are_clear_errors() {
    let dir = temp_dir("corrupt");
    losses(&mut start(&dir, config(8, 4, 10), &train_set(8, 4)));
    let path = dir.join("checkpoints/step-00000010.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let e = load_model(&dir, Weights::Ema, &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("step-00000010.safetensors") && e.contains("truncated or foreign"),
        "{e}"
    );

    std::fs::write(dir.join("state.json"), b"{\"hello\": 1}").unwrap();
    let e = Trainer::resume(&dir, None, &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("state.json") && e.contains("not a training state file"),
        "{e}"
    );

    let e = Trainer::resume(&temp_dir("empty"), None, &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("state.json") && e.contains("missing"), "{e}");
}

#[test]
fn an_existing_run_folder_is_not_overwritten() {
    let dir = temp_dir("exists");
    losses(&mut start(&dir, config(8, 4, 10), &train_set(8, 4)));
    let e = Trainer::start(
        &dir,
        config(8, 4, 10).check().unwrap(),
        RunData::new(&train_set(8, 4)),
        &Device::Cpu,
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("--resume"), "{e}");
}

#[test]
fn one_epoch_of_batches_visits_every_training_example_once() {
    let dir = temp_dir("epochs");
    let mut cfg = config(32, 3, 10);
    cfg.sampling = Sampling::Epochs;
    cfg.batch = 8;
    let train = train_set(32, 3);
    let trainer = start(&dir, cfg, &train);
    let mut seen: Vec<Vec<u32>> = (0..4)
        .flat_map(|k| trainer.batch(k).unwrap().y.to_vec2::<f32>().unwrap())
        .map(|row| row.iter().map(|v| v.to_bits()).collect())
        .collect();
    let mut all: Vec<Vec<u32>> = train
        .to_vec2::<f32>()
        .unwrap()
        .iter()
        .map(|row| row.iter().map(|v| v.to_bits()).collect())
        .collect();
    seen.sort();
    all.sort();
    assert_eq!(seen, all);
}

#[test]
fn invalid_configs_name_the_bad_value() {
    let mut cfg = config(8, 4, 10);
    cfg.lr = f64::NAN;
    let e = cfg.check().err().unwrap().to_string();
    assert!(e.contains("lr"), "{e}");
    let mut cfg = config(8, 4, 10);
    cfg.ema_decay = 1.0;
    assert!(cfg.check().err().unwrap().to_string().contains("ema_decay"));
}

/// A weight turned NaN after the step-10 checkpoint (as a blow-up would):
/// the next step stops with a divergence error naming that step, before any
/// update, and the run's latest checkpoint stays step 10's, finite; saving
/// the broken weights is refused the same way.
#[test]
fn a_diverged_run_stops_naming_the_step_and_keeps_its_last_good_checkpoint() {
    let dir = temp_dir("diverged");
    let train = train_set(8, 4);
    let mut trainer = start(&dir, config(8, 4, 10), &train);
    losses(&mut trainer);
    let mut resumed = Trainer::resume(&dir, Some(20), &Device::Cpu).unwrap();
    let (_, first) = resumed.params().named().into_iter().next().unwrap();
    first.set(&(first.as_tensor() * f64::NAN).unwrap()).unwrap();
    let e = resumed
        .run(&mut |_| ControlFlow::Continue(()))
        .err()
        .unwrap();
    assert!(
        matches!(e, diffusion_regimes::Error::Diverged { step: 10, ref what, .. } if what == "loss"),
        "{e}"
    );
    assert!(e.to_string().contains("step 10"), "{e}");
    assert_eq!(read_state(&dir).unwrap().step, 10);
    let kept = checkpoint_tensors(&dir, 10);
    assert!(kept.iter().all(|(_, v)| v.iter().all(|x| x.is_finite())));
    let refused = resumed.save(&[]).err().unwrap();
    assert!(
        matches!(refused, diffusion_regimes::Error::Diverged { ref what, .. } if what == "weight norm"),
        "{refused}"
    );
    assert_eq!(read_state(&dir).unwrap().step, 10);
}
