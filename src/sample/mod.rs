//! Noise schedules and samplers of the probability-flow ODE (THEORY §2).
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use diffusion_regimes::denoise::EmpiricalDenoiser;
//! use diffusion_regimes::sample::{generate, Method, Plan, Schedule};
//! let train = Tensor::new(&[[1.0f64, 2.0], [-1.0, 0.5]], &Device::Cpu).unwrap();
//! let d = EmpiricalDenoiser::new(&train).unwrap();
//! let plan = Plan::new(&Schedule::default(), Method::Heun).unwrap();
//! let samples = generate(&d, &plan, 0, &[0, 1, 2], DType::F64, &Device::Cpu, None).unwrap();
//! assert_eq!(samples.dims(), &[3, 2]);
//! ```

mod ancestral;
mod consistency;
mod ddim;
mod edm_stochastic;
mod euler;
mod heun;
mod sampler;
mod schedule;
mod time_euler;

pub use ancestral::Ancestral;
pub use consistency::ConsistencySteps;
pub use ddim::Ddim;
pub use edm_stochastic::Churn;
pub use euler::Euler;
pub use heun::Heun;
pub use sampler::{
    generate, generate_from, initial_noise, sample, starting_points, Integrator, Method, Observe,
    Observer, Plan, Step,
};
pub use schedule::Schedule;
pub use time_euler::{TimeEuler, TimeMap};
