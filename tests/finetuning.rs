//! Fine-tuning (`regimes train --init RUN`): the child starts from exactly
//! the parent's EMA (or raw) weights with a fresh optimizer, records its
//! parent, refuses a network it cannot take, and resumes like any run.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use common::{fails_with, gaussian, regimes, s, succeeds, temp_dir};
use diffusion_regimes::data::npy::{read_npy, write_npy};
use diffusion_regimes::nn::checkpoint::{group, read_checkpoint, read_state};
use diffusion_regimes::nn::train::{RunData, Trainer};
use diffusion_regimes::nn::{weights_hash, Params};
use diffusion_regimes::sweep::{Shard, Sweep, SweepConfig};

const SMALL: [&str; 10] = [
    "--width",
    "32",
    "--depth",
    "2",
    "--batch",
    "8",
    "--warmup",
    "5",
    "--checkpoint-every",
    "10",
];

fn data(dir: &Path, name: &str, seed: u64, rows: usize, dim: usize) -> String {
    let path = dir.join(name);
    write_npy(&path, &gaussian(seed, 0, rows, dim), DType::F32).unwrap();
    path.display().to_string()
}

fn train(args: &[&str]) -> std::process::Output {
    regimes(&[&["train"], args].concat())
}

/// The `name` group of the checkpoint of `step` in `run`.
fn weights(run: &Path, step: u64, name: &str) -> BTreeMap<String, Tensor> {
    let path = run.join(format!("checkpoints/step-{step:08}.safetensors"));
    group(&read_checkpoint(&path).unwrap(), name, &path)
        .unwrap()
        .clone()
}

fn same_values(a: &BTreeMap<String, Tensor>, b: &BTreeMap<String, Tensor>) -> bool {
    let values = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|((ka, ta), (kb, tb))| ka == kb && values(ta) == values(tb))
}

/// A parent trained 20 steps on source data; its folder and the target data.
fn parent(dir: &Path) -> (std::path::PathBuf, String) {
    let source = data(dir, "source.npy", 1, 64, 6);
    let parent = dir.join("parent");
    succeeds(&train(
        &[
            &[
                "--data",
                &source,
                "--n",
                "64",
                "--out",
                s(&parent),
                "--steps",
                "20",
            ],
            &SMALL[..],
        ]
        .concat(),
    ));
    (parent, data(dir, "target.npy", 2, 32, 6))
}

#[test]
fn a_child_starts_from_its_parents_weights_and_records_them() {
    let dir = temp_dir("finetune-start");
    let (parent, target) = parent(&dir);
    let child = dir.join("child");
    let flags = [
        &["--data", &target, "--n", "4", "--init", s(&parent)],
        &["--seed", "5", "--checkpoint-every", "1"][..],
        &["--batch", "8", "--warmup", "5"][..],
    ]
    .concat();
    succeeds(&train(
        &[&flags[..], &["--steps", "10", "--out", s(&child)]].concat(),
    ));

    let ema = weights(&parent, 20, "ema");
    let state = read_state(&child).unwrap();
    let init = state.config.init.clone().expect("the parent is recorded");
    assert_eq!((init.run.as_str(), init.step), (s(&parent), 20));
    assert_eq!(init.hash, weights_hash(&ema).unwrap());
    assert_ne!(
        init.hash,
        weights_hash(&weights(&parent, 20, "model")).unwrap()
    );
    // The network is the parent's, whatever the defaults say (width 256).
    assert_eq!(state.config.arch, read_state(&parent).unwrap().config.arch);
    assert_eq!((state.config.n, state.config.seed), (4, 5));

    // At step 0 (a run started through the library from the same config)
    // the weights and their EMA are the parent's EMA, bit for bit.
    let examples = read_npy(&child.join("train.npy")).unwrap();
    let start = dir.join("start");
    let trainer = Trainer::start(
        &start,
        state.config.check().unwrap(),
        RunData::new(&examples),
        &Device::Cpu,
    )
    .unwrap();
    let named = |p: &Params| -> BTreeMap<String, Tensor> {
        p.named()
            .into_iter()
            .map(|(k, v)| (k, v.as_tensor().clone()))
            .collect()
    };
    assert!(same_values(&named(trainer.params()), &ema));
    assert!(same_values(&named(trainer.ema()), &ema));
    assert_eq!(trainer.step(), 0);

    // Resumed after an interruption, the child ends with the same bits.
    let stopped = dir.join("stopped");
    succeeds(&train(
        &[&flags[..], &["--out", s(&stopped), "--steps", "4"]].concat(),
    ));
    succeeds(&train(&["--resume", "--out", s(&stopped), "--steps", "10"]));
    assert!(same_values(
        &weights(&stopped, 10, "model"),
        &weights(&child, 10, "model")
    ));
}

#[test]
fn a_child_that_cannot_take_the_weights_is_refused_and_leaves_nothing() {
    let dir = temp_dir("finetune-refused");
    let (parent, _) = parent(&dir);
    let out = dir.join("child");
    // A child of `init` on `data` with `extra` flags, into `out`.
    let child = |data: &str, init: &Path, extra: &[&str]| {
        let flags = [
            "--data",
            data,
            "--n",
            "4",
            "--init",
            s(init),
            "--out",
            s(&out),
        ];
        train(&[&flags[..], extra].concat())
    };
    let wrong_shape = data(&dir, "wide.npy", 3, 32, 7);
    fails_with(
        &child(&wrong_shape, &parent, &[]),
        &["--init", "example shape", "[6]", "[7]"],
    );
    assert!(!out.exists(), "no half-made run folder");

    let target = data(&dir, "target.npy", 2, 32, 6);
    fails_with(
        &child(&target, &parent, &["--width", "64"]),
        &["--width", "--init", "keeps the network"],
    );
    fails_with(&child(&target, &dir.join("none"), &[]), &["none"]);

    // A parent whose weights changed after the child recorded them.
    let (init, _) = diffusion_regimes::nn::InitFrom::read(
        &parent,
        diffusion_regimes::nn::checkpoint::Weights::Ema,
    )
    .unwrap();
    let mut tampered = init.clone();
    tampered.hash = "fnv1a64:0000000000000000".into();
    let message = tampered.load().unwrap_err().to_string();
    assert!(message.contains(&init.hash) && message.contains("not fnv1a64:0000000000000000"));
    assert!(init.load().is_ok());
}

/// Every run folder (holding state.json) under `dir`.
fn runs_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.join("state.json").exists() {
            found.push(path);
        } else if path.is_dir() {
            found.extend(runs_under(&path));
        }
    }
    found
}

#[test]
fn a_sweep_fine_tunes_every_trained_model_from_its_init() {
    let dir = temp_dir("finetune-sweep");
    let source = data(&dir, "source.npy", 1, 64, 8);
    let parent = dir.join("parent");
    let flags = [
        "--width", "16", "--depth", "1", "--batch", "8", "--steps", "20",
    ];
    succeeds(&train(
        &[
            &["--data", &source, "--n", "64", "--out", s(&parent)],
            &flags[..],
        ]
        .concat(),
    ));
    let config = |width: usize| {
        let text = format!(
            r#"
name = "ft"
ns = [2, 8]
[data]
synthetic = {{ kind = "molrg", ambient = 8, ranks = [2, 2], floor = 0.0 }}
[[models]]
kind = "mlp"
width = {width}
depth = 1
[train]
steps = 6
batch = 8
lr = 1e-3
warmup = 2
init = {:?}
[sampling]
samples = 4
schedule = {{ steps = 4, sigma_min = 0.01, sigma_max = 10.0, rho = 7.0 }}
[metrics]
gap_sigmas = [1.0]
gap_points = 4
resamples = 10
"#,
            s(&parent)
        );
        SweepConfig::parse(&text, Path::new("ft.toml")).unwrap()
    };
    let out = dir.join("out");
    let sweep = Sweep::prepare(config(16), &out).unwrap();
    sweep.run(Shard::ALL, 1).unwrap();
    let parent_state = read_state(&parent).unwrap();
    let hash = weights_hash(&weights(&parent, 20, "ema")).unwrap();
    let cells = runs_under(&out);
    assert_eq!(cells.len(), 2, "one trained model at two N");
    for cell in cells {
        let config = read_state(&cell).unwrap().config;
        let init = config.init.expect("each cell records its parent");
        assert_eq!((init.step, &init.hash), (20, &hash));
        assert_eq!(config.sigma_data, parent_state.config.sigma_data);
    }

    // A model the parent's weights do not fit is refused, naming both.
    let wrong = Sweep::prepare(config(24), &dir.join("wrong")).unwrap();
    let e = wrong.run(Shard::ALL, 1).unwrap_err().to_string();
    assert!(
        e.contains("architecture") && e.contains("width: 16") && e.contains("width: 24"),
        "{e}"
    );
}
