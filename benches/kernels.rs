//! The nn::ops kernels against candle's own ops on U-Net shapes: a 3x3
//! convolution's forward and forward + backward (input and weight
//! gradients), and a bare GEMM of the forward's size as the yardstick.
//!
//! `cargo bench --bench kernels`; set RAYON_NUM_THREADS to pin the thread count.

use candle_core::{Device, Tensor, Var};
use criterion::{criterion_group, criterion_main, Criterion};
use diffusion_regimes::nn::ops::conv2d_same;
use diffusion_regimes::rng::{standard_normal, stream, Purpose};

fn normal(seed: u64, dims: &[usize]) -> Tensor {
    let n: usize = dims.iter().product();
    let values: Vec<f32> = standard_normal(&mut stream(seed, Purpose::Data, 0), n)
        .into_iter()
        .map(|v| v as f32)
        .collect();
    Tensor::from_vec(values, dims, &Device::Cpu).unwrap()
}

fn convolution(c: &mut Criterion) {
    diffusion_regimes::cli::set_jobs(1);
    let mut group = c.benchmark_group("conv3x3");
    group.sample_size(10);
    // (batch, channels, side): the U-Net-32 level at 16x16 and the U-Net-16 one at 8x8.
    for (batch, channels, side) in [(64, 64, 16), (32, 32, 8)] {
        let name = format!("b{batch}-c{channels}-{side}x{side}");
        let x = Var::from_tensor(&normal(1, &[batch, channels, side, side])).unwrap();
        let w = Var::from_tensor(&normal(2, &[channels, channels, 3, 3])).unwrap();
        let ours = |x: &Tensor, w: &Tensor| conv2d_same(x, w, None).unwrap();
        let candle = |x: &Tensor, w: &Tensor| x.conv2d(w, 1, 1, 1, 1).unwrap();
        type Conv<'a> = &'a dyn Fn(&Tensor, &Tensor) -> Tensor;
        for (who, conv) in [("ours", &ours as Conv), ("candle", &candle as Conv)] {
            group.bench_function(format!("{name}/forward/{who}"), |b| {
                b.iter(|| conv(x.as_tensor(), w.as_tensor()))
            });
            group.bench_function(format!("{name}/forward-backward/{who}"), |b| {
                b.iter(|| {
                    conv(x.as_tensor(), w.as_tensor())
                        .sum_all()
                        .unwrap()
                        .backward()
                        .unwrap()
                })
            });
        }
        // The forward's GEMM: [Cout, Cin 9] x [Cin 9, B H W].
        let a = normal(3, &[channels, channels * 9]);
        let p = normal(4, &[channels * 9, batch * side * side]);
        group.bench_function(format!("{name}/bare-gemm"), |b| {
            b.iter(|| a.matmul(&p).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, convolution);
criterion_main!(benches);
