//! A sweep on a real Slurm cluster: run only with REGIMES_SLURM=1 and a
//! cluster up (`eval "$(bash scripts/slurm_local.sh start)"`, as .ci/run
//! does); skipped with a message otherwise. The array job of
//! experiments/slurm/regimes_sweep.sbatch must give the cells of a
//! single-process run, bit for bit, also when one array task is cancelled
//! in the middle of a cell's training and resubmitted.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{assert_same_cells, comparable, succeeds, temp_dir, trained_segments};
use diffusion_regimes::sweep::{Model, Results, Sweep, SweepConfig};

/// Quickstart-shaped, small: 3 N x (empirical + 2 MLPs) = 9 cells, the wider
/// MLP slow enough (800 steps, a checkpoint every 200) to be caught in training.
const CONFIG: &str = r#"
name = "slurm_tiny"
ns = [4, 16, 64]
[data]
synthetic = { kind = "molrg", ambient = 16, ranks = [3, 3], floor = 0.0 }
[[models]]
kind = "mlp"
width = 32
depth = 2
[[models]]
kind = "mlp"
width = 128
depth = 2
[train]
steps = 800
budgets = [400, 800]
batch = 64
lr = 1e-3
warmup = 50
[sampling]
samples = 16
schedule = { steps = 8, sigma_min = 0.01, sigma_max = 40.0, rho = 7.0 }
[metrics]
gap_sigmas = [0.1, 1.0]
gap_points = 32
resamples = 50
"#;
const STEPS: u64 = 800;
const TASKS: usize = 4;
/// Cell 8 of the grid (N = 64, the wide MLP, the last cell of task 8 mod 4 = 0).
const SLOW_CELL: &str = "cells/n00064/mlp-w128-d2-s0";
const SLOW_TASK: usize = 0;

fn slurm_is_up() -> bool {
    if std::env::var("REGIMES_SLURM").as_deref() != Ok("1") {
        eprintln!("skipped: set REGIMES_SLURM=1 with a Slurm cluster up (bash scripts/slurm_local.sh start)");
        return false;
    }
    true
}

fn sbatch_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/slurm/regimes_sweep.sbatch")
}

/// Submits tasks `array` (e.g. "0-3") of the sweep into `out`; the job id.
fn submit(dir: &Path, out: &Path, array: &str) -> String {
    let config = dir.join("config.toml");
    let output = Command::new("sbatch")
        .current_dir(dir)
        .args(["--parsable", &format!("--array={array}")])
        .arg(sbatch_script())
        .arg(env!("CARGO_BIN_EXE_regimes_sweep"))
        .args([&config, out])
        .arg(TASKS.to_string())
        .output()
        .expect("sbatch runs");
    succeeds(&output);
    let id = String::from_utf8(output.stdout).unwrap();
    id.trim().split(';').next().unwrap().to_string()
}

/// Waits until `condition` holds, at most 10 minutes; then fails with squeue's view.
fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(600);
    while !condition() {
        if Instant::now() > deadline {
            let queue = Command::new("squeue").output().unwrap();
            panic!(
                "timed out waiting for {what}; squeue:\n{}",
                String::from_utf8_lossy(&queue.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether job `id` (every task of it) has left the queue.
fn job_ended(id: &str) -> bool {
    let queue = Command::new("squeue")
        .args(["-h", "-j", id])
        .output()
        .unwrap();
    // squeue errors on a job id it has already forgotten: ended as well.
    !queue.status.success() || queue.stdout.iter().all(u8::is_ascii_whitespace)
}

fn run_job(dir: &Path, out: &Path, array: &str) {
    let id = submit(dir, out, array);
    wait_until(&format!("job {id}"), || job_ended(&id));
    let logs: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("slurm-{id}_"))
        })
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    assert!(!logs.is_empty(), "job {id} wrote no output");
    for log in &logs {
        assert!(!log.contains("error:"), "a task failed:\n{log}");
    }
}

fn collect(out: &Path) {
    succeeds(&common::regimes(&["collect", out.to_str().unwrap()]));
}

/// Every cell finished training exactly once (one segment ending at the
/// last step) and no segment of one worker overlaps another's.
fn trained_once(out: &Path) {
    let config = SweepConfig::parse(CONFIG, Path::new("config.toml")).unwrap();
    for cell in Sweep::grid(&config) {
        let segments = trained_segments(&cell.dir(out));
        let finished = segments.iter().filter(|s| s.2 == STEPS).count();
        let expected = usize::from(matches!(cell.model, Model::Trained { .. }));
        assert_eq!(
            finished,
            expected,
            "{}: {segments:?}",
            cell.dir(out).display()
        );
    }
}

#[test]
fn an_array_job_gives_one_process_cells_even_with_a_task_cancelled_and_resubmitted() {
    if !slurm_is_up() {
        return;
    }
    let dir = temp_dir("slurm");
    std::fs::write(dir.join("config.toml"), CONFIG).unwrap();
    let single = dir.join("single");
    let config = dir.join("config.toml");
    let run = common::run(
        env!("CARGO_BIN_EXE_regimes_sweep"),
        &[
            config.to_str().unwrap(),
            "--out",
            single.to_str().unwrap(),
            "--jobs",
            "1",
        ],
    );
    succeeds(&run);

    let array = dir.join("array");
    run_job(&dir, &array, &format!("0-{}", TASKS - 1));
    collect(&array);
    assert_same_cells(&single, &array);
    trained_once(&array);
    let results = |root: &Path| comparable(&Results::collect(root).unwrap());
    assert_eq!(results(&single), results(&array));

    // Cancel the task owning the slow cell once it holds a checkpoint there.
    let cancelled = dir.join("cancelled");
    let id = submit(&dir, &cancelled, &format!("0-{}", TASKS - 1));
    let slow = cancelled.join(SLOW_CELL);
    wait_until("a checkpoint of the slow cell", || {
        slow.join("run/state.json").exists() && !slow.join("cell.json").exists()
    });
    let task = format!("{id}_{SLOW_TASK}");
    succeeds(&Command::new("scancel").arg(&task).output().unwrap());
    wait_until(&format!("job {id}"), || job_ended(&id));
    assert!(
        !slow.join("cell.json").exists(),
        "the cancelled task finished its cell"
    );
    run_job(&dir, &cancelled, &SLOW_TASK.to_string());
    collect(&cancelled);
    assert_same_cells(&single, &cancelled);
    assert_eq!(results(&single), results(&cancelled));
    trained_once(&cancelled);
    let log = std::fs::read_to_string(slow.join("cell.log")).unwrap();
    assert!(log.contains("took over the lock"), "{log}");
}
