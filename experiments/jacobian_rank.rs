//! Effective rank / n of the denoiser Jacobian dD/dx against sigma (THEORY §7),
//! for trained models in both regimes and for the analytic denoisers: the
//! empirical denoiser of the same training sets and the true MoLRG denoiser.
//! Averaged over noisy points x = y + sigma z with y fresh from the distribution.
//!
//! cargo run --release --bin jacobian_rank -- experiments/configs/jacobian_rank.toml

use std::process::ExitCode;

use candle_core::{DType, Device};
use clap::Parser;
use serde::Deserialize;

use diffusion_regimes::denoise::Denoiser;
use diffusion_regimes::experiment::{
    exit_code, load_toml, write_csv_and_figure, ExperimentCli, Sweep, SweepConfig,
};
use diffusion_regimes::metrics::{effective_rank, singular_values};
use diffusion_regimes::plot::{Axis, LineChart, Scale, Series};
use diffusion_regimes::sample::initial_noise;
use diffusion_regimes::Result;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RankConfig {
    sigmas: Vec<f64>,
    /// Noisy points per sigma.
    points: usize,
    /// The sweep that trains the models (its ns pick the regimes).
    sweep: SweepConfig,
}

/// Mean effective rank / n of `d`'s Jacobian over `points` noisy points per sigma.
fn rank_curve(
    d: &dyn Denoiser,
    sweep: &Sweep,
    sigmas: &[f64],
    points: usize,
) -> Result<Vec<(f64, f64)>> {
    let n = d.dim();
    let y = sweep.fresh.narrow(0, 0, points.min(sweep.fresh.dim(0)?))?;
    let indices: Vec<u64> = (0..y.dim(0)? as u64).collect();
    let (z, _) = initial_noise(
        sweep.config.sampling.seed,
        &indices,
        n,
        DType::F64,
        &Device::Cpu,
    )?;
    sigmas
        .iter()
        .map(|&sigma| {
            let x = (&y + (&z * sigma)?)?;
            let jacobians = d.jacobian(&x, sigma)?;
            let mut total = 0.0;
            for b in 0..indices.len() {
                let s = singular_values(&jacobians.get(b)?)?;
                total += effective_rank(&s, 0.99) as f64 / n as f64;
            }
            Ok((sigma, total / indices.len() as f64))
        })
        .collect()
}

fn run(cli: &ExperimentCli) -> Result<()> {
    let c: RankConfig = load_toml(&cli.config_or("experiments/configs/jacobian_rank.toml"))?;
    let out = cli.sweep.out(&c.sweep);
    let figures = cli.sweep.figures.clone().unwrap_or_else(|| out.clone());
    let sweep = cli.sweep.prepare(c.sweep.clone())?;
    sweep.run(cli.sweep.shard, cli.sweep.jobs())?;
    let mut curves: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    if let Some(truth) = &sweep.truth {
        curves.push((
            "true MoLRG denoiser".into(),
            rank_curve(&truth.mixture, &sweep, &c.sigmas, c.points)?,
        ));
    }
    for cell in Sweep::grid(&c.sweep) {
        let label = format!("{} N = {}", cell.model.label(), cell.n);
        let curve = rank_curve(&*cell.denoiser(&sweep)?.0, &sweep, &c.sigmas, c.points)?;
        curves.push((label, curve));
    }
    let mut csv = String::from("denoiser,sigma,effective_rank_over_n\n");
    for (label, curve) in &curves {
        for (sigma, r) in curve {
            csv.push_str(&format!("{label},{sigma},{r}\n"));
        }
        println!(
            "{label}: {:?}",
            curve
                .iter()
                .map(|p| (p.0, (p.1 * 1000.0).round() / 1000.0))
                .collect::<Vec<_>>()
        );
    }
    let series = curves
        .into_iter()
        .enumerate()
        .map(|(k, (label, points))| Series {
            dashed: label.starts_with("empirical"),
            label,
            points,
            color: k,
            ..Series::default()
        })
        .collect();
    let chart = LineChart {
        title: "Jacobian effective rank (99% energy) / n".into(),
        x: Axis {
            label: "noise level sigma".into(),
            scale: Scale::Log10,
            range: None,
        },
        y: Axis {
            label: "effective rank / n".into(),
            scale: Scale::Linear,
            range: Some((0.0, 1.0)),
        },
        series,
        shades: Vec::new(),
    };
    write_csv_and_figure(&figures, "jacobian_rank", &csv, &chart)?;
    eprintln!(
        "wrote jacobian_rank.csv and figures to {}",
        figures.display()
    );
    Ok(())
}

fn main() -> ExitCode {
    let cli = ExperimentCli::parse();
    diffusion_regimes::experiment::set_tensor_threads(cli.sweep.jobs());
    exit_code(run(&cli))
}
