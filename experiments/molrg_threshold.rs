//! Does the memorization-generalization transition on MoLRG data scale with
//! the intrinsic dimension d_k and not with the ambient dimension n
//! (THEORY §8)? One sweep per (d_k, n) at N_k / d_k = the configured ratios,
//! then the generalization score against N_k / d_k.
//!
//! cargo run --release --bin molrg_threshold -- experiments/configs/molrg_threshold.toml

use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use serde::Deserialize;

use diffusion_regimes::data::SyntheticSpec;
use diffusion_regimes::experiment::{
    collect, crossing, exit_code, load_toml, write_csv_and_figure, DataSource, ExperimentCli,
    MetricSettings, SamplingSettings, SweepArgs, SweepConfig, TrainSettings,
};
use diffusion_regimes::nn::Arch;
use diffusion_regimes::plot::{Axis, LineChart, Scale, Series};
use diffusion_regimes::Result;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ThresholdConfig {
    name: String,
    /// Intrinsic dimensions d_k (every component has the same).
    ranks: Vec<usize>,
    /// Ambient dimensions n.
    ambients: Vec<usize>,
    components: usize,
    /// N_k / d_k; N = ratio * K * d_k.
    ratios: Vec<f64>,
    model: Arch,
    train: TrainSettings,
    sampling: SamplingSettings,
    metrics: MetricSettings,
}

/// The sweep of one (d_k, n): the configured model at every ratio.
fn sweep_config(c: &ThresholdConfig, rank: usize, ambient: usize) -> SweepConfig {
    let ns = c
        .ratios
        .iter()
        .map(|r| ((r * (c.components * rank) as f64).round() as usize).max(1))
        .collect();
    SweepConfig {
        name: format!("d{rank}-n{ambient}"),
        data: DataSource {
            synthetic: Some(SyntheticSpec::Molrg {
                ambient,
                ranks: vec![rank; c.components],
                floor: 0.0,
            }),
            file: None,
            import: None,
            seed: 0,
            rows: None,
            shape: None,
        },
        ns,
        subset_seed: 0,
        models: vec![c.model.clone()],
        seeds: vec![0],
        train: c.train.clone(),
        sampling: c.sampling.clone(),
        metrics: c.metrics.clone(),
    }
}

fn run(cli: &ExperimentCli) -> Result<()> {
    let c: ThresholdConfig = load_toml(&cli.config_or("experiments/configs/molrg_threshold.toml"))?;
    let out = cli
        .sweep
        .out
        .clone()
        .unwrap_or_else(|| Path::new("runs").join(&c.name));
    let figures = cli.sweep.figures.clone().unwrap_or_else(|| out.clone());
    let (mut series, mut csv) = (
        Vec::new(),
        String::from("rank,ambient,n,ratio,generalization,ci_low,ci_high\n"),
    );
    let mut complete = true;
    for &rank in &c.ranks {
        for &ambient in &c.ambients {
            let config = sweep_config(&c, rank, ambient);
            let args = SweepArgs {
                out: Some(out.join(&config.name)),
                figures: Some(out.join(&config.name)),
                ..cli.sweep.clone()
            };
            let root = args.out(&config);
            let sweep = args.prepare(config)?;
            sweep.run(args.shard, args.jobs())?;
            let Some(results) = collect(&root, &root)? else {
                complete = false;
                continue;
            };
            let per_dim = (c.components * rank) as f64;
            let label = results.trained()[0].clone();
            let points: Vec<(f64, f64)> = results
                .curve(&label, |cell| cell.generalization.value)
                .into_iter()
                .map(|(n, g)| (n / per_dim, g))
                .collect();
            for cell in &results.cells {
                if cell.label == label {
                    let g = cell.generalization;
                    csv.push_str(&format!(
                        "{rank},{ambient},{},{},{},{},{}\n",
                        cell.cell.n,
                        cell.cell.n as f64 / per_dim,
                        g.value,
                        g.ci95[0],
                        g.ci95[1]
                    ));
                }
            }
            let star = crossing(&points, 0.5).map_or("none".into(), |r| format!("{r:.2}"));
            println!("d_k = {rank}, n = {ambient}: GL crosses 0.5 at N_k/d_k = {star}");
            series.push(Series {
                label: format!(
                    "d_k = {rank}, n = {ambient}{}",
                    if ambient == c.ambients[0] {
                        ""
                    } else {
                        " (dashed)"
                    }
                ),
                points,
                dashed: ambient != c.ambients[0],
                color: c.ranks.iter().position(|&r| r == rank).unwrap_or(0),
                ..Series::default()
            });
        }
    }
    if !complete {
        return Ok(());
    }
    let chart = LineChart {
        title: "MoLRG: generalization vs samples per intrinsic dimension".into(),
        x: Axis {
            label: "N_k / d_k (training points per component / its dimension)".into(),
            scale: Scale::Log2,
            range: None,
        },
        y: Axis {
            label: "generalization score".into(),
            scale: Scale::Linear,
            range: Some((0.0, 1.0)),
        },
        series,
        shades: Vec::new(),
    };
    write_csv_and_figure(&figures, "molrg_threshold", &csv, &chart)?;
    eprintln!(
        "wrote molrg_threshold.csv and figures to {}",
        figures.display()
    );
    Ok(())
}

fn main() -> ExitCode {
    let cli = ExperimentCli::parse();
    diffusion_regimes::experiment::set_tensor_threads(cli.sweep.jobs());
    exit_code(run(&cli))
}
