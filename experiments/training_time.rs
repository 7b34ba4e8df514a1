//! The training-time axis (Bonnaire et al. 2025, THEORY §8): one model per N
//! trained in segments up to log-spaced steps; after each segment the EMA
//! model is sampled and scored. The onset of memorization (the step at which
//! half the samples are memorized) is fitted against N, ln t = a + b ln N, and
//! the time to generalize is the step at which the gap to the true denoiser
//! is smallest.
//!
//! cargo run --release --bin training_time -- experiments/configs/training_time.toml

use std::path::Path;
use std::process::ExitCode;

use candle_core::DType;
use clap::Parser;
use serde::{Deserialize, Serialize};

use diffusion_regimes::denoise::EmpiricalDenoiser;
use diffusion_regimes::experiment::{
    crossing, exit_code, least_squares, load_toml, measure, progress_bar, run_parallel,
    train_config, Cell, DataExperimentCli, Model, Sweep, SweepConfig,
};
use diffusion_regimes::io::{read, write_atomic};
use diffusion_regimes::nn::checkpoint::{load_model, Weights, STATE_FILE};
use diffusion_regimes::nn::train::Trainer;
use diffusion_regimes::plot::{save_figure, Axis, LineChart, Scale, Series};
use diffusion_regimes::{Error, Result};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TimeConfig {
    /// Steps after which each model is sampled and scored (increasing).
    checkpoints: Vec<u64>,
    /// The grid: its ns, models and seeds; train.steps is ignored.
    sweep: SweepConfig,
}

/// One model at one checkpoint (`time/step-XXXXXXXX.json` in its cell).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Point {
    n: usize,
    model: String,
    step: u64,
    memorized: f64,
    gap_to_empirical: Vec<f64>,
    gap_to_truth: Option<Vec<f64>>,
}

/// Trains `cell` segment by segment, scoring after each; finished
/// checkpoints are read back, so a killed run resumes where it stopped.
fn run_cell(
    sweep: &Sweep,
    cell: &Cell,
    checkpoints: &[u64],
    on_step: &dyn Fn(u64),
) -> Result<Vec<Point>> {
    let Model::Trained { arch, seed } = &cell.model else {
        return Ok(Vec::new());
    };
    let dir = cell.dir(&sweep.root);
    let run = dir.join("run");
    let train = sweep.training_set(cell.n)?;
    let empirical = EmpiricalDenoiser::new(&train.flatten_from(1)?.to_dtype(DType::F64)?)?;
    let mut points = Vec::new();
    for &step in checkpoints {
        let file = dir.join("time").join(format!("step-{step:08}.json"));
        if file.exists() {
            points.push(
                serde_json::from_slice(&read(&file)?)
                    .map_err(|e| Error::format(&file, e.to_string()))?,
            );
            continue;
        }
        let mut trainer = match run.join(STATE_FILE).exists() {
            true => Trainer::resume(&run, Some(step), &sweep.device)?,
            false => {
                let mut config = train_config(sweep, &train, arch, *seed)?;
                config.steps = step;
                // Checkpoints only where segments end (each run saves its last step).
                config.checkpoint_every = *checkpoints.last().unwrap_or(&step);
                Trainer::start(&run, config, &train, &sweep.device)?
            }
        };
        let before = trainer.step();
        trainer.run(&mut |_| std::ops::ControlFlow::Continue(()))?;
        on_step(trainer.step() - before);
        let model = load_model(&run, Weights::Ema, &sweep.device)?;
        let m = measure(sweep, &model, DType::F32, &empirical, &cell.model.label())?;
        let point = Point {
            n: cell.n,
            model: cell.model.label(),
            step,
            memorized: m.memorized.value,
            gap_to_empirical: m.gap_to_empirical,
            gap_to_truth: m.gap_to_truth,
        };
        let json =
            serde_json::to_vec_pretty(&point).map_err(|e| Error::format(&file, e.to_string()))?;
        write_atomic(&file, &json)?;
        points.push(point);
    }
    Ok(points)
}

fn chart(title: &str, y: Axis, series: Vec<Series>) -> LineChart {
    LineChart {
        title: title.into(),
        x: Axis {
            label: "training step".into(),
            scale: Scale::Log2,
            range: None,
        },
        y,
        series,
        shades: Vec::new(),
    }
}

fn run(args: &DataExperimentCli) -> Result<()> {
    let cli = &args.experiment;
    let path = cli.config_or("experiments/configs/training_time.toml");
    let mut c: TimeConfig = load_toml(&path)?;
    c.sweep = args.with_data(c.sweep, &path)?;
    if c.checkpoints.is_empty()
        || c.checkpoints.windows(2).any(|w| w[0] >= w[1])
        || c.checkpoints[0] == 0
    {
        return Err(Error::format(
            &path,
            "checkpoints must be positive and increasing",
        ));
    }
    let mut config = c.sweep.clone();
    config.train.steps = *c.checkpoints.last().expect("checked non-empty");
    let out = cli.sweep.out(&config);
    let figures = cli.sweep.figures.clone().unwrap_or_else(|| out.clone());
    let sweep = cli.sweep.prepare(config.clone())?;
    let cells: Vec<Cell> = Sweep::grid(&config)
        .into_iter()
        .enumerate()
        .filter(|(k, c)| cli.sweep.shard.owns(*k) && c.model != Model::Empirical)
        .map(|(_, c)| c)
        .collect();
    let bar = progress_bar(config.train.steps * cells.len() as u64, "steps");
    let collected = std::sync::Mutex::new(Vec::new());
    run_parallel(&cells, cli.sweep.jobs(), &bar, |cell| {
        let points = run_cell(&sweep, cell, &c.checkpoints, &|s| bar.inc(s))?;
        collected
            .lock()
            .expect("no worker panics holding it")
            .extend(points);
        Ok(())
    })?;
    let mut points = collected.into_inner().expect("workers have finished");
    points.sort_by(|a, b| (a.model.as_str(), a.n, a.step).cmp(&(b.model.as_str(), b.n, b.step)));
    if cli.sweep.shard.count > 1 {
        eprintln!("shard done; rerun without --shard to draw the figures");
        return Ok(());
    }
    report(&points, &config, &figures)
}

fn report(points: &[Point], config: &SweepConfig, figures: &Path) -> Result<()> {
    std::fs::create_dir_all(figures).map_err(|e| Error::io(figures, e))?;
    let sigmas = &config.metrics.gap_sigmas;
    let mut csv = String::from("model,n,step,memorized,sigma,gap_to_empirical,gap_to_truth\n");
    for p in points {
        for (k, s) in sigmas.iter().enumerate() {
            let truth = p
                .gap_to_truth
                .as_ref()
                .map_or(String::new(), |g| g[k].to_string());
            csv.push_str(&format!(
                "{},{},{},{},{s},{},{truth}\n",
                p.model, p.n, p.step, p.memorized, p.gap_to_empirical[k]
            ));
        }
    }
    write_atomic(&figures.join("training_time.csv"), csv.as_bytes())?;
    let mut models: Vec<&str> = points.iter().map(|p| p.model.as_str()).collect();
    models.dedup();
    for model in models {
        let mut ns: Vec<usize> = points
            .iter()
            .filter(|p| p.model == model)
            .map(|p| p.n)
            .collect();
        ns.dedup();
        let curve = |n: usize, value: &dyn Fn(&Point) -> f64| -> Vec<(f64, f64)> {
            points
                .iter()
                .filter(|p| p.model == model && p.n == n)
                .map(|p| (p.step as f64, value(p)))
                .collect()
        };
        let mut onsets = Vec::new();
        let (mut memorized, mut gaps) = (Vec::new(), Vec::new());
        for (k, &n) in ns.iter().enumerate() {
            let m = curve(n, &|p| p.memorized);
            let onset = crossing(&m, 0.5);
            let truth = curve(n, &|p| p.gap_to_truth.as_ref().map_or(f64::NAN, |g| g[0]));
            let best = truth
                .iter()
                .copied()
                .filter(|p| p.1.is_finite())
                .min_by(|a, b| a.1.total_cmp(&b.1));
            println!(
                "{model} N = {n}: memorization onset (half memorized) at step {}, closest to the true denoiser (sigma = {}) at step {}",
                onset.map_or("never".into(), |t| format!("{t:.0}")),
                sigmas[0],
                best.map_or("-".into(), |b| format!("{:.0} (gap {:.3})", b.0, b.1)),
            );
            if let Some(t) = onset {
                onsets.push(((n as f64).ln(), t.ln()));
            }
            memorized.push(Series {
                label: format!("N = {n}"),
                points: m,
                color: k,
                ..Series::default()
            });
            gaps.push(Series {
                label: format!("N = {n} to empirical"),
                points: curve(n, &|p| p.gap_to_empirical[0]),
                color: k,
                ..Series::default()
            });
            // Data from a file has no true denoiser, hence no dashed curve.
            if best.is_some() {
                gaps.push(Series {
                    label: format!("N = {n} to truth"),
                    points: truth,
                    color: k,
                    dashed: true,
                    ..Series::default()
                });
            }
        }
        match least_squares(&onsets) {
            Some((b, a)) => println!(
                "{model}: onset step ~ {:.1} N^{b:.2} over {} sizes (peers: exponent 1)",
                a.exp(),
                onsets.len()
            ),
            None => println!("{model}: fewer than two sizes reached half memorized; no fit"),
        }
        let unit = Axis {
            label: "memorized fraction (d1/d2 < 1/3)".into(),
            scale: Scale::Linear,
            range: Some((0.0, 1.0)),
        };
        save_figure(
            &figures.join(format!("memorized_vs_step_{model}")),
            &chart(
                &format!("{model}: memorization during training"),
                unit,
                memorized,
            ),
        )?;
        let gap_axis = Axis {
            label: format!("relative gap at sigma = {}", sigmas[0]),
            scale: Scale::Log10,
            range: None,
        };
        save_figure(
            &figures.join(format!("gap_vs_step_{model}")),
            &chart(
                &match points.iter().any(|p| p.gap_to_truth.is_some()) {
                    true => format!("{model}: gaps during training (dashed: truth)"),
                    false => format!("{model}: gap to the empirical denoiser during training"),
                },
                gap_axis,
                gaps,
            ),
        )?;
    }
    eprintln!(
        "wrote training_time.csv and figures to {}",
        figures.display()
    );
    Ok(())
}

fn main() -> ExitCode {
    let cli = DataExperimentCli::parse();
    diffusion_regimes::experiment::set_tensor_threads(cli.experiment.sweep.jobs());
    exit_code(run(&cli))
}
