//! Workers sharing one sweep folder: a cell's lock keeps two workers from
//! running it at once and is taken over when its holder is gone; two
//! processes started together on one folder give a single run's cells; a
//! cell whose training diverges is recorded as failed, not scored.

mod common;

use std::path::Path;
use std::time::{Duration, SystemTime};

use common::{assert_same_cells, regimes, succeeds, temp_dir, trained_segments};
use diffusion_regimes::sweep::lock::{host_name, CellLock, Holder, LOCK_FILE, LOG_FILE};
use diffusion_regimes::sweep::{Model, Results, Shard, Sweep, SweepConfig, FAILED_FILE};

const CONFIG: &str = r#"
name = "workers"
ns = [2, 8]
[data]
synthetic = { kind = "molrg", ambient = 8, ranks = [2, 2], floor = 0.0 }
[[models]]
kind = "mlp"
width = 16
depth = 1
[[models]]
kind = "mlp"
width = 64
depth = 2
[train]
steps = 200
budgets = [100, 200]
batch = 16
lr = 1e-3
warmup = 10
[sampling]
samples = 8
schedule = { steps = 4, sigma_min = 0.01, sigma_max = 10.0, rho = 7.0 }
[metrics]
gap_sigmas = [0.1, 1.0]
gap_points = 8
resamples = 20
"#;

const MINUTE: Duration = Duration::from_secs(60);

fn write_lock(dir: &Path, holder: &Holder, age: Duration) {
    let path = dir.join(LOCK_FILE);
    std::fs::write(&path, serde_json::to_string(holder).unwrap()).unwrap();
    let file = std::fs::File::options().write(true).open(&path).unwrap();
    file.set_modified(SystemTime::now() - age).unwrap();
}

fn log_of(dir: &Path) -> String {
    std::fs::read_to_string(dir.join(LOG_FILE)).unwrap_or_default()
}

#[test]
fn a_lock_is_exclusive_while_its_holder_lives_and_taken_over_when_it_is_gone() {
    let dir = temp_dir("lock");
    let lock = CellLock::acquire(&dir, MINUTE)
        .unwrap()
        .expect("a free cell");
    // This process holds it (`started` is the second it was taken, which a
    // later Holder::me() may not share).
    assert_eq!(lock.holder().name(), Holder::me().name());
    assert!(CellLock::acquire(&dir, MINUTE).unwrap().is_none(), "held");
    drop(lock);
    assert!(!dir.join(LOCK_FILE).exists(), "released on drop");

    // A process of this host that has ended (and been reaped).
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let gone = Holder {
        pid: dead,
        ..Holder::me()
    };
    write_lock(&dir, &gone, Duration::ZERO);
    let taken = CellLock::acquire(&dir, MINUTE)
        .unwrap()
        .expect("its process is gone");
    assert!(log_of(&dir).contains(&format!("took over the lock of {}:{dead}", host_name())));
    assert!(
        log_of(&dir).contains("its process is gone"),
        "{}",
        log_of(&dir)
    );
    drop(taken);

    // Another host: alive while its heartbeat is recent, stale after the limit.
    let elsewhere = Holder {
        host: "another-node".into(),
        pid: 1,
        started: 0,
    };
    write_lock(&dir, &elsewhere, Duration::from_secs(30));
    assert!(
        CellLock::acquire(&dir, MINUTE).unwrap().is_none(),
        "heartbeat 30 s ago"
    );
    write_lock(&dir, &elsewhere, Duration::from_secs(120));
    let taken = CellLock::acquire(&dir, MINUTE)
        .unwrap()
        .expect("heartbeat 120 s ago");
    assert!(
        log_of(&dir).contains("heartbeat stopped"),
        "{}",
        log_of(&dir)
    );
    drop(taken);
}

#[test]
fn a_held_lock_keeps_its_heartbeat() {
    let dir = temp_dir("heartbeat");
    // A limit of 400 ms: a beat every 100 ms.
    let lock = CellLock::acquire(&dir, Duration::from_millis(400))
        .unwrap()
        .unwrap();
    let path = dir.join(LOCK_FILE);
    let file = std::fs::File::options().write(true).open(&path).unwrap();
    file.set_modified(SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
    std::thread::sleep(Duration::from_millis(600));
    let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
    let age = SystemTime::now()
        .duration_since(modified)
        .unwrap_or_default();
    assert!(age < Duration::from_secs(2), "touched {age:?} ago");
    drop(lock);
}

#[test]
fn two_processes_started_on_one_folder_share_its_cells_without_training_one_twice() {
    let dir = temp_dir("two-workers");
    let config = dir.join("config.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let sweep = |out: &Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_regimes_sweep"))
            .args([
                config.as_os_str(),
                "--out".as_ref(),
                out.as_os_str(),
                "--jobs".as_ref(),
                "1".as_ref(),
            ])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let shared = dir.join("shared");
    let (a, b) = (sweep(&shared), sweep(&shared));
    for worker in [a, b] {
        let output = worker.wait_with_output().unwrap();
        succeeds(&output);
    }
    let single = dir.join("single");
    succeeds(&sweep(&single).wait_with_output().unwrap());
    assert_same_cells(&single, &shared);
    let parsed = SweepConfig::parse(CONFIG, &config).unwrap();
    let mut workers = std::collections::BTreeSet::new();
    for cell in Sweep::grid(&parsed) {
        let segments = trained_segments(&cell.dir(&shared));
        if let Model::Trained { .. } = cell.model {
            // Segments 0..100 and 100..200, both by the one worker that had the lock.
            let ranges: Vec<(u64, u64)> = segments.iter().map(|s| (s.1, s.2)).collect();
            assert_eq!(
                ranges,
                [(0, 100), (100, 200)],
                "{}",
                cell.dir(&shared).display()
            );
            assert_eq!(segments[0].0, segments[1].0);
            workers.insert(segments[0].0.clone());
        }
        assert!(!cell.dir(&shared).join(LOCK_FILE).exists(), "left locked");
    }
    eprintln!("trained by {workers:?}");
}

#[test]
fn a_diverged_cell_is_recorded_as_failed_and_collect_says_so() {
    let dir = temp_dir("diverged-sweep");
    // lr 1e30 blows every network up at its first steps; the empirical
    // denoiser has nothing to train.
    let config = SweepConfig::parse(
        &CONFIG.replace("lr = 1e-3", "lr = 1e30"),
        Path::new("c.toml"),
    )
    .unwrap();
    let root = dir.join("out");
    let sweep = Sweep::prepare(config, &root).unwrap();
    assert_eq!(sweep.run(Shard::ALL, 2).unwrap(), 6);
    let results = Results::collect(&root).unwrap();
    assert!(results.missing.is_empty());
    assert_eq!(results.cells.len(), 2, "the two empirical cells");
    assert_eq!(results.failed.len(), 4);
    for failed in &results.failed {
        let cell = failed.cell.dir(&root);
        assert!(cell.join(FAILED_FILE).exists() && !cell.join("cell.json").exists());
        assert!(
            failed
                .error
                .contains(&format!("diverged at step {}", failed.step)),
            "{}",
            failed.error
        );
    }
    // A rerun does not train them again.
    assert_eq!(sweep.run(Shard::ALL, 1).unwrap(), 0);

    let figures = dir.join("figures");
    let out = root.to_str().unwrap();
    let strict = regimes(&["collect", out, "--figures", figures.to_str().unwrap()]);
    // The results and figures are written, then the error (exit 2).
    assert_eq!(strict.status.code(), Some(2));
    let said = String::from_utf8_lossy(&strict.stderr);
    let last = said.lines().last().unwrap_or_default();
    for word in [
        "4 failed cells",
        "diverged for",
        "failed.json",
        "--allow-failed",
    ] {
        assert!(last.contains(word), "{said}");
    }
    let csv = std::fs::read_to_string(figures.join("results.csv")).unwrap();
    assert_eq!(
        csv.lines().filter(|l| l.contains(",failed,")).count(),
        4,
        "{csv}"
    );
    succeeds(&regimes(&[
        "collect",
        out,
        "--figures",
        figures.to_str().unwrap(),
        "--allow-failed",
    ]));
    let json = std::fs::read_to_string(figures.join("results.json")).unwrap();
    assert!(json.contains("\"failed\""), "{json}");
}
