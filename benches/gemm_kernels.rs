//! The two GEMMs of one softmax-mean block (THEORY §4) by each kernel this
//! crate can reach, on the same buffers: the logits product X Y^T ([B, n] x
//! [n, c], Y row-major [c, n]) and the weighted sum P Y ([B, c] x [c, n]),
//! B = 256, c = 8192 (the empirical denoiser's block). Kernels: candle's
//! matmul (the gemm crate behind a tensor, allocating its output), the gemm
//! crate called directly into a reused output, faer's matmul (its own x86
//! kernels, private-gemm-x86) into a reused output; and, when python3 has
//! numpy, numpy's `@` (OpenBLAS) on the same shapes, as a subprocess.
//!
//! Run: `cargo bench --bench gemm_kernels` (n in {64, 784, 3072}, f32 and
//! f64; BENCH_DIMS="n,n" picks others). Prints GFLOP/s per kernel.

use std::num::NonZeroUsize;
use std::process::Command;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use criterion::{criterion_group, criterion_main, Criterion};
use diffusion_regimes::rng::{normal_rows, sample_streams};

const BATCH: usize = 256;
const BLOCK: usize = 8192;

fn dims() -> Vec<usize> {
    match std::env::var("BENCH_DIMS") {
        Ok(list) => list.split(',').map(|d| d.trim().parse().unwrap()).collect(),
        Err(_) => vec![64, 784, 3072],
    }
}

fn normal(seed: u64, rows: usize, cols: usize, dtype: DType) -> Tensor {
    let mut streams = sample_streams(seed, &(0..rows as u64).collect::<Vec<_>>());
    normal_rows(&mut streams, cols, dtype, &Device::Cpu).unwrap()
}

/// Median seconds of 7 calls after a warm-up.
fn median_seconds(mut f: impl FnMut()) -> f64 {
    f();
    let mut times: Vec<f64> = (0..7)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[3]
}

/// A row-major [rows, cols] product: dst = lhs rhs, each operand given as
/// (pointer, row stride, column stride).
trait Kernel {
    #[allow(clippy::too_many_arguments)]
    fn run<T: faer::traits::ComplexField + Copy + 'static>(
        &self,
        shape: (usize, usize, usize),
        dst: &mut [T],
        lhs: (&[T], isize, isize),
        rhs: (&[T], isize, isize),
        one: T,
        zero: T,
    );
}

struct GemmCrate(usize);
impl Kernel for GemmCrate {
    fn run<T: faer::traits::ComplexField + Copy + 'static>(
        &self,
        (m, n, k): (usize, usize, usize),
        dst: &mut [T],
        lhs: (&[T], isize, isize),
        rhs: (&[T], isize, isize),
        one: T,
        zero: T,
    ) {
        // SAFETY: the slices hold the strided matrices the shapes describe.
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                dst.as_mut_ptr(),
                1,
                n as isize,
                false,
                lhs.0.as_ptr(),
                lhs.2,
                lhs.1,
                rhs.0.as_ptr(),
                rhs.2,
                rhs.1,
                zero,
                one,
                false,
                false,
                false,
                gemm::Parallelism::Rayon(self.0),
            )
        }
    }
}

struct Faer(usize);
impl Kernel for Faer {
    fn run<T: faer::traits::ComplexField + Copy + 'static>(
        &self,
        (m, n, k): (usize, usize, usize),
        dst: &mut [T],
        lhs: (&[T], isize, isize),
        rhs: (&[T], isize, isize),
        one: T,
        _zero: T,
    ) {
        // SAFETY: the slices hold the strided matrices the shapes describe.
        let (dst, lhs, rhs) = unsafe {
            (
                faer::MatMut::from_raw_parts_mut(dst.as_mut_ptr(), m, n, n as isize, 1),
                faer::MatRef::from_raw_parts(lhs.0.as_ptr(), m, k, lhs.1, lhs.2),
                faer::MatRef::from_raw_parts(rhs.0.as_ptr(), k, n, rhs.1, rhs.2),
            )
        };
        let par = faer::Par::Rayon(NonZeroUsize::new(self.0).unwrap());
        faer::linalg::matmul::matmul(dst, faer::Accum::Replace, lhs, rhs, one, par);
    }
}

/// Seconds of both products by one kernel, on one dtype's buffers.
fn time_kernel<T, K>(kernel: &K, x: &[T], y: &[T], p: &[T], dim: usize, one: T, zero: T) -> [f64; 3]
where
    T: faer::traits::ComplexField + Copy + 'static,
    K: Kernel,
{
    let mut logits = vec![zero; BATCH * BLOCK];
    let mut weighted = vec![zero; BATCH * dim];
    let d = dim as isize;
    let logits_shape = (BATCH, BLOCK, dim);
    let weighted_shape = (BATCH, dim, BLOCK);
    let y_t: Vec<T> = (0..dim * BLOCK)
        .map(|i| y[(i % BLOCK) * dim + i / BLOCK])
        .collect();
    [
        median_seconds(|| kernel.run(logits_shape, &mut logits, (x, d, 1), (y, 1, d), one, zero)),
        median_seconds(|| {
            let y_t = (&y_t[..], BLOCK as isize, 1);
            kernel.run(logits_shape, &mut logits, (x, d, 1), y_t, one, zero)
        }),
        median_seconds(|| {
            kernel.run(
                weighted_shape,
                &mut weighted,
                (p, BLOCK as isize, 1),
                (y, d, 1),
                one,
                zero,
            )
        }),
    ]
}

/// numpy's seconds for the same two products, or why there are none.
fn numpy_seconds(dim: usize, dtype: &str) -> Result<[f64; 3], String> {
    let script = format!(
        "import numpy as np, time\n\
         r = np.random.default_rng(0)\n\
         x, y, p = (r.standard_normal(s).astype(np.{dtype}) for s in (({BATCH}, {dim}), ({BLOCK}, {dim}), ({BATCH}, {BLOCK})))\n\
         def med(f):\n    f(); t = []\n    for _ in range(7):\n        s = time.perf_counter(); f(); t.append(time.perf_counter() - s)\n    return sorted(t)[3]\n\
         y_t = np.ascontiguousarray(y.T)\n\
         print(med(lambda: x @ y.T), med(lambda: x @ y_t), med(lambda: p @ y))\n"
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .map_err(|e| format!("python3 not runnable: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let times: Vec<f64> = text
        .split_whitespace()
        .filter_map(|t| t.parse().ok())
        .collect();
    match times[..] {
        [logits, stored, weighted] => Ok([logits, stored, weighted]),
        _ => Err(format!(
            "no numpy timing: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        )),
    }
}

fn report(dim: usize, dtype: &str, name: &str, seconds: [f64; 3]) {
    let gflop = 2.0 * (BATCH * BLOCK * dim) as f64 / 1e9;
    let labels = ["X Y^T", "X (Y^T stored)", "P Y"];
    let cells: Vec<String> = (labels.iter().zip(seconds))
        .map(|(label, s)| format!("{label} {:7.2} ms ({:4.0} GFLOP/s)", s * 1e3, gflop / s))
        .collect();
    println!("kernel n={dim} {dtype} {name:>6}: {}", cells.join(", "));
}

fn compare<T>(dim: usize, dtype: DType, name: &str, one: T, zero: T)
where
    T: faer::traits::ComplexField + Copy + candle_core::WithDType + 'static,
{
    let threads = rayon::current_num_threads();
    let (x, y, p) = (
        normal(1, BATCH, dim, dtype),
        normal(2, BLOCK, dim, dtype),
        normal(3, BATCH, BLOCK, dtype),
    );
    let y_t = y.t().unwrap().contiguous().unwrap();
    let candle = [
        median_seconds(|| drop(x.matmul(&y.t().unwrap()).unwrap())),
        median_seconds(|| drop(x.matmul(&y_t).unwrap())),
        median_seconds(|| drop(p.matmul(&y).unwrap())),
    ];
    report(dim, name, "candle", candle);
    let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<T>().unwrap();
    let (x, y, p) = (flat(&x), flat(&y), flat(&p));
    let direct = time_kernel(&GemmCrate(threads), &x, &y, &p, dim, one, zero);
    report(dim, name, "gemm", direct);
    report(
        dim,
        name,
        "faer",
        time_kernel(&Faer(threads), &x, &y, &p, dim, one, zero),
    );
    match numpy_seconds(dim, if name == "f32" { "float32" } else { "float64" }) {
        Ok(numpy) => report(dim, name, "numpy", numpy),
        Err(why) => println!("kernel n={dim} {name} numpy: skipped ({why})"),
    }
}

fn bench(_c: &mut Criterion) {
    diffusion_regimes::cli::set_tensor_threads(diffusion_regimes::experiment::tensor_threads(1));
    for dim in dims() {
        compare::<f32>(dim, DType::F32, "f32", 1.0, 0.0);
        compare::<f64>(dim, DType::F64, "f64", 1.0, 0.0);
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
