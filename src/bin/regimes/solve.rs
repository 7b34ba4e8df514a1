//! `regimes solve`: reconstructions from linear measurements of clean
//! samples, by a posterior solver around any denoiser (THEORY §11).

use std::path::PathBuf;

use clap::Args;

use diffusion_regimes::data::npy::{read_npy, write_npy};
use diffusion_regimes::inverse::{
    exact_posterior, solve as solve_with, Operator, OperatorSpec, Problems, Solver,
};
use diffusion_regimes::sample::{sample, Method};
use diffusion_regimes::{Error, Result};

use crate::args::DenoiserArgs;
use crate::generate::{parse_seeds, ScheduleArgs};

/// `regimes solve`: one reconstruction per clean sample and per seed.
#[derive(Args)]
pub(crate) struct SolveArgs {
    #[command(flatten)]
    pub(crate) denoiser: DenoiserArgs,
    /// Clean samples to measure: an .npy file of rows [K, n] or images [K, C, H, W].
    #[arg(long)]
    pub(crate) measure: PathBuf,
    /// inpaint:MASK.npy (1 = observed), inpaint-box:R0,C0,H,W (the hidden
    /// box), downsample:F or project:M,SEED.
    #[arg(long)]
    pub(crate) operator: OperatorSpec,
    /// Standard deviation s_y of the measurement noise (seeded by --seed and the clean row).
    #[arg(long, default_value_t = 0.0)]
    pub(crate) noise_y: f64,
    /// dps, projection, or posterior: the exact posterior of an empirical or
    /// gaussian prior (needs --noise-y > 0), sampled with Euler.
    #[arg(long, default_value = "dps")]
    pub(crate) solver: String,
    /// DPS's guidance weight: the likelihood score is -zeta grad ||y - A D||.
    #[arg(long, default_value_t = 10.0)]
    pub(crate) zeta: f64,
    /// Initial-noise indices j; every clean sample is solved from each z_j.
    #[arg(long, default_value = "0-7")]
    pub(crate) seeds: String,
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    #[command(flatten)]
    pub(crate) schedule: ScheduleArgs,
    /// Reconstructions, row k S + j for clean row k and seed j, shaped like
    /// --measure's rows; the measurements [K, m] go beside it as
    /// OUT.measurements.npy.
    #[arg(long)]
    pub(crate) out: PathBuf,
}

/// `regimes solve`.
pub(crate) fn solve(args: SolveArgs) -> Result<()> {
    let indices = parse_seeds(&args.seeds)?;
    let sigmas = args.schedule.schedule().sigmas()?;
    let dtype = args.denoiser.dtype;
    let clean = read_npy(&args.measure)?;
    let (count, sample_shape) = match clean.dims() {
        [k, rest @ ..] if !rest.is_empty() && *k > 0 => (*k, rest.to_vec()),
        dims => {
            return Err(Error::format(
                &args.measure,
                format!("has shape {dims:?}; need rows [K, n] or images [K, C, H, W]"),
            ))
        }
    };
    let a = Operator::new(&args.operator, &sample_shape)?;
    let clean = clean.reshape((count, a.dim()))?.to_dtype(dtype)?;
    let problems = Problems::new(
        &a,
        &clean,
        args.noise_y,
        args.seed,
        &indices,
        args.schedule.sigma_max,
    )?;
    let (y, x) = (&problems.y, &problems.x);
    let reconstructions = match args.solver.as_str() {
        "posterior" => {
            let prior = args.denoiser.spec()?;
            let posterior = exact_posterior(&prior, dtype, &a, y, args.noise_y)?;
            sample(
                posterior.as_ref(),
                x,
                &sigmas,
                &Method::Euler,
                &mut [],
                None,
            )?
        }
        name => {
            let solver = match name.parse::<Solver>() {
                Ok(Solver::Dps { .. }) => Solver::Dps { zeta: args.zeta },
                Ok(other) => other,
                Err(_) => {
                    return Err(Error::invalid(
                        "--solver",
                        name,
                        format!("use {} or posterior", Solver::NAMES.join(", ")),
                    ))
                }
            };
            let d = args.denoiser.build()?;
            if d.dim() != a.dim() {
                return Err(Error::format(
                    &args.measure,
                    format!(
                        "samples have dimension {}, the denoiser {}",
                        a.dim(),
                        d.dim()
                    ),
                ));
            }
            solve_with(d.as_ref(), &a, y, solver, x, &sigmas)?
        }
    };
    let mut shape = vec![count * indices.len()];
    shape.extend(&sample_shape);
    let beside = args.out.with_extension("measurements.npy");
    write_npy(&beside, &problems.measurements, dtype)?;
    // Both files or neither.
    write_npy(&args.out, &reconstructions.reshape(shape)?, dtype).inspect_err(|_| {
        let _ = std::fs::remove_file(&beside);
    })
}
