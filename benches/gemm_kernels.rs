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

use candle_core::{DType, Device, Tensor};
use common::{median_seconds, normal};
use criterion::{criterion_group, criterion_main, Criterion};

mod common;

const BATCH: usize = 256;
const BLOCK: usize = 8192;

fn dims() -> Vec<usize> {
    match std::env::var("BENCH_DIMS") {
        Ok(list) => list.split(',').map(|d| d.trim().parse().unwrap()).collect(),
        Err(_) => vec![64, 784, 3072],
    }
}

/// A kernel that writes a row-major product into a reused output.
#[derive(Clone, Copy)]
enum Kernel {
    /// The gemm crate, called directly.
    Gemm,
    /// faer's matmul.
    Faer,
}

impl Kernel {
    /// dst = lhs rhs, row-major [m, n], each operand given as (values, row
    /// stride, column stride), on rayon's threads.
    fn run<T: faer::traits::ComplexField + Copy + 'static>(
        self,
        (m, n, k): (usize, usize, usize),
        dst: &mut [T],
        lhs: (&[T], isize, isize),
        rhs: (&[T], isize, isize),
        [one, zero]: [T; 2],
    ) {
        let threads = rayon::current_num_threads();
        match self {
            // SAFETY: the slices hold the strided matrices the shapes describe.
            Kernel::Gemm => unsafe {
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
                    gemm::Parallelism::Rayon(threads),
                )
            },
            Kernel::Faer => {
                // SAFETY: as above.
                let (dst, lhs, rhs) = unsafe {
                    (
                        faer::MatMut::from_raw_parts_mut(dst.as_mut_ptr(), m, n, n as isize, 1),
                        faer::MatRef::from_raw_parts(lhs.0.as_ptr(), m, k, lhs.1, lhs.2),
                        faer::MatRef::from_raw_parts(rhs.0.as_ptr(), k, n, rhs.1, rhs.2),
                    )
                };
                let par = faer::Par::Rayon(NonZeroUsize::new(threads).unwrap());
                faer::linalg::matmul::matmul(dst, faer::Accum::Replace, lhs, rhs, one, par);
            }
        }
    }
}

/// Seconds of the three products by one kernel: X Y^T from row-major Y,
/// X Y^T from the stored Y^T, P Y; `ones` is [1, 0] in the dtype.
fn time_kernel<T>(kernel: Kernel, [x, y, y_t, p]: [&[T]; 4], dim: usize, ones: [T; 2]) -> [f64; 3]
where
    T: faer::traits::ComplexField + Copy + 'static,
{
    let mut logits = vec![ones[1]; BATCH * BLOCK];
    let mut weighted = vec![ones[1]; BATCH * dim];
    let (d, c) = (dim as isize, BLOCK as isize);
    let logits_shape = (BATCH, BLOCK, dim);
    [
        median_seconds(7, || {
            kernel.run(logits_shape, &mut logits, (x, d, 1), (y, 1, d), ones)
        }),
        median_seconds(7, || {
            kernel.run(logits_shape, &mut logits, (x, d, 1), (y_t, c, 1), ones)
        }),
        median_seconds(7, || {
            kernel.run(
                (BATCH, dim, BLOCK),
                &mut weighted,
                (p, c, 1),
                (y, d, 1),
                ones,
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

fn compare<T>(dim: usize, dtype: DType, name: &str, ones: [T; 2])
where
    T: faer::traits::ComplexField + Copy + candle_core::WithDType + 'static,
{
    let (x, y, p) = (
        normal(1, BATCH, dim, dtype, &Device::Cpu),
        normal(2, BLOCK, dim, dtype, &Device::Cpu),
        normal(3, BATCH, BLOCK, dtype, &Device::Cpu),
    );
    let y_t = y.t().unwrap().contiguous().unwrap();
    let candle = [
        median_seconds(7, || drop(x.matmul(&y.t().unwrap()).unwrap())),
        median_seconds(7, || drop(x.matmul(&y_t).unwrap())),
        median_seconds(7, || drop(p.matmul(&y).unwrap())),
    ];
    report(dim, name, "candle", candle);
    let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<T>().unwrap();
    let (x, y, y_t, p) = (flat(&x), flat(&y), flat(&y_t), flat(&p));
    for (kernel, label) in [(Kernel::Gemm, "gemm"), (Kernel::Faer, "faer")] {
        let seconds = time_kernel(kernel, [&x, &y, &y_t, &p], dim, ones);
        report(dim, name, label, seconds);
    }
    match numpy_seconds(dim, if name == "f32" { "float32" } else { "float64" }) {
        Ok(numpy) => report(dim, name, "numpy", numpy),
        Err(why) => println!("kernel n={dim} {name} numpy: skipped ({why})"),
    }
}

fn bench(_c: &mut Criterion) {
    diffusion_regimes::cli::set_jobs(1);
    for dim in dims() {
        compare::<f32>(dim, DType::F32, "f32", [1.0, 0.0]);
        compare::<f64>(dim, DType::F64, "f64", [1.0, 0.0]);
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
