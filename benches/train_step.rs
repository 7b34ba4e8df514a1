//! Training steps: the five shapes of the peer comparison (U-Net-16 with
//! multipliers 1,2 on 1x8x8 at batch 32, MLP width 64 on n = 32 at batch 64,
//! widths 256 and 1024 at batch 256 on n = 64 and n = 784, U-Net-32 on
//! 1x16x16 at batch 64; scripts/peer_train_step.sh times the PyTorch and JAX
//! replicas of the same steps); and one AdamW update of about 1M parameters,
//! fused (ours) against candle-nn's tensor-op AdamW.
//!
//! `cargo bench --bench train_step`; set RAYON_NUM_THREADS to pin the thread
//! count. With `--features cuda` and BENCH_DEVICE=cuda the steps run on the
//! GPU (each waits for it) and the GPU-scale U-Net-64 on 3x32x32 at batch 128
//! is added; the AdamW comparison stays on the CPU.

use candle_core::{Device, Tensor, Var};
use candle_nn::Optimizer;
use criterion::{criterion_group, criterion_main, Criterion};
use diffusion_regimes::device::device_from_env;
use diffusion_regimes::nn::optim::{AdamW, AdamWConfig, Kernel};
use diffusion_regimes::nn::train::{Sampling, TrainConfig, Trainer};
use diffusion_regimes::nn::{Arch, MlpConfig, UnetConfig};
use diffusion_regimes::rng::{standard_normal, stream, Purpose};

fn examples(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    let values: Vec<f32> = standard_normal(&mut stream(0, Purpose::Data, 0), n)
        .into_iter()
        .map(|v| 0.5 * v as f32)
        .collect();
    Tensor::from_vec(values, shape, &Device::Cpu).unwrap()
}

fn trainer(
    name: &str,
    arch: Arch,
    sample_shape: Vec<usize>,
    batch: usize,
    device: &Device,
) -> Trainer {
    let dir = std::env::temp_dir().join(format!("regimes-bench-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let n = 1024;
    let mut shape = vec![n];
    shape.extend(&sample_shape);
    let config = TrainConfig {
        data: "bench".into(),
        n,
        subset_seed: 0,
        sample_shape,
        arch,
        framework: Default::default(),
        sigma_data: 0.5,
        p_mean: -1.2,
        p_std: 1.2,
        steps: 1 << 40,
        batch,
        sampling: Sampling::Replacement,
        lr: 1e-4,
        warmup: 1,
        adam: AdamWConfig::default(),
        clip: 1.0,
        ema_decay: 0.999,
        seed: 0,
        checkpoint_every: 1 << 40,
        log_every: 1 << 40,
        labels: None,
    };
    Trainer::start(&dir, config.check().unwrap(), &examples(&shape), device).unwrap()
}

fn train_steps(c: &mut Criterion) {
    // As the binaries do: one job, every core for its tensor ops.
    diffusion_regimes::cli::set_tensor_threads(diffusion_regimes::jobs::tensor_threads(1));
    let device = device_from_env("BENCH_DEVICE").unwrap();
    let mut group = c.benchmark_group("train_step");
    group.sample_size(10);
    // The five rows of the peer comparison (BENCHMARKS.md, scripts/peers).
    let mut cases = vec![
        (
            "unet16-m1x2-1x8x8-b32",
            Arch::Unet(UnetConfig {
                multipliers: vec![1, 2],
                ..UnetConfig::with_base(16)
            }),
            vec![1, 8, 8],
            32,
        ),
        (
            "mlp-w64-n32-b64",
            Arch::Mlp(MlpConfig {
                width: 64,
                depth: 4,
            }),
            vec![32],
            64,
        ),
        (
            "mlp-w256-n64-b256",
            Arch::Mlp(MlpConfig {
                width: 256,
                depth: 4,
            }),
            vec![64],
            256,
        ),
        (
            "mlp-w1024-n784-b256",
            Arch::Mlp(MlpConfig {
                width: 1024,
                depth: 4,
            }),
            vec![784],
            256,
        ),
        (
            "unet32-1x16x16-b64",
            Arch::Unet(UnetConfig::with_base(32)),
            vec![1, 16, 16],
            64,
        ),
    ];
    if device.is_cuda() {
        cases.push((
            "unet64-3x32x32-b128",
            Arch::Unet(UnetConfig::with_base(64)),
            vec![3, 32, 32],
            128,
        ));
    }
    for (name, arch, shape, batch) in cases {
        let mut t = trainer(name, arch, shape, batch, &device);
        eprintln!("{name}: {} parameters", t.params().count());
        group.bench_function(name, |b| {
            b.iter(|| {
                t.train_step().unwrap();
                device.synchronize().unwrap();
            })
        });
    }
    group.finish();
}

/// About 1M parameters in MLP-like tensors: 4 x (512 x 512 + 512).
fn million() -> (Vec<Var>, Vec<Tensor>) {
    let shapes: Vec<Vec<usize>> = (0..4).flat_map(|_| [vec![512, 512], vec![512]]).collect();
    let vars = shapes
        .iter()
        .map(|s| Var::from_tensor(&examples(s)).unwrap())
        .collect();
    let grads = shapes.iter().map(|s| examples(s)).collect();
    (vars, grads)
}

fn optimizer(c: &mut Criterion) {
    let mut group = c.benchmark_group("adamw_1m_params");
    let (vars, grads) = million();
    let mut fused = AdamW::new(vars.clone(), AdamWConfig::default()).unwrap();
    group.bench_function("fused", |b| {
        b.iter(|| fused.step(&grads, 1e-4, 1.0).unwrap())
    });
    let mut ops = AdamW::new(vars.clone(), AdamWConfig::default())
        .unwrap()
        .with_kernel(Kernel::TensorOps);
    group.bench_function("tensor-ops", |b| {
        b.iter(|| ops.step(&grads, 1e-4, 1.0).unwrap())
    });
    let mut reference = candle_nn::AdamW::new_lr(vars.clone(), 1e-4).unwrap();
    let terms: Vec<Tensor> = vars
        .iter()
        .zip(&grads)
        .map(|(v, g)| (v.as_tensor() * g).unwrap().sum_all().unwrap())
        .collect();
    let loss = Tensor::stack(&terms, 0).unwrap().sum_all().unwrap();
    let store = loss.backward().unwrap();
    group.bench_function("candle-nn", |b| b.iter(|| reference.step(&store).unwrap()));
    group.finish();
}

criterion_group!(benches, train_steps, optimizer);
criterion_main!(benches);
