//! The one GEMM entry point of the kernels: the `gemm` crate called on
//! column panels, row blocks or the whole product, one single-threaded call
//! each, on rayon's threads.

use std::ops::Range;

use rayon::prelude::*;

/// How a product is split among threads.
#[derive(Clone, Copy)]
pub(crate) enum Split {
    /// Column panels whose width depends on the shape alone, taken by
    /// rayon's threads, each a single-threaded gemm. On the 2-core machine
    /// of BENCHMARKS.md this runs at 2.6x the rate of gemm's own threading,
    /// and the bits do not depend on the thread count; but gemm blocks the
    /// inner dimension by the panel's width, so they can differ from one
    /// whole call's (they did at k = 768).
    Panels,
    /// One call on the calling thread alone, for products that run beside
    /// each other: the bits of candle's matmul, which makes the same call
    /// threaded by gemm (whose threads split only the output, never a dot
    /// product) and with which the MLP figures were made.
    Single,
    /// Row blocks fixed by the shape, each a single-threaded call on rayon's
    /// threads. Once n > 64 and a block has at least 16 rows, gemm blocks the
    /// inner dimension by k alone (smaller products take paths of their own),
    /// so the bits are [`Split::Single`]'s; other shapes run as one call.
    Rows,
}

/// dst[m, n] (+)= lhs[m, k] rhs[k, n] (added to dst when `accumulate`), each
/// operand given as (data, row stride, column stride).
pub(crate) fn matmul(
    (m, n, k): (usize, usize, usize),
    dst: &mut [f32],
    lhs: (&[f32], usize, usize),
    rhs: (&[f32], usize, usize),
    accumulate: bool,
    split: Split,
) {
    assert!(dst.len() >= m * n, "gemm destination too small");
    let dst_at = dst.as_mut_ptr() as usize;
    let call = |rows: Range<usize>, first: usize, columns: usize| {
        // SAFETY: each call writes the columns [first, first + columns) of
        // the rows `rows` of dst, which holds m x n contiguous rows (calls
        // never overlap);
        // lhs and rhs are read within the extents their strides describe,
        // which the callers size exactly.
        unsafe {
            gemm::gemm(
                rows.len(),
                columns,
                k,
                (dst_at as *mut f32).add(rows.start * n + first),
                1,
                n as isize,
                accumulate,
                lhs.0.as_ptr().add(rows.start * lhs.1),
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
                gemm::Parallelism::None,
            )
        }
    };
    match split {
        Split::Single => call(0..m, 0, n),
        Split::Rows if n <= 64 || m < 32 => call(0..m, 0, n),
        Split::Rows => {
            let blocks = m.div_ceil(64).max(2);
            (0..blocks).into_par_iter().for_each(|block| {
                let rows = block * m / blocks..(block + 1) * m / blocks;
                call(rows, 0, n)
            });
        }
        Split::Panels => {
            let width = n.div_ceil(16).max(64).next_multiple_of(16).min(n.max(1));
            (0..n.div_ceil(width)).into_par_iter().for_each(|panel| {
                let first = panel * width;
                call(0..m, first, width.min(n - first))
            });
        }
    }
}
