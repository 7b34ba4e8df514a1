//! `regimes`: the command-line interface, a thin clap layer over the library.
//! Every failure prints one line naming the problem and exits with code 2.

use std::path::Path;
use std::process::ExitCode;

use candle_core::{DType, Device, Tensor};
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches};

use diffusion_regimes::data::images::write_dataset;
use diffusion_regimes::data::npy::{read_npy, read_rows, write_npy};
use diffusion_regimes::data::{
    load_examples, ImageImport, Spectrum, Synthetic, SyntheticSpec, SPEC_FILE,
};
use diffusion_regimes::error::check_sigma;
use diffusion_regimes::experiment::{
    collect, exit_code, nearest_images, run_sweep, SweepArgs, SweepConfig, NEAREST_LABEL,
    QUICKSTART,
};
use diffusion_regimes::plot::{write_image_grid, GridRow};
use diffusion_regimes::sample::{initial_noise, sample, Schedule};
use diffusion_regimes::theory;
use diffusion_regimes::{Error, Result};

mod args;
mod measure;
mod train;

use args::{Cli, Command, DataKind};

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
fn parse_seeds(text: &str) -> Result<Vec<u64>> {
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

fn make_data(kind: DataKind) -> Result<()> {
    let (spec, common) = match kind {
        DataKind::Molrg {
            ambient,
            components,
            rank,
            floor,
            common,
        } => (
            SyntheticSpec::Molrg {
                ambient,
                ranks: vec![rank; components],
                floor,
            },
            common,
        ),
        DataKind::Gmm {
            ambient,
            components,
            mean_scale,
            std,
            common,
        } => (
            SyntheticSpec::Gmm {
                ambient,
                components,
                mean_scale,
                std,
            },
            common,
        ),
        DataKind::Gaussian {
            ambient,
            scale,
            exponent,
            common,
        } => {
            let spectrum = match exponent {
                None => Spectrum::Isotropic { variance: scale },
                Some(exponent) => Spectrum::PowerLaw { scale, exponent },
            };
            (SyntheticSpec::Gaussian { ambient, spectrum }, common)
        }
        DataKind::Import {
            path,
            format,
            size,
            grayscale,
            limit,
            array,
            out,
        } => {
            let import = ImageImport {
                format,
                size,
                grayscale,
                limit,
                array,
            };
            return import_images(&path, &import, &out);
        }
    };
    if common.n == 0 {
        return Err(Error::invalid("--n", 0, "must be at least 1"));
    }
    let dist = Synthetic::new(spec, common.seed)?;
    let data = dist.sample(common.n)?;
    write_npy(&common.out.join("data.npy"), &data, DType::F32)?;
    dist.save(&common.out)?;
    eprintln!(
        "wrote {} rows to {}",
        common.n,
        common.out.join("data.npy").display()
    );
    Ok(())
}

/// Reads every image first, so a bad input leaves no output behind.
fn import_images(path: &Path, import: &ImageImport, out: &Path) -> Result<()> {
    let images = import.read(path)?;
    write_dataset(out, &images, import, path)?;
    eprintln!(
        "read {:?} from {}; wrote {:?} to {}",
        images.source_shape,
        path.display(),
        images.pixels.dims(),
        out.join("data.npy").display()
    );
    Ok(())
}

fn grid(
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

/// The main job: the quickstart preset of the regime sweep, then the check
/// that the transition is there (issue 5's condition).
fn quickstart(args: SweepArgs) -> Result<()> {
    let config = SweepConfig::parse(QUICKSTART, Path::new("experiments/configs/quickstart.toml"))?;
    let started = std::time::Instant::now();
    let Some(results) = run_sweep(config, &args)? else {
        return Ok(());
    };
    eprintln!("quickstart took {:.0} s", started.elapsed().as_secs_f64());
    match results.transition_violations().as_slice() {
        [] => {
            println!("transition check passed: every width memorizes at the smallest N and generalizes at the largest");
            Ok(())
        }
        violations => Err(Error::invalid(
            "transition check",
            "failed",
            violations.join("; "),
        )),
    }
}

/// `regimes predict`: the analytic regime levels of THEORY §8.
fn predict(data: &Path, n: usize, json: bool, seed: u64) -> Result<()> {
    if n == 0 {
        return Err(Error::invalid("--n", n, "must be at least 1"));
    }
    let examples = load_examples(data)?;
    let synthetic = match data.join(SPEC_FILE).exists() {
        true => Some(Synthetic::load(data)?),
        false => None,
    };
    let p = theory::predict(&examples, n, synthetic.as_ref(), seed)?;
    if json {
        let text =
            serde_json::to_string_pretty(&p).map_err(|e| Error::format(data, e.to_string()))?;
        println!("{text}");
        return Ok(());
    }
    let show = |v: Option<f64>| v.map_or("none".to_string(), |v| format!("{v:.4}"));
    println!(
        "{} examples of dimension {}, training sets of N = {n}",
        p.examples, p.dim
    );
    println!("top covariance eigenvalue Lambda = {:.4}", p.top_eigenvalue);
    println!(
        "speciation sigma_S = sqrt(Lambda - 1) = {}",
        show(p.speciation_sigma)
    );
    println!(
        "collapse sigma_C, closed form (isotropic) = {}",
        show(p.collapse_sigma_closed_form)
    );
    println!(
        "collapse sigma_C, excess entropy = ln(N)/d = {}",
        show(p.collapse_sigma_entropy)
    );
    for r in p.molrg.iter().flatten() {
        println!(
            "MoLRG component {}: d_k = {}, N_k = {:.1}, N_k/d_k = {:.2}, subspace recoverable (N_k >= d_k): {}",
            r.component, r.dim, r.expected_points, r.ratio, r.recoverable
        );
    }
    Ok(())
}

fn run(cli: Cli, explicit: &[String]) -> Result<()> {
    match cli.command {
        Command::Quickstart(args) => quickstart(args),
        Command::Collect { out, figures } => {
            collect(&out, figures.as_deref().unwrap_or(&out)).map(|_| ())
        }
        Command::Grid {
            samples,
            train,
            columns,
            zoom,
            out,
        } => grid(&samples, train.as_deref(), columns, zoom, &out),
        Command::Train(args) => train::train(args, explicit),
        Command::Score { kind } => measure::score(kind),
        Command::Gap(args) => measure::gap(args),
        Command::Jacobian(args) => measure::jacobian(args),
        Command::Predict {
            data,
            n,
            json,
            seed,
        } => predict(&data, n, json, seed),
        Command::Data { kind } => make_data(kind),
        Command::Denoise {
            denoiser,
            sigma,
            input,
            out,
        } => {
            check_sigma(sigma)?;
            let d = denoiser.build()?;
            let x = read_rows_of_dim(&input, d.dim())?.to_dtype(denoiser.dtype)?;
            write_npy(&out, &d.denoise(&x, sigma)?, denoiser.dtype)
        }
        Command::Sample {
            denoiser,
            seeds,
            seed,
            sampler,
            steps,
            sigma_min,
            sigma_max,
            rho,
            noise,
            out,
        } => {
            let indices = parse_seeds(&seeds)?;
            let schedule = Schedule {
                steps,
                sigma_min,
                sigma_max,
                rho,
            };
            let sigmas = schedule.sigmas()?;
            let d = denoiser.build()?;
            let dtype = denoiser.dtype;
            let (mut z, mut streams) = initial_noise(seed, &indices, d.dim(), dtype, &Device::Cpu)?;
            if let Some(path) = noise {
                z = read_rows_of_dim(&path, d.dim())?.to_dtype(dtype)?;
                if z.dims()[0] != indices.len() {
                    return Err(Error::format(
                        &path,
                        format!(
                            "has {} rows but --seeds lists {} samples",
                            z.dims()[0],
                            indices.len()
                        ),
                    ));
                }
            }
            let x = sample(
                d.as_ref(),
                &(z * sigma_max)?,
                &sigmas,
                &sampler,
                &mut streams,
                None,
            )?;
            write_npy(&out, &x, dtype)
        }
    }
}

/// The subcommand's flags given on the command line (not filled from defaults).
fn explicit_flags(matches: &ArgMatches) -> Vec<String> {
    let Some((name, sub)) = matches.subcommand() else {
        return Vec::new();
    };
    let command = Cli::command();
    let Some(args) = command.find_subcommand(name) else {
        return Vec::new();
    };
    args.get_arguments()
        .map(|a| a.get_id().as_str())
        .filter(|id| sub.value_source(id) == Some(ValueSource::CommandLine))
        .map(str::to_string)
        .collect()
}

fn main() -> ExitCode {
    let parsed = Cli::command()
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m).map(|cli| (cli, explicit_flags(&m))));
    let (cli, explicit) = match parsed {
        Ok(parsed) => parsed,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let jobs = match &cli.command {
        Command::Quickstart(args) => args.jobs(),
        _ => 1,
    };
    diffusion_regimes::experiment::set_tensor_threads(jobs);
    exit_code(run(cli, &explicit))
}
