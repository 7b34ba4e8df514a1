//! Exact nearest-neighbour search (issue 4) against a bare GEMM of the same
//! shape: M samples against N = 50,000 training points in n = 3072, f32.
//! Default M = 1000 (about 5 s an iteration here); BENCH_FULL=1 runs the
//! issue's M = 10,000 (about a minute an iteration).
//!
//! `cargo bench --bench nearest_neighbours`

use candle_core::{Device, Tensor};
use criterion::{criterion_group, criterion_main, Criterion};
use diffusion_regimes::metrics::{nearest_two, DEFAULT_CHUNK};
use diffusion_regimes::rng::{stream, Purpose};
use rand_distr::{Distribution, StandardNormal};

fn rows(seed: u64, count: usize, n: usize) -> Tensor {
    let mut rng = stream(seed, Purpose::Data, 0);
    let values: Vec<f32> = (0..count * n)
        .map(|_| StandardNormal.sample(&mut rng))
        .collect();
    Tensor::from_vec(values, (count, n), &Device::Cpu).unwrap()
}

fn bench(c: &mut Criterion) {
    // As the binaries run: rayon on every core, freed buffers kept on the heap.
    diffusion_regimes::cli::set_jobs(1);
    let m = if std::env::var_os("BENCH_FULL").is_some() {
        10_000
    } else {
        1000
    };
    let (n_train, n) = (50_000, 3072);
    let train = rows(1, n_train, n);
    let samples = rows(2, m, n);
    let train_t = train.t().unwrap();
    let mut group = c.benchmark_group(format!("M={m},N={n_train},n={n}"));
    group.sample_size(10);
    group.bench_function("nearest_two", |b| {
        b.iter(|| nearest_two(&samples, &train, DEFAULT_CHUNK).unwrap())
    });
    group.bench_function("bare_gemm", |b| {
        b.iter(|| samples.matmul(&train_t).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
