//! What the binaries share (the `cli` feature, on by default): the clap
//! options every experiment takes, parsed into [`RunOptions`], and the
//! process-level settings a library never touches (the thread count, the
//! exit code).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser};

use crate::experiments::find;
use crate::jobs::{on_pool, tensor_threads};
use crate::sweep::lock::DEFAULT_STALE_AFTER;
use crate::sweep::{RunOptions, Shard};
use crate::Result;

/// Where a sweep's cells and figures go, which of its cells this process
/// runs, and where its networks train.
#[derive(Args, Clone, Debug)]
pub struct SweepArgs {
    /// Output folder: cells/ (one run folder per model and N), sweep.toml.
    /// Default: runs/NAME, NAME being the config's name.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Where results.json, results.csv and the figures go (default: --out).
    #[arg(long)]
    pub figures: Option<PathBuf>,
    /// Run only the cells of shard i of n (cell k belongs to shard k mod n),
    /// e.g. `--shard $SLURM_ARRAY_TASK_ID/8`; then `regimes collect OUT`.
    #[arg(long, default_value = "0/1")]
    pub shard: Shard,
    /// Cells trained at once, each on one thread (default: the core count).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Where networks train and run: cpu, or cuda (a binary built with
    /// `--features cuda`). Noise, references and scores stay on the CPU.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Take over a cell's lock when its holder's heartbeat (every quarter of
    /// this) stopped this many seconds ago: a worker on another host that
    /// died. A dead process on this host is noticed at once.
    #[arg(long, default_value_t = DEFAULT_STALE_AFTER.as_secs())]
    pub lock_stale_after: u64,
    /// Train up to K MLP cells of one size as one network with a model
    /// axis (each with the bits of its own training). On a CPU one at a
    /// time is faster at widths 64-256 (BENCHMARKS.md); it pays where each
    /// operation's fixed cost dominates (tiny networks, a GPU).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub together: u64,
}

impl SweepArgs {
    /// --jobs, or the core count.
    pub fn jobs(&self) -> usize {
        self.jobs.unwrap_or_else(|| RunOptions::new().jobs)
    }

    /// The options these flags give (the device checked).
    pub fn options(&self) -> Result<RunOptions> {
        Ok(RunOptions {
            out: self.out.clone(),
            figures: self.figures.clone(),
            shard: self.shard,
            jobs: self.jobs(),
            device: crate::device::device(&self.device)?,
            data: None,
            lock_stale_after: Duration::from_secs(self.lock_stale_after),
            together: self.together as usize,
        })
    }
}

/// The command line of an experiment: its config and the sweep options.
#[derive(Args, Clone, Debug)]
pub struct RunArgs {
    /// The TOML config (default: the experiment's own in experiments/configs/).
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub sweep: SweepArgs,
    /// Read the examples from this file instead of the config's `data.file`
    /// (same format), e.g. your own MNIST or CIFAR-10 download.
    #[arg(long)]
    pub data: Option<PathBuf>,
}

#[derive(Parser, Debug)]
struct ExperimentCli {
    #[command(flatten)]
    run: RunArgs,
}

/// Runs the registered experiment `name` with these arguments.
pub fn run_experiment(name: &str, args: &RunArgs) -> Result<()> {
    let entry = find(name)?;
    let config = args
        .config
        .clone()
        .unwrap_or_else(|| entry.default_config());
    let options = RunOptions {
        data: args.data.clone(),
        ..args.sweep.options()?
    };
    entry.run(&config, &options).map(drop)
}

/// How many jobs an experiment run with these arguments runs at once: its
/// `--jobs`, or 1 when its work is not cells trained in parallel.
pub fn experiment_jobs(name: &str, args: &RunArgs) -> usize {
    let parallel = find(name).map_or(true, |e| e.parallel_cells);
    match parallel {
        true => args.sweep.jobs(),
        false => 1,
    }
}

/// The whole `main` of an experiment binary: parse its command line, set
/// the thread count, run it; exit 2 with one line on any error.
pub fn experiment_main(name: &str) -> ExitCode {
    let cli = ExperimentCli::parse();
    set_jobs(experiment_jobs(name, &cli.run));
    exit_code(on_pool(|| run_experiment(name, &cli.run)))
}

/// Sets the process up for `jobs` jobs at once (cells trained in parallel;
/// 1 for a single run), unless the user set the counts: rayon's pool, on
/// which gemm and the kernels of `nn::ops` run, gets
/// [`tensor_threads`]`(jobs)` threads (candle reads RAYON_NUM_THREADS on
/// every CPU op, and counts the CPUs each time when it is unset: about a
/// quarter of a small MLP's step); candle's own pool of elementwise ops
/// (CANDLE_NUM_THREADS) gets 1, since its workers spin between ops and took
/// a core from rayon's threads (BENCHMARKS.md). Then keeps freed memory in
/// the heap (`keep_freed_memory`). Call it first in `main`, before any
/// thread starts: the library itself never changes the environment. Results
/// depend on none of it: gemm never splits a dot product, and elementwise
/// ops are per element.
pub fn set_jobs(jobs: usize) {
    let threads = tensor_threads(jobs);
    for (var, value) in [("RAYON_NUM_THREADS", threads), ("CANDLE_NUM_THREADS", 1)] {
        if std::env::var_os(var).is_none() {
            std::env::set_var(var, value.to_string());
        }
    }
    keep_freed_memory(jobs);
}

/// Has glibc's allocator serve every tensor buffer from its heap and keep
/// freed memory there. By default buffers over 128 KiB are fresh mappings
/// and the heap's top is trimmed, so each op's output faulted in zeroed
/// pages again: 9% of a width-256 MLP's step, 12% of its training time
/// (BENCHMARKS.md). A single job also keeps one heap for all threads: its
/// work runs on a pool thread (`jobs::on_pool`), whose own heaps are at most
/// 64 MiB each and unmapped when emptied, so a width-1024 MLP faulted its
/// buffers in again every step (system time 1.8 s -> 5 s); several jobs keep
/// a heap each, which they would otherwise queue for (the quickstart: 139 s
/// with a heap per job, 165 s with one). No effect on results; a no-op off
/// glibc.
fn keep_freed_memory(jobs: usize) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const M_TRIM_THRESHOLD: i32 = -1;
        const M_MMAP_THRESHOLD: i32 = -3;
        const M_ARENA_MAX: i32 = -8;
        extern "C" {
            fn mallopt(param: i32, value: i32) -> i32;
        }
        // SAFETY: mallopt only sets the allocator's thresholds; glibc takes
        // it at any time (32 MiB is its largest mmap threshold on 64 bits).
        unsafe {
            mallopt(M_MMAP_THRESHOLD, 32 << 20);
            mallopt(M_TRIM_THRESHOLD, i32::MAX);
            if jobs == 1 {
                mallopt(M_ARENA_MAX, 1);
            }
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = jobs;
}

/// The exit code of a command: 0, or 2 after printing the error on one line.
pub fn exit_code(result: Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// `--sampler`'s values: every registered sampler, then `native`.
pub fn sampler_names() -> clap::builder::PossibleValuesParser {
    let names = crate::sample::Method::NAMES.iter().copied();
    clap::builder::PossibleValuesParser::new(names.chain(["native"]))
}

/// The frameworks as clap values: `--framework` accepts and `--help` lists
/// the registry's names.
impl clap::ValueEnum for crate::framework::Framework {
    fn value_variants<'a>() -> &'a [Self] {
        &Self::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.name()).help(self.about()))
    }
}
