//! The `regimes` binary end to end: outputs match the library, and bad input
//! gives one line naming the problem, exit code 2 and no output file.

mod common;

use common::{regimes, s};

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use common::max_abs_diff;
use diffusion_regimes::data::load_distribution;
use diffusion_regimes::data::npy::{encode_npy, read_npy, write_npy};
use diffusion_regimes::denoise::{Denoiser, EmpiricalDenoiser};
use diffusion_regimes::sample::{generate, Method, Plan, Schedule};

fn dir(name: &str) -> PathBuf {
    common::temp_dir(&format!("cli-{name}"))
}

fn molrg(d: &Path) -> PathBuf {
    let out = d.join("molrg");
    let o = regimes(&[
        "data",
        "molrg",
        "--ambient",
        "12",
        "--components",
        "2",
        "--rank",
        "3",
        "--n",
        "64",
        "--seed",
        "0",
        "--out",
        s(&out),
    ]);
    common::succeeds(&o);
    out
}

#[test]
fn data_denoise_and_sample_agree_with_the_library() {
    let d = dir("agree");
    let data_dir = molrg(&d);
    let train = read_npy(&data_dir.join("data.npy")).unwrap();
    assert_eq!(
        (train.dtype(), train.dims()),
        (DType::F32, &[64usize, 12][..])
    );

    let input = d.join("x.npy");
    write_npy(&input, &common::gaussian(0, 0, 5, 12), DType::F32).unwrap();
    let out = d.join("d.npy");
    let o = regimes(&[
        "denoise",
        "--denoiser",
        "truth",
        "--distribution",
        s(&data_dir),
        "--sigma",
        "0.5",
        "--input",
        s(&input),
        "--out",
        s(&out),
        "--dtype",
        "f64",
    ]);
    common::succeeds(&o);
    let truth = load_distribution(&data_dir).unwrap();
    let x = read_npy(&input).unwrap().to_dtype(DType::F64).unwrap();
    assert!(max_abs_diff(&read_npy(&out).unwrap(), &truth.denoise(&x, 0.5).unwrap()) < 1e-12);
    // The spec form names the same denoiser, bit for bit.
    let spec_out = d.join("d_spec.npy");
    let truth_spec = format!("truth:{}", s(&data_dir));
    let o = regimes(&[
        "denoise",
        "--denoiser",
        &truth_spec,
        "--sigma",
        "0.5",
        "--input",
        s(&input),
        "--out",
        s(&spec_out),
        "--dtype",
        "f64",
    ]);
    common::succeeds(&o);
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(&spec_out).unwrap()
    );

    let samples = d.join("s.npy");
    let o = regimes(&[
        "sample",
        "--denoiser",
        "empirical",
        "--train",
        s(&data_dir.join("data.npy")),
        "--seeds",
        "0-7",
        "--seed",
        "3",
        "--sampler",
        "euler",
        "--steps",
        "10",
        "--out",
        s(&samples),
    ]);
    common::succeeds(&o);
    let empirical = EmpiricalDenoiser::new(&train).unwrap();
    let schedule = Schedule {
        steps: 10,
        ..Schedule::default()
    };
    let want = generate(
        &empirical,
        &Plan::new(&schedule, Method::Euler).unwrap(),
        3,
        &(0..8).collect::<Vec<_>>(),
        DType::F32,
        &Device::Cpu,
        None,
    )
    .unwrap();
    assert_eq!(
        read_npy(&samples).unwrap().to_vec2::<f32>().unwrap(),
        want.to_vec2::<f32>().unwrap()
    );

    // Explicit noise rows give the same samples as the seeded noise they copy.
    let (z, _) = diffusion_regimes::sample::initial_noise(
        3,
        &(0..8).collect::<Vec<_>>(),
        12,
        DType::F32,
        &Device::Cpu,
    )
    .unwrap();
    let noise = d.join("z.npy");
    write_npy(&noise, &z, DType::F32).unwrap();
    let again = d.join("s2.npy");
    let o = regimes(&[
        "sample",
        "--denoiser",
        "empirical",
        "--train",
        s(&data_dir.join("data.npy")),
        "--seeds",
        "0-7",
        "--seed",
        "3",
        "--sampler",
        "euler",
        "--steps",
        "10",
        "--noise",
        s(&noise),
        "--out",
        s(&again),
    ]);
    common::succeeds(&o);
    assert_eq!(
        read_npy(&again).unwrap().to_vec2::<f32>().unwrap(),
        want.to_vec2::<f32>().unwrap()
    );
}

#[test]
fn bad_input_gives_one_line_exit_code_2_and_no_output() {
    let d = dir("bad");
    let data_dir = molrg(&d);
    let train = data_dir.join("data.npy");
    let good_x = d.join("x.npy");
    write_npy(&good_x, &common::gaussian(0, 0, 2, 12), DType::F32).unwrap();
    let wrong_dim = d.join("wrong_dim.npy");
    write_npy(&wrong_dim, &common::gaussian(0, 0, 2, 5), DType::F32).unwrap();
    let one_d = d.join("one_d.npy");
    write_npy(
        &one_d,
        &common::gaussian(0, 0, 1, 12).squeeze(0).unwrap(),
        DType::F32,
    )
    .unwrap();
    let nan = d.join("nan.npy");
    let mut bytes = encode_npy(&common::gaussian(0, 0, 2, 12), DType::F32).unwrap();
    let at = bytes.len() - 4;
    bytes[at..].copy_from_slice(&f32::NAN.to_le_bytes());
    std::fs::write(&nan, bytes).unwrap();
    let truncated = d.join("truncated.npy");
    let full = std::fs::read(&good_x).unwrap();
    std::fs::write(&truncated, &full[..full.len() - 5]).unwrap();
    let missing = d.join("missing.npy");
    let out = d.join("out.npy");

    let denoise = |input: &Path, sigma: &str| {
        vec![
            "denoise",
            "--denoiser",
            "empirical",
            "--train",
            s(&train),
            "--sigma",
            sigma,
            "--input",
            s(input),
            "--out",
            s(&out),
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>()
    };
    let cases: Vec<(Vec<String>, &str)> = vec![
        (denoise(&missing, "1"), "missing.npy"),
        (denoise(&wrong_dim, "1"), "dimension 5"),
        (denoise(&one_d, "1"), "2-D"),
        (denoise(&nan, "1"), "finite"),
        (denoise(&truncated, "1"), "truncated"),
        (denoise(&good_x, "0"), "sigma"),
        (denoise(&good_x, "-2"), "sigma"),
        (
            vec![
                "denoise".into(),
                "--denoiser".into(),
                "gaussian".into(),
                "--sigma".into(),
                "1".into(),
                "--input".into(),
                s(&good_x).into(),
                "--out".into(),
                s(&out).into(),
            ],
            "--train",
        ),
        (
            vec![
                "denoise".into(),
                "--denoiser".into(),
                "nearest".into(),
                "--train".into(),
                s(&train).into(),
                "--sigma".into(),
                "1".into(),
                "--input".into(),
                s(&good_x).into(),
                "--out".into(),
                s(&out).into(),
            ],
            "nearest",
        ),
        (
            vec![
                "sample".into(),
                "--denoiser".into(),
                "empirical".into(),
                "--train".into(),
                s(&train).into(),
                "--seeds".into(),
                "9-2".into(),
                "--out".into(),
                s(&out).into(),
            ],
            "--seeds",
        ),
        (
            vec![
                "sample".into(),
                "--denoiser".into(),
                "empirical".into(),
                "--train".into(),
                s(&train).into(),
                "--steps".into(),
                "1".into(),
                "--out".into(),
                s(&out).into(),
            ],
            "steps",
        ),
        (
            vec![
                "sample".into(),
                "--denoiser".into(),
                "empirical".into(),
                "--train".into(),
                s(&train).into(),
                "--seeds".into(),
                "0-2".into(),
                "--noise".into(),
                s(&good_x).into(),
                "--out".into(),
                s(&out).into(),
            ],
            "rows",
        ),
        (vec!["sample".into(), "--bogus".into()], "--bogus"),
        (
            vec![
                "data".into(),
                "molrg".into(),
                "--ambient".into(),
                "4".into(),
                "--components".into(),
                "2".into(),
                "--rank".into(),
                "3".into(),
                "--n".into(),
                "5".into(),
                "--out".into(),
                s(&d.join("m2")).into(),
            ],
            "ranks",
        ),
    ];
    for (args, word) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = regimes(&args);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(word),
            "{args:?}: expected '{word}' in: {stderr}"
        );
        if !args.contains(&"--bogus") {
            assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        }
        assert!(!out.exists(), "{args:?} left an output file");
    }
    assert!(!d.join("m2").join("data.npy").exists());
}

/// `regimes solve` equals the library's solver from the same noise, writes
/// the measurements beside its output, and the exact posterior of the
/// empirical prior reproduces the measured training points.
#[test]
fn solve_matches_the_library_and_the_exact_posterior_recovers_training_points() {
    use diffusion_regimes::inverse::{solve, Operator, OperatorSpec, Solver};
    use diffusion_regimes::sample::initial_noise;
    let d = dir("solve");
    let train = common::gaussian(11, 0, 6, 8);
    let train_file = d.join("train.npy");
    write_npy(&train_file, &train, DType::F64).unwrap();
    let clean = train.narrow(0, 2, 2).unwrap();
    let clean_file = d.join("clean.npy");
    write_npy(
        &clean_file,
        &clean.reshape((2, 1, 2, 4)).unwrap(),
        DType::F64,
    )
    .unwrap();
    let run = |solver: &str, out: &Path| {
        regimes(&[
            "solve",
            "--denoiser",
            "empirical",
            "--train",
            s(&train_file),
            "--measure",
            s(&clean_file),
            "--operator",
            "inpaint-box:0,2,2,2",
            "--noise-y",
            "0.001",
            "--solver",
            solver,
            "--zeta",
            "3",
            "--seeds",
            "0-2",
            "--dtype",
            "f64",
            "--out",
            s(out),
        ])
    };
    let out = d.join("dps.npy");
    common::succeeds(&run("dps", &out));
    let got = read_npy(&out).unwrap();
    assert_eq!(got.dims(), &[6, 1, 2, 4]);
    let measured = read_npy(&d.join("dps.measurements.npy")).unwrap();
    assert_eq!(measured.dims(), &[2, 4]);
    let a = Operator::new(&OperatorSpec::InpaintBox([0, 2, 2, 2]), &[1, 2, 4]).unwrap();
    let y = measured
        .index_select(
            &candle_core::Tensor::new(&[0u32, 0, 0, 1, 1, 1], &Device::Cpu).unwrap(),
            0,
        )
        .unwrap();
    let (z, _) = initial_noise(0, &[0, 1, 2], 8, DType::F64, &Device::Cpu).unwrap();
    let x = (candle_core::Tensor::cat(&[&z, &z], 0).unwrap() * 80.0).unwrap();
    let sigmas = Schedule::default().sigmas().unwrap();
    let expected = solve(
        &EmpiricalDenoiser::new(&train).unwrap(),
        &a,
        &y,
        Solver::Dps { zeta: 10.0 },
        &x,
        &sigmas,
    )
    .unwrap();
    // Equal to rounding: the binary's output differs from this process's in
    // the last bit (9e-19 here, unexplained; the binary itself repeats its
    // bits run to run and at any thread count).
    assert!(max_abs_diff(&got.reshape((6, 8)).unwrap(), &expected) < 1e-12);
    let out = d.join("posterior.npy");
    common::succeeds(&run("posterior", &out));
    let exact = read_npy(&out).unwrap().reshape((6, 8)).unwrap();
    let targets = clean
        .index_select(
            &candle_core::Tensor::new(&[0u32, 0, 0, 1, 1, 1], &Device::Cpu).unwrap(),
            0,
        )
        .unwrap();
    assert!(max_abs_diff(&exact, &targets) < 1e-6);
    // No closed-form posterior for a trained model or the truth: one line, exit 2, no output.
    let bad = d.join("bad.npy");
    let o = regimes(&[
        "solve",
        "--denoiser",
        "truth",
        "--distribution",
        s(&d),
        "--measure",
        s(&clean_file),
        "--operator",
        "inpaint-box:0,2,2,2",
        "--noise-y",
        "0.1",
        "--solver",
        "posterior",
        "--out",
        s(&bad),
    ]);
    common::fails_with(&o, &["truth", "empirical and gaussian priors only"]);
    assert!(!bad.exists());
    let o = regimes(&[
        "solve",
        "--denoiser",
        "empirical",
        "--train",
        s(&train_file),
        "--measure",
        s(&clean_file),
        "--operator",
        "downsample:3",
        "--out",
        s(&bad),
    ]);
    common::fails_with(&o, &["downsample factor", "must divide"]);
    // An output that cannot be written takes its measurements file with it.
    let blocked = d.join("blocked.npy");
    std::fs::create_dir_all(&blocked).unwrap();
    assert!(!run("projection", &blocked).status.success());
    assert!(!d.join("blocked.measurements.npy").exists());
}

/// The help texts come from the registries: every registered name is listed.
#[test]
fn help_lists_every_registered_name() {
    use diffusion_regimes::experiments::EXPERIMENTS;
    use diffusion_regimes::framework::Framework;
    use diffusion_regimes::nn::Arch;
    use diffusion_regimes::sample::Method;
    use diffusion_regimes::spec::DENOISERS;
    let help = |command: &str| {
        let o = regimes(&[command, "--help"]);
        assert!(o.status.success(), "{command} --help failed");
        String::from_utf8(o.stdout).unwrap()
    };
    let (train, sample, run) = (help("train"), help("sample"), help("run"));
    for f in Framework::ALL {
        assert!(train.contains(f.name()), "train --help lacks {f}");
        assert!(sample.contains(f.name()), "sample --help lacks {f}");
    }
    for kind in Arch::KINDS {
        assert!(train.contains(kind), "train --help lacks {kind}");
    }
    for method in Method::NAMES {
        assert!(sample.contains(method), "sample --help lacks {method}");
    }
    for kind in DENOISERS {
        assert!(
            sample.contains(kind.name),
            "sample --help lacks {}",
            kind.name
        );
    }
    for e in EXPERIMENTS {
        assert!(run.contains(e.name), "run --help lacks {}", e.name);
    }
}

/// `denoise` takes images as it takes rows and answers in their shape, and
/// `--dtype f64` keeps an f64 image training set f64 from file to result.
#[test]
fn denoise_takes_images_and_keeps_f64() {
    let d = dir("images-f64");
    let train = (common::gaussian(4, 0, 16, 48) * 0.7).unwrap();
    let x = common::gaussian(5, 0, 3, 48);
    let (train_file, x_file, out) = (d.join("t.npy"), d.join("x.npy"), d.join("d.npy"));
    let images = |t: &candle_core::Tensor| t.reshape((t.dim(0).unwrap(), 3, 4, 4)).unwrap();
    write_npy(&train_file, &images(&train), DType::F64).unwrap();
    write_npy(&x_file, &images(&x), DType::F64).unwrap();
    let spec = format!("empirical:{}", train_file.display());
    let o = regimes(&[
        "denoise",
        "--denoiser",
        &spec,
        "--input",
        s(&x_file),
        "--sigma",
        "0.3",
        "--dtype",
        "f64",
        "--out",
        s(&out),
    ]);
    common::succeeds(&o);
    let got = read_npy(&out).unwrap();
    assert_eq!(
        (got.dtype(), got.dims()),
        (DType::F64, &[3usize, 3, 4, 4][..])
    );
    let want = EmpiricalDenoiser::new(&train)
        .unwrap()
        .denoise(&x, 0.3)
        .unwrap();
    // The same f64 computation on the same rows: equal to rounding (f32 would be ~1e-7 off).
    assert!(max_abs_diff(&got.flatten_from(1).unwrap(), &want) < 1e-12);
}
