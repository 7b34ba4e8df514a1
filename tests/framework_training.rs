//! Training with every framework (THEORY §9) and every architecture: the
//! noise levels come from each framework's distribution, the framework's own
//! loss falls on held-out batches, and the DiT starts as c_skip x and learns.

mod common;

use std::ops::ControlFlow;

use candle_core::{DType, Device, Tensor};
use common::{by_name, gaussian, temp_dir};
use diffusion_regimes::denoise::Denoiser;
use diffusion_regimes::framework::{Consistency, Framework, Vp, VpEps};
use diffusion_regimes::nn::optim::AdamWConfig;
use diffusion_regimes::nn::train::{Batch, RunData, Sampling, Target, TrainConfig, Trainer};
use diffusion_regimes::nn::{Arch, DitConfig, MlpConfig, Params};
use diffusion_regimes::sample::TimeMap;

fn config(framework: Framework, arch: Arch, shape: Vec<usize>, steps: u64) -> TrainConfig {
    TrainConfig {
        data: "test".into(),
        n: 16,
        subset_seed: 0,
        sample_shape: shape,
        arch,
        framework,
        sigma_data: 0.5,
        p_mean: -1.2,
        p_std: 1.2,
        steps,
        batch: 64,
        sampling: Sampling::Replacement,
        lr: 2e-3,
        warmup: 20,
        adam: AdamWConfig::default(),
        clip: 1.0,
        ema_decay: 0.9,
        seed: 3,
        checkpoint_every: steps,
        log_every: steps,
        eval_every: 0,
        eval_points: 0,
        target: Default::default(),
        labels: None,
        init: None,
        teacher: None,
    }
}

fn mlp() -> Arch {
    Arch::Mlp(MlpConfig {
        width: 64,
        depth: 2,
    })
}

fn trainer(name: &str, config: TrainConfig, train: &Tensor) -> Trainer {
    let dir = temp_dir(name);
    Trainer::start(
        &dir,
        config.check().unwrap(),
        RunData::new(train),
        &Device::Cpu,
    )
    .unwrap()
}

/// The sigmas of batches 0..64 (4096 draws).
fn drawn_sigmas(trainer: &Trainer) -> Vec<f64> {
    (0..64)
        .flat_map(|k| {
            let Batch { sigma, .. } = trainer.batch(k).unwrap();
            sigma.to_vec1::<f32>().unwrap().into_iter().map(f64::from)
        })
        .collect()
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

#[test]
fn each_framework_draws_its_own_noise_levels() {
    let train = gaussian(1, 0, 16, 4).to_dtype(DType::F32).unwrap();
    let draws =
        |f: Framework| drawn_sigmas(&trainer(f.name(), config(f, mlp(), vec![4], 1), &train));
    // Uniform on [0, 1] has standard deviation 0.289; 4096 draws give a
    // standard error of 0.0045 on the mean, so 0.02 is over 4 of them.
    let ddpm = VpEps::ddpm();
    let t: Vec<f64> = draws(by_name("vp-eps"))
        .iter()
        .map(|&s| ddpm.time(s))
        .collect();
    assert!(t
        .iter()
        .all(|t| (t - t.round()).abs() < 1e-2 && *t >= 0.99 && *t <= 1000.01));
    assert!((mean(&t) / 1000.0 - 0.5).abs() < 0.02, "{}", mean(&t));

    let vp = Vp::default();
    let t: Vec<f64> = draws(by_name("vp")).iter().map(|&s| vp.time(s)).collect();
    assert!((mean(&t) - 0.5).abs() < 0.02, "{}", mean(&t));

    let (lo, hi) = (0.02f64.ln(), 100f64.ln());
    let u: Vec<f64> = draws(by_name("ve"))
        .iter()
        .map(|s| (s.ln() - lo) / (hi - lo))
        .collect();
    assert!(u.iter().all(|u| (-1e-6..=1.0 + 1e-6).contains(u)));
    assert!((mean(&u) - 0.5).abs() < 0.02, "{}", mean(&u));

    // Flow: logit(t) = ln sigma for t = sigma / (1 + sigma), standard normal.
    let logits: Vec<f64> = draws(by_name("flow")).iter().map(|s| s.ln()).collect();
    let var = mean(&logits.iter().map(|l| l * l).collect::<Vec<_>>());
    assert!(
        mean(&logits).abs() < 0.07 && (var - 1.0).abs() < 0.1,
        "{var}"
    );
    let t: Vec<f64> = draws(by_name("flow-uniform"))
        .iter()
        .map(|s| s / (1.0 + s))
        .collect();
    assert!((mean(&t) - 0.5).abs() < 0.02, "{}", mean(&t));

    let ln: Vec<f64> = draws(Framework::EDM).iter().map(|s| s.ln()).collect();
    assert!((mean(&ln) + 1.2).abs() < 0.08, "{}", mean(&ln));
}

/// The framework's loss on batches 10_000..10_008 (never drawn in training),
/// with its weight written from the papers: EDM (sigma^2 + sd^2)/(sigma sd)^2,
/// flow 1/t^2, the others 1/sigma^2; a consistency model its consistency
/// loss. In f64, row by row.
fn held_out_loss(framework: Framework, trainer: &Trainer, d: &dyn Denoiser) -> f64 {
    let mut total = Vec::new();
    for k in 10_000..10_008 {
        let Batch {
            y, sigma, z, lower, ..
        } = trainer.batch(k).unwrap();
        let y = y.flatten_from(1).unwrap().to_dtype(DType::F64).unwrap();
        let z = z.flatten_from(1).unwrap().to_dtype(DType::F64).unwrap();
        let lower = lower.map(|l| l.to_vec1::<f32>().unwrap());
        for (b, s) in sigma.to_vec1::<f32>().unwrap().into_iter().enumerate() {
            let s = s as f64;
            let (yb, zb) = (y.narrow(0, b, 1).unwrap(), z.narrow(0, b, 1).unwrap());
            let at = |level: f64| (&yb + (&zb * level).unwrap()).unwrap();
            if let Some(lower) = &lower {
                // A consistency model's own loss (THEORY §16): the pseudo-Huber
                // distance between its outputs at the pair's two levels, over
                // their spacing.
                let l = lower[b] as f64;
                let diff = (d.denoise(&at(s), s).unwrap() - d.denoise(&at(l), l).unwrap()).unwrap();
                let squared: f64 = diff.sqr().unwrap().sum_all().unwrap().to_scalar().unwrap();
                let c = 0.00054 * (diff.elem_count() as f64).sqrt();
                total.push(((squared + c * c).sqrt() - c) / (s - l));
                continue;
            }
            let x = at(s);
            let err: f64 = (d.denoise(&x, s).unwrap() - &yb)
                .unwrap()
                .sqr()
                .unwrap()
                .mean_all()
                .unwrap()
                .to_scalar()
                .unwrap();
            let weight = match framework.name() {
                "edm" => (s * s + 0.25) / (s * s * 0.25),
                "flow" | "flow-uniform" => ((1.0 + s) / s).powi(2),
                _ => 1.0 / (s * s),
            };
            total.push(weight * err);
        }
    }
    mean(&total)
}

/// Trains `arch` with `framework` for `steps` on 16 points of a 2-cluster
/// set; returns the held-out loss before and after (current weights).
fn loss_before_and_after(
    framework: Framework,
    arch: Arch,
    shape: Vec<usize>,
    steps: u64,
) -> (f64, f64) {
    let dim: usize = shape.iter().product();
    let signs = gaussian(2, 0, 16, 1)
        .ge(0.0)
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap();
    let flat = (signs.broadcast_as((16, dim)).unwrap() - 0.5).unwrap();
    let mut dims = vec![16];
    dims.extend(&shape);
    let train = flat.reshape(dims).unwrap();
    let name = format!("{framework}-{}", arch.label());
    let mut trainer = trainer(&name, config(framework, arch, shape, steps), &train);
    let before = held_out_loss(framework, &trainer, trainer.model());
    trainer.run(&mut |_| ControlFlow::Continue(())).unwrap();
    (before, held_out_loss(framework, &trainer, trainer.model()))
}

#[test]
fn every_framework_lowers_its_own_held_out_loss() {
    // Not the consistency models: their loss starts near 0 (at
    // initialisation f is about c_skip x, smooth and so nearly consistent
    // between adjacent levels) and rises as f learns to move points
    // (consistency training: 0.64 -> 2.15 here); distillation needs a
    // teacher (tests/consistency.rs).
    for framework in Framework::ALL.into_iter().filter(|f| !f.trains_on_pairs()) {
        let (before, after) = loss_before_and_after(framework, mlp(), vec![4], 150);
        assert!(after < 0.7 * before, "{framework}: {before} -> {after}");
    }
}

#[test]
fn consistency_batches_pair_adjacent_levels_of_the_step_curriculum() {
    let framework = by_name("consistency");
    let ct = Consistency::new(0.5);
    let train = gaussian(2, 0, 16, 4).to_dtype(DType::F32).unwrap();
    let run = trainer("ct-pairs", config(framework, mlp(), vec![4], 800), &train);
    // K' = 800 / 8 = 100: 11 levels at step 0, 21 at step 100, 1281 from step 700.
    for (step, count) in [(0, 11), (150, 21), (799, 1281)] {
        let levels: Vec<f32> = ct.levels(count).into_iter().map(|l| l as f32).collect();
        let Batch { sigma, lower, .. } = run.batch(step).unwrap();
        let lower = lower.expect("consistency batches carry their lower levels");
        let pairs = lower
            .to_vec1::<f32>()
            .unwrap()
            .into_iter()
            .zip(sigma.to_vec1::<f32>().unwrap());
        for (lo, hi) in pairs {
            let i = levels.iter().position(|&l| l == lo).expect("a level");
            assert_eq!(levels[i + 1], hi, "step {step}");
        }
    }
    let edm = trainer(
        "edm-pairs",
        config(Framework::EDM, mlp(), vec![4], 10),
        &train,
    );
    assert!(edm.batch(0).unwrap().lower.is_none());
    // It has no regression target to replace.
    let mut empirical = config(framework, mlp(), vec![4], 10);
    empirical.target = Target::Empirical;
    let message = empirical.check().unwrap_err().to_string();
    assert!(message.contains("consistency"), "{message}");
}

#[test]
fn dit_learns_images_and_vectors_and_starts_as_c_skip_x() {
    let dit = |patch| {
        Arch::Dit(DitConfig {
            width: 32,
            depth: 2,
            heads: 4,
            patch,
        })
    };
    // The adaLN-zero gates and the output layer start at 0: D = c_skip x.
    let params = Params::new(0);
    let net = dit(2)
        .build(
            &[1, 4, 4],
            None,
            params.var_builder(DType::F32, &Device::Cpu),
        )
        .unwrap();
    let edm = Framework::EDM.parameterisation(0.5, -1.2, 1.2);
    let model = diffusion_regimes::nn::Precond::new(net, edm, vec![1, 4, 4], &Device::Cpu);
    let x = gaussian(4, 0, 3, 16).to_dtype(DType::F32).unwrap();
    let d = model.denoise(&x, 1.0).unwrap();
    let c_skip = 0.25 / 1.25;
    assert!(common::max_abs_diff(&d, &(&x * c_skip).unwrap()) < 1e-6);

    for (shape, patch) in [(vec![1, 4, 4], 2), (vec![8], 2)] {
        let (before, after) = loss_before_and_after(Framework::EDM, dit(patch), shape.clone(), 150);
        assert!(after < 0.7 * before, "{shape:?}: {before} -> {after}");
    }
    let (before, after) = loss_before_and_after(by_name("flow"), dit(2), vec![1, 4, 4], 150);
    assert!(after < 0.7 * before, "flow DiT: {before} -> {after}");
    let bad = dit(3).build(
        &[1, 4, 4],
        None,
        params.var_builder(DType::F32, &Device::Cpu),
    );
    let message = bad.err().expect("4 is not a multiple of 3").to_string();
    assert!(message.contains("patch 3"), "{message}");
}
