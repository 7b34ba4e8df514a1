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
}
