//! `regimes`: the command-line interface, a thin clap layer over the library.
//! Every failure prints one line naming the problem and exits with code 2.

use std::path::Path;
use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches};

use diffusion_regimes::cli::{exit_code, experiment_jobs, run_experiment, set_jobs, SweepArgs};
use diffusion_regimes::data::{load_examples, Synthetic, SPEC_FILE};
use diffusion_regimes::experiments::EXPERIMENTS;
use diffusion_regimes::jobs::on_pool;
use diffusion_regimes::plot::save_figure;
use diffusion_regimes::sweep::{collect, run_sweep, write_sweep, SweepConfig, QUICKSTART};
use diffusion_regimes::theory;
use diffusion_regimes::{Error, Result};

mod args;
mod calibrate;
mod data;
mod generate;
mod measure;
mod solve;
mod train;

use args::{Cli, Command};

/// The main job: the quickstart preset of the regime sweep, then the check
/// that the transition is there (issue 5's condition).
fn quickstart(args: SweepArgs) -> Result<()> {
    let config = SweepConfig::parse(QUICKSTART, Path::new("experiments/configs/quickstart.toml"))?;
    let options = args.options()?;
    let dir = args
        .figures
        .clone()
        .unwrap_or_else(|| options.sweep_root(&config));
    let started = std::time::Instant::now();
    let Some(report) = run_sweep(&options.prepare(config)?, &options)? else {
        return Ok(());
    };
    write_sweep(&report, &dir, &[])?;
    eprintln!("quickstart took {:.0} s", started.elapsed().as_secs_f64());
    match report.results.transition_violations().as_slice() {
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

/// `regimes losses`: the run's loss figures into `dir`.
fn losses(run: &Path, dir: &Path) -> Result<()> {
    let [totals, bands] = diffusion_regimes::plot::run_loss_charts(run)?;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    save_figure(&dir.join("losses"), &totals)?;
    save_figure(&dir.join("losses_bands"), &bands)?;
    eprintln!(
        "wrote losses and losses_bands (.png, .svg) to {}",
        dir.display()
    );
    Ok(())
}

fn run(cli: Cli, explicit: &[String]) -> Result<()> {
    match cli.command {
        Command::Quickstart(args) => quickstart(args),
        Command::Run { name, .. } if name == "list" => {
            for e in EXPERIMENTS {
                println!("{:<20} {}", e.name, e.about);
            }
            Ok(())
        }
        Command::Run { name, args } => run_experiment(&name, &args),
        Command::Collect {
            out,
            figures,
            allow_failed,
        } => collect(&out, figures.as_deref().unwrap_or(&out), allow_failed).map(|_| ()),
        Command::Losses { run, figures } => losses(&run, figures.as_deref().unwrap_or(&run)),
        Command::Grid {
            samples,
            train,
            columns,
            zoom,
            out,
        } => generate::grid(&samples, train.as_deref(), columns, zoom, &out),
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
        Command::Data { kind } => data::make_data(kind),
        Command::Denoise(args) => generate::denoise(args),
        Command::Sample(args) => generate::sample(args),
        Command::Solve(args) => solve::solve(args),
        Command::CalibratePatches(args) => calibrate::calibrate(args),
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
        // A value the library's own parser refused reads as the library's
        // errors do: one line naming it.
        Err(e) if e.kind() == ErrorKind::ValueValidation => {
            let text = e.render().to_string();
            eprintln!("{}", text.lines().next().unwrap_or_default());
            return ExitCode::from(2);
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    set_jobs(match &cli.command {
        Command::Quickstart(args) => args.jobs(),
        Command::Run { name, args } => experiment_jobs(name, args),
        _ => 1,
    });
    exit_code(on_pool(|| run(cli, &explicit)))
}
