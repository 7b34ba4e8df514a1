//! Every `cargo run` command the docs and config comments show uses flags
//! its binary has, so a renamed or mistyped flag fails here rather than in a
//! user's shell (`--config`, never a flag, once stood in five places).

mod common;

use std::path::Path;

const BINARIES: [(&str, &str); 15] = [
    ("regimes", env!("CARGO_BIN_EXE_regimes")),
    ("regimes_sweep", env!("CARGO_BIN_EXE_regimes_sweep")),
    ("optimal_denoiser", env!("CARGO_BIN_EXE_optimal_denoiser")),
    (
        "cross_architecture",
        env!("CARGO_BIN_EXE_cross_architecture"),
    ),
    ("boundaries", env!("CARGO_BIN_EXE_boundaries")),
    ("collapse", env!("CARGO_BIN_EXE_collapse")),
    ("training_time", env!("CARGO_BIN_EXE_training_time")),
    ("dynamics", env!("CARGO_BIN_EXE_dynamics")),
    ("molrg_threshold", env!("CARGO_BIN_EXE_molrg_threshold")),
    ("jacobian_rank", env!("CARGO_BIN_EXE_jacobian_rank")),
    ("inverse_problems", env!("CARGO_BIN_EXE_inverse_problems")),
    ("conditional", env!("CARGO_BIN_EXE_conditional")),
    ("frameworks", env!("CARGO_BIN_EXE_frameworks")),
    ("closed_forms", env!("CARGO_BIN_EXE_closed_forms")),
    ("finetuning", env!("CARGO_BIN_EXE_finetuning")),
];

/// One documented command: the binary and the words passed to it.
#[derive(Debug)]
struct Documented {
    source: String,
    binary: String,
    words: Vec<String>,
}

impl Documented {
    fn flags(&self) -> Vec<&str> {
        self.words
            .iter()
            .filter(|w| w.starts_with("--"))
            .map(|w| w.split('=').next().unwrap_or(w))
            .collect()
    }

    /// The `--help` of the (sub)command the words select: leading words
    /// that the help lists as subcommands descend into them.
    fn help(&self) -> String {
        let mut path: Vec<&str> = Vec::new();
        let mut text = help(&self.binary, &path);
        for word in &self.words {
            let listed = text.split_once("Commands:").is_some_and(|(_, commands)| {
                commands
                    .lines()
                    .any(|l| l.split_whitespace().next() == Some(word))
            });
            if !listed {
                break;
            }
            path.push(word);
            text = help(&self.binary, &path);
        }
        text
    }
}

/// The commands in `text`: `cargo run ... --bin NAME -- ARGS`,
/// `cargo run --release -- ARGS` (the `regimes` binary) and lines that start
/// with `regimes ARGS` (the installed binary), each up to the end of its line
/// (a trailing backslash continues it, also inside `#` comments) or a backtick.
fn commands(source: &str, text: &str) -> Vec<Documented> {
    let joined = text
        .lines()
        .map(|l| match l.trim_end().strip_suffix('\\') {
            Some(head) => format!("{head} "),
            None => format!("{l}\n"),
        })
        .collect::<String>();
    let mut found = Vec::new();
    for line in joined.lines() {
        let installed = line.trim_start().strip_prefix("regimes ");
        let line = match installed {
            Some(args) => format!("cargo run -- {args}"),
            None => line.to_string(),
        };
        let Some(start) = line.find("cargo run") else {
            continue;
        };
        let command = &line[start..];
        let command = command.split('`').next().unwrap_or(command);
        let Some((cargo_args, args)) = command.split_once(" -- ") else {
            continue;
        };
        let cargo_args: Vec<&str> = cargo_args.split_whitespace().collect();
        let words: Vec<&str> = args
            .split_whitespace()
            .filter(|w| *w != "#" && !w.starts_with('\\'))
            .collect();
        let binary = match cargo_args.iter().position(|w| *w == "--bin") {
            Some(k) => cargo_args[k + 1].to_string(),
            None => default_run(),
        };
        found.push(Documented {
            source: source.to_string(),
            binary,
            words: words.iter().map(|w| w.to_string()).collect(),
        });
    }
    found
}

/// The binary a bare `cargo run` runs, resolved as cargo does: the only
/// binary, or the package's `default-run`; a failure when neither settles it
/// (cargo's "could not determine which binary to run").
fn default_run() -> String {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let manifest: toml::Value =
        toml::from_str(&std::fs::read_to_string(manifest).unwrap()).unwrap();
    let bins = manifest
        .get("bin")
        .and_then(|b| b.as_array())
        .map_or(0, Vec::len);
    match manifest["package"].get("default-run") {
        Some(name) => name.as_str().unwrap().to_string(),
        None if bins <= 1 => "regimes".to_string(),
        None => panic!(
            "a documented `cargo run -- ...` cannot resolve: {bins} binaries and no default-run in Cargo.toml"
        ),
    }
}

fn documents() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut paths: Vec<_> = ["README.md", "figures/README.md", "experiments/README.md"]
        .iter()
        .map(|p| root.join(p))
        .collect();
    for entry in std::fs::read_dir(root.join("docs/guide")).unwrap() {
        paths.push(entry.unwrap().path());
    }
    let configs = root.join("experiments/configs");
    for entry in std::fs::read_dir(&configs).unwrap() {
        paths.push(entry.unwrap().path());
    }
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p.display().to_string(), text)
        })
        .collect()
}

fn help(binary: &str, subcommands: &[&str]) -> String {
    let exe = BINARIES
        .iter()
        .find(|(name, _)| *name == binary)
        .unwrap_or_else(|| panic!("the docs run a binary `{binary}` that the crate lacks"))
        .1;
    let output = common::run(exe, &[subcommands, &["--help"]].concat());
    assert!(
        output.status.success(),
        "{binary} {subcommands:?} --help: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn the_parser_finds_flags_in_continued_and_inline_commands() {
    let text = "run `cargo run --release -- data import x --size=8x8` here\n\
                #   cargo run --release --bin training_time -- \\\n\
                #     experiments/x.toml --jobs 3\n";
    let found = commands("t", text);
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found[0].binary, "regimes");
    assert_eq!(found[0].flags(), ["--size"]);
    assert!(
        found[0].help().contains("--grayscale"),
        "`data import`'s help"
    );
    assert_eq!(found[1].binary, "training_time");
    assert_eq!(found[1].words, ["experiments/x.toml", "--jobs", "3"]);
    // The installed binary, as the README's tour writes it.
    let found = commands("t", "regimes sample --seeds 0-9   # comment\n");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        (found[0].binary.as_str(), found[0].flags()),
        ("regimes", vec!["--seeds"])
    );
    assert!(found[0].help().contains("--sampler"), "`sample`'s help");
}

#[test]
fn every_documented_command_uses_flags_its_binary_has() {
    let mut checked = 0;
    for (source, text) in documents() {
        for command in commands(&source, &text) {
            let help = command.help();
            for flag in command.flags() {
                assert!(
                    help.contains(&format!("{flag} ")) || help.contains(&format!("{flag}\n")),
                    "{}: `{}` has no flag {flag}",
                    command.source,
                    command.binary
                );
                checked += 1;
            }
        }
    }
    // The figure table alone documents one --figures per experiment.
    assert!(checked >= 9, "only {checked} documented flags found");
}

#[test]
fn the_readme_first_command_runs_the_quickstart_of_the_cli() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let setup = readme
        .split_once("## Set-up on a fresh clone")
        .expect("README has its set-up section")
        .1;
    let first = commands("README.md", setup)
        .into_iter()
        .next()
        .expect("the set-up section shows a cargo run command");
    assert_eq!(first.binary, "regimes", "a bare `cargo run` runs the CLI");
    assert_eq!(first.words.first().map(String::as_str), Some("quickstart"));
    let output = common::run(env!("CARGO_BIN_EXE_regimes"), &["quickstart", "--help"]);
    assert!(output.status.success(), "`regimes quickstart` exists");
}
