//! Every import points down: a module of the library uses only modules
//! below it in `LAYERS` (bottom first). A new module takes its place here.

use std::fs;
use std::path::Path;

const LAYERS: &[&str] = &[
    "error",
    "io",
    "rng",
    "linalg",
    "device",
    "jobs",
    "denoise",
    "data",
    "sample",
    "framework",
    "nn",
    "plot",
    "metrics",
    "spec",
    "inverse",
    "sweep",
    "theory",
    "experiments",
    "cli",
];

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file of src/ belongs to (`src/sweep/cell.rs` -> sweep).
fn module_of(src: &Path, file: &Path) -> String {
    let first = file.strip_prefix(src).unwrap().components().next().unwrap();
    first
        .as_os_str()
        .to_string_lossy()
        .trim_end_matches(".rs")
        .to_string()
}

#[test]
fn every_import_points_down() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let rank = |m: &str| LAYERS.iter().position(|l| *l == m);
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut upward = Vec::new();
    for file in files {
        let module = module_of(&src, &file);
        if module == "lib" || module == "bin" {
            continue;
        }
        let own = rank(&module).unwrap_or_else(|| panic!("{module} is not in LAYERS"));
        let text = fs::read_to_string(&file).unwrap();
        for (at, _) in text.match_indices("crate::") {
            let name: String = text[at + 7..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if let Some(target) = rank(&name) {
                if target > own {
                    upward.push(format!("{}: {module} -> {name}", file.display()));
                }
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports that point up:\n{}",
        upward.join("\n")
    );
}
