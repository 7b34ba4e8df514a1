//! Regime theory (THEORY §8): the closed forms by hand, and the collapse and
//! speciation levels measured with the empirical denoiser against them.
//! `cargo test --release --test theory -- --nocapture` prints the measurements.

mod common;

use candle_core::{Device, Tensor};
use common::gaussian;
use diffusion_regimes::theory::{
    clone_test, collapse_sigma_entropy, collapse_sigma_isotropic, last_switch_levels,
    speciation_sigma, top_eigenvalue, CloneCurve,
};

/// sigma_max = 80 down to 0.01 in `levels` geometric steps, then 0.
fn grid(levels: usize) -> Vec<f64> {
    let (hi, lo) = (80f64.ln(), 0.01f64.ln());
    let mut s: Vec<f64> = (0..levels)
        .map(|i| (hi + (lo - hi) * i as f64 / (levels - 1) as f64).exp())
        .collect();
    s.push(0.0);
    s
}

/// Indices of the grid levels inside [lo, hi].
fn between(sigmas: &[f64], lo: f64, hi: f64) -> Vec<usize> {
    (0..sigmas.len())
        .filter(|&i| sigmas[i] >= lo && sigmas[i] <= hi)
        .collect()
}

#[test]
fn closed_forms_match_hand_computations() {
    // 1024^(2/64) = 2^(20/64); THEORY's example gives about 2.0.
    let want = 1.0 / (2f64.powf(20.0 / 64.0) - 1.0).sqrt();
    assert!((collapse_sigma_isotropic(1.0, 1024.0, 64) - want).abs() < 1e-12);
    assert!((want - 2.03).abs() < 0.01);
    assert_eq!(speciation_sigma(37.0), Some(6.0));
    assert_eq!(speciation_sigma(0.9), None);
    // Rows (+-3, 0): covariance diag(9, 0), top eigenvalue 9.
    let rows = Tensor::new(&[[3.0f64, 0.0], [-3.0, 0.0]], &Device::Cpu).unwrap();
    assert!((top_eigenvalue(&rows).unwrap() - 9.0).abs() < 1e-9);
}

#[test]
fn measured_collapse_agrees_with_the_closed_form() {
    let (d, n) = (64, 1024);
    let train = gaussian(3, 0, n, d);
    let closed = collapse_sigma_isotropic(1.0, n as f64, d);
    let sigmas = grid(70);
    let levels = between(&sigmas, 0.7, 6.0);
    let curve = clone_test(&train, None, &sigmas, &levels, 128, 0).unwrap();
    let measured = CloneCurve::level_where(&curve.same_point, &curve.sigmas, 0.5).unwrap();
    eprintln!(
        "clone test: {:?}",
        curve
            .sigmas
            .iter()
            .zip(&curve.same_point)
            .collect::<Vec<_>>()
    );
    eprintln!(
        "collapse: closed form {closed:.3}, clone test (same point with p = 0.5) {measured:.3}"
    );
    assert!(
        (measured / closed - 1.0).abs() < 0.15,
        "{measured} vs {closed}"
    );

    // The entropy criterion on 8192 draws of the same distribution.
    let draws = gaussian(3, 1, 8192, d);
    let entropy = collapse_sigma_entropy(&draws, n, 0).unwrap().unwrap();
    eprintln!("collapse: excess-entropy criterion {entropy:.3}");
    assert!(
        (entropy / closed - 1.0).abs() < 0.1,
        "{entropy} vs {closed}"
    );

    // A reverse-SDE trajectory keeps changing its nearest training point until
    // it has collapsed onto one: the median settling level is of order sigma_C.
    let mut settled = last_switch_levels(&train, &sigmas, 128, 0).unwrap();
    settled.sort_by(f64::total_cmp);
    let median = settled[64];
    eprintln!("nearest training point final from sigma: median {median:.3} over 128 trajectories (quartiles {:.3}, {:.3})", settled[32], settled[96]);
    assert!((median / closed - 1.0).abs() < 0.25, "{median} vs {closed}");
}

#[test]
fn measured_speciation_agrees_with_the_top_eigenvalue() {
    // Two classes at -6 e_1 and +6 e_1, unit within-class variance, d = 64:
    // Lambda is about 1 + 36, sigma_S about 6.
    let (d, n, m) = (64, 1024, 6.0);
    let classes: Vec<usize> = (0..n).map(|i| i % 2).collect();
    let mut rows = common::rows(&gaussian(4, 0, n, d));
    for (row, &c) in rows.iter_mut().zip(&classes) {
        row[0] += if c == 1 { m } else { -m };
    }
    let flat: Vec<f64> = rows.concat();
    let train = Tensor::from_vec(flat, (n, d), &Device::Cpu).unwrap();
    let predicted = speciation_sigma(top_eigenvalue(&train).unwrap()).unwrap();
    let sigmas = grid(70);
    let levels = between(&sigmas, 2.0, 20.0);
    let curve = clone_test(&train, Some(&classes), &sigmas, &levels, 256, 0).unwrap();
    let same_class = curve.same_class.clone().unwrap();
    // Clones pick the same class with probability 1/2 above speciation and 1
    // well below it; the midpoint 3/4 marks the level.
    let measured = CloneCurve::level_where(&same_class, &curve.sigmas, 0.75).unwrap();
    eprintln!(
        "clone test by class: {:?}",
        curve.sigmas.iter().zip(&same_class).collect::<Vec<_>>()
    );
    eprintln!(
        "speciation: predicted {predicted:.3}, clone test (same class with p = 3/4) {measured:.3}"
    );
    assert!(
        (measured / predicted - 1.0).abs() < 0.25,
        "{measured} vs {predicted}"
    );
}

#[test]
fn predict_reports_the_closed_forms_of_a_saved_distribution() {
    let dir = common::temp_dir("predict");
    let data = dir.join("gmm");
    let made = common::regimes(&[
        "data",
        "gmm",
        "--ambient",
        "16",
        "--components",
        "2",
        "--mean-scale",
        "3",
        "--std",
        "1",
        "--n",
        "600",
        "--out",
        common::s(&data),
    ]);
    common::succeeds(&made);
    let out = common::regimes(&[
        "predict",
        "--data",
        common::s(&data),
        "--n",
        "100",
        "--json",
    ]);
    common::succeeds(&out);
    let p: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // Two separated components: 50 points each in d = 16.
    let closed = collapse_sigma_isotropic(1.0, 50.0, 16);
    assert!((p["collapse_sigma_closed_form"].as_f64().unwrap() - closed).abs() < 1e-12);
    let lambda = p["top_eigenvalue"].as_f64().unwrap();
    // serde_json's float parsing may differ from the printed value by an ulp.
    let speciation = p["speciation_sigma"].as_f64().unwrap();
    assert!((speciation - speciation_sigma(lambda).unwrap()).abs() < 1e-9);
    assert!(p["collapse_sigma_entropy"].as_f64().unwrap() > 0.0);
    assert!(p["molrg"].is_null());

    let bad = common::regimes(&["predict", "--data", common::s(&data), "--n", "0"]);
    common::fails_with(&bad, &["--n"]);
}
