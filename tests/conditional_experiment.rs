//! Class-conditional sweeps and the `conditional` experiment (THEORY §10):
//! the labels follow the nested training sets, the trained cells learn them,
//! and the experiment scores guided samples of every class present.

mod common;

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use common::{regimes, rows, s, subspace_residual, temp_dir};
use diffusion_regimes::data::read_labels;
use diffusion_regimes::metrics::{class_agreement, Bootstrap};
use diffusion_regimes::sweep::{Sweep, SweepConfig};

const TINY: &str = r#"name = "tiny"
ns = [4, 16]
[data]
synthetic = { kind = "molrg", ambient = 8, ranks = [2, 2], floor = 0.0 }
seed = 3
[[models]]
kind = "mlp"
width = 16
depth = 1
[[models]]
kind = "mlp"
width = 32
depth = 1
[train]
steps = 20
batch = 8
lr = 1e-3
warmup = 5
p_uncond = 0.1
[sampling]
samples = 6
[metrics]
gap_sigmas = [0.1]
gap_points = 8
resamples = 10
"#;

fn tiny() -> SweepConfig {
    SweepConfig::parse(TINY, Path::new("tiny.toml")).unwrap()
}

/// Each training row lies in the subspace its label names (an independent
/// check that labels and rows were picked by the same subset), and the
/// smaller set's labels are the larger one's first.
#[test]
fn sweep_labels_follow_the_nested_training_sets() {
    let sweep = Sweep::prepare(tiny(), &temp_dir("conditional-sweep-labels")).unwrap();
    let truth = sweep.truth.as_ref().unwrap();
    let components = truth.mixture.components();
    let big = sweep.training_labels(16, 0).unwrap().unwrap();
    let small = sweep.training_labels(4, 0).unwrap().unwrap();
    assert_eq!(small, big[..4]);
    assert!(big.contains(&0) && big.contains(&1));
    let train = rows(&sweep.training_set(16).unwrap());
    for (y, &k) in train.iter().zip(&big) {
        // The rows are f32: residuals of a few 1e-7 times ||y||.
        assert!(subspace_residual(&components[k as usize], y) < 1e-5);
        assert!(subspace_residual(&components[1 - k as usize], y) > 1e-2);
    }
    assert_eq!(sweep.conditioning().unwrap().classes, 2);
}

#[test]
fn conditional_sweeps_refuse_bad_dropout_and_data_without_labels() {
    let bad = TINY.replace("p_uncond = 0.1", "p_uncond = 1.5");
    let e = SweepConfig::parse(&bad, Path::new("bad.toml")).unwrap_err();
    assert!(e.to_string().contains("train.p_uncond"), "{e}");
    let dir = temp_dir("conditional-no-labels");
    let data = dir.join("x.npy");
    let x = Tensor::zeros((20, 8), DType::F32, &Device::Cpu).unwrap();
    diffusion_regimes::data::npy::write_npy(&data, &x, DType::F32).unwrap();
    let from_file = TINY.replace(
        r#"synthetic = { kind = "molrg", ambient = 8, ranks = [2, 2], floor = 0.0 }"#,
        &format!("file = {:?}", data.display().to_string()),
    );
    let config = SweepConfig::parse(&from_file, Path::new("file.toml")).unwrap();
    let e = Sweep::open(config, &dir.join("run")).err().unwrap();
    assert!(e.to_string().contains("needs data.labels"), "{e}");
}

/// The score itself: training rows asked for their own labels agree
/// everywhere, asked for the other class nowhere.
#[test]
fn class_agreement_reads_the_nearest_training_points_label() {
    let train = common::gaussian(1, 0, 10, 4);
    let labels: Vec<u32> = (0..10).map(|i| i % 3).collect();
    let bootstrap = Bootstrap {
        resamples: 10,
        seed: 0,
    };
    let own = class_agreement(&train, &train, &labels, &labels, bootstrap).unwrap();
    assert_eq!(own.value, 1.0);
    let other: Vec<u32> = labels.iter().map(|l| (l + 1) % 3).collect();
    let wrong = class_agreement(&train, &train, &labels, &other, bootstrap).unwrap();
    assert_eq!(wrong.value, 0.0);
    assert!(class_agreement(&train, &train, &labels[..9], &labels, bootstrap).is_err());
}

/// `conditional` end to end: every guidance weight and N scored, the
/// classes of each point those its training set holds, and each trained
/// cell's run keeping its training set's labels.
#[test]
fn the_conditional_experiment_scores_every_weight_n_and_model() {
    let dir = temp_dir("conditional-experiment");
    let config = dir.join("tiny.toml");
    let sweep_part = TINY
        .lines()
        .map(|l| match l.starts_with('[') && !l.starts_with("[[") {
            true => format!("[sweep.{}", &l[1..]),
            false => match l.starts_with("[[") {
                true => format!("[[sweep.{}", &l[2..]),
                false => l.to_string(),
            },
        })
        .collect::<Vec<_>>()
        .join("\n");
    let text = format!("guidance = [0.0, 2.0]\nsamples = 5\n[sweep]\n{sweep_part}\n");
    std::fs::write(&config, text).unwrap();
    let run = dir.join("run");
    let figures = dir.join("figures");
    let out = regimes(&[
        "run",
        "conditional",
        s(&config),
        "--out",
        s(&run),
        "--figures",
        s(&figures),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(figures.join("conditional.json")).unwrap())
            .unwrap();
    assert_eq!(report["classes"], 2);
    let sweep = Sweep::open(tiny(), &run).unwrap();
    let fraction = |v: &serde_json::Value| (0.0..=1.0).contains(&v["value"].as_f64().unwrap());
    let weights: Vec<f64> = report["guidance"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["weight"].as_f64().unwrap())
        .collect();
    assert_eq!(weights, [0.0, 2.0]);
    for curves in report["guidance"].as_array().unwrap() {
        for (point, agreement) in curves["points"]
            .as_array()
            .unwrap()
            .iter()
            .zip(curves["class_agreement"].as_array().unwrap())
        {
            let n = point["n"].as_u64().unwrap() as usize;
            let mut present = sweep.training_labels(n, 0).unwrap().unwrap();
            present.sort_unstable();
            present.dedup();
            let classes: Vec<u32> = serde_json::from_value(agreement["classes"].clone()).unwrap();
            assert_eq!(classes, present);
            assert!(fraction(&point["rp_between_models"]));
            for m in point["models"].as_array().unwrap() {
                for score in ["rp_vs_memorizing", "rp_vs_truth", "generalization"] {
                    assert!(fraction(&m[score]), "{score}: {m}");
                }
            }
        }
    }
    for n in [4, 16] {
        let kept =
            read_labels(&run.join(format!("cells/n{n:05}/mlp-w16-d1-s0/run/train_labels.npy")))
                .unwrap();
        assert_eq!(kept, sweep.training_labels(n, 0).unwrap().unwrap());
    }
    let csv = std::fs::read_to_string(figures.join("conditional.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 2 * 2 * 2, "{csv}");
    for figure in [
        "conditional_0.png",
        "conditional_1.svg",
        "class_agreement.csv",
    ] {
        assert!(figures.join(figure).exists(), "{figure}");
    }
}

/// The sweep inside an experiment's config is checked as a sweep file is:
/// a label dropout outside [0, 1] is refused before anything trains.
#[test]
fn a_conditional_experiment_checks_its_sweep() {
    let dir = temp_dir("conditional-bad-sweep");
    let config = dir.join("bad.toml");
    let sweep = TINY
        .replace("p_uncond = 0.1", "p_uncond = 1.5")
        .replace("[data]", "[sweep.data]")
        .replace("[[models]]", "[[sweep.models]]")
        .replace("[train]", "[sweep.train]")
        .replace("[sampling]", "[sweep.sampling]")
        .replace("[metrics]", "[sweep.metrics]");
    std::fs::write(
        &config,
        format!("guidance = [0.0]\nsamples = 3\n[sweep]\n{sweep}"),
    )
    .unwrap();
    let entry = diffusion_regimes::experiments::find("conditional").unwrap();
    let e = entry
        .check(&config, &diffusion_regimes::sweep::RunOptions::new())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("train.p_uncond") && e.contains("bad.toml"),
        "{e}"
    );
}
