//! Commands that apply a denoiser or show its output: `denoise`, `sample`, `grid`.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use clap::Args;

use diffusion_regimes::cli::sampler_names;
use diffusion_regimes::data::load_examples;
use diffusion_regimes::data::npy::{read_npy, read_rows, write_npy};
use diffusion_regimes::denoise::conditional::Guided;
use diffusion_regimes::denoise::Denoiser;
use diffusion_regimes::error::check_sigma;
use diffusion_regimes::framework::Framework;
use diffusion_regimes::plot::{write_image_grid, GridRow};
use diffusion_regimes::sample::{generate_from, initial_noise, Method, Plan, Schedule};
use diffusion_regimes::spec::class_denoiser;
use diffusion_regimes::sweep::{nearest_images, NEAREST_LABEL};
use diffusion_regimes::{Error, Result};

use crate::args::DenoiserArgs;

/// `regimes denoise`: D(x; sigma) of every row of --input.
#[derive(Args)]
pub(crate) struct DenoiseArgs {
    #[command(flatten)]
    pub(crate) denoiser: DenoiserArgs,
    #[arg(long, allow_negative_numbers = true)]
    pub(crate) sigma: f64,
    #[arg(long)]
    pub(crate) input: PathBuf,
    #[arg(long)]
    pub(crate) out: PathBuf,
}

/// `regimes sample`: samples from the same per-index noise.
#[derive(Args)]
pub(crate) struct SampleArgs {
    #[command(flatten)]
    pub(crate) denoiser: DenoiserArgs,
    /// Sample indices j, e.g. 0-255 or 0,3,7; sample j's noise depends only on (seed, j).
    #[arg(long, default_value = "0-63")]
    pub(crate) seeds: String,
    /// The run's seed.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// A registered sampler (edm-stochastic with EDM's churn defaults), or
    /// native: the framework's own sampler on --steps levels (a model's
    /// framework, or --framework's), started at its own sigma_max.
    #[arg(long, default_value = "heun", value_parser = sampler_names())]
    pub(crate) sampler: String,
    /// The framework whose native sampler runs an analytic denoiser; a
    /// model's own otherwise.
    #[arg(long)]
    pub(crate) framework: Option<Framework>,
    #[command(flatten)]
    pub(crate) schedule: ScheduleArgs,
    /// Standard-normal initial noise, one row per seed (scaled by sigma-max here).
    #[arg(long)]
    pub(crate) noise: Option<PathBuf>,
    /// Sample the class-conditional denoiser of this class: the empirical
    /// denoiser of the training points labelled K (needs --labels) or the
    /// true distribution's component K.
    #[arg(long)]
    pub(crate) class: Option<u32>,
    /// The training set's labels (.npy of integers, or an MNIST IDX1 file), one per row.
    #[arg(long)]
    pub(crate) labels: Option<PathBuf>,
    /// Classifier-free guidance weight w: (1 + w) D(x; sigma, class) - w D(x; sigma).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub(crate) guidance: f64,
    #[arg(long)]
    pub(crate) out: PathBuf,
}

/// The Karras schedule's flags (THEORY §2).
#[derive(Args)]
pub(crate) struct ScheduleArgs {
    #[arg(long, default_value_t = 18)]
    pub(crate) steps: usize,
    #[arg(long, default_value_t = 0.002)]
    pub(crate) sigma_min: f64,
    #[arg(long, default_value_t = 80.0)]
    pub(crate) sigma_max: f64,
    #[arg(long, default_value_t = 7.0)]
    pub(crate) rho: f64,
}

impl ScheduleArgs {
    pub(crate) fn schedule(&self) -> Schedule {
        Schedule {
            steps: self.steps,
            sigma_min: self.sigma_min,
            sigma_max: self.sigma_max,
            rho: self.rho,
        }
    }
}

/// `regimes denoise`.
pub(crate) fn denoise(args: DenoiseArgs) -> Result<()> {
    check_sigma(args.sigma)?;
    let dtype = args.denoiser.dtype;
    let d = args.denoiser.build()?;
    let x = read_rows_of_dim(&args.input, d.dim())?.to_dtype(dtype)?;
    // The result in the input's own shape: rows, or images.
    let shape = read_npy(&args.input)?.dims().to_vec();
    write_npy(
        &args.out,
        &d.denoise(&x, args.sigma)?.reshape(shape)?,
        dtype,
    )
}

/// `regimes sample`.
pub(crate) fn sample(args: SampleArgs) -> Result<()> {
    let indices = parse_seeds(&args.seeds)?;
    // Where sample j starts (sigmas[0] z_j) and how it moves.
    let plan = match args.sampler.as_str() {
        "native" => native_sampler(&args)?,
        name => Plan::new(&args.schedule.schedule(), name.parse::<Method>()?)?,
    };
    let dtype = args.denoiser.dtype;
    let d: Box<dyn Denoiser> = match args.class {
        None if args.labels.is_some() || args.guidance != 0.0 => {
            return Err(Error::invalid(
                "--class",
                "missing",
                "--labels and --guidance apply to a class-conditional denoiser",
            ))
        }
        None => args.denoiser.build()?,
        Some(class) => {
            let spec = args.denoiser.spec()?;
            let conditional = class_denoiser(&spec, dtype, args.labels.as_deref(), class)?;
            match args.guidance {
                0.0 => conditional,
                w => Box::new(Guided::new(conditional, args.denoiser.build()?, w)?),
            }
        }
    };
    let (mut z, mut streams) = initial_noise(args.seed, &indices, d.dim(), dtype, &Device::Cpu)?;
    if let Some(path) = &args.noise {
        z = read_rows_of_dim(path, d.dim())?.to_dtype(dtype)?;
        if z.dims()[0] != indices.len() {
            return Err(Error::format(
                path,
                format!(
                    "has {} rows but --seeds lists {} samples",
                    z.dims()[0],
                    indices.len()
                ),
            ));
        }
    }
    let x = generate_from(d.as_ref(), &plan, &z, &mut streams, None)?;
    write_npy(&args.out, &x, dtype)
}

/// `--sampler native`: the native sampler of --framework, or of the model's
/// own framework (the two must agree when both are given).
fn native_sampler(args: &SampleArgs) -> Result<Plan> {
    let own = args.denoiser.spec()?.framework()?;
    let framework = match (args.framework, own) {
        (Some(given), Some(own)) if given != own => {
            return Err(Error::invalid(
                "--framework",
                given,
                format!("the model was trained with {own}"),
            ))
        }
        (Some(f), _) | (None, Some(f)) => f,
        (None, None) => {
            return Err(Error::invalid(
                "--framework",
                "missing",
                format!(
                    "--sampler native on an analytic denoiser needs one ({})",
                    Framework::ALL.map(Framework::name).join(", ")
                ),
            ))
        }
    };
    framework.native(args.schedule.steps)
}

/// Rows of `path` whose width must equal the denoiser's dimension.
fn read_rows_of_dim(path: &Path, dim: usize) -> Result<Tensor> {
    let t = read_rows(path)?;
    if t.dims()[1] != dim {
        return Err(Error::format(
            path,
            format!(
                "rows have dimension {} but the denoiser's data have dimension {dim}",
                t.dims()[1]
            ),
        ));
    }
    Ok(t)
}

/// "0-255", "3" or "0,5,9-11" as a list of sample indices.
pub(crate) fn parse_seeds(text: &str) -> Result<Vec<u64>> {
    let bad = || Error::invalid("--seeds", text, "use a list like 0-255 or 0,3,7");
    let mut seeds = Vec::new();
    for part in text.split(',') {
        let parse = |s: &str| s.trim().parse::<u64>().map_err(|_| bad());
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (parse(a)?, parse(b)?);
                if a > b {
                    return Err(bad());
                }
                seeds.extend(a..=b);
            }
            None => seeds.push(parse(part)?),
        }
    }
    Ok(seeds)
}

pub(crate) fn grid(
    samples: &Path,
    train: Option<&Path>,
    columns: usize,
    zoom: usize,
    out: &Path,
) -> Result<()> {
    let images = read_npy(samples)?.to_dtype(DType::F32)?;
    if !matches!(images.dims(), [_, 1 | 3, _, _]) {
        return Err(Error::format(
            samples,
            format!(
                "shape {:?} is not images [K, C, H, W] with C = 1 or 3",
                images.dims()
            ),
        ));
    }
    if columns == 0 || zoom == 0 {
        return Err(Error::invalid(
            "--columns and --zoom",
            0,
            "must be at least 1",
        ));
    }
    let train = train.map(load_examples).transpose()?;
    let mut rows = Vec::new();
    for first in (0..images.dim(0)?).step_by(columns) {
        let count = columns.min(images.dim(0)? - first);
        let row = images.narrow(0, first, count)?;
        let nearest = train
            .as_ref()
            .map(|t| nearest_images(&row, t))
            .transpose()?;
        rows.push(GridRow::new(format!("{first}-{}", first + count - 1), row));
        if let Some(nearest) = nearest {
            rows.push(GridRow::new(NEAREST_LABEL, nearest));
        }
    }
    write_image_grid(out, &rows, zoom)?;
    eprintln!(
        "wrote {} rows of up to {columns} images to {}",
        rows.len(),
        out.display()
    );
    Ok(())
}
