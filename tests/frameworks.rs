//! Training frameworks as adapters to the one VE denoiser (THEORY §9): each
//! framework's closed-form native predictor (epsilon, F, velocity), written
//! here from its own definition, becomes the exact denoiser again through
//! the crate's scalings; the native samplers of the empirical optimum (for
//! consistency models, of its ODE's endpoint) all end on the training point
//! VE Heun ends on; golden schedule values.

mod common;

use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use common::{by_name, max_abs_diff};
use diffusion_regimes::data::{Synthetic, SyntheticSpec};
use diffusion_regimes::denoise::{Denoiser, EmpiricalDenoiser};
use diffusion_regimes::framework::{Framework, VpEps};
use diffusion_regimes::nn::{Network, Precond};
use diffusion_regimes::sample::{generate, sample, Method, Plan, Schedule, TimeMap};

const BETA_D: f64 = 19.9;
const BETA_MIN: f64 = 0.1;

/// sigma of a noise-conditioning value, per framework, from the papers'
/// definitions (not from the crate's scalings).
fn sigma_of(framework: Framework, c_noise: f64) -> f64 {
    match framework.name() {
        "edm" => (4.0 * c_noise).exp(),
        "ve" => 2.0 * c_noise.exp(),
        "vp" => (0.5 * BETA_D * c_noise * c_noise + BETA_MIN * c_noise)
            .exp_m1()
            .sqrt(),
        "flow" | "flow-uniform" => c_noise / (1.0 - c_noise),
        "consistency" | "consistency-distillation" => (4.0 * c_noise).exp(),
        "vp-eps" => {
            // Bisect on the crate's continuous timestep (its definition is
            // checked against the integer schedule below).
            let schedule = VpEps::ddpm();
            let target = c_noise * schedule.steps() as f64;
            let (mut lo, mut hi) = (1e-6f64, 1e4f64);
            for _ in 0..200 {
                let mid = (lo * hi).sqrt();
                match schedule.time(mid) < target {
                    true => lo = mid,
                    false => hi = mid,
                }
            }
            (lo * hi).sqrt()
        }
        other => panic!("no reference definition for framework {other}"),
    }
}

/// The exact denoiser's native predictor in `framework`'s variables: what a
/// perfectly trained network of that framework outputs.
struct Oracle<D> {
    framework: Framework,
    exact: Arc<D>,
    sigma_data: f64,
}

impl<D: Denoiser + Send + Sync + 'static> Network for Oracle<D> {
    fn forward(
        &self,
        x_in: &Tensor,
        c_noise: &Tensor,
        _: Option<&Tensor>,
    ) -> diffusion_regimes::Result<Tensor> {
        let noise = c_noise.to_dtype(DType::F64)?.to_vec1::<f64>()?;
        let mut rows = Vec::new();
        for (b, &c) in noise.iter().enumerate() {
            let x_in = x_in.narrow(0, b, 1)?;
            let sigma = sigma_of(self.framework, c);
            let sd = self.sigma_data;
            let out = match self.framework.name() {
                // F = (D - c_skip x) / c_out with EDM's scalings of x = x_in sqrt(sigma^2 + sd^2).
                "edm" => {
                    let total = sigma * sigma + sd * sd;
                    let x = (&x_in * total.sqrt())?;
                    let d = self.exact.denoise(&x, sigma)?;
                    ((d - (&x * (sd * sd / total))?)? / (sigma * sd / total.sqrt()))?
                }
                // Score-SDE: D = x + sigma F, x the VE state itself.
                "ve" => ((self.exact.denoise(&x_in, sigma)? - &x_in)? / sigma)?,
                // x_VP = sqrt(ab) y + sqrt(1 - ab) eps with ab = 1 / (1 + sigma^2):
                // eps = (x_VP - sqrt(ab) E[y | x_VP]) / sqrt(1 - ab).
                "vp" | "vp-eps" => {
                    let alpha_bar = 1.0 / (1.0 + sigma * sigma);
                    let y = self.exact.denoise(&(&x_in / alpha_bar.sqrt())?, sigma)?;
                    ((&x_in - (y * alpha_bar.sqrt())?)? / (1.0 - alpha_bar).sqrt())?
                }
                // x_t = (1 - t) y + t z, v = z - y: v = (x_t - E[y | x_t]) / t.
                "flow" | "flow-uniform" => {
                    let t = c;
                    let y = self.exact.denoise(&(&x_in / (1.0 - t))?, sigma)?;
                    ((&x_in - y)? / t)?
                }
                // Song et al.'s f = c_skip x + c_out F, with x = x_in sqrt(sigma^2 + sd^2)
                // and the boundary sigma_min = 0.002: F = (f - c_skip x) / c_out.
                "consistency" | "consistency-distillation" => {
                    let total = sigma * sigma + sd * sd;
                    let above = sigma - 0.002;
                    let x = (&x_in * total.sqrt())?;
                    let f = self.exact.denoise(&x, sigma)?;
                    let c_skip = sd * sd / (above * above + sd * sd);
                    ((f - (&x * c_skip)?)? / (sd * above / total.sqrt()))?
                }
                other => panic!("no oracle for framework {other}"),
            };
            rows.push(out);
        }
        Ok(Tensor::cat(&rows, 0)?)
    }
}

/// The oracle of `exact` behind the crate's preconditioning for `framework`.
fn oracle_model<D: Denoiser + Send + Sync + 'static>(
    framework: Framework,
    exact: Arc<D>,
) -> Precond {
    let sigma_data = 0.7;
    let dim = exact.dim();
    let oracle = Oracle {
        framework,
        exact,
        sigma_data,
    };
    Precond::new(
        Box::new(oracle),
        framework.parameterisation(sigma_data, -1.2, 1.2),
        vec![dim],
        &Device::Cpu,
    )
}

/// Precond's D computed in f64 (its Denoiser calls run the network in f32).
fn denoise_f64(model: &Precond, x: &Tensor, sigma: f64) -> Tensor {
    let b = x.dim(0).unwrap();
    let sigmas = Tensor::full(sigma, b, &Device::Cpu).unwrap();
    model.forward(x, &sigmas, None).unwrap()
}

#[test]
fn exact_molrg_denoiser_through_every_parameterisation_is_the_identity() {
    let spec = SyntheticSpec::Molrg {
        ambient: 6,
        ranks: vec![2, 2],
        floor: 0.0,
    };
    let truth = Arc::new(Synthetic::new(spec, 3).unwrap().mixture);
    let x = common::gaussian(5, 0, 7, 6);
    for framework in Framework::ALL {
        let model = oracle_model(framework, truth.clone());
        for sigma in [0.015, 0.2, 1.0, 7.0, 60.0] {
            let direct = truth
                .denoise(&(&x * (1.0 + sigma)).unwrap(), sigma)
                .unwrap();
            let mapped = denoise_f64(&model, &(&x * (1.0 + sigma)).unwrap(), sigma);
            let err = max_abs_diff(&direct, &mapped);
            assert!(err < 1e-10, "{framework} at sigma {sigma}: {err:e}");
        }
    }
}

/// A framework's model as an f64 denoiser, for samplers.
struct F64(Precond);

impl Denoiser for F64 {
    fn denoise(&self, x: &Tensor, sigma: f64) -> diffusion_regimes::Result<Tensor> {
        Ok(denoise_f64(&self.0, x, sigma))
    }

    fn dim(&self) -> usize {
        self.0.dim()
    }
}

/// The exact consistency function of `exact` (THEORY §16): the endpoint of
/// its probability-flow ODE from x at sigma, by Heun on `steps` EDM levels
/// from sigma down.
struct OdeEndpoint<D> {
    exact: Arc<D>,
    steps: usize,
}

impl<D: Denoiser> Denoiser for OdeEndpoint<D> {
    fn denoise(&self, x: &Tensor, sigma: f64) -> diffusion_regimes::Result<Tensor> {
        let levels = Schedule {
            steps: self.steps,
            sigma_max: sigma,
            ..Schedule::default()
        }
        .sigmas()?;
        sample(
            self.exact.as_ref(),
            x,
            &levels,
            &Method::Heun,
            &mut [],
            None,
        )
    }

    fn dim(&self) -> usize {
        self.exact.dim()
    }
}

/// The index of the training row nearest each row of `x`, and that distance.
fn nearest(x: &Tensor, train: &Tensor) -> Vec<(usize, f64)> {
    let train = common::rows(train);
    common::rows(x)
        .iter()
        .map(|row| {
            let d = |t: &Vec<f64>| t.iter().zip(row).map(|(a, b)| (a - b).powi(2)).sum::<f64>();
            let best = (0..train.len())
                .min_by(|&a, &b| d(&train[a]).total_cmp(&d(&train[b])))
                .unwrap();
            (best, d(&train[best]).sqrt())
        })
        .collect()
}

#[test]
fn native_samplers_of_the_empirical_optimum_land_where_ve_heun_lands() {
    let train = common::gaussian(11, 0, 5, 3);
    let empirical = Arc::new(EmpiricalDenoiser::new(&train).unwrap());
    let indices: Vec<u64> = (0..24).collect();
    let schedule = Schedule {
        steps: 256,
        ..Schedule::default()
    };
    let heun = generate(
        empirical.as_ref(),
        &Plan::new(&schedule, Method::Heun).unwrap(),
        9,
        &indices,
        DType::F64,
        &Device::Cpu,
        None,
    )
    .unwrap();
    let reference = nearest(&heun, &train);
    assert!(reference.iter().all(|&(_, d)| d < 1e-6), "{reference:?}");
    // Every training point is reached by some noise, so basins differ.
    let reached: std::collections::BTreeSet<usize> = reference.iter().map(|r| r.0).collect();
    assert!(reached.len() >= 3, "{reached:?}");
    for framework in Framework::ALL {
        // A consistency model's exact function is the ODE's endpoint (THEORY §16).
        let model = match framework.name() {
            "consistency" | "consistency-distillation" => F64(oracle_model(
                framework,
                Arc::new(OdeEndpoint {
                    exact: empirical.clone(),
                    steps: schedule.steps,
                }),
            )),
            _ => F64(oracle_model(framework, empirical.clone())),
        };
        let native = framework.native(1000).unwrap();
        let x = generate(&model, &native, 9, &indices, DType::F64, &Device::Cpu, None).unwrap();
        let landed = nearest(&x, &train);
        // VP's grid ends at t = 1e-3 (sigma = 0.0105), and near t = 0 sigma
        // grows like sqrt(t), so its last Euler step in t removes only half
        // of the remaining noise (EDM's VP sampler does the same): about
        // sigma / 2 times the distance from x to D is left.
        let tolerance = match framework.name() {
            "vp" => 0.02,
            _ => 1e-4,
        };
        for (j, (got, want)) in landed.iter().zip(&reference).enumerate() {
            assert_eq!(got.0, want.0, "{framework}, sample {j}");
            assert!(
                got.1 < tolerance,
                "{framework}, sample {j}: {} from the point",
                got.1
            );
        }
    }
}

#[test]
fn native_schedules_start_at_each_frameworks_own_sigma_max() {
    let ddpm = VpEps::ddpm();
    // THEORY §9's golden values of the linear betas 1e-4..0.02, T = 1000.
    for (t, sigma) in [(1, 0.0100), (500, 3.42), (1000, 157.4)] {
        let got = ddpm.sigma(t);
        assert!((got - sigma).abs() < 0.005 * sigma, "sigma_{t} = {got}");
        assert!((ddpm.time(got) - t as f64).abs() < 1e-9, "t({got})");
    }
    let first = |f: Framework| f.native(10).unwrap().sigmas[0];
    assert!((first(by_name("vp-eps")) - ddpm.sigma(1000)).abs() < 1e-12);
    assert!((first(Framework::EDM) - 80.0).abs() < 1e-12);
    assert!((first(by_name("ve")) - 100.0).abs() < 1e-9);
    let vp_max = (0.5 * BETA_D + BETA_MIN).exp_m1().sqrt();
    assert!((first(by_name("vp")) - vp_max).abs() < 1e-9);
    assert!((first(by_name("flow")) - 999.0).abs() < 1e-6);
    for framework in Framework::ALL {
        let sigmas = framework.native(10).unwrap().sigmas;
        assert_eq!(sigmas.last(), Some(&0.0), "{framework}");
        assert!(
            sigmas.windows(2).all(|w| w[0] > w[1]),
            "{framework}: {sigmas:?}"
        );
    }
    assert!(by_name("ve").native(1).is_err());
}

#[test]
fn vp_time_map_derivatives_match_finite_differences() {
    let vp = diffusion_regimes::framework::Vp::default();
    for t in [0.01, 0.3, 0.9] {
        let h = 1e-6;
        let fd = |f: &dyn Fn(f64) -> f64| (f(t + h) - f(t - h)) / (2.0 * h);
        let sigma_dot = fd(&|t| vp.sigma(t));
        let scale_dot = fd(&|t| vp.scale(t));
        assert!(
            (vp.sigma_dot(t) - sigma_dot).abs() < 1e-5 * sigma_dot.abs(),
            "t = {t}"
        );
        assert!((vp.scale_dot(t) - scale_dot).abs() < 1e-6, "t = {t}");
        assert!((vp.time(vp.sigma(t)) - t).abs() < 1e-12);
        assert!((vp.scale(t) - 1.0 / (1.0 + vp.sigma(t).powi(2)).sqrt()).abs() < 1e-14);
    }
}
