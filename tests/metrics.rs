//! Comparison metrics (THEORY §7) against hand computations and limits.

mod common;

use candle_core::{DType, Device, Tensor};
use common::{gaussian, max_abs_diff};
use diffusion_regimes::denoise::jacobian::jacobian_finite_difference;
use diffusion_regimes::denoise::{Denoiser, EmpiricalDenoiser, GaussianDenoiser};
use diffusion_regimes::framework::Framework;
use diffusion_regimes::metrics::{
    denoiser_gap, effective_rank, generalization, ratio_memorization, reproducibility,
    singular_values, Bootstrap, Similarity,
};
use diffusion_regimes::nn::{Arch, MlpConfig, Params, Precond};

fn t(rows: &[&[f64]]) -> Tensor {
    let n = rows[0].len();
    let flat: Vec<f64> = rows.iter().flat_map(|r| r.iter().copied()).collect();
    Tensor::from_vec(flat, (rows.len(), n), &Device::Cpu).unwrap()
}

#[test]
fn similarities_match_hand_computations() {
    let a = t(&[&[1.0, 0.0], &[1.0, 2.0], &[3.0, 1.0]]);
    let b = t(&[&[0.0, 2.0], &[2.0, 4.0], &[1.0, 3.0]]);
    let cos = Similarity::Cosine.paired(&a, &b).unwrap();
    let want = [0.0, 1.0, 6.0 / (10f64.sqrt() * 10f64.sqrt())];
    for (c, w) in cos.iter().zip(want) {
        assert!((c - w).abs() < 1e-12, "{c} vs {w}");
    }
    // Centering each vector: (1,0)->(0.5,-0.5), (0,2)->(-1,1): cosine -1.
    let centred = Similarity::CenteredCosine.paired(&a, &b).unwrap();
    assert!((centred[0] + 1.0).abs() < 1e-12);
    // |a - b| / sqrt(n): |(1,-2)| / sqrt 2 = sqrt(5/2).
    let l2 = Similarity::NormalizedL2.paired(&a, &b).unwrap();
    assert!((l2[0] - 2.5f64.sqrt()).abs() < 1e-12);
    assert!(Similarity::NormalizedL2.matches(0.1, 0.2) && !Similarity::Cosine.matches(0.1, 0.2));
    let zero = t(&[&[0.0, 0.0]]);
    let e = Similarity::Cosine
        .paired(&zero, &zero)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("row 0") && e.contains("zero vector"), "{e}");
}

#[test]
fn reproducibility_of_a_set_with_itself_is_one_and_counts_by_hand() {
    let a = gaussian(1, 0, 50, 8);
    let rp = reproducibility(&a, &a, Similarity::Cosine, 0.6, "raw", Bootstrap::default()).unwrap();
    assert_eq!(rp.value, 1.0);
    assert_eq!(rp.ci95, [1.0, 1.0]);
    // Pairs with cosines 1, 0 and 0.6 exactly: only the first exceeds tau = 0.6.
    let x = t(&[&[1.0, 0.0], &[1.0, 0.0], &[1.0, 0.0]]);
    let y = t(&[&[2.0, 0.0], &[0.0, 1.0], &[0.6, 0.8]]);
    let rp = reproducibility(&x, &y, Similarity::Cosine, 0.6, "raw", Bootstrap::default()).unwrap();
    assert!((rp.value - 1.0 / 3.0).abs() < 1e-12);
    let e = reproducibility(&x, &a, Similarity::Cosine, 0.6, "raw", Bootstrap::default())
        .err()
        .unwrap();
    assert!(e.to_string().contains("paired"), "{e}");
}

#[test]
fn samples_equal_to_training_points_are_memorized_by_both_criteria() {
    let train = gaussian(2, 0, 40, 16);
    let samples = train.narrow(0, 5, 20).unwrap();
    let [gl, mem] = generalization(
        &samples,
        &train,
        Similarity::Cosine,
        0.6,
        "raw",
        Bootstrap::default(),
    )
    .unwrap();
    assert_eq!((gl.value, mem.value), (0.0, 1.0));
    let ratio = ratio_memorization(&samples, &train, "raw", Bootstrap::default()).unwrap();
    assert_eq!(ratio.value, 1.0);
    // Fresh Gaussian vectors in 16 dimensions have |cosine| well below 0.9 to all 40 points.
    let fresh = gaussian(3, 0, 30, 16);
    let [gl, _] = generalization(
        &fresh,
        &train,
        Similarity::Cosine,
        0.9,
        "raw",
        Bootstrap::default(),
    )
    .unwrap();
    assert_eq!(gl.value, 1.0);
}

#[test]
fn bootstrap_interval_covers_the_true_mean_at_about_the_nominal_rate() {
    // 300 data sets of 200 Bernoulli(0.3) draws; the percentile interval should
    // cover 0.3 about 95% of the time. Binomial sd of the coverage over 300
    // sets is 1.3%; the band [0.89, 0.99] also allows the percentile method's
    // known slight undercoverage at this M.
    let p = 0.3;
    let mut covered = 0;
    let sets = 300;
    for k in 0..sets {
        let u = common::gaussian(9, k, 200, 1).to_vec2::<f64>().unwrap();
        // Phi(z) < p  <=>  z < Phi^-1(0.3) = -0.524400512708041.
        let values: Vec<f64> = u
            .iter()
            .map(|r| (r[0] < -0.524400512708041) as u8 as f64)
            .collect();
        let [lo, hi] = Bootstrap {
            resamples: 400,
            seed: k,
        }
        .interval(&values);
        covered += (lo <= p && p <= hi) as usize;
    }
    let rate = covered as f64 / sets as f64;
    assert!((0.89..=0.99).contains(&rate), "coverage {rate}");
}

#[test]
fn gap_of_a_denoiser_to_itself_is_zero_and_matches_a_direct_computation() {
    let train = gaussian(4, 0, 12, 5);
    let empirical = EmpiricalDenoiser::new(&train).unwrap();
    let gaussian_fit = GaussianDenoiser::fit(&train).unwrap();
    let sigmas = [0.05, 0.5, 5.0];
    assert_eq!(
        denoiser_gap(&empirical, &empirical, &train, &sigmas, 0).unwrap(),
        vec![0.0; 3]
    );
    let gaps = denoiser_gap(&gaussian_fit, &empirical, &train, &sigmas, 0).unwrap();
    // Direct: the same x = y + sigma z with z from stream (0, Sample, i).
    let indices: Vec<u64> = (0..12).collect();
    let (z, _) =
        diffusion_regimes::sample::initial_noise(0, &indices, 5, DType::F64, &Device::Cpu).unwrap();
    for (&s, gap) in sigmas.iter().zip(gaps) {
        let x = (&train + (&z * s).unwrap()).unwrap();
        let (a, b) = (
            gaussian_fit.denoise(&x, s).unwrap(),
            empirical.denoise(&x, s).unwrap(),
        );
        let (num, den) = (common::sum_sq(&(a - &b).unwrap()), common::sum_sq(&b));
        assert!((gap - num / den).abs() < 1e-12 * (num / den).max(1.0));
    }
}

#[test]
fn effective_rank_follows_its_definition() {
    assert_eq!(effective_rank(&[1.0, 0.0, 0.0], 0.99), 1);
    assert_eq!(effective_rank(&[1.0, 1.0, 1.0, 1.0], 0.99), 4);
    // r = 1 keeps sqrt(1 / 1.010001) = 0.995 > 0.99 of the norm; with s_2 = 0.5 it keeps only 0.894.
    assert_eq!(effective_rank(&[1.0, 0.1, 0.001], 0.99), 1);
    assert_eq!(effective_rank(&[1.0, 0.5, 0.001], 0.99), 2);
    assert_eq!(effective_rank(&[], 0.99), 0);
    let diag = Tensor::from_vec(
        vec![3.0f64, 0.0, 0.0, 0.0, -4.0, 0.0, 0.0, 0.0, 0.5],
        (3, 3),
        &Device::Cpu,
    )
    .unwrap();
    let s = singular_values(&diag).unwrap();
    assert!(
        max_abs_diff(
            &Tensor::new(s.as_slice(), &Device::Cpu).unwrap(),
            &Tensor::new(&[4.0f64, 3.0, 0.5], &Device::Cpu).unwrap()
        ) < 1e-12
    );
}

#[test]
fn empirical_jacobian_through_the_trait_has_rank_below_the_training_size() {
    // Three training points in R^6: the Jacobian is a covariance of 3 points, rank <= 2.
    let train = gaussian(5, 0, 3, 6);
    let d = EmpiricalDenoiser::new(&train).unwrap();
    let x = gaussian(6, 0, 1, 6);
    let j = Denoiser::jacobian(&d, &x, 1.0).unwrap();
    assert_eq!(d.jacobian_method(), "closed form (THEORY §4)");
    let s = singular_values(&j.squeeze(0).unwrap()).unwrap();
    assert!(s[2] < 1e-12 * s[0], "{s:?}");
    assert!(effective_rank(&s, 0.99) <= 2);
}

#[test]
fn model_jacobian_by_autodiff_matches_finite_differences() {
    let params = Params::new(2);
    let arch = Arch::Mlp(MlpConfig {
        width: 16,
        depth: 2,
    });
    let net = arch
        .build(&[4], None, params.var_builder(DType::F32, &Device::Cpu))
        .unwrap();
    // Give the zero-initialised output layer weights so the network is not trivial.
    for (name, var) in params.named() {
        if name.starts_with("output") {
            var.set(
                &(gaussian(7, 0, var.elem_count(), 1)
                    .reshape(var.shape())
                    .unwrap()
                    * 0.3)
                    .unwrap()
                    .to_dtype(DType::F32)
                    .unwrap(),
            )
            .unwrap();
        }
    }
    let model = Precond::new(
        net,
        Framework::EDM.parameterisation(0.5, -1.2, 1.2),
        vec![4],
        &Device::Cpu,
    );
    let x = gaussian(8, 0, 2, 4).to_dtype(DType::F32).unwrap();
    let auto = model.jacobian(&x, 0.7).unwrap();
    assert_eq!(model.jacobian_method(), "autodiff");
    // f32 central differences with h = 1e-2: error O(h^2) + O(eps_f32 / h) ~ 1e-4.
    let fd = jacobian_finite_difference(&model, &x, 0.7, 1e-2).unwrap();
    assert!(
        max_abs_diff(&auto, &fd) < 2e-3,
        "{}",
        max_abs_diff(&auto, &fd)
    );
}
