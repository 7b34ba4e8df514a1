//! Calibration of the default criteria for raw vectors (sweep::criteria)
//! on the quickstart distribution: fresh samples of the true distribution
//! generalize, samples of the empirical denoiser do not, two independent true
//! samples are not reproductions of each other, and a sampler reproduces itself.
//! The printed numbers are quoted in docs/guide/sweeps.md (`cargo test --test calibration -- --nocapture`).

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use diffusion_regimes::data::Synthetic;
use diffusion_regimes::denoise::{Denoiser, EmpiricalDenoiser};
use diffusion_regimes::metrics::{ratio_memorization, reproducibility, Bootstrap};
use diffusion_regimes::sample::{generate, Method, Plan};
use diffusion_regimes::sweep::{SweepConfig, QUICKSTART};

#[test]
fn default_criteria_separate_memorized_from_novel_and_paired_from_independent() {
    let config = SweepConfig::parse(QUICKSTART, Path::new("quickstart.toml")).unwrap();
    let dist = Synthetic::new(config.data.synthetic.clone().unwrap(), config.data.seed).unwrap();
    let (similarity, tau) = (config.metrics.rp_similarity, config.metrics.rp_threshold);
    let schedule = config.sampling.schedule;
    let m = 200;
    let bootstrap = Bootstrap::default();
    let indices: Vec<u64> = (0..m as u64).collect();
    // Rows past every training set: exact draws from the true distribution.
    let fresh = dist.sample_fresh(m).unwrap();
    let other = dist
        .sample_rows(2 * diffusion_regimes::data::FRESH_ROWS, m)
        .unwrap();
    let gl = |samples: &Tensor, train: &Tensor| {
        let memorized = ratio_memorization(samples, train, "raw", bootstrap).unwrap();
        1.0 - memorized.value
    };
    // Samples 0..m of run `seed` with Heun on the config's schedule.
    let heun = |d: &dyn Denoiser, seed| {
        generate(
            d,
            &Plan::new(&schedule, Method::Heun).unwrap(),
            seed,
            &indices,
            DType::F64,
            &Device::Cpu,
            None,
        )
        .unwrap()
    };
    for n in [16, 1024] {
        let train = dist.sample(n).unwrap();
        let empirical = EmpiricalDenoiser::new(&train).unwrap();
        let memorizing = heun(&empirical, 0);
        let (gl_fresh, gl_empirical) = (gl(&fresh, &train), gl(&memorizing, &train));
        eprintln!("N = {n}: GL of fresh true samples {gl_fresh:.3}, of empirical-denoiser samples {gl_empirical:.3}");
        // 3^-6 = 0.14% of fresh samples in a 6-dim subspace are expected to pass d1/d2 < 1/3.
        assert!(gl_fresh >= 0.97, "fresh samples at N = {n}: GL {gl_fresh}");
        assert!(
            gl_empirical <= 0.02,
            "empirical samples at N = {n}: GL {gl_empirical}"
        );
    }
    let independent = reproducibility(&fresh, &other, similarity, tau, "raw", bootstrap).unwrap();
    let truth = |seed| heun(&dist.mixture, seed);
    let (a, b) = (truth(0), truth(0));
    let itself = reproducibility(&a, &b, similarity, tau, "raw", bootstrap).unwrap();
    let across_seeds = reproducibility(&a, &truth(1), similarity, tau, "raw", bootstrap).unwrap();
    eprintln!(
        "RP ({} > {tau}): independent true samples {:.3}, true sampler against itself {:.3}, true sampler with different seeds {:.3}",
        similarity.name(),
        independent.value,
        itself.value,
        across_seeds.value
    );
    // Same component with probability 1/2, then cosine > 0.8 in 6 dimensions: about 0.5% of pairs.
    assert!(
        independent.value <= 0.03,
        "independent: {}",
        independent.value
    );
    assert!(
        across_seeds.value <= 0.03,
        "different seeds: {}",
        across_seeds.value
    );
    assert_eq!(itself.value, 1.0);
}
