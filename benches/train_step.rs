//! Training steps: the five shapes of the peer comparison (U-Net-16 with
//! multipliers 1,2 on 1x8x8 at batch 32, MLP width 64 on n = 32 at batch 64,
//! widths 256 and 1024 at batch 256 on n = 64 and n = 784, U-Net-32 on
//! 1x16x16 at batch 64; scripts/peer_train_step.sh times the PyTorch and JAX
//! replicas of the same steps); and one AdamW update of about 1M parameters,
//! fused (ours) against candle-nn's tensor-op AdamW.
//!
//! `train_loop` runs the CLI's own loop (`Trainer::run`: metrics every 10
//! steps, the run folder's files, the final checkpoint) for a fixed number
//! of steps from a fresh run, so the CLI and this bench cannot drift apart;
//! `train_step_off_pool` times the width-64 MLP's step called from a thread
//! outside rayon's pool (every kernel handed to the pool, as `regimes train`
//! did before `jobs::on_pool`) beside the same step on the pool.
//!
//! `cargo bench --bench train_step`; set RAYON_NUM_THREADS to pin the thread
//! count. Everything runs on rayon's pool, as the binaries do. With `--features cuda` and BENCH_DEVICE=cuda the steps run on the
//! GPU (each waits for it) and the GPU-scale U-Net-64 on 3x32x32 at batch 128
//! is added; the AdamW comparison stays on the CPU.

use std::ops::ControlFlow;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use candle_core::{Device, Tensor, Var};
use candle_nn::Optimizer;
use criterion::{criterion_group, Criterion, Throughput};
use diffusion_regimes::device::device_from_env;
use diffusion_regimes::jobs::{on_pool, run_parallel};
use diffusion_regimes::nn::optim::{AdamW, AdamWConfig, Kernel};
use diffusion_regimes::nn::train::together::step_together;
use diffusion_regimes::nn::train::{RunData, Sampling, TrainConfig, Trainer};
use diffusion_regimes::nn::{Arch, MlpConfig, TrainOptions, UnetConfig};
use diffusion_regimes::rng::{standard_normal, stream, Purpose};
use indicatif::ProgressBar;

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
    trainer_with(
        name,
        arch,
        sample_shape,
        batch,
        Cadence::endless(),
        (0, device),
    )
}

/// How long a bench run trains, and how often it writes.
struct Cadence {
    steps: u64,
    log_every: u64,
    checkpoint_every: u64,
    /// The losses on the fixed draws (training and held-out rows, THEORY §15).
    eval_every: u64,
}

impl Cadence {
    /// Steps taken one at a time, nothing written.
    fn endless() -> Self {
        Cadence {
            steps: 1 << 40,
            log_every: 1 << 40,
            checkpoint_every: 1 << 40,
            eval_every: 1 << 40,
        }
    }
}

fn trainer_with(
    name: &str,
    arch: Arch,
    sample_shape: Vec<usize>,
    batch: usize,
    cadence: Cadence,
    (seed, device): (u64, &Device),
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
        steps: cadence.steps,
        batch,
        sampling: Sampling::Replacement,
        lr: 1e-4,
        warmup: 1,
        adam: AdamWConfig::default(),
        clip: 1.0,
        ema_decay: 0.999,
        seed,
        checkpoint_every: cadence.checkpoint_every,
        log_every: cadence.log_every,
        eval_every: cadence.eval_every,
        eval_points: TrainOptions::default().eval_points,
        target: Default::default(),
        labels: None,
        init: None,
        teacher: None,
    };
    // Held-out rows as many as the CLI takes, so its evaluations cost the same.
    let rows = examples(&shape);
    let heldout = rows
        .narrow(0, 0, TrainOptions::default().eval_points.min(n))
        .unwrap();
    let data = RunData::new(&rows).heldout(Some(&heldout));
    Trainer::start(&dir, config.check().unwrap(), data, device).unwrap()
}

fn train_steps(c: &mut Criterion) {
    let device = device_from_env("BENCH_DEVICE").unwrap();
    let mut group = c.benchmark_group("train_step");
    group.sample_size(10);
    for (name, arch, shape, batch, _) in cases(&device) {
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

/// The five rows of the peer comparison (BENCHMARKS.md, scripts/peers), and
/// how many steps `train_loop` runs of each (about a second).
fn cases(device: &Device) -> Vec<(&'static str, Arch, Vec<usize>, usize, u64)> {
    let mut cases = vec![
        (
            "unet16-m1x2-1x8x8-b32",
            Arch::Unet(UnetConfig {
                multipliers: vec![1, 2],
                ..UnetConfig::with_base(16)
            }),
            vec![1, 8, 8],
            32,
            300,
        ),
        (
            "mlp-w64-n32-b64",
            Arch::Mlp(MlpConfig {
                width: 64,
                depth: 4,
            }),
            vec![32],
            64,
            1000,
        ),
        (
            "mlp-w256-n64-b256",
            Arch::Mlp(MlpConfig {
                width: 256,
                depth: 4,
            }),
            vec![64],
            256,
            60,
        ),
        (
            "mlp-w1024-n784-b256",
            Arch::Mlp(MlpConfig {
                width: 1024,
                depth: 4,
            }),
            vec![784],
            256,
            5,
        ),
        (
            "unet32-1x16x16-b64",
            Arch::Unet(UnetConfig::with_base(32)),
            vec![1, 16, 16],
            64,
            30,
        ),
    ];
    if device.is_cuda() {
        cases.push((
            "unet64-3x32x32-b128",
            Arch::Unet(UnetConfig::with_base(64)),
            vec![3, 32, 32],
            128,
            30,
        ));
    }
    cases
}

/// The CLI's loop from a fresh run folder, `steps` steps per iteration.
fn train_loop(c: &mut Criterion) {
    let device = device_from_env("BENCH_DEVICE").unwrap();
    let mut group = c.benchmark_group("train_loop");
    group.sample_size(10);
    let defaults = TrainOptions::default();
    for (name, arch, shape, batch, steps) in cases(&device) {
        group.bench_function(format!("{name}-{steps}-steps"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let cadence = Cadence {
                        steps,
                        log_every: defaults.log_every,
                        checkpoint_every: defaults.checkpoint_every,
                        eval_every: defaults.eval_every,
                    };
                    let mut t = trainer_with(
                        name,
                        arch.clone(),
                        shape.clone(),
                        batch,
                        cadence,
                        (0, &device),
                    );
                    let start = Instant::now();
                    t.run(&mut |_| ControlFlow::Continue(())).unwrap();
                    total += start.elapsed();
                }
                total
            })
        });
    }
    group.finish();
}

/// Model-steps per second of K MLPs (each its own seed; the widths 64 and
/// 256 of `cases`) trained together (`nn::train::together::step_together`,
/// a sweep's path with `--together K`; K = 1 is the lone model's own
/// `train_step`), and trained alone on as many workers as the pool has
/// threads, each a one-thread pool (`jobs::run_parallel`, a sweep's default
/// path with `--jobs`). `scripts/train_together_peers.sh` times JAX's vmap
/// of the same K steps and K single-model processes beside them.
fn together(c: &mut Criterion) {
    let mut group = c.benchmark_group("train_together");
    group.sample_size(10);
    for (name, arch, shape, batch, steps) in cases(&Device::Cpu).into_iter().skip(1).take(2) {
        for models in [1, 10, 30] {
            let mut trainers: Vec<Trainer> = (0..models)
                .map(|k| {
                    let label = format!("{name}-together-{k}");
                    let endless = Cadence::endless();
                    let at = (k as u64, &Device::Cpu);
                    trainer_with(&label, arch.clone(), shape.clone(), batch, endless, at)
                })
                .collect();
            let steps = (steps / models as u64).max(2);
            group.throughput(Throughput::Elements(steps * models as u64));
            group.bench_function(format!("{name}-k{models}-{steps}-steps"), |b| {
                b.iter(|| {
                    for _ in 0..steps {
                        match trainers.as_mut_slice() {
                            [alone] => drop(alone.train_step().unwrap()),
                            all => {
                                let mut all: Vec<&mut Trainer> = all.iter_mut().collect();
                                step_together(&mut all).unwrap();
                            }
                        }
                    }
                })
            });
            let jobs = rayon::current_num_threads();
            let alone: Vec<Mutex<Trainer>> = trainers.into_iter().map(Mutex::new).collect();
            group.bench_function(
                format!("{name}-k{models}-alone-jobs{jobs}-{steps}-steps"),
                |b| {
                    b.iter(|| {
                        run_parallel(&alone, jobs, &ProgressBar::hidden(), |trainer| {
                            let mut trainer = trainer.lock().unwrap();
                            (0..steps).try_for_each(|_| trainer.train_step().map(drop))
                        })
                        .unwrap()
                    })
                },
            );
        }
    }
    group.finish();
}

/// The width-64 MLP's step called from this (the main) thread, outside
/// rayon's pool, and the same steps run on the pool.
fn off_pool(c: &mut Criterion) {
    let mut group = c.benchmark_group("train_step_off_pool");
    group.sample_size(10);
    let (name, arch, shape, batch, _) = cases(&Device::Cpu).swap_remove(1);
    let mut t = trainer(name, arch, shape, batch, &Device::Cpu);
    let mut steps = |iters: u64| {
        let start = Instant::now();
        for _ in 0..iters {
            t.train_step().unwrap();
        }
        start.elapsed()
    };
    group.bench_function(format!("{name}-off-pool"), |b| b.iter_custom(&mut steps));
    group.bench_function(format!("{name}-on-pool"), |b| {
        b.iter_custom(|iters| on_pool(|| steps(iters)))
    });
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

criterion_group!(benches, train_steps, train_loop, together, optimizer);
criterion_group!(from_main_thread, off_pool);

/// criterion_main!, with the benches on rayon's pool as in the binaries
/// (but `off_pool`, which must start outside it).
fn main() {
    // As the binaries do: one job, every core for its tensor ops.
    diffusion_regimes::cli::set_jobs(1);
    on_pool(benches);
    from_main_thread();
    Criterion::default().configure_from_args().final_summary();
}
