//! Sweeps: sharded runs merge into the same results as one run, finished
//! cells are skipped, an interrupted cell resumes to the same result, and bad
//! configs are refused with the field named.

mod common;

use std::path::Path;

use common::{comparable, temp_dir};
use diffusion_regimes::data::npy::write_npy;
use diffusion_regimes::metrics::crossing;
use diffusion_regimes::sweep::{Results, Shard, Sweep, SweepConfig};

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

/// TINY's text over the examples in `file` instead of MoLRG draws, with
/// `extra` lines added to its `[data]`.
fn tiny_over(file: &Path, extra: &str) -> String {
    TINY.replace(
        "synthetic = { kind = \"molrg\", ambient = 8, ranks = [2, 2], floor = 0.0 }",
        &format!("file = {:?}\n{extra}", file.to_str().unwrap()),
    )
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

    // A changed config may not reuse the folder's cells.
    let changed = SweepConfig::parse(
        &TINY.replace("steps = 12", "steps = 13"),
        Path::new("t.toml"),
    )
    .unwrap();
    let e = Sweep::prepare(changed, &sharded).err().unwrap().to_string();
    assert!(
        e.contains("sweep.toml") && e.contains("different config"),
        "{e}"
    );

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

    // Another RP criterion reuses every cell and only rescores the pairs.
    let before = Results::collect(&sharded).unwrap();
    let rescored = SweepConfig::parse(
        // No two different samples lie at distance < 0: every RP becomes 0.
        &TINY.replace(
            "[metrics]\n",
            "[metrics]\nrp_similarity = \"normalized-l2\"\nrp_threshold = 0.0\n",
        ),
        Path::new("t.toml"),
    )
    .unwrap();
    let again = Sweep::prepare(rescored, &sharded).unwrap();
    assert_eq!(again.run(Shard::ALL, 1).unwrap(), 0);
    let strict = Results::collect(&sharded).unwrap();
    assert_eq!(strict.config.metrics.rp_threshold, 0.0);
    assert_eq!(strict.cells, before.cells);
    assert!(strict.pairs.iter().all(|p| p.rp.value == 0.0));
    assert!(before.pairs.iter().any(|p| p.rp.value > 0.0));
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

#[test]
fn a_sweep_over_a_data_file_scores_against_held_out_rows() {
    let dir = temp_dir("sweep-file");
    let rows = common::gaussian(7, 0, 12, 6)
        .to_dtype(candle_core::DType::F32)
        .unwrap();
    let data = dir.join("data.npy");
    write_npy(&data, &rows, candle_core::DType::F32).unwrap();
    let text =
        tiny_over(&data, "").replace("[[models]]\nkind = \"mlp\"\nwidth = 24\ndepth = 1\n", "");
    let config = SweepConfig::parse(&text, Path::new("file.toml")).unwrap();
    let sweep = Sweep::prepare(config.clone(), &dir.join("out")).unwrap();
    // 4 of the 12 rows lie outside the largest training set (N = 8).
    assert_eq!(sweep.fresh.dims(), &[4, 6]);
    assert!(sweep.truth.is_none());
    assert_eq!(sweep.run(Shard::ALL, 1).unwrap(), 4);
    let results = Results::collect(&dir.join("out")).unwrap();
    assert!(results.cells.iter().all(|c| c.gap_to_truth.is_none()));
    // The empirical denoiser's own samples are training points: memorized.
    let empirical = results
        .cells
        .iter()
        .find(|c| c.label == "empirical")
        .unwrap();
    assert_eq!(empirical.generalization.value, 0.0);

    // A file with no rows left over for the gaps is refused, naming it.
    let all = text.replace("ns = [2, 8]", "ns = [2, 12]");
    let config = SweepConfig::parse(&all, Path::new("file.toml")).unwrap();
    let e = Sweep::prepare(config, &dir.join("out2"))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("data.npy") && e.contains("held-out"), "{e}");
}

#[test]
fn experiment_binaries_and_collect_fail_with_one_line_and_exit_code_2() {
    let dir = temp_dir("sweep-cli");
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, TINY.replace("lr = 1e-3", "lr = \"fast\"")).unwrap();
    let out = common::run(
        env!("CARGO_BIN_EXE_regimes_sweep"),
        &[common::s(&bad), "--out", common::s(&dir.join("o"))],
    );
    // TOML's parse errors quote the line and point at the value: not one line.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("bad.toml") && stderr.contains("lr"),
        "{stderr}"
    );
    assert!(!dir.join("o").exists());

    let out = common::regimes(&["collect", common::s(&dir.join("nothing"))]);
    common::fails_with(&out, &["sweep.toml"]);

    let out = common::regimes(&["quickstart", "--shard", "3/2"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--shard"));
}

#[test]
fn budget_check_scores_each_budget_as_a_sweep_trained_that_long() {
    // Budgets 3, 6, 12: the same cells extended in segments (THEORY §13).
    let with_budgets = TINY.replace("warmup = 2", "warmup = 2\nbudgets = [3, 6, 12]");
    let config = SweepConfig::parse(&with_budgets, Path::new("b.toml")).unwrap();
    let root = temp_dir("sweep-budgets");
    Sweep::prepare(config, &root)
        .unwrap()
        .run(Shard::ALL, 2)
        .unwrap();
    let results = Results::collect(&root).unwrap();
    // The final budget is the ordinary sweep: same scores as one without budgets.
    let plain = temp_dir("sweep-no-budgets");
    Sweep::prepare(tiny(), &plain)
        .unwrap()
        .run(Shard::ALL, 2)
        .unwrap();
    let reference = Results::collect(&plain).unwrap();
    assert_eq!(results.crossings, reference.crossings);
    for (a, b) in results.cells.iter().zip(&reference.cells) {
        assert_eq!(
            (a.generalization, &a.gap_to_empirical),
            (b.generalization, &b.gap_to_empirical)
        );
    }
    // Budget 6 equals a sweep trained for 6 steps, bit for bit.
    let short = temp_dir("sweep-six-steps");
    let six = SweepConfig::parse(
        &TINY.replace("steps = 12", "steps = 6"),
        Path::new("s.toml"),
    )
    .unwrap();
    Sweep::prepare(six, &short)
        .unwrap()
        .run(Shard::ALL, 2)
        .unwrap();
    let six = Results::collect(&short).unwrap();
    let mut compared = 0;
    for cell in six.cells.iter().filter(|c| c.label != "empirical") {
        let file = diffusion_regimes::sweep::budget_file(&cell.cell.dir(&root), 6);
        let at_six: diffusion_regimes::sweep::CellResult =
            serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        assert_eq!(at_six.generalization, cell.generalization, "{}", cell.label);
        assert_eq!(
            at_six.gap_to_empirical, cell.gap_to_empirical,
            "{}",
            cell.label
        );
        assert_eq!(at_six.final_loss, cell.final_loss, "{}", cell.label);
        compared += 1;
    }
    assert_eq!(compared, 4);
    // One check per trained model; N* at 6 steps as that sweep's, the verdict by the 10% rule.
    assert_eq!(results.budget_checks.len(), 2);
    for check in &results.budget_checks {
        assert_eq!(check.budgets, [3, 6, 12]);
        let short_star = six
            .crossings
            .iter()
            .find(|c| c.model == check.model)
            .unwrap()
            .n_star;
        assert_eq!(check.n_star[1], short_star);
        let last = results
            .crossings
            .iter()
            .find(|c| c.model == check.model)
            .unwrap()
            .n_star;
        assert_eq!(check.n_star[2], last);
        let expected = diffusion_regimes::sweep::BudgetVerdict::from_crossings(
            check.n_star[1],
            check.n_star[2],
        );
        assert_eq!(check.verdict, expected);
    }
    assert!(results.summary().contains("budget check"));
    // A process killed after the last budget's training but before its
    // cell.json: the rerun skips the scored budgets and ends the same.
    let cell = results
        .cells
        .iter()
        .find(|c| c.label != "empirical")
        .unwrap();
    let cell_file = cell.cell.dir(&root).join("cell.json");
    let before = std::fs::read(&cell_file).unwrap();
    std::fs::remove_file(&cell_file).unwrap();
    let config = SweepConfig::parse(&with_budgets, Path::new("b.toml")).unwrap();
    assert_eq!(
        Sweep::prepare(config, &root)
            .unwrap()
            .run(Shard::ALL, 1)
            .unwrap(),
        1
    );
    let rerun: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&cell_file).unwrap()).unwrap();
    let mut first: serde_json::Value = serde_json::from_slice(&before).unwrap();
    first["train_seconds"] = rerun["train_seconds"].clone();
    assert_eq!(rerun, first);
    let figures = diffusion_regimes::sweep::regime_figures(&results, &root).unwrap();
    assert!(
        figures.iter().any(|p| p.ends_with("e_budget_check.png")),
        "{figures:?}"
    );
    let plain_figures = diffusion_regimes::sweep::regime_figures(&reference, &plain).unwrap();
    assert!(!plain_figures
        .iter()
        .any(|p| p.ends_with("e_budget_check.png")));
}

#[test]
fn budgets_must_increase_to_the_step_count() {
    for budgets in ["[3, 6]", "[6, 3, 12]", "[0, 12]"] {
        let text = TINY.replace("warmup = 2", &format!("warmup = 2\nbudgets = {budgets}"));
        let e = SweepConfig::parse(&text, Path::new("b.toml"))
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("train.budgets") && e.contains("train.steps = 12"),
            "{budgets}: {e}"
        );
    }
}

/// `sampling.memorizer` picks the memorizing denoiser's sampler (the
/// paper's code uses Euler for it); the default stays Heun and is not
/// written, so existing results are unchanged.
#[test]
fn the_memorizer_is_sampled_by_its_own_setting() {
    use candle_core::{DType, Device};
    use diffusion_regimes::denoise::EmpiricalDenoiser;
    use diffusion_regimes::sample::{generate, Method, Plan};
    use diffusion_regimes::sweep::{MemorizerSampler, Model, SamplingSettings};

    let parse = |text: &str| -> SamplingSettings { toml::from_str(text).unwrap() };
    let heun = parse("samples = 6\nseed = 2");
    let euler = parse("samples = 6\nseed = 2\nmemorizer = \"euler\"");
    assert_eq!(euler.memorizer, MemorizerSampler::Euler);
    assert!(!toml::to_string(&heun).unwrap().contains("memorizer"));
    let train = common::gaussian(3, 0, 10, 4).to_dtype(DType::F64).unwrap();
    let d = EmpiricalDenoiser::new(&train).unwrap();
    let by = |settings: &SamplingSettings| {
        let plan = settings.plan(&Model::Empirical).unwrap();
        settings.draw_with(&d, &plan, 6, DType::F64).unwrap()
    };
    let want = |method| {
        let plan = Plan::new(&heun.schedule, method).unwrap();
        generate(
            &d,
            &plan,
            2,
            &(0..6).collect::<Vec<_>>(),
            DType::F64,
            &Device::Cpu,
            None,
        )
        .unwrap()
    };
    assert_eq!(common::max_abs_diff(&by(&euler), &want(Method::Euler)), 0.0);
    assert_eq!(common::max_abs_diff(&by(&heun), &want(Method::Heun)), 0.0);
    assert!(common::max_abs_diff(&by(&euler), &by(&heun)) > 0.0);
}

/// `data.classes` keeps the examples of those labels only: the training sets
/// and held-out rows come from them alone.
#[test]
fn data_classes_select_the_labelled_examples() {
    let dir = temp_dir("sweep-classes");
    let rows = common::gaussian(5, 0, 30, 6)
        .to_dtype(candle_core::DType::F32)
        .unwrap();
    let folder = dir.join("data");
    std::fs::create_dir_all(&folder).unwrap();
    write_npy(&folder.join("data.npy"), &rows, candle_core::DType::F32).unwrap();
    let labels: Vec<u32> = (0..30).map(|i| i % 3).collect();
    diffusion_regimes::data::write_labels(&folder.join("labels.npy"), &labels).unwrap();
    let text = tiny_over(&folder, "classes = [1]").replace("ns = [2, 8]", "ns = [2, 4]");
    let config = SweepConfig::parse(&text, Path::new("classes.toml")).unwrap();
    let sweep = Sweep::prepare(config, &dir.join("out")).unwrap();
    // The 10 rows labelled 1: every training row and held-out row is one.
    let ones: Vec<Vec<f64>> = common::rows(&rows)
        .into_iter()
        .enumerate()
        .filter(|(i, _)| i % 3 == 1)
        .map(|(_, r)| r)
        .collect();
    let is_one = |r: &Vec<f64>| ones.iter().any(|o| o == r);
    let train = sweep.training_set(4).unwrap();
    assert!(common::rows(&train).iter().all(is_one));
    assert!(common::rows(&sweep.fresh).iter().all(is_one));
    assert_eq!(
        sweep.fresh.dim(0).unwrap(),
        6,
        "10 rows of class 1, 4 trained"
    );
    assert!(sweep.data_origin.ends_with("classes [1]"));

    let none = text.replace("classes = [1]", "classes = [7]");
    let e = Sweep::prepare(
        SweepConfig::parse(&none, Path::new("c.toml")).unwrap(),
        &dir.join("o2"),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("data.classes") && e.contains("[7]"), "{e}");
}

/// With `together` = 4 and one job, each network's cells train as one
/// group; alone (the default, 1): the cells, their budget scores and
/// samples come out the same, with two frameworks in a group.
#[test]
fn cells_trained_together_score_as_cells_trained_alone() {
    let text = TINY
        .replace("warmup = 2", "warmup = 2\nbudgets = [6, 12]")
        .replace(
            "width = 24\ndepth = 1",
            "width = 16\ndepth = 1\nframework = \"flow\"",
        );
    let config = || SweepConfig::parse(&text, Path::new("t.toml")).unwrap();
    let together = temp_dir("sweep-together");
    let mut sweep = Sweep::prepare(config(), &together).unwrap();
    let pending = Sweep::grid(&sweep.config);
    let sizes = |sweep: &Sweep, jobs| -> Vec<usize> {
        let groups = sweep.groups(pending.clone(), jobs);
        groups.iter().map(Vec::len).collect()
    };
    // 2 sizes x (empirical + 2 MLPs of one size): alone by default; with
    // up to 4 together, one group of the 4 MLPs and the 2 empirical cells
    // alone, with 2 jobs two groups of 2, and at most 3 together, 3 and 1.
    assert_eq!(sizes(&sweep, 1), [1; 6]);
    sweep.together = 3;
    assert_eq!(sizes(&sweep, 1), [3, 1, 1, 1]);
    sweep.together = 4;
    assert_eq!(sizes(&sweep, 1), [4, 1, 1]);
    assert_eq!(sizes(&sweep, 2), [2, 2, 1, 1]);
    assert_eq!(sweep.run(Shard::ALL, 1).unwrap(), 6);
    let alone = temp_dir("sweep-alone");
    let sweep = Sweep::prepare(config(), &alone).unwrap();
    assert_eq!(sweep.run(Shard::ALL, 2).unwrap(), 6);
    common::assert_same_cells(&together, &alone);
    for cell in ["n00002/mlp-w16-d1-s0", "n00008/flow-mlp-w16-d1-s0"] {
        let budget = |root: &Path| {
            std::fs::read(
                root.join("cells")
                    .join(cell)
                    .join("budgets/step-00000006.npy"),
            )
            .unwrap()
        };
        assert!(budget(&together) == budget(&alone), "{cell}");
    }
}
