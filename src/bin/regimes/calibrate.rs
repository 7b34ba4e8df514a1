//! `regimes calibrate-patches`: a patch denoiser's k(sigma) fitted to a
//! trained network along the network's own trajectory (THEORY §12).

use std::path::PathBuf;

use candle_core::{DType, Device};
use clap::Args;

use diffusion_regimes::denoise::{Denoiser, PatchKind};
use diffusion_regimes::experiments::calibrate_patches;
use diffusion_regimes::metrics::Similarity;
use diffusion_regimes::nn::checkpoint::{load_model, Weights, TRAIN_FILE};
use diffusion_regimes::sample::{starting_points, Method};
use diffusion_regimes::spec::training_images;
use diffusion_regimes::{Error, Result};

use crate::generate::{parse_seeds, ScheduleArgs};
use crate::train::parse_list;

#[derive(Args)]
pub(crate) struct CalibrateArgs {
    /// Run folder written by `regimes train` (its EMA weights).
    #[arg(long)]
    pub(crate) model: PathBuf,
    /// The patch denoiser: local, els, els-boundary or window-mean.
    #[arg(long)]
    pub(crate) denoiser: PatchKind,
    /// Training images [N, C, H, W] of the patch denoiser [default: the run's train.npy].
    #[arg(long)]
    pub(crate) train: Option<PathBuf>,
    /// Candidate patch sizes (odd) [default: 1, 3, ... up to the image's larger side].
    #[arg(long)]
    pub(crate) sizes: Option<String>,
    /// Sample indices whose trajectories are scored, e.g. 0-7.
    #[arg(long, default_value = "0-7")]
    pub(crate) seeds: String,
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// A deterministic sampler: heun, euler or ddim.
    #[arg(long, default_value = "heun")]
    pub(crate) sampler: String,
    #[command(flatten)]
    pub(crate) schedule: ScheduleArgs,
    /// cosine (of the scores; the best is highest) or normalized-l2 (lowest).
    #[arg(long, default_value = "cosine", value_parser = parse_similarity)]
    pub(crate) similarity: Similarity,
    /// The schedule file (CSV: sigma, k, score, one column per size).
    #[arg(long)]
    pub(crate) out: PathBuf,
}

fn parse_similarity(text: &str) -> Result<Similarity> {
    match text {
        "cosine" => Ok(Similarity::Cosine),
        "normalized-l2" => Ok(Similarity::NormalizedL2),
        _ => Err(Error::invalid(
            "--similarity",
            text,
            "use cosine or normalized-l2",
        )),
    }
}

/// `regimes calibrate-patches`.
pub(crate) fn calibrate(args: CalibrateArgs) -> Result<()> {
    let sampler: Method = match args.sampler.as_str() {
        "heun" | "euler" | "ddim" => args.sampler.parse()?,
        other => {
            return Err(Error::invalid(
                "--sampler",
                other,
                "use heun, euler or ddim",
            ))
        }
    };
    let model = load_model(&args.model, Weights::Ema, &Device::Cpu)?;
    let train_file = args
        .train
        .clone()
        .unwrap_or_else(|| args.model.join(TRAIN_FILE));
    let train = training_images(&train_file, DType::F32)?.to_dtype(DType::F32)?;
    let longest = train.dim(2)?.max(train.dim(3)?);
    let sizes = match &args.sizes {
        Some(text) => parse_list(text, "--sizes")?,
        None => (1..=longest).step_by(2).collect(),
    };
    let indices = parse_seeds(&args.seeds)?;
    let dim = model.dim();
    let sigmas = args.schedule.schedule().sigmas()?;
    let (start, _) = starting_points(
        args.seed,
        &indices,
        dim,
        sigmas[0],
        DType::F32,
        &Device::Cpu,
    )?;
    let calibration = calibrate_patches(
        &model,
        args.denoiser,
        &train,
        &sizes,
        (&start, &sigmas),
        &sampler,
        args.similarity,
    )?;
    calibration.write(&args.out)?;
    println!("sigma      k  {}", args.similarity.name());
    for step in &calibration.steps {
        let best = sizes.iter().position(|&k| k == step.k).unwrap_or(0);
        println!(
            "{:<9.4} {:>2}  {:.4}",
            step.sigma, step.k, step.scores[best]
        );
    }
    println!("wrote {}", args.out.display());
    Ok(())
}
