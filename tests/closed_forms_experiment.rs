//! The `closed_forms` experiment end to end on a tiny config: every
//! candidate is scored against the model, the r^2 of the empirical
//! candidate is the one computed here from the two cells' samples, and a
//! rerun reads the fits back instead of recomputing them.

mod common;

use common::{run, s, succeeds, temp_dir};
use diffusion_regimes::data::npy::read_npy;

#[test]
fn closed_forms_scores_every_candidate_and_resumes() {
    let out = temp_dir("closed-forms-experiment");
    let args = ["tests/fixtures/closed_forms_tiny.toml", "--out", s(&out)];
    succeeds(&run(env!("CARGO_BIN_EXE_closed_forms"), &args));
    for file in [
        "closed_forms.json",
        "closed_forms.csv",
        "closed_forms_mlp-w32-d2.png",
        "patch_sizes_mlp-w32-d2.png",
        "patch_sizes_cnn-w8-d1-zero.png",
        "results.csv",
    ] {
        assert!(out.join(file).exists(), "{file}");
    }
    let table = std::fs::read_to_string(out.join("closed_forms.csv")).unwrap();
    for n in [2, 8] {
        for candidate in [
            "empirical",
            "gaussian",
            "kde",
            "local",
            "els",
            "els-boundary",
            "window-mean",
        ] {
            // The MLP has no receptive field to report; the CNN's is 9x9.
            for prefix in [
                format!("{n},mlp-w32-d2-s0,,{candidate},"),
                format!("{n},cnn-w8-d1-zero-s0,9,{candidate},"),
            ] {
                assert!(
                    table.lines().any(|l| l.starts_with(&prefix)),
                    "{prefix} in\n{table}"
                );
            }
        }
    }
    // r^2 of the empirical denoiser's samples as predictions of the model's, by hand.
    let rows = |cell: &str| {
        common::rows(
            &read_npy(&out.join(cell).join("samples.npy"))
                .unwrap()
                .flatten_from(1)
                .unwrap(),
        )
    };
    let (model, empirical) = (
        rows("cells/n00008/mlp-w32-d2-s0"),
        rows("cells/n00008/empirical"),
    );
    let mut r2: Vec<f64> = model
        .iter()
        .zip(&empirical)
        .map(|(m, e)| {
            let mean = m.iter().sum::<f64>() / m.len() as f64;
            let residual: f64 = m.iter().zip(e).map(|(a, b)| (a - b).powi(2)).sum();
            1.0 - residual / m.iter().map(|a| (a - mean).powi(2)).sum::<f64>()
        })
        .collect();
    r2.sort_by(f64::total_cmp);
    let median = r2[(0.5 * (r2.len() - 1) as f64).round() as usize];
    let line = table
        .lines()
        .find(|l| l.starts_with("8,mlp-w32-d2-s0,,empirical,"))
        .unwrap();
    let field = |k: usize| -> f64 { line.split(',').nth(k).unwrap().parse().unwrap() };
    let reported = field(4);
    assert!((reported - median).abs() < 1e-9, "{reported} vs {median}");
    // The median's bootstrap interval: medians of resamples, so two of the
    // samples' own r^2 values, around the median.
    let (low, high) = (field(5), field(6));
    assert!(low <= median && median <= high, "{low} {median} {high}");
    for end in [low, high] {
        assert!(
            r2.iter().any(|&v| (v - end).abs() < 1e-9),
            "{end} is no sample's r^2"
        );
    }
    // The calibrated schedules pick from the configured sizes.
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("closed_forms.json")).unwrap())
            .unwrap();
    let fits = report["fits"].as_array().unwrap();
    for fit in fits.iter().filter(|f| f["schedule"].is_array()) {
        assert!(fit["schedule"]
            .as_array()
            .unwrap()
            .iter()
            .all(|step| [1, 3].contains(&step[1].as_u64().unwrap())));
    }
    let kde = fits.iter().find(|f| f["candidate"] == "kde").unwrap();
    assert!([0.1, 0.5].contains(&kde["bandwidth"].as_f64().unwrap()));
    // A rerun reads every cell's fits back: the same table, byte for byte.
    let fits_file = out.join("cells/n00008/mlp-w32-d2-s0/closed_forms.json");
    let written = std::fs::metadata(&fits_file).unwrap().modified().unwrap();
    succeeds(&run(env!("CARGO_BIN_EXE_closed_forms"), &args));
    assert_eq!(
        std::fs::read_to_string(out.join("closed_forms.csv")).unwrap(),
        table
    );
    assert_eq!(
        std::fs::metadata(&fits_file).unwrap().modified().unwrap(),
        written
    );
}

/// The committed closed_forms configs parse, and the local CNNs of the 16x16
/// and 28x28 ones see less than the image: 13x13 and 17x17 windows.
#[test]
fn the_closed_forms_configs_parse_and_their_cnns_are_local() {
    use diffusion_regimes::experiments::ClosedFormsConfig;
    use diffusion_regimes::sweep::load_toml;
    let configs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/configs");
    let load = |name: &str| load_toml::<ClosedFormsConfig>(&configs.join(name)).unwrap();
    load("closed_forms.toml");
    for (name, side, field) in [
        ("closed_forms_16.toml", 16, 13),
        ("closed_forms_28.toml", 28, 17),
        ("closed_forms_28_long.toml", 28, 17),
    ] {
        let config = load(name);
        let size = config.sweep.data.import.as_ref().unwrap().size;
        assert_eq!(size, Some([side, side]), "{name}");
        let fields: Vec<usize> = (config.sweep.models.iter())
            .filter_map(|m| m.arch.receptive_field())
            .collect();
        assert_eq!(fields, [field], "{name}");
    }
}
