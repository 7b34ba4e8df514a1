//! Throughput of the empirical denoiser beside the bare matmuls its formula
//! needs (THEORY §4), logits X Y^T ([B, n] x [n, N]) and the weighted sum
//! P Y ([B, N] x [N, n]), and beside the numpy peer of the same streaming
//! formula on the same shape (scripts/numpy_empirical_peer.py, run as a
//! subprocess when python3 with numpy is present, skipped with a message
//! otherwise). Each shape prints `peer ...` with the crate's and numpy's
//! median of 5 calls after a warm-up, timed the same way, and their ratio.
//!
//! Run: `cargo bench --bench empirical_denoiser` (n in {64, 784, 3072} by
//! N in {1k, 10k, 50k}, f32 and f64, B = 256, sigma = 1; about 15 minutes
//! on 2 cores). BENCH_SHAPES="N,n;N,n" picks shapes; BENCH_SIGMA another
//! noise level (at sigma = 1 nearly every weight underflows for n >= 784,
//! at 100 none does), BENCH_CHUNK the training points per block (by default
//! the denoiser's own choice). With `--features cuda`
//! and BENCH_DEVICE=cuda the crate runs on the GPU (cuBLAS GEMMs), each
//! iteration waiting for it.

use std::process::Command;

mod common;

use candle_core::DType;
use common::{median_seconds, normal};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use diffusion_regimes::denoise::{Denoiser, EmpiricalDenoiser};
use diffusion_regimes::device::device_from_env;

const BATCH: usize = 256;

fn shapes() -> Vec<(usize, usize)> {
    match std::env::var("BENCH_SHAPES") {
        Ok(list) => list
            .split(';')
            .map(|pair| {
                let (count, dim) = pair.split_once(',').expect("BENCH_SHAPES is N,n;N,n");
                (count.trim().parse().unwrap(), dim.trim().parse().unwrap())
            })
            .collect(),
        Err(_) => [64, 784, 3072]
            .into_iter()
            .flat_map(|dim| [1_000, 10_000, 50_000].map(|count| (count, dim)))
            .collect(),
    }
}

/// The peer's milliseconds for the denoiser at this shape, or why there are none.
fn numpy_ms(count: usize, dim: usize, dtype: DType, sigma: f64) -> Result<f64, String> {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scripts/numpy_empirical_peer.py"
    );
    let name = if dtype == DType::F32 { "f32" } else { "f64" };
    let out = Command::new("python3")
        .args([
            script,
            &BATCH.to_string(),
            &count.to_string(),
            &dim.to_string(),
            name,
            &sigma.to_string(),
        ])
        .output()
        .map_err(|e| format!("python3 not runnable: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .find_map(|field| field.strip_prefix("numpy_ms="))
        .and_then(|ms| ms.parse().ok())
        .ok_or_else(|| {
            let err = String::from_utf8_lossy(&out.stderr);
            format!(
                "no timing from the peer: {}",
                err.lines().last().unwrap_or("")
            )
        })
}

fn bench(c: &mut Criterion) {
    // As the binaries run: rayon on every core, freed buffers kept on the heap.
    diffusion_regimes::cli::set_jobs(1);
    let device = device_from_env("BENCH_DEVICE").unwrap();
    let sigma: f64 =
        std::env::var("BENCH_SIGMA").map_or(1.0, |s| s.parse().expect("BENCH_SIGMA is a number"));
    let chunk: Option<usize> = std::env::var("BENCH_CHUNK")
        .ok()
        .map(|s| s.parse().expect("BENCH_CHUNK is a count"));
    let mut group = c.benchmark_group("empirical_denoiser");
    group.sample_size(10);
    for (count, dim) in shapes() {
        for dtype in [DType::F32, DType::F64] {
            let train = normal(1, count, dim, dtype, &device);
            let x = normal(2, BATCH, dim, dtype, &device);
            let weights = normal(3, BATCH, count, dtype, &device);
            let denoiser = match chunk {
                Some(chunk) => EmpiricalDenoiser::with_chunk(&train, chunk).unwrap(),
                None => EmpiricalDenoiser::new(&train).unwrap(),
            };
            let denoise = || {
                let d = denoiser.denoise(&x, sigma).unwrap();
                device.synchronize().unwrap();
                d
            };
            let mut id = format!("N={count},n={dim},{dtype:?}");
            if sigma != 1.0 {
                id.push_str(&format!(",sigma={sigma}"));
            }
            if let Some(chunk) = chunk {
                id.push_str(&format!(",chunk={chunk}"));
            }
            group.bench_function(BenchmarkId::new("denoise", &id), |b| b.iter(denoise));
            let train_t = train.t().unwrap();
            group.bench_function(BenchmarkId::new("bare_two_gemms", &id), |b| {
                b.iter(|| {
                    let products = (x.matmul(&train_t).unwrap(), weights.matmul(&train).unwrap());
                    device.synchronize().unwrap();
                    products
                })
            });
            let crate_ms = 1e3 * median_seconds(5, || drop(denoise()));
            match numpy_ms(count, dim, dtype, sigma) {
                Ok(peer) => println!(
                    "peer {id}: crate {crate_ms:.2} ms, numpy {peer:.2} ms, numpy / crate = {:.2}",
                    peer / crate_ms
                ),
                Err(why) => println!("peer {id}: skipped ({why})"),
            }
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
