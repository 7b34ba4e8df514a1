//! Every "THEORY §n" cited in the repository names a section of docs/THEORY.md,
//! and the crate docs' table maps every section to the modules that implement it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Section numbers of docs/THEORY.md, read from headings "## n. Title".
fn sections() -> BTreeSet<u32> {
    let text = std::fs::read_to_string(Path::new(ROOT).join("docs/THEORY.md")).unwrap();
    text.lines()
        .filter_map(|line| line.strip_prefix("## "))
        .filter_map(|rest| rest.split('.').next()?.parse().ok())
        .collect()
}

/// Every (file, section) cited as "THEORY §n" or "THEORY.md §n" in `text`.
fn citations(text: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for (at, _) in text.match_indices("THEORY") {
        let rest = text[at + "THEORY".len()..].trim_start_matches(".md");
        let Some(rest) = rest.trim_start().strip_prefix('§') else {
            continue;
        };
        let digits: String = rest
            .trim_start()
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        found.push(digits.parse().unwrap_or(0));
    }
    found
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "fixtures") {
                files_under(&path, out);
            }
        } else if path
            .extension()
            .is_some_and(|e| e == "rs" || e == "md" || e == "toml")
        {
            out.push(path);
        }
    }
}

fn repository_files() -> Vec<PathBuf> {
    let root = Path::new(ROOT);
    let mut files = vec![root.join("README.md"), root.join("BENCHMARKS.md")];
    for dir in ["src", "experiments", "tests", "benches", "figures"] {
        files_under(&root.join(dir), &mut files);
    }
    files
}

#[test]
fn citation_parser_reads_both_spellings() {
    assert_eq!(
        citations("see THEORY §4 and THEORY.md § 12, not THEORY.md"),
        vec![4, 12]
    );
    assert_eq!(citations("THEORY §x"), vec![0]);
}

#[test]
fn every_theory_citation_names_a_section_that_exists() {
    let sections = sections();
    assert!(sections.len() >= 13, "docs/THEORY.md has {sections:?}");
    let mut total = 0;
    let mut dangling = Vec::new();
    // This file quotes malformed citations on purpose.
    for file in repository_files()
        .into_iter()
        .filter(|f| !f.ends_with(file!()))
    {
        let text = std::fs::read_to_string(&file).unwrap();
        for n in citations(&text) {
            total += 1;
            if !sections.contains(&n) {
                dangling.push(format!("{}: THEORY §{n}", file.display()));
            }
        }
    }
    assert!(
        total > 50,
        "only {total} citations found: is the scan broken?"
    );
    assert!(
        dangling.is_empty(),
        "dangling citations:\n{}",
        dangling.join("\n")
    );
}

#[test]
fn crate_docs_map_every_section_to_modules() {
    let lib = std::fs::read_to_string(Path::new(ROOT).join("src/lib.rs")).unwrap();
    for n in sections() {
        let row = format!("//! | §{n} ");
        assert!(lib.contains(&row), "src/lib.rs has no table row for §{n}");
    }
}
