//! Schedules and samplers against THEORY §2.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};

use candle_core::{DType, Device, Tensor};
use common::{gaussian, max_abs, max_abs_diff, rows};
use diffusion_regimes::data::{Spectrum, Synthetic, SyntheticSpec};
use diffusion_regimes::denoise::{Denoiser, EmpiricalDenoiser, GaussianDenoiser};
use diffusion_regimes::linalg::random_orthogonal;
use diffusion_regimes::rng::{stream, Purpose};
use diffusion_regimes::sample::{generate, initial_noise, sample, Churn, Method, Plan, Schedule};

#[test]
fn karras_schedule_matches_golden_values() {
    let s = Schedule::default().sigmas().unwrap();
    assert_eq!(s.len(), 19);
    let golden = [
        (0, 80.0),
        (1, 57.586),
        (2, 40.786),
        (3, 28.375),
        (15, 0.02293),
        (16, 0.00753),
        (17, 0.002),
    ];
    for (i, want) in golden {
        assert!(
            (s[i] - want).abs() < 5e-4 * want,
            "sigma_{i} = {} vs {want}",
            s[i]
        );
    }
    assert_eq!(s[0], 80.0);
    assert!((s[17] - 0.002).abs() < 1e-15);
    assert_eq!(s[18], 0.0);
}

/// A Gaussian with a spread spectrum, and a start state at sigma = 10.
fn gaussian_problem() -> (GaussianDenoiser, Tensor) {
    let n = 4;
    let basis = random_orthogonal(n, &mut stream(1, Purpose::Params, 0));
    let g = GaussianDenoiser::from_eigen(&[0.5, -1.0, 0.0, 2.0], &basis, vec![0.01, 0.3, 1.0, 4.0])
        .unwrap();
    let x = (gaussian(1, 0, 6, n) * 10.0).unwrap();
    (g, x)
}

/// Integrates from sigma = 10 to 0.05 with `steps` Karras steps; error against the exact flow.
fn flow_error(method: Method, steps: usize) -> f64 {
    let (g, x) = gaussian_problem();
    let schedule = Schedule {
        steps: steps + 1,
        sigma_min: 0.05,
        sigma_max: 10.0,
        rho: 7.0,
    };
    let mut sigmas = schedule.sigmas().unwrap();
    sigmas.pop(); // stop at sigma_min > 0, where the exact flow is known
    let got = sample(&g, &x, &sigmas, &method, &mut [], None).unwrap();
    let exact = g.flow(&x, 10.0, 0.05).unwrap();
    max_abs_diff(&got, &exact)
}

/// Euler's global error ~ 1/S and Heun's ~ 1/S^2 (THEORY §2): doubling S
/// divides the error by about 2 and 4; the measured order is log2 of that ratio.
#[test]
fn euler_converges_at_order_one_and_heun_at_order_two_on_gaussian_data() {
    for (method, order) in [(Method::Euler, 1.0), (Method::Heun, 2.0)] {
        let (coarse, fine) = (flow_error(method, 64), flow_error(method, 128));
        let measured = (coarse / fine).log2();
        assert!(
            (measured - order).abs() < 0.15,
            "{method:?}: measured order {measured}"
        );
    }
    // At equal steps the second-order method is far ahead (observed 2.8e-3 vs 8.2e-2 at S = 64).
    assert!(flow_error(Method::Heun, 64) < 0.1 * flow_error(Method::Euler, 64));
}

#[test]
fn ddim_in_vp_variables_equals_euler_in_ve_variables() {
    let (g, x) = gaussian_problem();
    let sigmas = Schedule {
        steps: 12,
        sigma_min: 0.01,
        sigma_max: 10.0,
        rho: 7.0,
    }
    .sigmas()
    .unwrap();
    let euler = sample(&g, &x, &sigmas, &Method::Euler, &mut [], None).unwrap();
    let ddim = sample(&g, &x, &sigmas, &Method::Ddim, &mut [], None).unwrap();
    assert!(max_abs_diff(&euler, &ddim) < 1e-12 * max_abs(&euler).max(1.0));
}

/// A call counter a denoiser (which is Sync) can hold.
struct Calls(AtomicUsize);

impl Calls {
    fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
    fn set(&self, n: usize) {
        self.0.store(n, Ordering::SeqCst)
    }
}

/// Counts evaluations of a wrapped denoiser.
struct Counting<'a> {
    inner: &'a dyn Denoiser,
    calls: Calls,
}

impl Denoiser for Counting<'_> {
    fn denoise(&self, x: &Tensor, sigma: f64) -> diffusion_regimes::Result<Tensor> {
        self.calls.set(self.calls.get() + 1);
        self.inner.denoise(x, sigma)
    }
    fn dim(&self) -> usize {
        self.inner.dim()
    }
}

#[test]
fn heun_costs_two_s_minus_one_evaluations_and_the_observer_sees_every_step() {
    let (g, _) = gaussian_problem();
    let counting = Counting {
        inner: &g,
        calls: Calls(AtomicUsize::new(0)),
    };
    let mut seen = Vec::new();
    let mut observer = |step: &diffusion_regimes::sample::Step<'_>| {
        seen.push((step.index, step.sigma));
        Ok(())
    };
    let schedule = Schedule::default();
    generate(
        &counting,
        &Plan::new(&schedule, Method::Heun).unwrap(),
        0,
        &[0, 1],
        DType::F64,
        &Device::Cpu,
        Some(&mut observer),
    )
    .unwrap();
    assert_eq!(counting.calls.get(), 2 * 18 - 1);
    let sigmas = schedule.sigmas().unwrap();
    assert_eq!(seen, (0..18).map(|i| (i, sigmas[i])).collect::<Vec<_>>());
}

/// Memorization (THEORY §4): the probability-flow ODE with the empirical
/// denoiser ends on a training point, up to the final sigma_min = 0.002 blur,
/// which is exponentially small when training points are O(1) apart.
#[test]
fn sampling_with_the_empirical_denoiser_ends_on_training_points() {
    let train = gaussian(2, 0, 10, 5);
    let d = EmpiricalDenoiser::new(&train).unwrap();
    let indices: Vec<u64> = (0..32).collect();
    for method in [
        Method::Heun,
        Method::Euler,
        Method::EdmStochastic(Churn::default()),
    ] {
        let samples = generate(
            &d,
            &Plan::new(&Schedule::default(), method).unwrap(),
            3,
            &indices,
            DType::F64,
            &Device::Cpu,
            None,
        )
        .unwrap();
        for s in rows(&samples) {
            let nearest = rows(&train)
                .iter()
                .map(|y| {
                    y.iter()
                        .zip(&s)
                        .map(|(a, b)| (a - b).powi(2))
                        .sum::<f64>()
                        .sqrt()
                })
                .fold(f64::INFINITY, f64::min);
            assert!(
                nearest < 1e-9,
                "{method:?}: sample is {nearest} from the training set"
            );
        }
    }
}

#[test]
fn same_seed_gives_identical_bits_and_sample_j_is_the_same_alone_or_in_a_batch() {
    let dist = Synthetic::new(
        SyntheticSpec::Molrg {
            ambient: 8,
            ranks: vec![2, 3],
            floor: 0.0,
        },
        4,
    )
    .unwrap();
    let train = dist.sample(50).unwrap().to_dtype(DType::F32).unwrap();
    let empirical = EmpiricalDenoiser::new(&train).unwrap();
    let g = GaussianDenoiser::fit(&train).unwrap();
    let batch: Vec<u64> = (0..256).collect();
    let denoisers: [&dyn Denoiser; 3] = [&empirical, &dist.mixture, &g];
    for d in denoisers {
        for method in [
            Method::Heun,
            Method::Ddim,
            Method::EdmStochastic(Churn::default()),
        ] {
            let run = |idx: &[u64]| {
                generate(
                    d,
                    &Plan::new(&Schedule::default(), method).unwrap(),
                    9,
                    idx,
                    DType::F32,
                    &Device::Cpu,
                    None,
                )
                .unwrap()
            };
            let all = run(&batch);
            let again = run(&batch);
            assert_eq!(
                all.to_vec2::<f32>().unwrap(),
                again.to_vec2::<f32>().unwrap()
            );
            for j in [0u64, 17, 255] {
                let alone = run(&[j]).to_vec2::<f32>().unwrap();
                assert_eq!(
                    alone[0],
                    all.get(j as usize).unwrap().to_vec1::<f32>().unwrap(),
                    "{method:?}, sample {j}"
                );
            }
        }
    }
}

#[test]
fn initial_noise_depends_only_on_seed_and_index() {
    let (z, _) = initial_noise(5, &[3, 1, 4], 6, DType::F64, &Device::Cpu).unwrap();
    let (alone, _) = initial_noise(5, &[4], 6, DType::F64, &Device::Cpu).unwrap();
    assert_eq!(rows(&z)[2], rows(&alone)[0]);
    let (other_seed, _) = initial_noise(6, &[4], 6, DType::F64, &Device::Cpu).unwrap();
    assert_ne!(rows(&other_seed)[0], rows(&alone)[0]);
    // Standard normal: over many draws, mean ~ 0 and variance ~ 1 (5 standard errors).
    let many: Vec<u64> = (0..400).collect();
    let (z, _) = initial_noise(5, &many, 50, DType::F64, &Device::Cpu).unwrap();
    let mean = z.mean_all().unwrap().to_scalar::<f64>().unwrap();
    let var = z
        .sqr()
        .unwrap()
        .mean_all()
        .unwrap()
        .to_scalar::<f64>()
        .unwrap();
    assert!(
        mean.abs() < 5.0 / (20_000f64).sqrt() && (var - 1.0).abs() < 5.0 * (2.0 / 20_000f64).sqrt()
    );
}

#[test]
fn stochastic_sampler_draws_fresh_noise_per_seed() {
    let spec = SyntheticSpec::Gaussian {
        ambient: 3,
        spectrum: Spectrum::Isotropic { variance: 1.0 },
    };
    let dist = Synthetic::new(spec, 0).unwrap();
    let method = Method::EdmStochastic(Churn::default());
    let run = |seed| {
        generate(
            &dist.mixture,
            &Plan::new(&Schedule::default(), method).unwrap(),
            seed,
            &[0, 1],
            DType::F64,
            &Device::Cpu,
            None,
        )
        .unwrap()
    };
    let (a, b) = (run(1), run(2));
    assert!(max_abs_diff(&a, &b) > 1e-3);
    // The churn changes the result relative to the deterministic Heun sampler from the same start.
    let heun = generate(
        &dist.mixture,
        &Plan::new(&Schedule::default(), Method::Heun).unwrap(),
        1,
        &[0, 1],
        DType::F64,
        &Device::Cpu,
        None,
    )
    .unwrap();
    assert!(max_abs_diff(&a, &heun) > 1e-3);
}

#[test]
fn invalid_schedules_are_rejected_with_the_parameter_named() {
    let bad = [
        Schedule {
            steps: 1,
            ..Schedule::default()
        },
        Schedule {
            sigma_min: 0.0,
            ..Schedule::default()
        },
        Schedule {
            sigma_max: 0.001,
            ..Schedule::default()
        },
        Schedule {
            rho: f64::NAN,
            ..Schedule::default()
        },
    ];
    for (s, name) in bad.iter().zip(["steps", "sigma-min", "sigma-max", "rho"]) {
        assert!(s.sigmas().unwrap_err().to_string().contains(name));
    }
    let (g, x) = gaussian_problem();
    assert!(sample(&g, &x, &[1.0, 2.0, 0.0], &Method::Euler, &mut [], None).is_err());
}

/// A denoiser whose output is tracked by autodiff (x scaled by a variable),
/// as a trained network's is.
struct Tracked(candle_core::Var);

impl Denoiser for Tracked {
    fn denoise(&self, x: &Tensor, sigma: f64) -> diffusion_regimes::Result<Tensor> {
        let scale = self.0.as_tensor().to_dtype(x.dtype())?;
        Ok((x.broadcast_mul(&scale)? / (1.0 + sigma * sigma))?)
    }
    fn dim(&self) -> usize {
        3
    }
}

/// The samplers hand back tensors with no autodiff graph behind them (each
/// step's output is detached, so a network's activations do not pile up
/// over the trajectory), with the values of the tracked computation.
#[test]
fn samples_of_a_tracked_denoiser_carry_no_graph() {
    let var = candle_core::Var::new(&[0.5f64], &Device::Cpu).unwrap();
    let tracked = Tracked(var);
    let x = gaussian(3, 0, 4, 3);
    assert!(tracked.denoise(&x, 1.0).unwrap().track_op());
    let sigmas = Schedule::default().sigmas().unwrap();
    let out = sample(&tracked, &x, &sigmas, &Method::Euler, &mut [], None).unwrap();
    assert!(!out.track_op());
    // Euler by hand on the same denoiser (f64; the order of operations may differ).
    let mut want = x.clone();
    for w in sigmas.windows(2) {
        let d = tracked.denoise(&want, w[0]).unwrap();
        let slope = ((&want - &d).unwrap() / w[0]).unwrap();
        want = (&want + (slope * (w[1] - w[0])).unwrap()).unwrap();
    }
    assert!(max_abs_diff(&out, &want) < 1e-12);
}
