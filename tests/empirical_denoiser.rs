//! The empirical (memorizing) denoiser against the statements of THEORY §4.

mod common;

use candle_core::{DType, Device, Tensor};
use common::{gaussian, max_abs, max_abs_diff, rows};
use diffusion_regimes::denoise::jacobian::{jacobian_autodiff, jacobian_finite_difference};
use diffusion_regimes::denoise::{Denoiser, EmpiricalDenoiser};
use proptest::prelude::*;

fn setup(seed: u64, count: usize, dim: usize, batch: usize) -> (Tensor, Tensor) {
    (gaussian(seed, 0, count, dim), gaussian(seed, 1, batch, dim))
}

proptest! {
    #![proptest_config(common::proptest_cases(32))]

    /// w lies on the simplex, so D lies in the convex hull of the training points:
    /// for every direction v, v.D <= max_i v.y_i.
    #[test]
    fn weights_lie_on_the_simplex_and_output_in_the_convex_hull(
        seed in 0u64..1000, count in 1usize..12, dim in 1usize..6, log_sigma in -3.0f64..3.0
    ) {
        let sigma = 10f64.powf(log_sigma);
        let (train, x) = setup(seed, count, dim, 4);
        let d = EmpiricalDenoiser::new(&train).unwrap();
        let w = rows(&d.weights(&x, sigma).unwrap());
        for row in &w {
            prop_assert!(row.iter().all(|&p| p >= 0.0));
            prop_assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        }
        let out = d.denoise(&x, sigma).unwrap();
        let directions = gaussian(seed, 2, 16, dim);
        let hull_max = rows(&train.matmul(&directions.t().unwrap()).unwrap());
        let projected = rows(&out.matmul(&directions.t().unwrap()).unwrap());
        for row in &projected {
            for (v, value) in row.iter().enumerate() {
                let max = hull_max.iter().map(|r| r[v]).fold(f64::NEG_INFINITY, f64::max);
                prop_assert!(*value <= max + 1e-9);
            }
        }
    }

    /// Streaming over chunks of any size gives the direct softmax result.
    #[test]
    fn chunked_equals_unchunked_for_every_chunk_size(
        seed in 0u64..1000, count in 1usize..20, log_sigma in -1.5f64..1.5
    ) {
        let sigma = 10f64.powf(log_sigma);
        let (train, x) = setup(seed, count, 3, 5);
        let direct = EmpiricalDenoiser::new(&train).unwrap();
        let reference = direct.weights(&x, sigma).unwrap().matmul(&train).unwrap();
        for chunk in 1..=count + 1 {
            let d = EmpiricalDenoiser::with_chunk(&train, chunk).unwrap();
            prop_assert!(max_abs_diff(&d.denoise(&x, sigma).unwrap(), &reference) < 1e-12);
        }
    }

    /// D_{Y Q + c}(x Q + c) = D_Y(x) Q + c for orthogonal Q and any shift c,
    /// and D does not depend on the order of the training points.
    #[test]
    fn equivariant_to_shifts_and_rotations_and_invariant_to_permutations(
        seed in 0u64..1000, count in 2usize..10, log_sigma in -1.0f64..1.0
    ) {
        let sigma = 10f64.powf(log_sigma);
        let dim = 4;
        let (train, x) = setup(seed, count, dim, 3);
        let base = EmpiricalDenoiser::with_chunk(&train, 3).unwrap().denoise(&x, sigma).unwrap();
        let q = diffusion_regimes::linalg::to_tensor(&diffusion_regimes::linalg::random_orthogonal(
            dim, &mut diffusion_regimes::rng::stream(seed, diffusion_regimes::rng::Purpose::Params, 0))).unwrap();
        let c = gaussian(seed, 3, 1, dim);
        let moved = |t: &Tensor| t.matmul(&q).unwrap().broadcast_add(&c).unwrap();
        let transformed = EmpiricalDenoiser::with_chunk(&moved(&train), 3).unwrap().denoise(&moved(&x), sigma).unwrap();
        prop_assert!(max_abs_diff(&transformed, &moved(&base)) < 1e-9);
        let reversed: Vec<u32> = (0..count as u32).rev().collect();
        let permuted = train.index_select(&Tensor::new(reversed.as_slice(), &Device::Cpu).unwrap(), 0).unwrap();
        let out = EmpiricalDenoiser::with_chunk(&permuted, 3).unwrap().denoise(&x, sigma).unwrap();
        prop_assert!(max_abs_diff(&out, &base) < 1e-12);
    }
}

#[test]
fn empirical_denoiser_tends_to_nearest_point_as_sigma_vanishes() {
    let (train, x) = setup(7, 30, 5, 20);
    let d = EmpiricalDenoiser::with_chunk(&train, 7).unwrap();
    let out = rows(&d.denoise(&x, 1e-3).unwrap());
    let (train_rows, x_rows) = (rows(&train), rows(&x));
    for (xb, ob) in x_rows.iter().zip(&out) {
        let dist = |y: &Vec<f64>| y.iter().zip(xb).map(|(a, b)| (a - b).powi(2)).sum::<f64>();
        let nearest = train_rows
            .iter()
            .min_by(|a, b| dist(a).total_cmp(&dist(b)))
            .unwrap();
        let err: f64 = nearest
            .iter()
            .zip(ob)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(
            err < 1e-9,
            "D(x; 1e-3) is {err} away from the nearest training point"
        );
    }
}

#[test]
fn empirical_denoiser_tends_to_the_mean_as_sigma_grows() {
    let (train, x) = setup(8, 30, 5, 6);
    let d = EmpiricalDenoiser::with_chunk(&train, 4).unwrap();
    let mean = train.mean_keepdim(0).unwrap();
    // w_i differs from 1/N by O(||x|| ||y|| / sigma^2): about 1e-7 here.
    let gap = max_abs_diff(
        &d.denoise(&x, 1e4).unwrap(),
        &mean.broadcast_as((6, 5)).unwrap().contiguous().unwrap(),
    );
    assert!(gap < 1e-6, "D(x; 1e4) differs from the mean by {gap}");
}

/// Tweedie: (D - x) / sigma^2 equals grad log p_sigma, here by central differences
/// of the exactly computed log density (truncation O(h^2) ~ 1e-10 at h = 1e-5).
#[test]
fn tweedie_score_matches_finite_differences_of_log_density() {
    let (train, x) = setup(9, 25, 4, 3);
    let d = EmpiricalDenoiser::with_chunk(&train, 6).unwrap();
    for sigma in [0.3, 1.0, 3.0] {
        let score = d.score(&x, sigma).unwrap();
        let h = 1e-5;
        let mut fd = Vec::new();
        for j in 0..4 {
            let e = (Tensor::eye(4, DType::F64, &Device::Cpu)
                .unwrap()
                .narrow(0, j, 1)
                .unwrap()
                * h)
                .unwrap();
            let up = d.log_density(&x.broadcast_add(&e).unwrap(), sigma).unwrap();
            let down = d.log_density(&x.broadcast_sub(&e).unwrap(), sigma).unwrap();
            fd.push(((up - down).unwrap() / (2.0 * h)).unwrap());
        }
        let fd = Tensor::stack(&fd, 1).unwrap();
        let err = max_abs_diff(&score, &fd) / max_abs(&score);
        assert!(err < 1e-6, "sigma {sigma}: relative error {err}");
    }
}

/// log p_sigma against the direct formula (1/N) sum_i N(x; y_i, sigma^2 I) at a
/// noise level where nothing underflows.
#[test]
fn log_density_matches_direct_sum_of_gaussians() {
    let (train, x) = setup(10, 9, 3, 4);
    let sigma = 1.5f64;
    let d = EmpiricalDenoiser::with_chunk(&train, 2).unwrap();
    let got = d.log_density(&x, sigma).unwrap().to_vec1::<f64>().unwrap();
    for (b, xb) in rows(&x).iter().enumerate() {
        let density: f64 = rows(&train)
            .iter()
            .map(|y| {
                let sq: f64 = y.iter().zip(xb).map(|(a, c)| (a - c).powi(2)).sum();
                (-sq / (2.0 * sigma * sigma)).exp()
                    / (2.0 * std::f64::consts::PI * sigma * sigma).powf(1.5)
            })
            .sum::<f64>()
            / 9.0;
        assert!((got[b] - density.ln()).abs() < 1e-12);
    }
}

/// The closed-form Jacobian (sum w y y^T - D D^T) / sigma^2 equals candle autodiff
/// through the streaming computation, and central finite differences; it is
/// symmetric with rank at most N - 1.
#[test]
fn jacobian_closed_form_matches_autodiff_and_finite_differences() {
    let (train, x) = setup(11, 4, 6, 3);
    let d = EmpiricalDenoiser::with_chunk(&train, 3).unwrap();
    for sigma in [0.5, 1.0, 2.0] {
        let closed = d.jacobian(&x, sigma).unwrap();
        let scale = max_abs(&closed);
        let auto = jacobian_autodiff(&d, &x, sigma).unwrap();
        assert!(
            max_abs_diff(&closed, &auto) < 1e-10 * scale.max(1.0),
            "autodiff, sigma {sigma}"
        );
        let fd = jacobian_finite_difference(&d, &x, sigma, 1e-5).unwrap();
        assert!(
            max_abs_diff(&closed, &fd) < 1e-6 * scale.max(1.0),
            "finite differences, sigma {sigma}"
        );
        assert!(max_abs_diff(&closed, &closed.transpose(1, 2).unwrap()) < 1e-12 * scale.max(1.0));
        for b in 0..3 {
            let j = diffusion_regimes::linalg::to_mat(&closed.get(b).unwrap()).unwrap();
            let (values, _) = diffusion_regimes::linalg::symmetric_eigen(&j).unwrap();
            let top = values.iter().cloned().fold(0.0, f64::max);
            assert!(values.iter().all(|&v| v > -1e-10 * top), "PSD");
            let rank = values.iter().filter(|&&v| v > 1e-9 * top).count();
            assert!(rank <= 3, "rank {rank} > N - 1 = 3");
        }
    }
}

/// The CPU path (vectorized exp, weights below exp(-(ln N + p ln 2)) dropped,
/// the weighted sum over the kept ones only) against the direct softmax of
/// the same logits in the same dtype, from sigmas where nearly every weight
/// is dropped to where none is. A dropped mass below 2^-p of the total and
/// an exp within 2 ulps move D by a few rounding units of max |y| ~ 4.5;
/// summing 3000 terms in another order, by up to about sqrt(3000) ~ 55
/// (measured: 1.5 ulps in f32, 21 in f64). 256 ulps of 4.5 is 1.2e-4 in f32
/// and 2.6e-13 in f64, far below what a wrong exp or a dropped weight
/// that counts would cost.
#[test]
fn fast_softmax_path_equals_the_direct_softmax_to_rounding() {
    let (train, x) = setup(7, 3000, 96, 16);
    for (dtype, tolerance) in [(DType::F32, 1.2e-4), (DType::F64, 2.6e-13)] {
        let (train, x) = (train.to_dtype(dtype).unwrap(), x.to_dtype(dtype).unwrap());
        let d = EmpiricalDenoiser::new(&train).unwrap();
        for sigma in [0.3, 1.0, 3.0, 10.0, 100.0] {
            let direct = d.weights(&x, sigma).unwrap().matmul(&train).unwrap();
            let gap = max_abs_diff(&d.denoise(&x, sigma).unwrap(), &direct);
            assert!(gap < tolerance, "{dtype:?} sigma {sigma}: gap {gap}");
        }
    }
}

/// The closed-form Jacobian where its sums skip the dropped weights (CPU,
/// f64, under 1/16 of the weights kept) against autodiff, whose candle ops
/// keep every weight. Queries midway between two training points keep the
/// Jacobian far from 0 (about w_0 w_1 (y_0 - y_1)(y_0 - y_1)^T / sigma^2).
/// The skipped mass is below 2^-53 of the total, so the two agree to
/// rounding of sums of a few terms of size max |J|: 1e-10 relative leaves a
/// margin of about 10^5 ulps, and a dropped weight that counted would be
/// off by far more.
#[test]
fn jacobian_with_skipped_weights_matches_autodiff() {
    let (train, noise) = setup(13, 3000, 40, 4);
    let pairs = train.narrow(0, 0, 4).unwrap() + train.narrow(0, 4, 4).unwrap();
    let x = ((pairs.unwrap() * 0.5).unwrap() + (noise * 0.005).unwrap()).unwrap();
    let d = EmpiricalDenoiser::new(&train).unwrap();
    for sigma in [0.25, 0.35] {
        // The skip keeps w_i where w_i / max_j w_j = exp(l_i - max) >= e^-cutoff.
        let floor = (3000f64.ln() + 53.0 * std::f64::consts::LN_2).exp().recip();
        let kept = rows(&d.weights(&x, sigma).unwrap())
            .iter()
            .map(|row| {
                let top = row.iter().cloned().fold(0.0, f64::max);
                row.iter().filter(|&&w| w >= floor * top).count()
            })
            .max()
            .unwrap();
        assert!(kept * 16 < 3000, "sigma {sigma}: {kept} weights kept");
        let closed = d.jacobian(&x, sigma).unwrap();
        let scale = max_abs(&closed);
        assert!(scale > 1.0, "sigma {sigma}: max |J| = {scale}");
        let auto = jacobian_autodiff(&d, &x, sigma).unwrap();
        let gap = max_abs_diff(&closed, &auto);
        assert!(
            gap < 1e-10 * scale,
            "sigma {sigma}: gap {gap}, scale {scale}"
        );
    }
}

/// The stress case: N = 50,000 points in n = 3072, sigma from 1e-4 to 1e4,
/// f64 and f32: every output finite and inside the data's coordinate range.
#[test]
fn no_nan_or_inf_at_extreme_sigma_at_full_scale() {
    let (count, dim) = (50_000usize, 3072usize);
    let i = Tensor::arange(0u32, count as u32, &Device::Cpu)
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap();
    let j = Tensor::arange(0u32, dim as u32, &Device::Cpu)
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap();
    // A deterministic, non-degenerate data set without an RNG: y_ij = sin(0.37 i + 1.3 j + 0.01 i j mod 2 pi).
    let phase = ((i.unsqueeze(1).unwrap() * 0.37)
        .unwrap()
        .broadcast_add(&(j.unsqueeze(0).unwrap() * 1.3).unwrap())
        .unwrap()
        + (i.unsqueeze(1)
            .unwrap()
            .broadcast_mul(&j.unsqueeze(0).unwrap())
            .unwrap()
            * 0.01)
            .unwrap())
    .unwrap();
    let train = phase.sin().unwrap();
    let x = (train.narrow(0, 0, 2).unwrap() * 3.0).unwrap();
    for dtype in [DType::F64, DType::F32] {
        let d = EmpiricalDenoiser::new(&train.to_dtype(dtype).unwrap()).unwrap();
        let xs = x.to_dtype(dtype).unwrap();
        for sigma in [1e-4, 1e-2, 1.0, 1e2, 1e4] {
            let out = d.denoise(&xs, sigma).unwrap();
            let m = max_abs(&out);
            assert!(
                m.is_finite() && m <= 1.0 + 1e-5,
                "{dtype:?} sigma {sigma}: max |D| = {m}"
            );
        }
    }
}

#[test]
fn rejects_bad_inputs_with_errors_naming_them() {
    let (train, x) = setup(12, 5, 3, 2);
    let d = EmpiricalDenoiser::new(&train).unwrap();
    for sigma in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let e = d.denoise(&x, sigma).unwrap_err().to_string();
        assert!(e.contains("sigma"), "{e}");
    }
    let wrong = gaussian(12, 3, 2, 4);
    assert!(d
        .denoise(&wrong, 1.0)
        .unwrap_err()
        .to_string()
        .contains("[B, 3]"));
    assert!(EmpiricalDenoiser::with_chunk(&train, 0).is_err());
}
