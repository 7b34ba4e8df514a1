//! The one GEMM entry point of the kernels: the `gemm` crate called on
//! column panels, one single-threaded call per panel.

use rayon::prelude::*;

/// dst[m, n] (+)= lhs[m, k] rhs[k, n] (added to dst when `accumulate`),
/// each operand given as (data, row
/// stride, column stride). The columns of dst are cut into panels whose
/// width depends on the shape alone, and rayon's threads take panels, each a
/// single-threaded gemm: on the 2-core machine of BENCHMARKS.md this runs at
/// 2.6x the rate of gemm's own threading, and the bits cannot depend on
/// the thread count.
pub(super) fn matmul(
    (m, n, k): (usize, usize, usize),
    dst: &mut [f32],
    lhs: (&[f32], usize, usize),
    rhs: (&[f32], usize, usize),
    accumulate: bool,
) {
    assert!(dst.len() >= m * n, "gemm destination too small");
    let width = n.div_ceil(16).max(64).next_multiple_of(16).min(n.max(1));
    let dst_at = dst.as_mut_ptr() as usize;
    (0..n.div_ceil(width)).into_par_iter().for_each(|panel| {
        let (first, columns) = (panel * width, width.min(n - panel * width));
        // SAFETY: panels write disjoint column ranges of dst, which holds m
        // x n contiguous rows; lhs and rhs are read within the extents their
        // strides describe, which the callers size exactly.
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
                gemm::Parallelism::None,
            )
        }
    });
}
