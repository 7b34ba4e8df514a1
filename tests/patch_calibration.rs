//! Calibrating a patch denoiser's k(sigma) to a model (THEORY §12): against
//! a model that is itself a patch denoiser of known sizes, the calibration
//! recovers them; the CLI writes a schedule any spec can name.

mod common;

use std::sync::Arc;

use common::{fails_with, gaussian, regimes, s, succeeds};
use diffusion_regimes::data::npy::read_npy;
use diffusion_regimes::denoise::{PatchDenoiser, PatchKind, PatchSize};
use diffusion_regimes::experiments::calibrate_patches;
use diffusion_regimes::metrics::Similarity;
use diffusion_regimes::sample::{Method, Schedule};

#[test]
fn calibration_recovers_the_sizes_of_a_patch_model() {
    let train = gaussian(11, 0, 6, 2 * 36).reshape((6, 2, 6, 6)).unwrap();
    // The "network": ELS with k = 5 at high noise and k = 1 below sigma = 1.
    let truth = PatchSize::Function(Arc::new(|sigma| if sigma > 1.0 { 5 } else { 1 }));
    let model = PatchDenoiser::new(PatchKind::Equivariant, &train, truth.clone()).unwrap();
    let sigmas = Schedule {
        steps: 6,
        sigma_min: 0.05,
        sigma_max: 20.0,
        rho: 7.0,
    }
    .sigmas()
    .unwrap();
    let start = (gaussian(11, 1, 3, 72) * sigmas[0]).unwrap();
    for similarity in [Similarity::Cosine, Similarity::NormalizedL2] {
        let calibration = calibrate_patches(
            &model,
            PatchKind::Equivariant,
            &train,
            &[1, 3, 5, 7],
            (&start, &sigmas),
            &Method::Euler,
            similarity,
        )
        .unwrap();
        assert_eq!(calibration.steps.len(), 6, "one per Euler step");
        for step in &calibration.steps {
            assert_eq!(
                step.k,
                truth.at(step.sigma).unwrap(),
                "{similarity:?} at {}",
                step.sigma
            );
            let best = calibration.sizes.iter().position(|&k| k == step.k).unwrap();
            let perfect = match similarity.higher_is_closer() {
                true => 1.0,
                false => 0.0,
            };
            assert!(
                (step.scores[best] - perfect).abs() < 1e-9,
                "{:?}",
                step.scores
            );
        }
        let schedule = calibration.schedule();
        for step in &calibration.steps {
            assert_eq!(schedule.at(step.sigma).unwrap(), step.k);
        }
    }
}

#[test]
fn calibrate_patches_writes_a_schedule_that_specs_name() {
    let d = common::temp_dir("cli-calibrate");
    let run = common::train_tiny_unet(&d, 8, 6, 53);
    let schedule = d.join("schedule.csv");
    let calibrate = |extra: &[&str]| {
        let mut args = vec![
            "calibrate-patches",
            "--model",
            s(&run),
            "--denoiser",
            "els",
            "--seeds",
            "0-1",
            "--steps",
            "4",
            "--out",
            s(&schedule),
        ];
        args.extend_from_slice(extra);
        regimes(&args)
    };
    succeeds(&calibrate(&["--sizes", "1,3,5"]));
    let PatchSize::Table(table) = PatchSize::read(&schedule).unwrap() else {
        panic!("a schedule file is a table");
    };
    assert_eq!(table.len(), 4, "one row per step");
    assert!(table.iter().all(|(_, k)| [1, 3, 5].contains(k)));
    let header = std::fs::read_to_string(&schedule).unwrap();
    assert!(header.starts_with("sigma,k,cosine,k1,k3,k5\n"), "{header}");
    let samples = d.join("samples.npy");
    let spec = format!("els:{}:{}", s(&run.join("train.npy")), s(&schedule));
    succeeds(&regimes(&[
        "sample",
        "--denoiser",
        &spec,
        "--seeds",
        "0-2",
        "--steps",
        "4",
        "--out",
        s(&samples),
    ]));
    assert_eq!(read_npy(&samples).unwrap().dims(), [3, 64]);
    fails_with(
        &calibrate(&["--sampler", "ancestral"]),
        &["--sampler", "heun"],
    );
    fails_with(&calibrate(&["--sizes", "1,4"]), &["patch size", "odd"]);
    fails_with(
        &calibrate(&["--sizes", "1", "--train", s(&d.join("missing.npy"))]),
        &["missing.npy"],
    );
}
