//! The CUDA path against the CPU, for a binary built with `--features cuda`
//! and run where a GPU is visible (`scripts/gpu_check.sh` runs it on the
//! GPU host): a trained MLP and U-Net give the same denoiser and the same
//! Heun samples on both devices, and training on the GPU follows the CPU's
//! losses step for step. The GPU's kernels sum in other orders, so the
//! comparisons allow f32 rounding of sums of a few hundred terms (relative
//! 1e-4 for one evaluation; 1e-3 after the 35 evaluations of a sampler or
//! the 20 steps of training, whose updates compound it).
#![cfg(feature = "cuda")]

mod common;

use std::ops::ControlFlow;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use common::{gaussian, max_abs, max_abs_diff, temp_dir};
use diffusion_regimes::denoise::Denoiser;
use diffusion_regimes::nn::checkpoint::{load_model, Weights};
use diffusion_regimes::nn::train::{MetricsTable, RunData, Trainer};
use diffusion_regimes::nn::TrainOptions;
use diffusion_regimes::sample::{generate, Method, Plan, Schedule};

fn gpu() -> Device {
    Device::new_cuda(0).expect("a visible GPU (this test needs one)")
}

/// A run of `options` trained 20 steps on `device` into `dir`, on
/// Gaussian examples shaped `shape`.
fn trained(dir: &Path, options: &TrainOptions, shape: &[usize], device: &Device) {
    let rows = shape[0];
    let dim: usize = shape[1..].iter().product();
    let train = (gaussian(7, 0, rows, dim) * 0.5)
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap()
        .reshape(shape)
        .unwrap();
    let config = options.config("cuda", &train).unwrap().check().unwrap();
    let mut trainer = Trainer::start(dir, config, RunData::new(&train), device).unwrap();
    trainer.run(&mut |_| ControlFlow::Continue(())).unwrap();
}

fn relative(a: &Tensor, b: &Tensor) -> f64 {
    let a = a
        .to_device(&Device::Cpu)
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap();
    let b = b
        .to_device(&Device::Cpu)
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap();
    max_abs_diff(&a, &b) / max_abs(&b).max(1e-12)
}

fn networks() -> Vec<(&'static str, TrainOptions, Vec<usize>)> {
    let base = TrainOptions {
        steps: 20,
        batch: 16,
        warmup: 5,
        log_every: 1,
        checkpoint_every: 20,
        ..TrainOptions::default()
    };
    vec![
        (
            "mlp",
            TrainOptions {
                width: 64,
                depth: Some(2),
                ..base.clone()
            },
            vec![32, 16],
        ),
        (
            "unet",
            TrainOptions {
                arch: "unet".into(),
                width: 8,
                multipliers: vec![1, 2],
                depth: Some(1),
                ..base
            },
            vec![32, 1, 8, 8],
        ),
    ]
}

#[test]
fn a_cpu_trained_network_denoises_and_samples_alike_on_the_gpu() {
    for (name, options, shape) in networks() {
        let dir = temp_dir(&format!("cuda-eval-{name}"));
        trained(&dir, &options, &shape, &Device::Cpu);
        let cpu = load_model(&dir, Weights::Ema, &Device::Cpu).unwrap();
        let cuda = load_model(&dir, Weights::Ema, &gpu()).unwrap();
        let dim: usize = shape[1..].iter().product();
        let x = gaussian(8, 0, 24, dim);
        for sigma in [0.01, 0.3, 5.0] {
            let (a, b) = (
                cuda.denoise(&x, sigma).unwrap(),
                cpu.denoise(&x, sigma).unwrap(),
            );
            let e = relative(&a, &b);
            assert!(e < 1e-4, "{name} at sigma {sigma}: {e}");
        }
        let plan = Plan::new(&Schedule::default(), Method::Heun).unwrap();
        let indices: Vec<u64> = (0..8).collect();
        let samples = |model: &dyn Denoiser| {
            generate(model, &plan, 3, &indices, DType::F32, &Device::Cpu, None).unwrap()
        };
        let e = relative(&samples(&cuda), &samples(&cpu));
        assert!(e < 1e-3, "{name} samples: {e}");
    }
}

#[test]
fn training_on_the_gpu_follows_the_cpus_losses() {
    for (name, options, shape) in networks() {
        let (on_cpu, on_gpu) = (
            temp_dir(&format!("cuda-train-cpu-{name}")),
            temp_dir(&format!("cuda-train-gpu-{name}")),
        );
        trained(&on_cpu, &options, &shape, &Device::Cpu);
        trained(&on_gpu, &options, &shape, &gpu());
        let losses = |dir: &Path| -> Vec<f64> {
            let table = MetricsTable::read(dir).unwrap();
            table.column("loss").into_iter().map(|(_, v)| v).collect()
        };
        let (cpu, cuda) = (losses(&on_cpu), losses(&on_gpu));
        assert_eq!(cpu.len(), 20, "{name}: a loss per step");
        // The first step sees the same weights and batch: rounding alone.
        assert!(
            (cuda[0] - cpu[0]).abs() <= 1e-4 * cpu[0].abs(),
            "{name}: {} vs {}",
            cuda[0],
            cpu[0]
        );
        for (step, (g, c)) in cuda.iter().zip(&cpu).enumerate() {
            assert!(
                (g - c).abs() <= 1e-3 * c.abs(),
                "{name} step {}: {g} vs {c}",
                step + 1
            );
        }
    }
}
