//! The one GEMM entry point of the kernels: the `gemm` crate called either
//! on column panels, one single-threaded call per panel, or once over the
//! whole product exactly as candle's matmul calls it.

use rayon::prelude::*;

/// How a product is split among threads.
#[derive(Clone, Copy)]
pub(super) enum Split {
    /// Column panels whose width depends on the shape alone, taken by
    /// rayon's threads, each a single-threaded gemm. On the 2-core machine
    /// of BENCHMARKS.md this runs at 2.6x the rate of gemm's own threading,
    /// and the bits do not depend on the thread count; but gemm blocks the
    /// inner dimension by the panel's width, so they can differ from one
    /// whole call's (they did at k = 768).
    Panels,
    /// One gemm call threaded by gemm itself, as candle's matmul does: the
    /// same bits as candle's path (which the MLP figures were made with).
    Whole,
    /// The same one call on the calling thread alone, for products that run
    /// beside each other. gemm's threads split only the output, never a dot
    /// product, so the bits are [`Split::Whole`]'s.
    Single,
}

/// dst[m, n] (+)= lhs[m, k] rhs[k, n] (added to dst when `accumulate`), each
/// operand given as (data, row stride, column stride).
pub(super) fn matmul(
    (m, n, k): (usize, usize, usize),
    dst: &mut [f32],
    lhs: (&[f32], usize, usize),
    rhs: (&[f32], usize, usize),
    accumulate: bool,
    split: Split,
) {
    assert!(dst.len() >= m * n, "gemm destination too small");
    let dst_at = dst.as_mut_ptr() as usize;
    let call = |first: usize, columns: usize, parallelism| {
        // SAFETY: each call writes the column range [first, first + columns)
        // of dst, which holds m x n contiguous rows (calls never overlap);
        // lhs and rhs are read within the extents their strides describe,
        // which the callers size exactly.
        unsafe {
            gemm::gemm(
                m,
                columns,
                k,
                (dst_at as *mut f32).add(first),
                1,
                n as isize,
                accumulate,
                lhs.0.as_ptr(),
                lhs.2 as isize,
                lhs.1 as isize,
                rhs.0.as_ptr().add(first * rhs.2),
                rhs.2 as isize,
                rhs.1 as isize,
                1.0,
                1.0,
                false,
                false,
                false,
                parallelism,
            )
        }
    };
    match split {
        Split::Whole => {
            let threads = candle_core::utils::get_num_threads();
            call(
                0,
                n,
                match threads {
                    0 | 1 => gemm::Parallelism::None,
                    t => gemm::Parallelism::Rayon(t),
                },
            );
        }
        Split::Single => call(0, n, gemm::Parallelism::None),
        Split::Panels => {
            let width = n.div_ceil(16).max(64).next_multiple_of(16).min(n.max(1));
            (0..n.div_ceil(width)).into_par_iter().for_each(|panel| {
                let first = panel * width;
                call(first, width.min(n - first), gemm::Parallelism::None)
            });
        }
    }
}
