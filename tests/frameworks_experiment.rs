//! The `frameworks` experiment end to end on a tiny config: every
//! framework's cell trains with its framework and samples natively, the
//! disjoint copies learn sets that share no example, and the report's means
//! are the means of the sweep's own pair scores.

mod common;

use common::{run, s, succeeds, temp_dir};
use diffusion_regimes::data::npy::read_npy;
use diffusion_regimes::nn::checkpoint::read_state;

#[test]
fn frameworks_experiment_compares_frameworks_and_disjoint_sets() {
    let out = temp_dir("frameworks-experiment");
    succeeds(&run(
        env!("CARGO_BIN_EXE_frameworks"),
        &["tests/fixtures/frameworks_tiny.toml", "--out", s(&out)],
    ));
    for file in [
        "frameworks.json",
        "frameworks.csv",
        "frameworks.png",
        "rp_heatmap_n2.png",
        "rp_heatmap_n8.png",
        "disjoint/results.csv",
    ] {
        assert!(out.join(file).exists(), "{file}");
    }
    // The cell's run folder records its framework; EDM's leaves it out.
    let flow = read_state(&out.join("cells/n00008/flow-mlp-w32-d2-s0/run")).unwrap();
    assert_eq!(flow.config.framework.name(), "flow");
    let config =
        std::fs::read_to_string(out.join("cells/n00008/mlp-w32-d2-s0/run/config.toml")).unwrap();
    assert!(!config.contains("framework"), "{config}");

    // Seeds 0 and 1 of the disjoint sweep learn 8 examples each, none shared;
    // seed 0's set is the nested one.
    let rows = |cell: &str| -> Vec<Vec<f64>> {
        common::rows(
            &read_npy(&out.join(cell).join("run/train.npy"))
                .unwrap()
                .flatten_from(1)
                .unwrap(),
        )
    };
    let (a, b) = (
        rows("disjoint/cells/n00008/mlp-w32-d2-s0"),
        rows("disjoint/cells/n00008/mlp-w32-d2-s1"),
    );
    assert_eq!((a.len(), b.len()), (8, 8));
    assert!(a.iter().all(|row| !b.contains(row)));
    assert_eq!(a, rows("cells/n00008/mlp-w32-d2-s0"));

    // The across-framework mean at N = 8 is the RP of its one pair
    // (mlp edm vs mlp flow) in the sweep's results.csv.
    let results = std::fs::read_to_string(out.join("results.csv")).unwrap();
    let pair = results
        .lines()
        .find(|l| l.starts_with("8,mlp-w32-d2-s0,flow-mlp-w32-d2-s0,reproducibility"))
        .unwrap_or_else(|| panic!("{results}"));
    let rp: f64 = pair.split(',').nth(5).unwrap().parse().unwrap();
    let report = std::fs::read_to_string(out.join("frameworks.csv")).unwrap();
    let mean: f64 = report
        .lines()
        .find(|l| l.starts_with("8,rp_across_frameworks"))
        .unwrap()
        .rsplit(',')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(mean, rp);
    // One architecture per framework here: no across-architecture pair.
    assert!(!report.contains("rp_across_architectures"), "{report}");
    assert!(report.contains("8,rp_between_disjoint_sets,mlp-w32-d2,"));

    // pairs.csv: every pair at each N after 30 and 60 steps; after 60 its
    // RP is the sweep's, and the shared memorized example is recomputed
    // here by brute force from the kept samples.
    let pairs = std::fs::read_to_string(out.join("pairs.csv")).unwrap();
    let rows: Vec<Vec<&str>> = pairs
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(rows.len(), 2 * 2 * 3, "{pairs}");
    let row = rows
        .iter()
        .find(|r| r[..4] == ["8", "60", "mlp-w32-d2-s0", "flow-mlp-w32-d2-s0"])
        .unwrap_or_else(|| panic!("{pairs}"));
    assert_eq!(row[4].parse::<f64>().unwrap(), rp);
    for r in &rows {
        let cell = |label: &str| {
            out.join(format!(
                "cells/n{:05}/{label}",
                r[0].parse::<usize>().unwrap()
            ))
        };
        let samples = |label: &str| {
            let file = match r[1] {
                "60" => cell(label).join("samples.npy"),
                _ => cell(label).join("budgets/step-00000030.npy"),
            };
            common::rows(&read_npy(&file).unwrap().flatten_from(1).unwrap())
        };
        let train = rows_of(&cell(r[2]).join("run/train.npy"));
        // (nearest example, d1/d2 < 1/3) per sample.
        let landing = |label: &str| -> Vec<(usize, bool)> {
            samples(label)
                .iter()
                .map(|x| {
                    let mut d: Vec<(f64, usize)> = train
                        .iter()
                        .enumerate()
                        .map(|(i, y)| {
                            (
                                x.iter()
                                    .zip(y)
                                    .map(|(a, b)| (a - b).powi(2))
                                    .sum::<f64>()
                                    .sqrt(),
                                i,
                            )
                        })
                        .collect();
                    d.sort_by(|a, b| a.0.total_cmp(&b.0));
                    (d[0].1, d[0].0 < d[1].0 / 3.0)
                })
                .collect()
        };
        let (a, b) = (landing(r[2]), landing(r[3]));
        let shared = a
            .iter()
            .zip(&b)
            .filter(|(a, b)| a.1 && b.1 && a.0 == b.0)
            .count();
        let expected = shared as f64 / a.len() as f64;
        assert_eq!(r[7].parse::<f64>().unwrap(), expected, "{r:?}");
    }
}

fn rows_of(path: &std::path::Path) -> Vec<Vec<f64>> {
    common::rows(&read_npy(path).unwrap().flatten_from(1).unwrap())
}
