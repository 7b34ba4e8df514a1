//! The experiment registry: every binary in experiments/ is a registered
//! experiment whose default config loads, and `regimes run NAME` is the
//! same program as the binary NAME.

use std::path::{Path, PathBuf};
use std::process::Command;

use diffusion_regimes::experiments::{find, EXPERIMENTS};
use diffusion_regimes::sweep::RunOptions;

/// The `[[bin]]` names of Cargo.toml whose source is in experiments/.
fn experiment_binaries() -> Vec<String> {
    let manifest = std::fs::read_to_string("Cargo.toml").unwrap();
    let table: toml::Table = manifest.parse().unwrap();
    table["bin"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|bin| bin["path"].as_str().unwrap().starts_with("experiments/"))
        .map(|bin| bin["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn every_experiment_binary_is_registered_with_a_loadable_default_config() {
    let binaries = experiment_binaries();
    let mut names: Vec<&str> = EXPERIMENTS.iter().map(|e| e.name).collect();
    names.sort_unstable();
    let mut expected: Vec<&str> = binaries.iter().map(String::as_str).collect();
    expected.sort_unstable();
    assert_eq!(names, expected);
    for entry in EXPERIMENTS {
        let source = std::fs::read_to_string(format!("experiments/{}.rs", entry.name)).unwrap();
        assert!(
            source.contains(&format!("experiment_main(\"{}\")", entry.name)),
            "experiments/{}.rs does not run its own registry entry",
            entry.name
        );
        assert!(
            entry.default_config().exists(),
            "{} has no config",
            entry.name
        );
        entry
            .check(&entry.default_config(), &RunOptions::new())
            .unwrap_or_else(|e| panic!("{}: {e}", entry.name));
    }
}

#[test]
fn data_is_refused_by_experiments_that_read_none() {
    let options = RunOptions {
        data: Some("images.npy".into()),
        ..RunOptions::new()
    };
    let collapse = find("collapse").unwrap();
    let error = collapse
        .check(&collapse.default_config(), &options)
        .unwrap_err()
        .to_string();
    assert!(error.contains("--data does not apply"), "{error}");
    // A synthetic sweep has no data file to replace either.
    let sweep = find("regimes_sweep").unwrap();
    let error = sweep
        .check(&sweep.default_config(), &options)
        .unwrap_err()
        .to_string();
    assert!(error.contains("synthetic"), "{error}");
}

#[test]
fn regimes_run_is_the_experiment_binary() {
    let regimes = env!("CARGO_BIN_EXE_regimes");
    let list = Command::new(regimes)
        .args(["run", "list"])
        .output()
        .unwrap();
    assert!(list.status.success());
    let listed = String::from_utf8(list.stdout).unwrap();
    for entry in EXPERIMENTS {
        assert!(listed.contains(entry.name), "{listed}");
    }
    // The same bad config fails the same way through both doors.
    let bad = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bad_collapse.toml");
    std::fs::write(&bad, "name = \"x\"\ndims = [2]\n").unwrap();
    let via_run = Command::new(regimes)
        .args(["run", "collapse"])
        .arg(&bad)
        .output()
        .unwrap();
    let via_binary = Command::new(env!("CARGO_BIN_EXE_collapse"))
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(via_run.status.code(), Some(2));
    assert_eq!(via_binary.status.code(), Some(2));
    assert_eq!(via_run.stderr, via_binary.stderr);
    let unknown = Command::new(regimes)
        .args(["run", "nonesuch"])
        .output()
        .unwrap();
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("boundaries"));
}

/// Runs `regimes run NAME` on the config `toml` in a fresh folder of the
/// test target's: the folder (run/ and figures/ inside) and NAME.json.
fn run_tiny(name: &str, toml: &str) -> (PathBuf, serde_json::Value) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("tiny.toml");
    std::fs::write(&config, toml).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_regimes"))
        .args(["run", name])
        .arg(&config)
        .arg("--out")
        .arg(dir.join("run"))
        .arg("--figures")
        .arg(dir.join("figures"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = std::fs::read_to_string(dir.join(format!("figures/{name}.json"))).unwrap();
    (dir, serde_json::from_str(&report).unwrap())
}

/// `inverse_problems` end to end on a tiny sweep: one row of scores per
/// operator, N and model, each a fraction, and a figure per operator.
#[test]
fn inverse_problems_scores_every_operator_n_and_model() {
    let (dir, report) = run_tiny(
        "inverse_problems",
        r#"operators = ["inpaint-random:4,0", "project:3,1"]
measurements = 3
seeds = 2
noise_y = 0.01
solvers = ["dps", "projection"]
zeta = 10.0
[sweep]
name = "tiny"
ns = [2, 8]
[sweep.data]
synthetic = { kind = "molrg", ambient = 8, ranks = [2, 2], floor = 0.0 }
[[sweep.models]]
kind = "mlp"
width = 16
depth = 1
[[sweep.models]]
kind = "mlp"
width = 32
depth = 1
[sweep.train]
steps = 20
batch = 8
lr = 1e-3
warmup = 5
[sweep.sampling]
samples = 8
[sweep.metrics]
gap_sigmas = [0.1]
gap_points = 8
resamples = 10
"#,
    );
    let operators = report["operators"].as_array().unwrap();
    let names: Vec<(&str, &str)> = operators
        .iter()
        .map(|o| {
            (
                o["operator"].as_str().unwrap(),
                o["solver"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("inpaint-random:4,0", "dps"),
            ("inpaint-random:4,0", "projection"),
            ("project:3,1", "dps"),
            ("project:3,1", "projection")
        ]
    );
    let fraction = |v: &serde_json::Value| (0.0..=1.0).contains(&v["value"].as_f64().unwrap());
    for part in operators
        .iter()
        .flat_map(|o| [&o["points"], &o["unmeasured"]])
    {
        let points = part.as_array().unwrap();
        let ns: Vec<u64> = points.iter().map(|p| p["n"].as_u64().unwrap()).collect();
        assert_eq!(ns, [2, 8]);
        for point in points {
            assert!(fraction(&point["rp_between_models"]));
            let models = point["models"].as_array().unwrap();
            assert_eq!(models.len(), 2);
            for m in models {
                for score in ["rp_vs_memorizing", "rp_vs_truth", "generalization"] {
                    assert!(fraction(&m[score]), "{score}: {m}");
                }
            }
        }
    }
    let csv = std::fs::read_to_string(dir.join("figures/inverse_problems.csv")).unwrap();
    // Per operator and solver, per N and model: the whole and the unmeasured part.
    assert_eq!(csv.lines().count(), 1 + 4 * 2 * 2 * 2, "{csv}");
    assert!(
        csv.contains("\"project:3,1\",\"projection\",\"unmeasured\",8,mlp-w32-d1-s0,"),
        "{csv}"
    );
    for figure in [
        "inverse_problems_0.png",
        "inverse_problems_3.svg",
        "inverse_problems.json",
    ] {
        assert!(dir.join("figures").join(figure).exists(), "{figure}");
    }
}

/// `finetuning` end to end on a tiny config: the fine-tuned cells record
/// their base, and every score of every N is a fraction.
#[test]
fn finetuning_scores_fine_tuned_and_scratch_models_at_every_n() {
    let (dir, report) = run_tiny(
        "finetuning",
        r#"[base]
n = 16
steps = 20
seeds = [0, 1]
[base.data]
synthetic = { kind = "molrg", ambient = 8, ranks = [2, 2], floor = 0.0 }
[sweep]
name = "tiny"
ns = [2, 8]
[sweep.data]
synthetic = { kind = "molrg", ambient = 8, ranks = [2, 2], floor = 0.0 }
seed = 1
[[sweep.models]]
kind = "mlp"
width = 16
depth = 1
[sweep.train]
steps = 10
batch = 8
lr = 1e-3
warmup = 5
[sweep.sampling]
samples = 8
[sweep.metrics]
gap_sigmas = [0.1]
gap_points = 8
resamples = 10
"#,
    );
    let fraction = |v: &serde_json::Value| (0.0..=1.0).contains(&v.as_f64().unwrap());
    let points = report["points"].as_array().unwrap();
    assert_eq!(points.len(), 2);
    for p in points {
        assert!(fraction(&p["rp_between_bases"]["value"]));
        assert_eq!(p["rp_vs_scratch"].as_array().unwrap().len(), 2);
        let models: Vec<&str> = p["models"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["model"].as_str().unwrap())
            .collect();
        assert_eq!(models, ["scratch", "from base s0", "from base s1"]);
        for m in p["models"].as_array().unwrap() {
            assert!(fraction(&m["generalization"]["value"]) && fraction(&m["nearer_source"]));
        }
    }
    // Each fine-tuned cell starts from its own base's run.
    let cell = dir.join("run/from-base-s1/cells/n00008/mlp-w16-d1-s0/run/config.toml");
    let text = std::fs::read_to_string(cell).unwrap();
    assert!(
        text.contains("base/cells/n00016/mlp-w16-d1-s1/run"),
        "{text}"
    );
    assert!(dir.join("figures/finetuning.png").exists());
}

/// `dynamics` end to end on a tiny grid: every (target, capacity, seed, N,
/// checkpoint) is scored with its losses, every model's tau_gen is the
/// first checkpoint within the tolerance of its best gap, and the fit of
/// tau_gen against N is the closed form of least squares on two sizes.
#[test]
fn dynamics_times_every_model_and_fits_them_against_n() {
    let (dir, report) = run_tiny(
        "dynamics",
        r#"checkpoints = [10, 20, 40]
tolerance = 0.1
level = 0.7
targets = ["sample", "empirical"]
[sweep]
name = "tiny"
ns = [2, 8]
seeds = [0, 1, 2]
[sweep.data]
synthetic = { kind = "molrg", ambient = 8, ranks = [2, 2], floor = 0.0 }
[[sweep.models]]
kind = "mlp"
width = 16
depth = 1
[[sweep.models]]
kind = "mlp"
width = 32
depth = 1
[sweep.train]
steps = 40
batch = 8
lr = 1e-3
warmup = 5
eval_every = 10
eval_points = 16
[sweep.sampling]
samples = 8
[sweep.metrics]
gap_sigmas = [0.5]
gap_points = 16
resamples = 50
"#,
    );
    let points = report["points"].as_array().unwrap();
    assert_eq!(points.len(), 2 * 2 * 3 * 2 * 3);
    for p in points {
        for loss in ["train_loss", "heldout_loss", "gap_to_truth"] {
            assert!(p[loss].as_f64().unwrap() > 0.0, "{loss}: {p}");
        }
    }
    let key = |v: &serde_json::Value| {
        (
            v["target"].as_str().unwrap().to_string(),
            v["arch"].as_str().unwrap().to_string(),
            v["seed"].as_u64().unwrap(),
            v["n"].as_u64().unwrap(),
        )
    };
    let times = report["times"].as_array().unwrap();
    assert_eq!(times.len(), 2 * 2 * 3 * 2);
    for t in times {
        let curve: Vec<(f64, f64)> = points
            .iter()
            .filter(|p| key(p) == key(t))
            .map(|p| {
                (
                    p["step"].as_f64().unwrap(),
                    p["gap_to_truth"].as_f64().unwrap(),
                )
            })
            .collect();
        let best = curve.iter().map(|c| c.1).fold(f64::INFINITY, f64::min);
        let first = curve.iter().find(|c| c.1 <= 1.1 * best).unwrap().0;
        assert_eq!(t["tau_gen"].as_f64().unwrap(), first, "{t}");
        // tau_level: where the gap first falls to 0.7, interpolated in log step.
        let level = match curve.iter().position(|c| c.1 <= 0.7) {
            Some(0) => Some(curve[0].0),
            Some(k) => {
                let ((s0, g0), (s1, g1)) = (curve[k - 1], curve[k]);
                let t = (g0 - 0.7) / (g0 - g1);
                Some((s0.ln() + t * (s1.ln() - s0.ln())).exp())
            }
            None => None,
        };
        match (level, t["tau_level"].as_f64()) {
            (Some(want), Some(got)) => assert!((want - got).abs() < 1e-9 * want, "{t}"),
            (want, got) => assert_eq!(want, got, "{t}"),
        }
    }
    // Two sizes, three seeds each: the least-squares slope is the
    // difference of the mean log times over the difference of log N.
    let fit = report["fits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["target"] == "empirical" && f["arch"] == "mlp-w32-d1" && f["what"] == "tau_gen")
        .unwrap();
    let mean_log = |n: u64| -> f64 {
        let logs: Vec<f64> = times
            .iter()
            .filter(|t| t["target"] == "empirical" && t["arch"] == "mlp-w32-d1" && t["n"] == n)
            .map(|t| t["tau_gen"].as_f64().unwrap().ln())
            .collect();
        logs.iter().sum::<f64>() / logs.len() as f64
    };
    let slope = (mean_log(8) - mean_log(2)) / (8f64.ln() - 2f64.ln());
    assert!(
        (fit["exponent"].as_f64().unwrap() - slope).abs() < 1e-9,
        "{fit}"
    );
    let [lo, hi] = [0, 1].map(|k| fit["interval"][k].as_f64().unwrap());
    assert!(lo <= slope + 1e-9 && slope <= hi + 1e-9, "{fit}");
    // The empirical target's runs record it; the ordinary ones do not.
    let config = |target: &str| {
        let run = dir.join(format!(
            "run/{target}/cells/n00002/mlp-w16-d1-s0/run/config.toml"
        ));
        std::fs::read_to_string(run).unwrap()
    };
    assert!(config("empirical").contains("target = \"empirical\""));
    assert!(!config("sample").contains("target"));
    for figure in [
        "phase_diagram_sample.png",
        "losses_empirical_mlp-w16-d1.svg",
        "times.csv",
    ] {
        assert!(dir.join("figures").join(figure).exists(), "{figure}");
    }
}
