//! Class labels and the class-conditional closed forms (THEORY §10).

mod common;

use std::io::Write;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use common::{gaussian, max_abs_diff, regimes, rows, s, subspace_residual};
use diffusion_regimes::data::npy::{read_npy, write_npy};
use diffusion_regimes::data::{read_labels, write_labels, Synthetic, SyntheticSpec};
use diffusion_regimes::denoise::conditional::{component_alone, rows_of_class, Guided};
use diffusion_regimes::denoise::{Denoiser, EmpiricalDenoiser, GaussianDenoiser};
use diffusion_regimes::sample::{generate, Method, Plan, Schedule};
use faer::Mat;

fn idx1(labels: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0, 0, 0x08, 1];
    bytes.extend((labels.len() as u32).to_be_bytes());
    bytes.extend(labels);
    bytes
}

#[test]
fn labels_read_from_idx_and_npy_and_bad_ones_are_named() {
    let dir = common::temp_dir("labels");
    let raw = dir.join("labels-idx1-ubyte");
    std::fs::write(&raw, idx1(&[7, 0, 3])).unwrap();
    assert_eq!(read_labels(&raw).unwrap(), [7, 0, 3]);
    let gz = dir.join("labels-idx1-ubyte.gz");
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(&idx1(&[1, 2])).unwrap();
    std::fs::write(&gz, encoder.finish().unwrap()).unwrap();
    assert_eq!(read_labels(&gz).unwrap(), [1, 2]);
    let npy = dir.join("labels.npy");
    write_labels(&npy, &[4, 4, 9]).unwrap();
    assert_eq!(read_labels(&npy).unwrap(), [4, 4, 9]);
    // .npz: the array named labels beside others (np.savez), or the only one
    // (np.savez_compressed); an archive of images is refused by its shape.
    let fixture = |name: &str| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/images")
            .join(name)
    };
    assert_eq!(read_labels(&fixture("labels.npz")).unwrap(), [3, 1, 2]);
    assert_eq!(read_labels(&fixture("labels_only.npz")).unwrap(), [0, 5]);
    let images = read_labels(&fixture("rgb.npz")).unwrap_err().to_string();
    assert!(images.contains("one integer per example"), "{images}");
    let floats = dir.join("floats.npy");
    write_npy(
        &floats,
        &Tensor::new(&[2f32, 0.0], &Device::Cpu).unwrap(),
        DType::F32,
    )
    .unwrap();
    assert_eq!(read_labels(&floats).unwrap(), [2, 0]);
    let error = |values: &[f32], name: &str| {
        let path = dir.join(name);
        write_npy(
            &path,
            &Tensor::new(values, &Device::Cpu).unwrap(),
            DType::F32,
        )
        .unwrap();
        read_labels(&path).unwrap_err().to_string()
    };
    let negative = error(&[1.0, -1.0], "negative.npy");
    assert!(
        negative.contains("negative.npy") && negative.contains("label 1 is -1"),
        "{negative}"
    );
    let fraction = error(&[0.5], "fraction.npy");
    assert!(
        fraction.contains("0.5") && fraction.contains("non-negative integers"),
        "{fraction}"
    );
    let short = dir.join("short-idx1");
    let mut bytes = idx1(&[1, 2, 3]);
    bytes.pop();
    std::fs::write(&short, bytes).unwrap();
    let truncated = read_labels(&short).unwrap_err().to_string();
    assert!(
        truncated.contains("holds 2 labels but its header says 3"),
        "{truncated}"
    );
}

/// Each MoLRG row's label is its component: with no floor, y - mu_k lies in
/// span(V_k) for the labelled k (and, the subspaces being orthogonal, not
/// in the other's).
#[test]
fn molrg_labels_name_the_component_each_row_lies_in() {
    let spec: SyntheticSpec =
        serde_json::from_str(r#"{"kind":"molrg","ambient":10,"ranks":[3,3],"floor":0.0}"#).unwrap();
    let dist = Synthetic::new(spec, 4).unwrap();
    let data = rows(&dist.sample_rows(5, 40).unwrap());
    let labels = dist.labels(5, 40);
    assert!(labels.contains(&0) && labels.contains(&1));
    let components = dist.mixture.components();
    let residual = |y: &[f64], k: usize| subspace_residual(&components[k], y);
    for (y, &k) in data.iter().zip(&labels) {
        assert!(
            residual(y, k as usize) < 1e-9,
            "row off its labelled subspace"
        );
        assert!(
            residual(y, 1 - k as usize) > 1e-3,
            "row also in the other subspace"
        );
    }
}

/// The class-conditional empirical denoiser's samples are training points of
/// their class; guidance at w = 0 is it bit for bit, and at w = 1.5 it is
/// 2.5 D_c - 1.5 D_u.
#[test]
fn conditional_empirical_samples_are_training_points_of_the_class() {
    let train = gaussian(3, 0, 12, 6);
    let labels: Vec<u32> = (0..12).map(|i| (i % 3) as u32).collect();
    let class_rows = rows_of_class(&train, &labels, 2).unwrap();
    let conditional = EmpiricalDenoiser::new(&class_rows).unwrap();
    let schedule = Schedule::default();
    let seeds: Vec<u64> = (0..8).collect();
    let draw = |d: &dyn Denoiser| {
        generate(
            d,
            &Plan::new(&schedule, Method::Heun).unwrap(),
            5,
            &seeds,
            DType::F64,
            &Device::Cpu,
            None,
        )
        .unwrap()
    };
    let samples = draw(&conditional);
    let train_rows = rows(&train);
    for x in rows(&samples) {
        let (best, distance) = train_rows
            .iter()
            .enumerate()
            .map(|(i, y)| {
                (
                    i,
                    y.iter()
                        .zip(&x)
                        .map(|(a, b)| (a - b).powi(2))
                        .sum::<f64>()
                        .sqrt(),
                )
            })
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap();
        assert!(
            distance < 1e-3 && labels[best] == 2,
            "sample near {best} at {distance}"
        );
    }
    let guided = |w: f64| {
        Guided::new(
            Box::new(EmpiricalDenoiser::new(&class_rows).unwrap()),
            Box::new(EmpiricalDenoiser::new(&train).unwrap()),
            w,
        )
        .unwrap()
    };
    assert_eq!(max_abs_diff(&draw(&guided(0.0)), &samples), 0.0);
    let unconditional = EmpiricalDenoiser::new(&train).unwrap();
    let x = gaussian(3, 1, 4, 6);
    for sigma in [0.1, 1.0, 10.0] {
        let expected = ((conditional.denoise(&x, sigma).unwrap() * 2.5).unwrap()
            - (unconditional.denoise(&x, sigma).unwrap() * 1.5).unwrap())
        .unwrap();
        assert!(max_abs_diff(&guided(1.5).denoise(&x, sigma).unwrap(), &expected) < 1e-12);
    }
    let missing = rows_of_class(&train, &labels, 7).unwrap_err().to_string();
    assert!(missing.contains("[0, 1, 2]"), "{missing}");
}

/// The true denoiser given the class is the Gaussian denoiser of that
/// component's full covariance V diag(lambda) V^T + floor I.
#[test]
fn the_true_class_conditional_denoiser_is_its_components_gaussian() {
    let spec: SyntheticSpec =
        serde_json::from_str(r#"{"kind":"molrg","ambient":6,"ranks":[2,3],"floor":0.01}"#).unwrap();
    let dist = Synthetic::new(spec, 2).unwrap();
    let alone = component_alone(&dist.mixture, 1).unwrap();
    let c = &dist.mixture.components()[1];
    let covariance = Mat::from_fn(6, 6, |i, j| {
        (0..c.variances.len())
            .map(|k| c.basis[(i, k)] * c.variances[k] * c.basis[(j, k)])
            .sum::<f64>()
            + if i == j { c.floor } else { 0.0 }
    });
    let gaussian_d = GaussianDenoiser::new(&c.mean, &covariance).unwrap();
    let x = gaussian(6, 0, 5, 6);
    for sigma in [0.05, 0.5, 5.0] {
        let gap = max_abs_diff(
            &alone.denoise(&x, sigma).unwrap(),
            &gaussian_d.denoise(&x, sigma).unwrap(),
        );
        assert!(gap < 1e-10, "sigma {sigma}: {gap}");
    }
    assert!(component_alone(&dist.mixture, 2)
        .unwrap_err()
        .to_string()
        .contains("0..2"));
}

#[test]
fn regimes_samples_a_class_and_refuses_what_has_no_class() {
    let dir = common::temp_dir("conditional-cli");
    let data = dir.join("molrg");
    common::succeeds(&regimes(&[
        "data",
        "molrg",
        "--ambient",
        "8",
        "--components",
        "2",
        "--rank",
        "2",
        "--n",
        "16",
        "--seed",
        "1",
        "--out",
        s(&data),
    ]));
    let labels = read_labels(&data.join("labels.npy")).unwrap();
    assert_eq!(labels.len(), 16);
    let out = dir.join("class1.npy");
    let train = data.join("data.npy");
    common::succeeds(&regimes(&[
        "sample",
        "--denoiser",
        "empirical",
        "--train",
        s(&train),
        "--labels",
        s(&data.join("labels.npy")),
        "--class",
        "1",
        "--seeds",
        "0-5",
        "--dtype",
        "f64",
        "--out",
        s(&out),
    ]));
    let samples = rows(&read_npy(&out).unwrap());
    let train_rows = rows(&read_npy(&train).unwrap());
    for x in samples {
        let nearest = (0..16)
            .min_by(|&a, &b| {
                let d = |i: usize| {
                    train_rows[i]
                        .iter()
                        .zip(&x)
                        .map(|(p, q)| (p - q).powi(2))
                        .sum::<f64>()
                };
                d(a).total_cmp(&d(b))
            })
            .unwrap();
        assert_eq!(labels[nearest], 1);
    }
    let bad = dir.join("bad.npy");
    let no_labels = regimes(&[
        "sample",
        "--denoiser",
        "empirical",
        "--train",
        s(&train),
        "--class",
        "1",
        "--out",
        s(&bad),
    ]);
    common::fails_with(&no_labels, &["--labels", "training labels"]);
    let no_class = regimes(&[
        "sample",
        "--denoiser",
        "empirical",
        "--train",
        s(&train),
        "--guidance",
        "2",
        "--out",
        s(&bad),
    ]);
    common::fails_with(&no_class, &["--class"]);
    let wrong_count = dir.join("three.npy");
    write_labels(&wrong_count, &[0, 1, 0]).unwrap();
    let mismatch = regimes(&[
        "sample",
        "--denoiser",
        "empirical",
        "--train",
        s(&train),
        "--labels",
        s(&wrong_count),
        "--class",
        "0",
        "--out",
        s(&bad),
    ]);
    common::fails_with(&mismatch, &["three.npy", "3 labels for 16 examples"]);
    // A class-conditional network through the command line: trained with
    // label dropout, sampled for a class with guidance; an unconditional
    // one refuses a class.
    let run = dir.join("run");
    let labels_file = data.join("labels.npy");
    let train_flags = |out: &std::path::Path, labelled: bool| {
        let mut flags = vec![
            "train",
            "--data",
            s(&data),
            "--n",
            "16",
            "--width",
            "16",
            "--depth",
            "1",
            "--steps",
            "20",
            "--batch",
            "8",
            "--warmup",
            "5",
            "--out",
            s(out),
        ];
        if labelled {
            flags.extend(["--labels", s(&labels_file), "--p-uncond", "0.2"]);
        }
        regimes(&flags)
    };
    common::succeeds(&train_flags(&run, true));
    assert!(run.join("train_labels.npy").exists());
    let guided = dir.join("guided.npy");
    common::succeeds(&regimes(&[
        "sample",
        "--denoiser",
        "model",
        "--checkpoint",
        s(&run),
        "--class",
        "1",
        "--guidance",
        "1.5",
        "--seeds",
        "0-3",
        "--out",
        s(&guided),
    ]));
    assert_eq!(read_npy(&guided).unwrap().dims(), &[4, 8]);
    let plain = dir.join("plain");
    common::succeeds(&train_flags(&plain, false));
    let refused = regimes(&[
        "sample",
        "--denoiser",
        "model",
        "--checkpoint",
        s(&plain),
        "--class",
        "1",
        "--out",
        s(&bad),
    ]);
    common::fails_with(&refused, &["trained without labels"]);
    assert!(!bad.exists());
}

mod trained {
    use std::ops::ControlFlow;

    use candle_core::{DType, Device};
    use diffusion_regimes::denoise::Denoiser;
    use diffusion_regimes::nn::checkpoint::{load_model, Weights};
    use diffusion_regimes::nn::optim::AdamWConfig;
    use diffusion_regimes::nn::train::{
        LabelConditioning, RunData, Sampling, TrainConfig, Trainer,
    };
    use diffusion_regimes::nn::{Arch, ClassModel, MlpConfig};

    use super::common::{gaussian, max_abs_diff, temp_dir};

    fn config(labels: Option<LabelConditioning>, steps: u64) -> TrainConfig {
        TrainConfig {
            data: "test".into(),
            n: 12,
            subset_seed: 0,
            sample_shape: vec![6],
            arch: Arch::Mlp(MlpConfig {
                width: 32,
                depth: 2,
            }),
            framework: Default::default(),
            sigma_data: 0.5,
            p_mean: -1.2,
            p_std: 1.2,
            steps,
            batch: 16,
            sampling: Sampling::Replacement,
            lr: 2e-3,
            warmup: 5,
            adam: AdamWConfig::default(),
            clip: 1.0,
            ema_decay: 0.99,
            seed: 3,
            checkpoint_every: 10,
            log_every: 5,
            eval_every: 0,
            eval_points: 0,
            target: Default::default(),
            labels,
            init: None,
            teacher: None,
        }
    }

    fn train(name: &str, labels: Option<(LabelConditioning, &[u32])>, steps: u64) -> Trainer {
        let dir = temp_dir(name);
        let examples = gaussian(8, 0, 12, 6).to_dtype(DType::F32).unwrap();
        let config = config(labels.as_ref().map(|l| l.0.clone()), steps)
            .check()
            .unwrap();
        let mut trainer = Trainer::start(
            &dir,
            config,
            RunData::new(&examples).labelled(labels.map(|l| l.1)),
            &Device::Cpu,
        )
        .unwrap();
        trainer.run(&mut |_| ControlFlow::Continue(())).unwrap();
        trainer
    }

    const LABELS: [u32; 12] = [0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2];

    /// With every label dropped the class vectors add exactly nothing and
    /// get no gradient, so the run is the unconditional one bit for bit.
    #[test]
    fn label_dropout_one_is_the_unconditional_run() {
        let always = LabelConditioning {
            classes: 3,
            p_uncond: 1.0,
        };
        let conditional = train("dropout-one", Some((always, &LABELS)), 30);
        let plain = train("dropout-none", None, 30);
        let shared = plain.ema().named();
        let theirs = conditional.ema().named();
        assert_eq!(theirs.len(), shared.len() + 1, "one class embedding more");
        for (name, var) in &shared {
            let other = &theirs.iter().find(|(n, _)| n == name).unwrap().1;
            assert_eq!(
                max_abs_diff(var.as_tensor(), other.as_tensor()),
                0.0,
                "{name}"
            );
        }
        let x = gaussian(9, 0, 4, 6).to_dtype(DType::F32).unwrap();
        let d = |t: &Trainer| t.model().denoise(&x, 0.7).unwrap();
        assert_eq!(max_abs_diff(&d(&conditional), &d(&plain)), 0.0);
    }

    /// A conditional run (p_uncond 0.1) resumed after a kill repeats the
    /// uninterrupted run, its labels read back from the run folder; its class
    /// denoisers differ from each other and refuse an unknown class.
    #[test]
    fn conditional_runs_resume_bit_for_bit_and_tell_classes_apart() {
        let some = LabelConditioning {
            classes: 3,
            p_uncond: 0.1,
        };
        let whole = train("conditional-whole", Some((some.clone(), &LABELS)), 20);
        let dir = temp_dir("conditional-killed");
        let examples = gaussian(8, 0, 12, 6).to_dtype(DType::F32).unwrap();
        let config = config(Some(some), 20).check().unwrap();
        let mut first = Trainer::start(
            &dir,
            config,
            RunData::new(&examples).labelled(Some(&LABELS)),
            &Device::Cpu,
        )
        .unwrap();
        first
            .run(&mut |p| match p.step {
                13 => ControlFlow::Break(()),
                _ => ControlFlow::Continue(()),
            })
            .unwrap();
        // Killed at step 13: the latest checkpoint is step 10's.
        let mut resumed = Trainer::resume(&dir, None, &Device::Cpu).unwrap();
        assert_eq!(resumed.step(), 10);
        resumed.run(&mut |_| ControlFlow::Continue(())).unwrap();
        for ((name, a), (_, b)) in whole.params().named().iter().zip(resumed.params().named()) {
            assert_eq!(max_abs_diff(a.as_tensor(), b.as_tensor()), 0.0, "{name}");
        }
        let model = || load_model(&dir, Weights::Ema, &Device::Cpu).unwrap();
        let x = gaussian(9, 1, 4, 6).to_dtype(DType::F32).unwrap();
        let class = |k: u32| {
            ClassModel::new(model(), k)
                .unwrap()
                .denoise(&x, 0.5)
                .unwrap()
        };
        assert!(max_abs_diff(&class(0), &class(1)) > 1e-6);
        let unknown = ClassModel::new(model(), 3).err().unwrap().to_string();
        assert!(unknown.contains("classes 0..3"), "{unknown}");
    }
}
