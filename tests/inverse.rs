//! Inverse problems (THEORY §11): operators, the exact posteriors against
//! brute force, vector-Jacobian products against finite differences, and
//! the solvers against the memorizing solution.

mod common;

use candle_core::{DType, Device, Tensor};
use common::{gaussian, max_abs, max_abs_diff, rows};
use diffusion_regimes::denoise::jacobian::jacobian_finite_difference;
use diffusion_regimes::denoise::{
    Component, Denoiser, EmpiricalDenoiser, GaussianDenoiser, Mixture,
};
use diffusion_regimes::inverse::{
    solve, EmpiricalPosterior, GaussianPosterior, Operator, OperatorSpec, Solver,
};
use diffusion_regimes::linalg::{random_orthogonal, to_mat};
use diffusion_regimes::rng::{stream, Purpose};
use diffusion_regimes::sample::{initial_noise, sample, Method, Schedule};
use faer::linalg::solvers::Solve;
use faer::Mat;

fn operator(spec: &str, shape: &[usize]) -> Operator {
    Operator::new(&spec.parse().unwrap(), shape).unwrap()
}

/// A A^+ = I and A^+ A an orthogonal projection, for every kind of operator.
#[test]
fn every_operator_has_a_right_inverse() {
    for (spec, shape, m) in [
        ("inpaint-box:1,1,2,3", vec![2, 4, 5], 2 * (20 - 6)),
        ("downsample:2", vec![3, 4, 6], 3 * 2 * 3),
        ("project:7,3", vec![12], 7),
        ("inpaint-random:5,1", vec![12], 5),
    ] {
        assert_eq!(spec.parse::<OperatorSpec>().unwrap().to_string(), spec);
        let a = operator(spec, &shape);
        assert_eq!(
            (a.measured_dim(), a.dim()),
            (m, shape.iter().product()),
            "{spec}"
        );
        let y = gaussian(1, 0, 5, m);
        let back = a.apply(&a.pseudo_inverse(&y).unwrap()).unwrap();
        assert!(max_abs_diff(&back, &y) < 1e-12, "{spec}: A A^+ y != y");
        // The unmeasured part: invisible to A, and orthogonal to the measured
        // part A^+ A x, so the two add up to x with ||x||^2 split between them.
        let x = gaussian(2, 0, 5, a.dim());
        let hidden = a.unmeasured(&x).unwrap();
        let seen = (&x - &hidden).unwrap();
        assert!(
            max_abs(&a.apply(&hidden).unwrap()) < 1e-12,
            "{spec}: A (I - A^+ A) x != 0"
        );
        let cross = (&hidden * &seen)
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        assert!(
            cross.abs() < 1e-10,
            "{spec}: parts not orthogonal ({cross})"
        );
    }
}

#[test]
fn operators_compute_what_they_name() {
    // Average pooling against a loop over the blocks.
    let x = gaussian(2, 0, 1, 2 * 4 * 6);
    let pooled = rows(&operator("downsample:2", &[2, 4, 6]).apply(&x).unwrap())[0].clone();
    let v = rows(&x)[0].clone();
    let mut expected = Vec::new();
    for c in 0..2 {
        for r in 0..2 {
            for q in 0..3 {
                let at = |dr: usize, dq: usize| v[c * 24 + (2 * r + dr) * 6 + 2 * q + dq];
                expected.push((at(0, 0) + at(0, 1) + at(1, 0) + at(1, 1)) / 4.0);
            }
        }
    }
    let gap = pooled
        .iter()
        .zip(&expected)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(gap < 1e-12, "pooling off by {gap}");
    // The box hides exactly its pixels: the kept entries are the others, in order.
    let x = Tensor::arange(0f64, 16.0, &Device::Cpu)
        .unwrap()
        .reshape((1, 16))
        .unwrap();
    let kept = rows(
        &operator("inpaint-box:1,1,2,2", &[1, 4, 4])
            .apply(&x)
            .unwrap(),
    )[0]
    .clone();
    let hidden = [5.0, 6.0, 9.0, 10.0];
    let expected: Vec<f64> = (0..16)
        .map(f64::from)
        .filter(|v| !hidden.contains(v))
        .collect();
    assert_eq!(kept, expected);
    // A projection is its seed's: the same seed the same matrix, another seed another.
    let (a, b, c) = (
        operator("project:3,5", &[8]),
        operator("project:3,5", &[8]),
        operator("project:3,6", &[8]),
    );
    let probe = gaussian(3, 0, 2, 8);
    let apply = |a: &Operator| a.apply(&probe).unwrap();
    assert_eq!(max_abs_diff(&apply(&a), &apply(&b)), 0.0);
    assert!(max_abs_diff(&apply(&a), &apply(&c)) > 0.1);
}

#[test]
fn bad_operators_are_errors_that_name_the_problem() {
    let message = |r: Result<Operator, diffusion_regimes::Error>| r.unwrap_err().to_string();
    let spec = "inpaint-box:1,2"
        .parse::<OperatorSpec>()
        .unwrap_err()
        .to_string();
    assert!(
        spec.contains("inpaint-box:1,2") && spec.contains("downsample:F"),
        "{spec}"
    );
    let outside = message(Operator::new(
        &OperatorSpec::InpaintBox([3, 3, 2, 2]),
        &[1, 4, 4],
    ));
    assert!(outside.contains("inside the 4x4 image"), "{outside}");
    let vectors = message(Operator::new(&OperatorSpec::Downsample(2), &[16]));
    assert!(vectors.contains("[C, H, W]"), "{vectors}");
    let factor = message(Operator::new(&OperatorSpec::Downsample(3), &[1, 4, 4]));
    assert!(factor.contains("must divide"), "{factor}");
    let rows = message(Operator::new(
        &OperatorSpec::Project { rows: 9, seed: 0 },
        &[8],
    ));
    assert!(rows.contains("at most the data dimension 8"), "{rows}");
    let everything = message(Operator::new(
        &OperatorSpec::InpaintBox([0, 0, 4, 4]),
        &[1, 4, 4],
    ));
    assert!(everything.contains("measures nothing"), "{everything}");
    let dir = common::temp_dir("inverse-mask");
    let path = dir.join("mask.npy");
    let mask = Tensor::new(&[1f32, 0.0, 0.5, 1.0], &Device::Cpu).unwrap();
    diffusion_regimes::data::npy::write_npy(&path, &mask, DType::F32).unwrap();
    let bad = message(Operator::new(&OperatorSpec::Inpaint(path.clone()), &[4]));
    assert!(bad.contains("mask.npy") && bad.contains("0.5"), "{bad}");
    let shape = message(Operator::new(&OperatorSpec::Inpaint(path), &[5]));
    assert!(shape.contains("[5]"), "{shape}");
}

fn two_component_mixture() -> Mixture {
    let component = |seed: u64, weight: f64| {
        let q = random_orthogonal(5, &mut stream(seed, Purpose::Params, 0));
        Component {
            weight,
            mean: rows(&gaussian(seed, 1, 1, 5))[0].clone(),
            basis: q.subcols(0, 2).to_owned(),
            variances: vec![0.4, 1.5],
            floor: 0.05,
        }
    };
    Mixture::new(vec![component(1, 0.3), component(2, 0.7)]).unwrap()
}

/// J^T v against the finite-difference Jacobian (truncation O(h^2): with
/// h = 1e-4 sigma and D smooth on the scale sigma, entries are good to about
/// 1e-7 relative; 1e-5 leaves room), for the closed form (empirical) and
/// autodiff (Gaussian, mixture).
#[test]
fn vector_jacobian_products_match_finite_differences() {
    let train = gaussian(4, 0, 12, 5);
    let gaussian_prior = GaussianDenoiser::fit(&gaussian(4, 1, 40, 5)).unwrap();
    let mixture = two_component_mixture();
    let denoisers: [(&str, &dyn Denoiser); 3] = [
        ("empirical", &EmpiricalDenoiser::new(&train).unwrap()),
        ("gaussian", &gaussian_prior),
        ("mixture", &mixture),
    ];
    let x = gaussian(5, 0, 3, 5);
    let v = gaussian(5, 1, 3, 5);
    for sigma in [0.3, 1.0] {
        for (name, d) in denoisers {
            let vjp = d.vjp(&x, sigma, &v).unwrap();
            let j = jacobian_finite_difference(d, &x, sigma, 1e-4 * sigma).unwrap();
            // (J^T v)_b = sum_i v_bi J_b[i, :].
            let expected = v
                .unsqueeze(1)
                .unwrap()
                .matmul(&j)
                .unwrap()
                .squeeze(1)
                .unwrap();
            let scale = common::max_abs(&expected).max(1.0);
            let gap = max_abs_diff(&vjp, &expected) / scale;
            assert!(gap < 1e-5, "{name} at sigma {sigma}: J^T v off by {gap}");
        }
    }
}

/// The empirical posterior's denoiser, weight by weight with loops.
#[test]
fn empirical_posterior_matches_brute_force() {
    let train = gaussian(6, 0, 7, 6);
    let a = operator("project:3,1", &[6]);
    let y = gaussian(6, 1, 2, 3);
    let x = gaussian(6, 2, 2, 6);
    let (sigma, noise_y) = (0.7, 0.4);
    let posterior = EmpiricalPosterior::new(&train, &a, &y, noise_y).unwrap();
    let got = rows(&posterior.denoise(&x, sigma).unwrap());
    let (train_rows, ay) = (rows(&train), rows(&a.apply(&train).unwrap()));
    let (xs, ys) = (rows(&x), rows(&y));
    let sq = |u: &[f64], w: &[f64]| u.iter().zip(w).map(|(p, q)| (p - q) * (p - q)).sum::<f64>();
    for b in 0..2 {
        let logs: Vec<f64> = (0..7)
            .map(|i| {
                -sq(&xs[b], &train_rows[i]) / (2.0 * sigma * sigma)
                    - sq(&ys[b], &ay[i]) / (2.0 * noise_y * noise_y)
            })
            .collect();
        let top = logs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let w: Vec<f64> = logs.iter().map(|l| (l - top).exp()).collect();
        let total: f64 = w.iter().sum();
        for k in 0..6 {
            let expected: f64 = (0..7).map(|i| w[i] / total * train_rows[i][k]).sum();
            assert!((got[b][k] - expected).abs() < 1e-12, "row {b}, entry {k}");
        }
    }
}

/// The Gaussian posterior mean in the information form
/// (S^-1 + A^T A / s^2)^-1 (S^-1 mu + A^T y / s^2), a different formula.
#[test]
fn gaussian_posterior_mean_matches_the_information_form() {
    let prior = GaussianDenoiser::fit(&gaussian(7, 0, 50, 4)).unwrap();
    let a = operator("project:2,9", &[4]);
    let y = gaussian(7, 1, 3, 2);
    let noise_y = 0.3;
    let posterior = GaussianPosterior::new(&prior, &a, &y, noise_y).unwrap();
    let inverse = |m: &Mat<f64>| m.partial_piv_lu().solve(Mat::<f64>::identity(4, 4));
    let s_inv = inverse(&prior.covariance().unwrap());
    let am = a.matrix().unwrap();
    let precision = &s_inv + am.transpose() * &am * (1.0 / (noise_y * noise_y));
    let covariance = inverse(&precision);
    let mu = Mat::from_fn(4, 1, |i, _| prior.mean().unwrap()[i]);
    let ys = to_mat(&y).unwrap();
    for b in 0..3 {
        let yb = Mat::from_fn(2, 1, |k, _| ys[(b, k)]);
        let expected =
            &covariance * (&s_inv * &mu + am.transpose() * &yb * (1.0 / (noise_y * noise_y)));
        let got = rows(posterior.mean())[b].clone();
        for i in 0..4 {
            assert!(
                (got[i] - expected[(i, 0)]).abs() < 1e-10,
                "row {b}, entry {i}"
            );
        }
    }
}

/// Sampling the exact Gaussian posterior denoiser from many noises draws the
/// posterior: the sample mean lands within 4 standard errors (plus the Heun
/// discretisation, below 1e-3 at 40 steps) of the closed-form mean.
#[test]
fn sampling_the_gaussian_posterior_averages_to_its_mean() {
    let prior = GaussianDenoiser::fit(&gaussian(8, 0, 50, 4)).unwrap();
    let a = operator("project:2,4", &[4]);
    let count = 2000;
    let y = gaussian(8, 1, 1, 2)
        .broadcast_as((count, 2))
        .unwrap()
        .contiguous()
        .unwrap();
    let posterior = GaussianPosterior::new(&prior, &a, &y, 0.2).unwrap();
    let schedule = Schedule {
        steps: 40,
        ..Schedule::default()
    };
    let sigmas = schedule.sigmas().unwrap();
    let indices: Vec<u64> = (0..count as u64).collect();
    let (z, mut streams) = initial_noise(0, &indices, 4, DType::F64, &Device::Cpu).unwrap();
    let x = sample(
        &posterior,
        &(z * sigmas[0]).unwrap(),
        &sigmas,
        &Method::Heun,
        &mut streams,
        None,
    )
    .unwrap();
    let mean = rows(&x.mean_keepdim(0).unwrap())[0].clone();
    let spread = rows(&x.var_keepdim(0).unwrap())[0].clone();
    let expected = rows(posterior.mean())[0].clone();
    for i in 0..4 {
        let error = 4.0 * (spread[i] / count as f64).sqrt() + 1e-3;
        assert!(
            (mean[i] - expected[i]).abs() < error,
            "entry {i}: {} vs {}",
            mean[i],
            expected[i]
        );
    }
}

/// Half of each training point observed, no noise, with the memorizing
/// denoiser: the exact posterior and DPS (zeta >= 10 here; at 3 it misses
/// some) return the training point whose observed half the measurement is
/// (the others differ there by O(1)). The projection solver keeps the
/// measurement exactly but fills the hidden half with some training point's
/// hidden half, not always the consistent one: the memorizing prior
/// reproduces training data where the measurement is silent.
#[test]
fn solvers_with_the_memorizing_denoiser_reproduce_training_points() {
    let train = gaussian(9, 0, 6, 8);
    let d = EmpiricalDenoiser::new(&train).unwrap();
    let a = operator("inpaint-box:0,4,1,4", &[1, 1, 8]);
    let targets: Vec<u32> = vec![0, 3, 5, 2];
    let clean = train
        .index_select(&Tensor::new(targets.as_slice(), &Device::Cpu).unwrap(), 0)
        .unwrap();
    let y = a.apply(&clean).unwrap();
    let sigmas = Schedule::default().sigmas().unwrap();
    let (z, _) = initial_noise(1, &[0, 1, 2, 3], 8, DType::F64, &Device::Cpu).unwrap();
    let x = (z * sigmas[0]).unwrap();
    let posterior = EmpiricalPosterior::new(&train, &a, &y, 1e-3).unwrap();
    let exact = sample(&posterior, &x, &sigmas, &Method::Euler, &mut [], None).unwrap();
    assert!(max_abs_diff(&exact, &clean) < 1e-6, "exact posterior");
    for zeta in [10.0, 30.0] {
        let dps = solve(&d, &a, &y, Solver::Dps { zeta }, &x, &sigmas).unwrap();
        assert!(max_abs_diff(&dps, &clean) < 1e-6, "dps at zeta {zeta}");
    }
    let projected = solve(&d, &a, &y, Solver::Projection, &x, &sigmas).unwrap();
    assert!(
        max_abs_diff(&a.apply(&projected).unwrap(), &y) < 1e-12,
        "projection off the measurement"
    );
    let hidden = |t: &Tensor| rows(&t.narrow(1, 4, 4).unwrap());
    let train_hidden = hidden(&train);
    for (r, row) in hidden(&projected).iter().enumerate() {
        let nearest = train_hidden
            .iter()
            .map(|t| {
                t.iter()
                    .zip(row)
                    .map(|(p, q)| (p - q).abs())
                    .fold(0.0, f64::max)
            })
            .fold(f64::INFINITY, f64::min);
        assert!(
            nearest < 1e-6,
            "projection row {r}: hidden half is no training point's"
        );
    }
}

#[test]
fn dps_without_guidance_is_the_euler_sampler_bit_for_bit() {
    let train = gaussian(10, 0, 9, 4);
    let d = EmpiricalDenoiser::new(&train).unwrap();
    let a = operator("project:2,0", &[4]);
    let sigmas = Schedule::default().sigmas().unwrap();
    let (z, _) = initial_noise(2, &[0, 1, 2], 4, DType::F64, &Device::Cpu).unwrap();
    let x = (z * sigmas[0]).unwrap();
    let y = gaussian(10, 1, 3, 2);
    let dps = solve(&d, &a, &y, Solver::Dps { zeta: 0.0 }, &x, &sigmas).unwrap();
    let euler = sample(&d, &x, &sigmas, &Method::Euler, &mut [], None).unwrap();
    assert_eq!(max_abs_diff(&dps, &euler), 0.0);
}
