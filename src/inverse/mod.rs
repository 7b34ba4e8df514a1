//! Inverse problems y = A x + s_y e with a known linear A (THEORY §11): the
//! operators, the exact posterior denoisers of the empirical and Gaussian
//! priors (the memorizing and Gaussian references), and the DPS and
//! range-null projection solvers, which take any [`crate::denoise::Denoiser`].
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use diffusion_regimes::denoise::EmpiricalDenoiser;
//! use diffusion_regimes::inverse::{solve, Operator, OperatorSpec, Solver};
//! use diffusion_regimes::sample::Schedule;
//! let train = Tensor::new(&[[1.0f64, 2.0, 3.0], [-1.0, 0.5, 2.0]], &Device::Cpu).unwrap();
//! let d = EmpiricalDenoiser::new(&train).unwrap();
//! // Observe the first coordinate of training point 1 only.
//! let a = Operator::from_matrix(&faer::Mat::from_fn(1, 3, |_, j| f64::from(j == 0))).unwrap();
//! let y = a.apply(&train.narrow(0, 1, 1).unwrap()).unwrap();
//! let sigmas = Schedule::default().sigmas().unwrap();
//! let x = Tensor::new(&[[0.3f64, -0.2, 0.1]], &Device::Cpu).unwrap() * sigmas[0];
//! let x = solve(&d, &a, &y, Solver::Projection, &x.unwrap(), &sigmas).unwrap();
//! let x = x.to_vec2::<f64>().unwrap();
//! assert!((x[0][1] - 0.5).abs() < 1e-6 && (x[0][2] - 2.0).abs() < 1e-6);
//! // The command line names operators: downsample:2, project:64,0, ...
//! assert_eq!("downsample:2".parse::<OperatorSpec>().unwrap(), OperatorSpec::Downsample(2));
//! ```

mod operator;
mod posterior;
mod solver;

pub use operator::{Operator, OperatorSpec};
pub use posterior::{exact_posterior, EmpiricalPosterior, GaussianPosterior};
pub use solver::{solve, Problems, Solver};
