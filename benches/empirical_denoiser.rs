//! Throughput of the empirical denoiser beside the bare matmuls its formula
//! needs (THEORY §4): logits X Y^T ([B, n] x [n, N]) and the weighted sum
//! P Y ([B, N] x [N, n]). The ratio bare / denoiser is the fraction of GEMM
//! throughput the streaming log-sum-exp keeps.
//!
//! Run: `cargo bench --bench empirical_denoiser` (BENCH_FULL=1 adds N = 50k,
//! n = 3072). With `--features cuda` and BENCH_DEVICE=cuda both run on the
//! GPU, so the bare GEMMs are cuBLAS's; each iteration waits for the GPU.

use candle_core::{DType, Device, Tensor};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use diffusion_regimes::denoise::{Denoiser, EmpiricalDenoiser};
use diffusion_regimes::device::device_from_env;
use diffusion_regimes::rng::{normal_rows, sample_streams};

const BATCH: usize = 256;

fn shapes() -> Vec<(usize, usize)> {
    let mut shapes = vec![
        (1_000, 64),
        (10_000, 64),
        (50_000, 64),
        (1_000, 3072),
        (10_000, 3072),
    ];
    if std::env::var("BENCH_FULL").is_ok() {
        shapes.push((50_000, 3072));
    }
    shapes
}

/// Seeded standard normals, [rows, cols], drawn on the CPU and moved to `device`.
fn normal(seed: u64, rows: usize, cols: usize, dtype: DType, device: &Device) -> Tensor {
    let mut streams = sample_streams(seed, &(0..rows as u64).collect::<Vec<_>>());
    let t = normal_rows(&mut streams, cols, dtype, &Device::Cpu).unwrap();
    t.to_device(device).unwrap()
}

fn bench(c: &mut Criterion) {
    let device = device_from_env("BENCH_DEVICE").unwrap();
    let mut group = c.benchmark_group("empirical_denoiser");
    group.sample_size(10);
    for (count, dim) in shapes() {
        for dtype in [DType::F32, DType::F64] {
            let train = normal(1, count, dim, dtype, &device);
            let x = normal(2, BATCH, dim, dtype, &device);
            let weights = normal(3, BATCH, count, dtype, &device);
            let denoiser = EmpiricalDenoiser::new(&train).unwrap();
            let id = format!("N={count},n={dim},{dtype:?}");
            group.bench_function(BenchmarkId::new("denoise", &id), |b| {
                b.iter(|| {
                    let d = denoiser.denoise(&x, 1.0).unwrap();
                    device.synchronize().unwrap();
                    d
                })
            });
            let train_t = train.t().unwrap();
            group.bench_function(BenchmarkId::new("bare_two_gemms", &id), |b| {
                b.iter(|| {
                    let products = (x.matmul(&train_t).unwrap(), weights.matmul(&train).unwrap());
                    device.synchronize().unwrap();
                    products
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
