//! `regimes train` end to end: a run folder whose model samples like the
//! library's, resume rules, images through the U-Net, and clear errors.

mod common;

use common::{fails_with, regimes, s, succeeds};

use std::path::Path;
use std::process::Output;

use candle_core::{DType, Device};
use diffusion_regimes::data::npy::{read_npy, write_npy};
use diffusion_regimes::nn::checkpoint::{load_model, Weights};
use diffusion_regimes::sample::{generate, Method, Plan, Schedule};

fn train_mlp(data: &Path, out: &Path, steps: &str) -> Output {
    regimes(&[
        "train",
        "--data",
        s(data),
        "--n",
        "16",
        "--width",
        "32",
        "--depth",
        "2",
        "--steps",
        steps,
        "--batch",
        "8",
        "--checkpoint-every",
        "5",
        "--out",
        s(out),
    ])
}

#[test]
fn trained_model_samples_through_the_cli_like_the_library() {
    let d = common::temp_dir("cli-train");
    let data = d.join("data.npy");
    write_npy(&data, &common::gaussian(1, 0, 40, 6), DType::F32).unwrap();
    let run = d.join("run");
    succeeds(&train_mlp(&data, &run, "10"));
    for file in [
        "config.toml",
        "train.npy",
        "metrics.csv",
        "state.json",
        "checkpoints/step-00000010.safetensors",
    ] {
        assert!(run.join(file).exists(), "{file}");
    }
    assert_eq!(read_npy(&run.join("train.npy")).unwrap().dims(), [16, 6]);
    // The held-out loss's rows: the 24 the training set leaves of the 40.
    let heldout = read_npy(&run.join("heldout.npy")).unwrap();
    assert_eq!(heldout.dims(), [24, 6]);
    let last = |name: &str| -> String {
        let csv = std::fs::read_to_string(run.join(name)).unwrap();
        csv.lines().last().unwrap().to_string()
    };
    // Evaluated at the last step: both losses filled in, positive.
    let cells: Vec<String> = last("metrics.csv").split(',').map(str::to_string).collect();
    for k in [5, 6] {
        assert!(cells[k].parse::<f64>().unwrap() > 0.0, "{cells:?}");
    }
    let figures = d.join("figures");
    succeeds(&regimes(&["losses", s(&run), "--figures", s(&figures)]));
    for figure in ["losses.png", "losses.svg", "losses_bands.png"] {
        assert!(figures.join(figure).exists(), "{figure}");
    }
    fails_with(&regimes(&["losses", s(&d)]), &["metrics.csv"]);

    // Resuming with a changed hyperparameter is refused; extending --steps is not.
    fails_with(
        &regimes(&["train", "--out", s(&run), "--resume", "--lr", "0.1"]),
        &["--lr", "--resume"],
    );
    succeeds(&regimes(&[
        "train",
        "--out",
        s(&run),
        "--resume",
        "--steps",
        "15",
    ]));
    assert!(run.join("checkpoints/step-00000015.safetensors").exists());

    let samples = d.join("samples.npy");
    succeeds(&regimes(&[
        "sample",
        "--denoiser",
        "model",
        "--checkpoint",
        s(&run),
        "--seeds",
        "0-4",
        "--steps",
        "6",
        "--sampler",
        "euler",
        "--out",
        s(&samples),
    ]));
    let model = load_model(&run, Weights::Ema, &Device::Cpu).unwrap();
    let schedule = Schedule {
        steps: 6,
        ..Schedule::default()
    };
    let want = generate(
        &model,
        &Plan::new(&schedule, Method::Euler).unwrap(),
        0,
        &[0, 1, 2, 3, 4],
        DType::F32,
        &Device::Cpu,
        None,
    )
    .unwrap();
    assert_eq!(
        read_npy(&samples).unwrap().to_vec2::<f32>().unwrap(),
        want.to_vec2::<f32>().unwrap()
    );

    fails_with(
        &train_mlp(&data, &run, "10"),
        &["already holds a training run"],
    );
}

#[test]
fn unet_trains_on_byte_images() {
    let d = common::temp_dir("cli-unet");
    let run = common::train_tiny_unet(&d, 6, 4, 37);
    let train = read_npy(&run.join("train.npy")).unwrap();
    assert_eq!(train.dims(), [4, 1, 8, 8]);
    let max = train
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(max <= 1.0, "byte images map to [-1, 1]");
    let x = d.join("x.npy");
    write_npy(&x, &common::gaussian(0, 0, 3, 64), DType::F32).unwrap();
    let out = d.join("d.npy");
    succeeds(&regimes(&[
        "denoise",
        "--denoiser",
        "model",
        "--checkpoint",
        s(&run),
        "--sigma",
        "0.5",
        "--input",
        s(&x),
        "--out",
        s(&out),
    ]));
    assert_eq!(read_npy(&out).unwrap().dims(), [3, 64]);
}

/// The local CNN trains from the command line: its padding is recorded in
/// config.toml, its receptive field reported, and its run denoises.
#[test]
fn local_cnn_trains_and_reports_its_receptive_field() {
    let d = common::temp_dir("cli-cnn");
    let (run, stderr) = common::train_tiny_image_net(
        &d,
        6,
        4,
        37,
        &["--arch", "cnn", "--depth", "1", "--padding", "circular"],
    );
    assert!(
        stderr.contains("cnn-w8-d1-circular: each output pixel sees 9x9"),
        "{stderr}"
    );
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(
        config.contains("kind = \"cnn\"") && config.contains("padding = \"circular\""),
        "{config}"
    );
    let x = d.join("x.npy");
    write_npy(&x, &common::gaussian(0, 0, 3, 64), DType::F32).unwrap();
    let out = d.join("d.npy");
    succeeds(&regimes(&[
        "denoise",
        "--denoiser",
        "model",
        "--checkpoint",
        s(&run),
        "--sigma",
        "0.5",
        "--input",
        s(&x),
        "--out",
        s(&out),
    ]));
    assert_eq!(read_npy(&out).unwrap().dims(), [3, 64]);
}

#[test]
fn bad_training_requests_are_clear_errors() {
    let d = common::temp_dir("cli-train-errors");
    let data = d.join("data.npy");
    write_npy(&data, &common::gaussian(1, 0, 10, 4), DType::F32).unwrap();
    let run = d.join("run");
    let args = |extra: &[&str]| {
        let mut a = vec!["train", "--data", s(&data), "--out", s(&run)];
        a.extend_from_slice(extra);
        regimes(&a)
    };
    fails_with(&args(&["--n", "11"]), &["11", "10 examples"]);
    fails_with(&args(&["--n", "4", "--lr=-1"]), &["lr", "-1"]);
    fails_with(&args(&["--n", "4", "--arch", "unet"]), &["U-Net", "[4]"]);
    fails_with(
        &args(&["--n", "4", "--arch", "cnn", "--padding", "reflect"]),
        &["padding", "reflect", "circular"],
    );
    fails_with(
        &args(&["--n", "4", "--sigma-data", "big"]),
        &["--sigma-data", "big"],
    );
    fails_with(
        &args(&["--n", "4", "--device", "tpu"]),
        &["--device", "tpu"],
    );
    if !cfg!(feature = "cuda") {
        fails_with(
            &args(&["--n", "4", "--device", "cuda"]),
            &["without CUDA", "--features cuda"],
        );
    }
    assert!(!run.join("state.json").exists());
    fails_with(
        &regimes(&["train", "--out", s(&d.join("none")), "--resume"]),
        &["state.json", "missing"],
    );
    fails_with(
        &regimes(&[
            "sample",
            "--denoiser",
            "model",
            "--out",
            s(&d.join("x.npy")),
        ]),
        &["--checkpoint"],
    );
}

#[test]
fn every_framework_trains_and_samples_natively_through_the_cli() {
    let d = common::temp_dir("cli-frameworks");
    let data = d.join("data.npy");
    write_npy(&data, &common::gaussian(2, 0, 16, 8), DType::F32).unwrap();
    for (framework, arch) in [
        ("vp-eps", "dit"),
        ("vp", "mlp"),
        ("ve", "mlp"),
        ("flow", "dit"),
    ] {
        let run = d.join(format!("{framework}-{arch}"));
        succeeds(&regimes(&[
            "train",
            "--data",
            s(&data),
            "--n",
            "8",
            "--framework",
            framework,
            "--arch",
            arch,
            "--width",
            "16",
            "--depth",
            "1",
            "--steps",
            "5",
            "--batch",
            "4",
            "--out",
            s(&run),
        ]));
        let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
        assert!(
            config.contains(&format!("framework = \"{framework}\"")),
            "{config}"
        );
        let out = d.join(format!("{framework}-{arch}.npy"));
        let sample = |extra: &[&str]| {
            let mut args = vec![
                "sample",
                "--denoiser",
                "model",
                "--checkpoint",
                s(&run),
                "--seeds",
                "0-2",
                "--sampler",
                "native",
                "--steps",
                "6",
                "--out",
                s(&out),
            ];
            args.extend(extra);
            regimes(&args)
        };
        succeeds(&sample(&[]));
        assert_eq!(read_npy(&out).unwrap().dims(), [3, 8]);
        fails_with(
            &sample(&["--framework", "edm"]),
            &["--framework", framework],
        );
    }
    // An analytic denoiser has no framework of its own.
    let out = d.join("empirical.npy");
    let empirical = |extra: &[&str]| {
        let mut args = vec![
            "sample",
            "--denoiser",
            "empirical",
            "--train",
            s(&data),
            "--seeds",
            "0-2",
            "--sampler",
            "native",
            "--out",
            s(&out),
        ];
        args.extend(extra);
        regimes(&args)
    };
    fails_with(&empirical(&[]), &["--framework", "analytic"]);
    succeeds(&empirical(&["--framework", "vp-eps"]));
    // A bad name is a usage error (clap's exit code 2) that lists the names.
    let bad = empirical(&["--framework", "ddpm"]);
    let message = String::from_utf8_lossy(&bad.stderr);
    assert!(
        !bad.status.success() && message.contains("ddpm") && message.contains("vp-eps"),
        "{message}"
    );
}
