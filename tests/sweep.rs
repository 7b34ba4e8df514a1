//! Sweeps: sharded runs merge into the same results as one run, finished
//! cells are skipped, an interrupted cell resumes to the same result, and bad
//! configs are refused with the field named.

mod common;

use std::path::Path;

use common::temp_dir;
use diffusion_regimes::experiment::{crossing, Results, Shard, Sweep, SweepConfig};

const TINY: &str = r#"
name = "tiny"
ns = [2, 8]
[data]
synthetic = { kind = "molrg", ambient = 8, ranks = [2, 2], floor = 0.0 }
[[models]]
kind = "mlp"
width = 16
depth = 1
[[models]]
kind = "mlp"
width = 24
depth = 1
[train]
steps = 12
batch = 8
lr = 1e-3
warmup = 2
[sampling]
samples = 6
schedule = { steps = 4, sigma_min = 0.01, sigma_max = 10.0, rho = 7.0 }
[metrics]
gap_sigmas = [0.1, 1.0]
gap_points = 8
resamples = 20
"#;

fn tiny() -> SweepConfig {
    SweepConfig::parse(TINY, Path::new("tiny.toml")).unwrap()
}

/// The results without wall-clock times, which differ between runs.
fn comparable(results: &Results) -> String {
    let mut r = results.clone();
    r.cells.iter_mut().for_each(|c| c.train_seconds = None);
    serde_json::to_string(&r).unwrap()
}

#[test]
fn shards_resume_and_collect_reproduce_one_run() {
    let whole = temp_dir("sweep-whole");
    let sweep = Sweep::prepare(tiny(), &whole).unwrap();
    // 2 sizes x (empirical + 2 models) = 6 cells.
    assert_eq!(sweep.run(Shard::ALL, 2).unwrap(), 6);
    let reference = Results::collect(&whole).unwrap();
    assert!(reference.missing.is_empty());
    assert_eq!(reference.cells.len(), 6);
    // Three models at each N: 3 pairs per N.
    assert_eq!(reference.pairs.len(), 6);

    let sharded = temp_dir("sweep-sharded");
    let first = Sweep::prepare(tiny(), &sharded).unwrap();
    assert_eq!(first.run("0/2".parse().unwrap(), 1).unwrap(), 3);
    assert_eq!(Results::collect(&sharded).unwrap().missing.len(), 3);
    assert_eq!(first.run("1/2".parse().unwrap(), 1).unwrap(), 3);
    let merged = Results::collect(&sharded).unwrap();
    assert_eq!(comparable(&merged), comparable(&reference));

    // Finished cells are skipped.
    assert_eq!(first.run(Shard::ALL, 1).unwrap(), 0);
    // A cell killed in training, right after its step-6 checkpoint (of 12):
    // only it reruns, resumes there, and reports what the uninterrupted cell did.
    let cell = sharded.join("cells/n00008/mlp-w24-d1-s0");
    std::fs::remove_file(cell.join("cell.json")).unwrap();
    std::fs::remove_file(cell.join("samples.npy")).unwrap();
    for step in [9, 12] {
        std::fs::remove_file(cell.join(format!("run/checkpoints/step-{step:08}.safetensors")))
            .unwrap();
    }
    let state_path = cell.join("run/state.json");
    let mut state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state_path).unwrap()).unwrap();
    state["step"] = 6.into();
    state["checkpoint"] = "checkpoints/step-00000006.safetensors".into();
    std::fs::write(&state_path, serde_json::to_vec(&state).unwrap()).unwrap();
    assert_eq!(first.run(Shard::ALL, 1).unwrap(), 1);
    assert_eq!(
        comparable(&Results::collect(&sharded).unwrap()),
        comparable(&reference)
    );
}

#[test]
fn bad_configs_and_shards_are_refused_with_the_field_named() {
    for (edit, field) in [
        (TINY.replace("ns = [2, 8]", "ns = []"), "ns"),
        (
            TINY.replace("samples = 6", "samples = 1"),
            "sampling.samples",
        ),
        (
            TINY.replace("gap_sigmas = [0.1, 1.0]", "gap_sigmas = [-1.0]"),
            "sigma",
        ),
        (
            TINY.replace("width = 16", "width = 16\ncolour = 3"),
            "colour",
        ),
        (TINY.replace("[data]", "[data]\nfile = \"x.npy\""), "data"),
    ] {
        let e = SweepConfig::parse(&edit, Path::new("bad.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("bad.toml") && e.contains(field), "{field}: {e}");
    }
    for shard in ["2/2", "1", "a/b", "0/0"] {
        let e = shard.parse::<Shard>().unwrap_err().to_string();
        assert!(e.contains("--shard"), "{e}");
    }
    let too_big = TINY
        .replace("ns = [2, 8]", "ns = [2, 8]\n")
        .replace("[data]", "[data]\nrows = 4");
    let config = SweepConfig::parse(&too_big, Path::new("t.toml")).unwrap();
    // rows is raised to the largest N, so this is fine; a data file that is too small is not.
    assert_eq!(config.synthetic_rows(), 8);
}

#[test]
fn crossing_interpolates_in_log2_n() {
    let points = [(2.0, 0.0), (8.0, 0.25), (32.0, 0.75), (128.0, 1.0)];
    // Halfway between log2 8 = 3 and log2 32 = 5.
    assert!((crossing(&points, 0.5).unwrap() - 16.0).abs() < 1e-9);
    assert_eq!(crossing(&points[..2], 0.5), None);
    assert_eq!(crossing(&[(4.0, 0.9)], 0.5), Some(4.0));
}
