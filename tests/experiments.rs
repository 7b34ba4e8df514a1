//! The experiment registry: every binary in experiments/ is a registered
//! experiment whose default config loads, and `regimes run NAME` is the
//! same program as the binary NAME.

use std::path::Path;
use std::process::Command;

use diffusion_regimes::experiments::{find, RunOptions, EXPERIMENTS};

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
