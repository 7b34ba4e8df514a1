//! A short pass of the parser mutation harness (examples/fuzz_parsers.rs):
//! every parser refuses broken files with an error and never panics. Here
//! in the test profile, with overflow checks on; the README records the
//! 10^6-mutant runs.

#[path = "../examples/fuzz_parsers.rs"]
mod harness;

#[test]
fn no_parser_panics_on_mutated_files() {
    let work = harness::work_dir();
    let report = harness::run(3000, 1, None, &work);
    let _ = std::fs::remove_dir_all(&work);
    assert_eq!(report.len(), 9, "every parser ran");
    for (name, counts) in &report {
        assert_eq!(
            counts.panicked,
            0,
            "{name}: {}",
            counts.first_panic.clone().unwrap_or_default()
        );
        // Mutants must mostly break the file, and some must still parse:
        // otherwise the harness tests nothing, or only its own mutator.
        assert!(
            counts.refused > 300 && counts.parsed > 0,
            "{name}: {counts:?}"
        );
    }
}
